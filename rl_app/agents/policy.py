"""A trained ChoicePolicy as an agent on the text env, for generating trajectories."""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["PolicyAgent"]


class PolicyAgent:
    """A ChoicePolicy acting on the text env (sampled or greedy), seeded per episode."""

    def __init__(self, policy, *, greedy: bool = False, rng: Optional[np.random.Generator] = None,
                 name: str = "policy") -> None:
        self.policy = policy
        self.greedy = greedy
        self.rng = rng if rng is not None else np.random.default_rng()
        self.name = name

    def reset(self, env) -> None:
        pass

    def act(self, env) -> str:
        candidates = env.candidates()
        index, _ = self.policy.act(env.observation(), env.candidate_texts(candidates), greedy=self.greedy,
                                   rng=self.rng)
        return candidates[index]
