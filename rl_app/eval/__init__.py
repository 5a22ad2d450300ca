"""Evaluation: any agent on a goal split, Thompson sampling across agents, episode traces.

The agents it plays are named by :class:`rl_app.agents.AgentSpec` (:mod:`rl_app.agents.specs`).

* :mod:`rl_app.eval.evaluate`: one episode per goal, serial or as Ray tasks; score, success
  rate, 95% intervals, per-goal parquet/CSV (``python -m rl_app.eval.evaluate``);
* :mod:`rl_app.eval.thompson`: the paper's Thompson sampling with agents as arms
  (``python -m rl_app.eval.thompson``);
* :mod:`rl_app.eval.trace`: one episode step by step (``python -m rl_app.eval.trace``).

Exports resolve lazily, so ``import rl_app.eval`` imports neither torch, Ray nor pandas.
"""

from __future__ import annotations

from rl_app._lazy import lazy_getattr

_EXPORTS = {
    "EpisodeRecord": "rl_app.eval.evaluate",
    "EvalResult": "rl_app.eval.evaluate",
    "evaluate": "rl_app.eval.evaluate",
    "play_episode": "rl_app.eval.evaluate",
    "read_episodes": "rl_app.eval.evaluate",
    "BanditResult": "rl_app.eval.thompson",
    "ThompsonReport": "rl_app.eval.thompson",
    "thompson_sampling": "rl_app.eval.thompson",
    "thompson_evaluate": "rl_app.eval.thompson",
    "EpisodeTrace": "rl_app.eval.trace",
    "trace_episode": "rl_app.eval.trace",
    "render_trace": "rl_app.eval.trace",
    "write_trace": "rl_app.eval.trace",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
