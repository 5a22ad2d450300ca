"""One way to name and build any agent that evaluation, Thompson sampling and traces play.

An :class:`AgentSpec` says *what* to play (a scripted agent or a trained policy, greedy or
sampled, with which seed); :func:`make_agent` builds an :class:`EvalAgent` that plays it on a
:class:`~rl_app.env.text_env.WebShopTextEnv`. Specs are small frozen values, so they travel
to Ray workers, where each task builds its own agent (a policy is loaded once per task).

Randomness is per episode: :meth:`EvalAgent.reset` reseeds the agent from
``(spec.seed, env.goal_index, visit)`` alone (:func:`episode_seed`), so an episode's actions
do not depend on which goals ran before it, in which order, or on how many workers ran them.
The derivation is the one :mod:`rl_app.data.demos` uses, so evaluating the demonstrator
with seed ``s`` replays the demonstrations generated with seed ``s``.

>>> spec = AgentSpec.parse("policy:runs/dpo/checkpoint_000010", greedy=False, seed=3)  # doctest: +SKIP
>>> agent = make_agent(spec)                                                            # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from rl_app.agents.scripted import DemonstratorAgent, RuleAgent
from rl_app.env.text_env import WebShopTextEnv

__all__ = [
    "AGENT_KINDS",
    "AgentKind",
    "AgentSpec",
    "Decision",
    "EvalAgent",
    "ScriptedEvalAgent",
    "PolicyEvalAgent",
    "make_agent",
    "parse_agents",
    "episode_seed",
    "env_rng",
]

AgentKind = Literal["rule", "demonstrator", "policy"]
AGENT_KINDS: tuple[str, ...] = ("rule", "demonstrator", "policy")
# Stream that separates the env's generator (seeded candidate reductions) from the agent's;
# the same value rl_app.data.demos.record_episode uses.
ENV_STREAM = 1


def episode_seed(seed: int, goal_index: int, visit: int = 0) -> int:
    """The seed of one episode: a hash of (seed, goal_index[, visit]) and nothing else.

    ``visit`` counts earlier plays of the same goal by the same agent (Thompson sampling
    cycles through the goals); visit 0 gives :func:`rl_app.data.demos.episode_seed`.
    """
    if seed < 0 or goal_index < 0 or visit < 0:
        raise ValueError(f"seed, goal_index and visit must be >= 0, got {seed}, {goal_index}, {visit}")
    entropy = [seed, goal_index] if visit == 0 else [seed, goal_index, visit]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def env_rng(seed: int, goal_index: int, visit: int = 0) -> np.random.Generator:
    """The env's generator for one episode (only seeded candidate reductions draw from it)."""
    return np.random.default_rng([episode_seed(seed, goal_index, visit), ENV_STREAM])


