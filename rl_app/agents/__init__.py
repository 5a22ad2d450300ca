"""Agents that play the text env, and the one way evaluation and generation name them.

* :mod:`rl_app.agents.scripted`: WebShop's rule baseline and the human-like demonstrator
  (``run_episode`` plays one episode);
* :mod:`rl_app.agents.specs`: ``AgentSpec`` (rule / demonstrator / policy checkpoint, greedy
  or sampled, seeded), ``make_agent`` and the per-episode seeds evaluation uses;
* :mod:`rl_app.agents.policy`: ``PolicyAgent``, a ChoicePolicy that generated trajectories roll out.

Exports resolve lazily, so ``import rl_app.agents`` imports neither torch nor Ray.
"""

from __future__ import annotations

from rl_app._lazy import lazy_getattr

_EXPORTS = {
    "Agent": "rl_app.agents.scripted",
    "RuleAgent": "rl_app.agents.scripted",
    "DemonstratorAgent": "rl_app.agents.scripted",
    "DemonstratorConfig": "rl_app.agents.scripted",
    "EpisodeResult": "rl_app.agents.scripted",
    "run_episode": "rl_app.agents.scripted",
    "AGENT_KINDS": "rl_app.agents.specs",
    "AgentSpec": "rl_app.agents.specs",
    "Decision": "rl_app.agents.specs",
    "EvalAgent": "rl_app.agents.specs",
    "make_agent": "rl_app.agents.specs",
    "parse_agents": "rl_app.agents.specs",
    "episode_seed": "rl_app.agents.specs",
    "PolicyAgent": "rl_app.agents.policy",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
