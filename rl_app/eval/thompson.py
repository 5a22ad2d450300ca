"""Thompson-sampling evaluation with the agents as arms (Feng & Feng 2024, Sec. 4).

    python -m rl_app.eval.thompson --agent rule --agent demonstrator --agent policy:runs/dpo/ckpt \\
        --rollouts 1000 --split test --catalogue webshop --out runs/thompson

The paper compares its agents by Thompson sampling over 1,000 rollouts: each arm (agent)
keeps a Beta posterior over its success probability; each rollout draws one sample from
every posterior, plays the arm with the highest draw on the next goal, and updates that
arm with success (reward == 1) or failure. A better agent ends up with most of the pulls,
and the posteriors say how sure the comparison is.

Here:

* the prior is Beta(1, 1) (uniform), so arm k's posterior is
  Beta(1 + successes_k, 1 + failures_k);
* goals are the split's, in a seeded random order, cycled when there are more rollouts
  than goals (each repeat visit of a goal by an arm gets its own episode seed);
* the bandit is the pure function :func:`thompson_sampling` over a
  ``run_arm(arm_index, goal_index) -> reward`` callable, so it runs without an env;
  :class:`EnvArmRunner` is that callable for real agents;
* reported per arm: pulls, successes, empirical success rate and score (mean reward x 100
  over its pulls), the posterior mean and a 95% equal-tailed credible interval
  (``scipy.stats.beta.ppf``); curves of cumulative success rate and pulls per arm.

Pull counts are not a fair estimate of each arm's quality: the bandit stops pulling an arm
once it looks worse, so a weak arm's interval stays wide. Use :mod:`rl_app.eval.evaluate` for
per-agent numbers on every goal; this module answers "which agent is best" the paper's way.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from rl_app.agents.specs import AgentSpec, EvalAgent, make_agent, parse_agents
from rl_app.env.text_env import DEFAULT_MAX_STEPS, TextEnvConfig, WebShopTextEnv
from rl_app.eval.evaluate import EpisodeRecord, play_episode
from rl_app.shop.config import add_shop_arguments, shop_from_args
from rl_app.data.files import atomic_write, atomic_write_text
from rl_app.shop.config import ShopConfig, load_shop

__all__ = [
    "PAPER_ROLLOUTS",
    "PRIOR_ALPHA",
    "PRIOR_BETA",
    "CREDIBLE_LEVEL",
    "BanditResult",
    "thompson_sampling",
    "shuffled_goals",
    "beta_interval",
    "EnvArmRunner",
    "ThompsonReport",
    "thompson_evaluate",
    "arm_rows",
    "markdown_table",
    "plot_curves",
    "write_report",
    "main",
]

# Feng & Feng 2024: "Thompson sampling with the agents as arms over 1,000 rollouts".
PAPER_ROLLOUTS = 1000
# Uniform Beta(1, 1) prior on every arm's success probability.
PRIOR_ALPHA = 1.0
PRIOR_BETA = 1.0
CREDIBLE_LEVEL = 0.95
# Stream of the goal-order generator, apart from the posterior draws'.
_GOAL_ORDER_STREAM = 7
# Draws used for credible intervals when scipy is missing.
_MC_DRAWS = 200_000

RunArm = Callable[[int, int], float]


def shuffled_goals(goal_indices: Sequence[int], seed: int) -> list[int]:
    """The goals in a seeded random order (the order rollouts visit them in)."""
    goals = np.asarray(list(goal_indices), dtype=np.int64)
    if len(goals) == 0:
        raise ValueError("no goals to visit")
    return [int(g) for g in np.random.default_rng([seed, _GOAL_ORDER_STREAM]).permutation(goals)]


def beta_interval(alpha: np.ndarray, beta: np.ndarray, level: float = CREDIBLE_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed credible interval of Beta(alpha, beta); Monte Carlo (seeded) without scipy."""
    alpha, beta = np.asarray(alpha, dtype=float), np.asarray(beta, dtype=float)
    tails = [(1 - level) / 2, (1 + level) / 2]
    try:
        from scipy.stats import beta as beta_dist
    except ImportError:  # scipy is a declared dependency; this keeps a broken install usable
        rng = np.random.default_rng(0)
        draws = [np.quantile(rng.beta(a, b, _MC_DRAWS), tails) for a, b in zip(alpha, beta)]
        return np.array([d[0] for d in draws]), np.array([d[1] for d in draws])
    return beta_dist.ppf(tails[0], alpha, beta), beta_dist.ppf(tails[1], alpha, beta)