@dataclass(frozen=True)
class AgentSpec:
    """What to evaluate.

    Attributes:
        name: label in tables, files and plots (default: the kind, or ``policy:<dir name>``).
        kind: ``rule`` (WebShop's baseline), ``demonstrator`` (the scripted shopper) or
            ``policy`` (a trained ChoicePolicy checkpoint).
        checkpoint: the policy's directory (a ``save_pretrained`` dir, an RLModule or an
            Algorithm checkpoint); required for ``policy``, refused otherwise.
        greedy: policy only: argmax over the candidates (True) or a sample from pi(.|s).
        seed: base seed of every episode's randomness (sampled policy, demonstrator).
        frozen_cache: policy only: stored frozen-row caches (a ``.frozen_cache`` root, e.g. the
            training data's) read into a cached-encoder policy's memo before it plays; rows
            found there are not encoded again (the choices are the same).
    """

    name: str
    kind: AgentKind
    checkpoint: Optional[str] = None
    greedy: bool = True
    seed: int = 0
    frozen_cache: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in AGENT_KINDS:
            raise ValueError(f"agent kind must be one of {AGENT_KINDS}, got {self.kind!r}")
        if self.kind == "policy" and not self.checkpoint:
            raise ValueError("a policy agent needs a checkpoint directory (AgentSpec(checkpoint=...) "
                             "or 'policy:DIR' on the command line)")
        if self.kind != "policy" and self.checkpoint is not None:
            raise ValueError(f"a {self.kind} agent takes no checkpoint, got {self.checkpoint!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not self.name:
            raise ValueError("name must be a non-empty string")

    @property
    def mode(self) -> Literal["greedy", "sampled", "scripted"]:
        """How actions are picked: a policy's argmax or sample; scripted agents follow their script."""
        if self.kind != "policy":
            return "scripted"
        return "greedy" if self.greedy else "sampled"

    @classmethod
    def parse(cls, text: str, *, greedy: bool = True, seed: int = 0, name: Optional[str] = None) -> "AgentSpec":
        """``rule``, ``demonstrator`` or ``policy:DIR`` (optionally ``NAME=`` in front)."""
        label, sep, body = text.partition("=")
        if not sep:
            label, body = "", text
        kind, _, checkpoint = body.partition(":")
        if kind not in AGENT_KINDS:
            raise ValueError(f"unknown agent {text!r}; expected rule, demonstrator or policy:DIR")
        if kind == "policy":
            if not checkpoint:
                raise ValueError(f"{text!r}: a policy agent is written policy:DIR")
            checkpoint = str(Path(checkpoint).expanduser().absolute())
            default = f"policy:{Path(checkpoint).name}" + ("" if greedy else ":sampled")
        else:
            if checkpoint:
                raise ValueError(f"{text!r}: only policy agents take a checkpoint")
            checkpoint, default = None, kind
        return cls(name=name or label or default, kind=kind, checkpoint=checkpoint or None,  # type: ignore[arg-type]
                   greedy=greedy, seed=seed)


@dataclass(frozen=True)
class Decision:
    """One choice: the candidates offered, the index and action taken, pi(.|s) for policies."""

    candidates: tuple[str, ...]
    index: int
    probs: Optional[np.ndarray] = None

    @property
    def action(self) -> str:
        return self.candidates[self.index]


@runtime_checkable
class EvalAgent(Protocol):
    name: str

    def reset(self, env: WebShopTextEnv, *, visit: int = 0) -> None: ...

    def act(self, env: WebShopTextEnv) -> str: ...

    def decide(self, env: WebShopTextEnv) -> Decision: ...


class ScriptedEvalAgent:
    """The rule baseline or the demonstrator, reseeded per episode."""

    def __init__(self, spec: AgentSpec) -> None:
        if spec.kind not in ("rule", "demonstrator"):
            raise ValueError(f"not a scripted agent: {spec.kind!r}")
        self.spec = spec
        self.name = spec.name
        self._agent = RuleAgent() if spec.kind == "rule" else DemonstratorAgent(seed=spec.seed)

    def reset(self, env: WebShopTextEnv, *, visit: int = 0) -> None:
        if isinstance(self._agent, DemonstratorAgent):
            # what DemonstratorAgent(seed=episode_seed(...)) would hold, without rebuilding it
            self._agent.rng = np.random.default_rng(episode_seed(self.spec.seed, _goal_index(env), visit))
        self._agent.reset(env)

    def decide(self, env: WebShopTextEnv) -> Decision:
        candidates = tuple(env.candidates())
        action = self._agent.act(env)
        if action not in candidates:
            raise RuntimeError(f"{self.name} chose {action!r}, which is not among the {len(candidates)} candidates")
        return Decision(candidates, candidates.index(action))

    def act(self, env: WebShopTextEnv) -> str:
        return self.decide(env).action


class PolicyEvalAgent:
    """A ChoicePolicy on (``env.observation()``, ``env.candidate_texts()``), greedy or sampled.

    Candidate texts are the env's enriched ones (titles after ``click[asin]``, option groups
    after option values): what ``WebShopEnv`` shows the policy with its default
    ``enrich_candidates=True``. The chosen index maps back to ``env.candidates()``.
    """

    def __init__(self, spec: AgentSpec, policy=None) -> None:
        if spec.kind != "policy":
            raise ValueError(f"not a policy agent: {spec.kind!r}")
        if policy is None:
            from rl_app.data.frozen_cache import load_into_policy
            from rl_app.policy.choice_policy import ChoicePolicy

            policy = ChoicePolicy.from_checkpoint(spec.checkpoint)
            load_into_policy(policy, spec.frozen_cache)
        self.spec = spec
        self.name = spec.name
        self.policy = policy
        self.rng = np.random.default_rng(spec.seed)

    def reset(self, env: WebShopTextEnv, *, visit: int = 0) -> None:
        self.rng = np.random.default_rng(episode_seed(self.spec.seed, _goal_index(env), visit))

    def decide(self, env: WebShopTextEnv) -> Decision:
        candidates = tuple(env.candidates())
        if not candidates:
            raise RuntimeError("no candidates: the episode is over")
        index, probs = self.policy.act(env.observation(), env.candidate_texts(list(candidates)),
                                       greedy=self.spec.greedy, rng=self.rng)
        return Decision(candidates, int(index), probs)

    def act(self, env: WebShopTextEnv) -> str:
        return self.decide(env).action


def _goal_index(env: WebShopTextEnv) -> int:
    if env.goal_index is None:
        raise RuntimeError("reset the env on a goal before resetting the agent")
    return env.goal_index


def make_agent(spec: AgentSpec, *, policy=None) -> EvalAgent:
    """Build the agent a spec names; ``policy`` reuses an already loaded ChoicePolicy."""
    if spec.kind == "policy":
        return PolicyEvalAgent(spec, policy)
    if policy is not None:
        raise ValueError(f"a {spec.kind} agent takes no policy")
    return ScriptedEvalAgent(spec)


def parse_agents(texts: Sequence[str], *, greedy: bool = True, seed: int = 0) -> list[AgentSpec]:
    """Specs from command-line strings; names must be unique (they label the arms)."""
    specs = [AgentSpec.parse(t, greedy=greedy, seed=seed) for t in texts]
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"agent names must be unique, got {duplicates} twice; name them NAME=policy:DIR")
    return specs
