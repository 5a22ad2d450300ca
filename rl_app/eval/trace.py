"""Watch any agent play one goal, step by step, and keep the trace as a markdown file.

    python -m rl_app.eval.trace --agent demonstrator --goal 3
    python -m rl_app.eval.trace --agent policy --checkpoint runs/dpo/ckpt --goal 3 --catalogue webshop --out trace.md

Each step shows the page the agent read, the candidates it was offered (with pi(a|s) for a
policy; a scripted agent's pick is marked), and the action taken; the end shows the reward
and its breakdown (``info["reward_info"]``: r_type, r_att, r_option, r_price and weights), or
a note that the step limit ended the episode with reward 0.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence


from rl_app.agents.specs import AGENT_KINDS, AgentSpec, EvalAgent, env_rng, make_agent
from rl_app.env.text_env import DEFAULT_MAX_STEPS, TextEnvConfig, WebShopTextEnv
from rl_app.shop.config import add_shop_arguments, shop_from_args
from rl_app.data.files import atomic_write_text

__all__ = ["TraceStep", "EpisodeTrace", "trace_episode", "render_trace", "write_trace", "main"]

# Candidates listed per step by default (a policy's most probable first); the rest are counted.
DEFAULT_SHOWN_CANDIDATES = 12


@dataclass(frozen=True)
class TraceStep:
    """One decision.

    Attributes:
        step: 1-based step number.
        page: the page kind before acting (search, results, item, sub).
        observation: the page text the agent read.
        candidates: actions offered; candidate_texts what a policy read for each.
        probs: pi(a|s) per candidate (policies only).
        chosen: index of the action taken.
        valid: False when the action was a no-op.
    """

    step: int
    page: str
    observation: str
    candidates: tuple[str, ...]
    candidate_texts: tuple[str, ...]
    probs: Optional[tuple[float, ...]]
    chosen: int
    valid: bool

    @property
    def action(self) -> str:
        return self.candidates[self.chosen]


@dataclass(frozen=True)
class EpisodeTrace:
    """A whole episode: the goal, every step, and how it ended."""

    agent: str
    kind: str
    mode: str
    goal_index: int
    instruction: str
    steps: tuple[TraceStep, ...]
    reward: float
    terminated: bool
    max_steps: int
    reward_info: Mapping[str, Any] = field(default_factory=dict)
    purchased_asin: Optional[str] = None
    purchased_options: Mapping[str, str] = field(default_factory=dict)
    final_observation: str = ""


def trace_episode(env: WebShopTextEnv, agent: EvalAgent, goal_index: int, *, seed: int = 0,
                  visit: int = 0) -> EpisodeTrace:
    """Play ``goal_index`` exactly as :func:`rl_app.eval.evaluate.play_episode` does, recording it."""
    env.reset(goal_index=int(goal_index), rng=env_rng(seed, int(goal_index), visit))
    agent.reset(env, visit=visit)
    steps: list[TraceStep] = []
    terminated = truncated = False
    reward, info = 0.0, {}
    obs = env.observation()
    while not (terminated or truncated):
        page = env.session.page
        decision = agent.decide(env)
        texts = tuple(env.candidate_texts(list(decision.candidates)))
        obs_next, reward, terminated, truncated, info = env.step(decision.action)
        steps.append(TraceStep(len(steps) + 1, page, obs, decision.candidates, texts,
                               None if decision.probs is None else tuple(float(p) for p in decision.probs),
                               decision.index, bool(info.get("valid", True))))
        obs = obs_next
    spec: Optional[AgentSpec] = getattr(agent, "spec", None)
    return EpisodeTrace(
        agent=agent.name, kind=spec.kind if spec else type(agent).__name__,
        mode=spec.mode if spec else "greedy", goal_index=int(goal_index), instruction=env.goal.instruction_text,
        steps=tuple(steps), reward=float(reward), terminated=bool(terminated), max_steps=env.config.max_steps,
        reward_info=dict(info.get("reward_info", {})), purchased_asin=info.get("purchased_asin"),
        purchased_options=dict(info.get("purchased_options", {})), final_observation=obs)


def _candidate_lines(step: TraceStep, shown: int) -> list[str]:
    order = list(range(len(step.candidates)))
    if step.probs is not None:
        order.sort(key=lambda i: -step.probs[i])
    kept = order[:shown]
    if step.chosen not in kept:  # always show what was taken
        kept.append(step.chosen)
    lines = []
    for i in kept:
        mark = "->" if i == step.chosen else "  "
        prob = f"{step.probs[i]:6.1%}  " if step.probs is not None else ""
        lines.append(f"{mark} {prob}{step.candidate_texts[i]}")
    if len(step.candidates) > len(kept):
        lines.append(f"   ... {len(step.candidates) - len(kept)} more")
    return lines


def render_trace(trace: EpisodeTrace, *, show_candidates: int = DEFAULT_SHOWN_CANDIDATES,
                 show_pages: bool = True) -> str:
    """The trace as markdown (readable as plain text in a terminal too)."""
    out = [f"# {trace.agent} ({trace.mode}) on goal {trace.goal_index}", "",
           f"Instruction: {trace.instruction}", ""]
    for s in trace.steps:
        out.append(f"## Step {s.step}: {s.page} page")
        out.append("")
        if show_pages:
            out += ["```", s.observation.rstrip("\n"), "```", ""]
        label = "candidates, pi(a|s)" if s.probs is not None else "candidates (-> = chosen)"
        out += [f"{label}:", "```", *_candidate_lines(s, show_candidates), "```", ""]
        out.append(f"action: `{s.action}`" + ("" if s.valid else "  (no-op: not on this page)"))
        out.append("")
    out.append("## Outcome")
    out.append("")
    if trace.terminated:
        options = ", ".join(f"{k}: {v}" for k, v in trace.purchased_options.items()) or "none"
        out.append(f"Bought {trace.purchased_asin} (options: {options}) after {len(trace.steps)} steps.")
        out.append("")
        out.append(f"reward: {trace.reward:.4f}" + ("  (success)" if trace.reward == 1.0 else ""))
        out.append("")
        out += ["| part | value |", "|---|---|"]
        out += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
                for k, v in trace.reward_info.items()]
    else:
        out.append(f"Step limit reached: {trace.max_steps} steps without buying; reward: {trace.reward:.4f}.")
    return "\n".join(out) + "\n"


def write_trace(trace: EpisodeTrace, path: str | Path, **render_kwargs: Any) -> Path:
    """Write :func:`render_trace` to ``path`` (temporary file, then rename)."""
    return atomic_write_text(path, render_trace(trace, **render_kwargs))


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rl_app.eval.trace", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent", choices=AGENT_KINDS, default="demonstrator")
    ap.add_argument("--checkpoint", default=None, help="policy directory (with --agent policy)")
    ap.add_argument("--sampled", action="store_true", help="sample from the policy instead of argmax")
    ap.add_argument("--goal", type=int, required=True, help="goal index (any split)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS)
    ap.add_argument("--candidates", type=int, default=DEFAULT_SHOWN_CANDIDATES, help="candidates listed per step")
    ap.add_argument("--no-pages", action="store_true", help="do not print page texts")
    ap.add_argument("--out", default=None, help="also write the trace to this markdown file")
    add_shop_arguments(ap)
    args = ap.parse_args(argv)

    if (args.agent == "policy") != (args.checkpoint is not None):
        ap.error("--checkpoint is required with --agent policy and only allowed with it")
    text = args.agent if args.checkpoint is None else f"policy:{args.checkpoint}"
    spec = AgentSpec.parse(text, greedy=not args.sampled, seed=args.seed)
    env = WebShopTextEnv(shop_from_args(args), TextEnvConfig(split="all", max_steps=args.max_steps))
    trace = trace_episode(env, make_agent(spec), args.goal, seed=args.seed)
    kwargs = {"show_candidates": args.candidates, "show_pages": not args.no_pages}
    print(render_trace(trace, **kwargs))
    if args.out is not None:
        print(f"trace written to {write_trace(trace, args.out, **kwargs)}")
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