@dataclass(frozen=True)
class BanditResult:
    """What a Thompson-sampling run did, rollout by rollout, and the posteriors it ended with.

    Attributes:
        arms: arm names, in index order.
        seed: seed of the posterior draws and of the goal order.
        chosen: arm played at each rollout.
        goals: goal played at each rollout.
        rewards: reward of each rollout; success is ``reward == 1``.
        prior: (alpha, beta) of every arm's Beta prior.
    """

    arms: tuple[str, ...]
    seed: int
    chosen: tuple[int, ...]
    goals: tuple[int, ...]
    rewards: tuple[float, ...]
    prior: tuple[float, float] = (PRIOR_ALPHA, PRIOR_BETA)

    @property
    def rollouts(self) -> int:
        return len(self.chosen)

    @property
    def successes_per_rollout(self) -> np.ndarray:
        return np.asarray(self.rewards) == 1.0

    def _per_arm(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(np.asarray(self.chosen, dtype=np.int64), weights=values, minlength=len(self.arms))

    @property
    def pulls(self) -> np.ndarray:
        return np.bincount(np.asarray(self.chosen, dtype=np.int64), minlength=len(self.arms))

    @property
    def successes(self) -> np.ndarray:
        return self._per_arm(self.successes_per_rollout.astype(float)).astype(np.int64)

    @property
    def failures(self) -> np.ndarray:
        return self.pulls - self.successes

    @property
    def reward_sums(self) -> np.ndarray:
        return self._per_arm(np.asarray(self.rewards, dtype=float))

    @property
    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """(alpha, beta) of each arm's Beta posterior."""
        return self.prior[0] + self.successes, self.prior[1] + self.failures

    @property
    def posterior_mean(self) -> np.ndarray:
        a, b = self.posterior
        return a / (a + b)

    def credible_interval(self, level: float = CREDIBLE_LEVEL) -> tuple[np.ndarray, np.ndarray]:
        return beta_interval(*self.posterior, level=level)

    # ------------------------------------------------------------------ curves
    def cumulative_pulls(self) -> np.ndarray:
        """(rollouts, arms): pulls of each arm up to and including each rollout."""
        onehot = np.zeros((self.rollouts, len(self.arms)))
        onehot[np.arange(self.rollouts), self.chosen] = 1
        return onehot.cumsum(axis=0)

    def cumulative_success_rate(self) -> np.ndarray:
        """(rollouts, arms): each arm's success rate over its pulls so far (NaN before its first)."""
        hits = np.zeros((self.rollouts, len(self.arms)))
        hits[np.arange(self.rollouts), self.chosen] = self.successes_per_rollout
        pulls = self.cumulative_pulls()
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(pulls > 0, hits.cumsum(axis=0) / pulls, np.nan)

    def overall_success_curve(self) -> np.ndarray:
        """Success rate over all rollouts so far (what the bandit as a whole achieved)."""
        return self.successes_per_rollout.cumsum() / np.arange(1, self.rollouts + 1)

    def overall_score_curve(self) -> np.ndarray:
        """Mean reward x 100 over all rollouts so far."""
        return np.cumsum(self.rewards) / np.arange(1, self.rollouts + 1) * 100


def thompson_sampling(run_arm: RunArm, arms: Sequence[str] | int, goal_order: Sequence[int], *,
                      rollouts: int = PAPER_ROLLOUTS, seed: int = 0,
                      prior: tuple[float, float] = (PRIOR_ALPHA, PRIOR_BETA)) -> BanditResult:
    """Beta-Bernoulli Thompson sampling over agents (Thompson 1933; Feng & Feng 2024).

    Each rollout t: draw theta_k ~ Beta(alpha_k, beta_k) for every arm, play
    k* = argmax_k theta_k on ``goal_order[t % len(goal_order)]`` via ``run_arm(k*, goal)``,
    then alpha_k* += 1 on success (reward == 1), else beta_k* += 1.

    Args:
        run_arm: plays arm ``k`` on a goal and returns the episode's reward in [0, 1].
        arms: arm names, or their number.
        goal_order: goals in the order rollouts visit them (see :func:`shuffled_goals`).
        rollouts: how many episodes in all (the paper: 1,000).
        seed: seed of the posterior draws (a numpy Generator; nothing global).
        prior: (alpha, beta) of every arm's Beta prior.
    """
    names = tuple(f"arm{k}" for k in range(arms)) if isinstance(arms, int) else tuple(arms)
    if len(names) < 1:
        raise ValueError("need at least one arm")
    if rollouts < 1:
        raise ValueError(f"rollouts must be >= 1, got {rollouts}")
    if len(goal_order) == 0:
        raise ValueError("goal_order is empty")
    if min(prior) <= 0:
        raise ValueError(f"prior parameters must be > 0, got {prior}")
    rng = np.random.default_rng(seed)
    alpha = np.full(len(names), float(prior[0]))
    beta = np.full(len(names), float(prior[1]))
    chosen, goals, rewards = [], [], []
    for t in range(rollouts):
        arm = int(np.argmax(rng.beta(alpha, beta)))
        goal = int(goal_order[t % len(goal_order)])
        reward = float(run_arm(arm, goal))
        if not 0.0 <= reward <= 1.0 or math.isnan(reward):
            raise ValueError(f"run_arm({arm}, {goal}) returned {reward}; rewards must lie in [0, 1]")
        if reward == 1.0:
            alpha[arm] += 1
        else:
            beta[arm] += 1
        chosen.append(arm)
        goals.append(goal)
        rewards.append(reward)
    return BanditResult(names, seed, tuple(chosen), tuple(goals), tuple(rewards), (float(prior[0]), float(prior[1])))


# ---------------------------------------------------------------------- real agents
class EnvArmRunner:
    """``run_arm`` for real agents: one text env, one agent per arm (policies loaded once).

    Arms are :class:`AgentSpec` (built with :func:`make_agent`, seeded by ``spec.seed``) or
    ready agents (seeded by ``seed``). A goal played again by the same arm (goals cycle) gets
    a fresh episode seed (the visit count), so stochastic agents are not replayed identically.
    """

    def __init__(self, arms: Sequence[AgentSpec | EvalAgent], shop_config: ShopConfig | Mapping[str, Any] | None = None,
                 *, seed: int = 0, max_steps: int = DEFAULT_MAX_STEPS,
                 env_config: Optional[TextEnvConfig] = None) -> None:
        cfg = dataclasses.replace(env_config or TextEnvConfig(), split="all", max_steps=max_steps)
        self.env = WebShopTextEnv(shop_config, cfg)
        self.agents = [make_agent(a) if isinstance(a, AgentSpec) else a for a in arms]
        self.seeds = [a.seed if isinstance(a, AgentSpec) else seed for a in arms]
        self.names = tuple(a.name for a in arms)
        self.visits: Counter[tuple[int, int]] = Counter()
        self.records: list[EpisodeRecord] = []

    def __call__(self, arm: int, goal_index: int) -> float:
        visit = self.visits[(arm, goal_index)]
        self.visits[(arm, goal_index)] += 1
        record = play_episode(self.env, self.agents[arm], goal_index, seed=self.seeds[arm], visit=visit)
        self.records.append(record)
        return record.reward


@dataclass(frozen=True)
class ThompsonReport:
    """A bandit run over real agents, with each rollout's episode."""

    bandit: BanditResult
    specs: tuple[Optional[AgentSpec], ...]  # None for arms given as ready agents
    split: str
    catalogue: str
    episodes: tuple[EpisodeRecord, ...] = field(repr=False)
    wall_s: float = field(default=0.0, compare=False)


def thompson_evaluate(arms: Sequence[AgentSpec | EvalAgent], shop_config: ShopConfig | Mapping[str, Any] | None = None, *,
                      rollouts: int = PAPER_ROLLOUTS, split: str = "test", seed: int = 0,
                      max_steps: int = DEFAULT_MAX_STEPS, goal_indices: Optional[Sequence[int]] = None,
                      env_config: Optional[TextEnvConfig] = None, out_dir: Optional[str | Path] = None,
                      plot: bool = True) -> ThompsonReport:
    """Thompson sampling with ``arms`` (specs or ready agents) on the goals of ``split`` (or
    ``goal_indices``); ``seed`` drives the posterior draws, the goal order and ready agents."""
    if not arms:
        raise ValueError("need at least one agent")
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ValueError(f"arm names must be unique, got {names}")
    t0 = time.perf_counter()
    shop = (shop_config if isinstance(shop_config, ShopConfig) else ShopConfig.from_dict(shop_config)).resolved()
    goals = list(load_shop(shop).goals.indices(split)) if goal_indices is None else list(goal_indices)
    runner = EnvArmRunner(arms, shop, seed=seed, max_steps=max_steps, env_config=env_config)
    bandit = thompson_sampling(runner, names, shuffled_goals(goals, seed), rollouts=rollouts, seed=seed)
    specs = tuple(a if isinstance(a, AgentSpec) else None for a in arms)
    report = ThompsonReport(bandit, specs, split, shop.catalogue, tuple(runner.records),
                            time.perf_counter() - t0)
    if out_dir is not None:
        write_report(report, out_dir, plot=plot)
    return report


# ---------------------------------------------------------------------- reporting
def arm_rows(bandit: BanditResult) -> list[dict[str, Any]]:
    """One row per arm: pulls, successes, empirical rates, posterior mean and credible interval."""
    low, high = bandit.credible_interval()
    pulls, successes, sums = bandit.pulls, bandit.successes, bandit.reward_sums
    rows = []
    for k, name in enumerate(bandit.arms):
        n = int(pulls[k])
        rows.append({
            "arm": name, "pulls": n, "pull_share": n / bandit.rollouts, "successes": int(successes[k]),
            "success_rate": successes[k] / n if n else math.nan, "score": sums[k] / n * 100 if n else math.nan,
            "posterior_mean": float(bandit.posterior_mean[k]), "ci_low": float(low[k]), "ci_high": float(high[k]),
        })
    return rows


def _fmt(x: float, spec: str) -> str:
    return "-" if isinstance(x, float) and math.isnan(x) else format(x, spec)


def markdown_table(bandit: BanditResult, *, title: Optional[str] = None) -> str:
    """The per-arm table (markdown) with a line on how it was run."""
    lines = [f"## {title}", ""] if title else []
    lines += [
        f"Thompson sampling, {bandit.rollouts} rollouts, seed {bandit.seed}, prior Beta{bandit.prior}; "
        f"overall score {bandit.overall_score_curve()[-1]:.2f}, success {bandit.overall_success_curve()[-1]:.1%}.",
        "",
        "| arm | pulls | share | successes | success rate | score | posterior mean | 95% credible interval |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in arm_rows(bandit):
        lines.append(f"| {r['arm']} | {r['pulls']} | {r['pull_share']:.1%} | {r['successes']} | "
                     f"{_fmt(r['success_rate'], '.1%')} | {_fmt(r['score'], '.2f')} | {r['posterior_mean']:.3f} | "
                     f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] |")
    return "\n".join(lines) + "\n"


def plot_curves(bandit: BanditResult, path: str | Path) -> Path:
    """PNG: cumulative success rate per arm (and overall) and cumulative pulls per arm."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("plots need matplotlib: pip install 'rl_app[plots]' "
                          "(or pass --no-plot / plot=False)") from e
    x = np.arange(1, bandit.rollouts + 1)
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)  # an Agg canvas without touching pyplot's global backend
    ax_rate, ax_pulls = fig.subplots(1, 2)
    rate, pulls = bandit.cumulative_success_rate(), bandit.cumulative_pulls()
    for k, name in enumerate(bandit.arms):
        ax_rate.plot(x, rate[:, k], label=name)
        ax_pulls.plot(x, pulls[:, k], label=name)
    ax_rate.plot(x, bandit.overall_success_curve(), "k--", linewidth=1, label="all rollouts")
    ax_rate.set(xlabel="rollout", ylabel="cumulative success rate", ylim=(0, 1), title="success rate per arm")
    ax_pulls.set(xlabel="rollout", ylabel="cumulative pulls", title="pulls per arm")
    for ax in (ax_rate, ax_pulls):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Thompson sampling over {bandit.rollouts} rollouts (seed {bandit.seed})")
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def write_report(report: ThompsonReport, out_dir: str | Path, *, plot: bool = True) -> dict[str, Path]:
    """``thompson.md``, ``thompson_arms.csv``, ``thompson_rollouts.csv``, ``thompson.json`` and
    (with ``plot``) ``thompson.png`` in ``out_dir``."""
    import pandas as pd

    out = Path(out_dir)
    bandit = report.bandit
    title = f"Thompson sampling on {report.catalogue} {report.split} goals"
    files = {"table": atomic_write_text(out / "thompson.md", markdown_table(bandit, title=title))}
    arms = pd.DataFrame(arm_rows(bandit))
    files["arms_csv"] = atomic_write(out / "thompson_arms.csv", lambda tmp: arms.to_csv(tmp, index=False))
    rollouts = pd.DataFrame({
        "rollout": np.arange(1, bandit.rollouts + 1), "arm": [bandit.arms[k] for k in bandit.chosen],
        "goal_index": bandit.goals, "reward": bandit.rewards, "success": bandit.successes_per_rollout,
        "steps": [e.steps for e in report.episodes] if report.episodes else np.nan,
        "purchased_asin": [e.purchased_asin for e in report.episodes] if report.episodes else None,
    })
    files["rollouts_csv"] = atomic_write(out / "thompson_rollouts.csv", lambda tmp: rollouts.to_csv(tmp, index=False))
    meta = {"arms": [dataclasses.asdict(s) if s is not None else {"name": name}
                     for s, name in zip(report.specs, bandit.arms)], "split": report.split,
            "catalogue": report.catalogue, "rollouts": bandit.rollouts, "seed": bandit.seed,
            "prior": bandit.prior, "wall_s": report.wall_s, "per_arm": arm_rows(bandit)}
    files["json"] = atomic_write_text(out / "thompson.json", json.dumps(meta, indent=2, default=str) + "\n")
    if plot:
        files["plot"] = plot_curves(bandit, out / "thompson.png")
    return files


# ---------------------------------------------------------------------- CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rl_app.eval.thompson", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agent", action="append", required=True,
                    help="an arm: rule, demonstrator or policy:DIR (NAME=policy:DIR to label it); repeat")
    ap.add_argument("--sampled", action="store_true", help="policies sample from pi instead of argmax")
    ap.add_argument("--rollouts", type=int, default=PAPER_ROLLOUTS)
    ap.add_argument("--split", choices=["test", "dev", "train", "all"], default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS)
    ap.add_argument("--out", default=None, help="directory for thompson.md/.csv/.png")
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib needed)")
    add_shop_arguments(ap)
    args = ap.parse_args(argv)

    try:
        specs = parse_agents(args.agent, greedy=not args.sampled, seed=args.seed)
    except ValueError as e:
        ap.error(str(e))
    report = thompson_evaluate(specs, shop_from_args(args), rollouts=args.rollouts, split=args.split,
                               seed=args.seed, max_steps=args.max_steps, out_dir=args.out,
                               plot=not args.no_plot)
    print(markdown_table(report.bandit, title=f"Thompson sampling on {report.catalogue} {report.split} goals"))
    print(f"{report.bandit.rollouts} rollouts in {report.wall_s:.1f} s")
    if args.out is not None:
        print(f"written to {Path(args.out).absolute()}")
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
