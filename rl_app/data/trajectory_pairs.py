"""Trajectory-level preference pairs (ETO, Song et al. 2024), reference log-probs precomputed.

ETO ("Trial and Error: Exploration-Based Trajectory Optimization for LLM Agents", arXiv
2403.02502) pairs an expert trajectory with the agent's own trajectory on the same goal and
trains DPO on whole trajectories: log pi(traj) = sum_t log pi(a_t | s_t), the environment's
transitions cancelling between policy and reference. Here:

* expert = demonstrations (:mod:`rl_app.data.demos`, human demos), agent = the IL agent's
  rollouts (:mod:`rl_app.data.generated` with ``--min-reward 0 --goals-from`` the demos, so every
  expert goal has an agent episode), both trajectory parquet;
* every expert trajectory is paired with every agent trajectory of the same ``goal_index``;
  the one with the higher final reward is chosen, ties (within :data:`TIE_TOLERANCE`) and
  unknown (NaN) rewards are dropped and counted, goals with only one side are skipped and
  counted. ETO itself keeps only pairs the expert wins ("failure" trajectories);
  ``expert_wins_only=True`` reproduces that filter;
* the reference log-probabilities log pi_ref(a_t | s_t) of every step of every paired
  trajectory are computed once, in a batched pass (Ray Data ``map_batches`` with the frozen
  reference :class:`~rl_app.data.pairs.ReferenceLogProbs`), and stored per step and summed
  per trajectory. The DPO learner then holds one BERT and runs one forward pass over the
  steps of a batch instead of two; pi_ref never changes, so the numbers are the same (the
  trade-off is the same as for step pairs, :mod:`rl_app.data.pairs`, and larger here: a
  trajectory pair has up to 2T steps, and an expert trajectory shared by several pairs is
  scored once).

Pipeline: trajectories -> :func:`episode_table` (one row per episode) ->
:func:`pair_trajectories` (which episodes pair up, counts) -> reference pass over the steps of
the paired episodes only -> :func:`pair_rows` -> parquet (temp dir, then renamed) with a
:data:`~rl_app.data.files.SUMMARY_FILE`. The transforms are pure functions of dict-of-arrays
batches, tested on 3-row inputs.

    python -m rl_app.data.trajectory_pairs --expert runs/demos --agent runs/rollouts \\
        --reference runs/il/policy --out runs/pairs_eto
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rl_app.data.files import SUMMARY_FILE, atomic_write_dir, read_summary
from rl_app.data.io import parquet_files, read_trajectories

__all__ = [
    "TRAJECTORY_PAIR_SCHEMA",
    "TIE_TOLERANCE",
    "Role",
    "PairCounts",
    "TrajectoryPairing",
    "TrajectoryPairSummary",
    "episode_table",
    "chosen_ref_logp",
    "pair_trajectories",
    "pair_rows",
    "build_trajectory_pairs",
    "read_trajectory_pairs",
    "longest_trajectory",
]

# Which data set a trajectory came from.
Role = Literal["expert", "agent"]
ROLES: tuple[str, ...] = ("expert", "agent")
SIDES: tuple[str, ...] = ("chosen", "rejected")
# Final rewards closer than this are a tie: WebShop rewards are ratios of small counts, so
# anything below it is float noise, not a preference.
TIE_TOLERANCE = 1e-6
KIND = "trajectory"


def _side_fields(side: str) -> list[tuple[str, pa.DataType]]:
    return [
        (f"{side}_role", pa.string()),             # "expert" or "agent"
        (f"{side}_episode_id", pa.string()),
        (f"{side}_source", pa.string()),           # StepRecord.source: demo, generated, human, rollout
        (f"{side}_reward", pa.float64()),          # the episode's final reward
        (f"{side}_num_steps", pa.int64()),
        (f"{side}_states", pa.list_(pa.string())),
        (f"{side}_candidate_texts", pa.list_(pa.list_(pa.string()))),
        (f"{side}_actions", pa.list_(pa.int64())),  # index into that step's candidate_texts
        (f"{side}_ref_step_logps", pa.list_(pa.float64())),  # log pi_ref(a_t | s_t) per step
    ]


TRAJECTORY_PAIR_SCHEMA = pa.schema(
    [("pair_id", pa.string()), ("kind", pa.string()), ("goal_index", pa.int64()), ("split", pa.string())]
    + _side_fields("chosen") + _side_fields("rejected")
    # sum over steps of log pi_ref(a_t | s_t): the trajectory's reference log-prob
    + [("ref_chosen_logp", pa.float64()), ("ref_rejected_logp", pa.float64())],
    metadata={"rl_app.schema": "trajectory_pairs/v1"})


# ---------------------------------------------------------------------------- pure transforms
def _objects(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _nan_equal(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def episode_table(steps: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Step rows -> one row per episode (sorted by episode_id), steps in ``step`` order.

    Reads ``episode_id``, ``goal_index``, ``split``, ``source``, ``step``, ``state``,
    ``candidate_texts``, ``chosen`` and ``episode_reward``; every step of an episode must be
    in the batch. Returns those per-episode fields plus ``num_steps``, ``states``,
    ``candidate_texts`` (a list per step), ``actions``; and, when the steps carry
    ``ref_logp`` (:func:`chosen_ref_logp`), ``ref_step_logps`` and their sum ``ref_logp``.
    """
    needed = ("episode_id", "goal_index", "split", "source", "step", "state", "candidate_texts", "chosen",
              "episode_reward")
    missing = [c for c in needed if c not in steps]
    if missing:
        raise KeyError(f"episode_table needs trajectory columns {missing}; batch has {sorted(steps)}")
    with_ref = "ref_logp" in steps
    groups: dict[str, list[int]] = {}
    for i, eid in enumerate(steps["episode_id"]):
        groups.setdefault(str(eid), []).append(i)
    rows: dict[str, list] = {c: [] for c in ("episode_id", "goal_index", "split", "source", "episode_reward",
                                              "num_steps", "states", "candidate_texts", "actions")}
    if with_ref:
        rows["ref_step_logps"], rows["ref_logp"] = [], []
    for eid in sorted(groups):
        idx = sorted(groups[eid], key=lambda i: int(steps["step"][i]))
        step_numbers = [int(steps["step"][i]) for i in idx]
        if len(set(step_numbers)) != len(step_numbers):
            raise ValueError(f"episode {eid!r}: a step number appears twice ({step_numbers})")
        first = idx[0]
        for name in ("goal_index", "split", "source", "episode_reward"):
            values = [steps[name][i] for i in idx]
            same = (all(_nan_equal(float(v), float(values[0])) for v in values) if name == "episode_reward"
                    else len(set(map(str, values))) == 1)
            if not same:
                raise ValueError(f"episode {eid!r}: {name} differs between its steps ({sorted(set(map(str, values)))})")
        texts = [[str(t) for t in steps["candidate_texts"][i]] for i in idx]
        actions = [int(steps["chosen"][i]) for i in idx]
        for step, t, a in zip(step_numbers, texts, actions):
            if not 0 <= a < len(t):
                raise ValueError(f"episode {eid!r} step {step}: chosen={a} is outside its {len(t)} candidates")
        rows["episode_id"].append(eid)
        rows["goal_index"].append(int(steps["goal_index"][first]))
        rows["split"].append(str(steps["split"][first]))
        rows["source"].append(str(steps["source"][first]))
        rows["episode_reward"].append(float(steps["episode_reward"][first]))
        rows["num_steps"].append(len(idx))
        rows["states"].append([str(steps["state"][i]) for i in idx])
        rows["candidate_texts"].append(texts)
        rows["actions"].append(actions)
        if with_ref:
            logps = [float(steps["ref_logp"][i]) for i in idx]
            rows["ref_step_logps"].append(logps)
            rows["ref_logp"].append(float(np.sum(logps)))
    numeric = {"goal_index": np.int64, "num_steps": np.int64, "episode_reward": np.float64, "ref_logp": np.float64}
    return {name: (np.asarray(values, dtype=numeric[name]) if name in numeric else _objects(values))
            for name, values in rows.items()}


def chosen_ref_logp(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ray Data transform after :class:`~rl_app.data.pairs.ReferenceLogProbs`: keep only the
    taken action's log pi_ref(a_t | s_t) as ``ref_logp`` (and drop the per-candidate ``ref_logps``)."""
    chosen = np.asarray(batch["chosen"], dtype=np.int64)
    logps = batch["ref_logps"]
    out = {k: v for k, v in batch.items() if k != "ref_logps"}
    out["ref_logp"] = np.array([float(np.asarray(logps[i])[c]) for i, c in enumerate(chosen)], dtype=np.float64)
    return out


@dataclass(frozen=True)
class PairCounts:
    """What pairing found. ``compared = pairs + dropped_*`` (every expert x agent trajectory
    of a goal both sides played is compared once).

    Attributes:
        expert_episodes, agent_episodes: trajectories read from each side.
        goals_paired: goals with at least one trajectory on each side.
        goals_expert_only, goals_agent_only: goals skipped for want of a partner.
        compared: expert x agent combinations on the paired goals.
        pairs: pairs kept; ``chosen_expert + chosen_agent``.
        dropped_ties: equal final rewards (within :data:`TIE_TOLERANCE`).
        dropped_unknown_reward: a side's reward is NaN (human demonstrations).
        dropped_too_long: a side has more than ``max_steps`` steps.
        dropped_agent_wins: the agent won and ``expert_wins_only`` was set (ETO's filter).
    """

    expert_episodes: int
    agent_episodes: int
    goals_paired: int
    goals_expert_only: int
    goals_agent_only: int
    compared: int
    pairs: int
    chosen_expert: int
    chosen_agent: int
    dropped_ties: int
    dropped_unknown_reward: int
    dropped_too_long: int
    dropped_agent_wins: int


class TrajectoryPairing(NamedTuple):
    """:func:`pair_trajectories`' result: which episodes pair up (``index``) and the counts.

    ``index`` columns: ``pair_id``, ``goal_index``, ``chosen_role``, ``chosen_episode_id``,
    ``rejected_role``, ``rejected_episode_id``, ``chosen_reward``, ``rejected_reward``.
    """

    index: dict[str, np.ndarray]
    counts: PairCounts


def pair_trajectories(expert: Mapping[str, np.ndarray], agent: Mapping[str, np.ndarray], *,
                      max_steps: Optional[int] = None, expert_wins_only: bool = False) -> TrajectoryPairing:
    """Pair expert and agent trajectories of the same goal; the higher final reward is chosen.

    Args:
        expert, agent: episode rows (:func:`episode_table`); reads ``episode_id``,
            ``goal_index``, ``episode_reward``, ``num_steps``.
        max_steps: drop combinations where a side has more steps (None: no limit).
        expert_wins_only: keep only pairs the expert wins, as ETO does.

    Pairs are ordered by (goal, expert episode, agent episode), whatever the input order;
    ``pair_id`` is ``"<goal>/<expert episode>/<agent episode>"``.
    """
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 (or None), got {max_steps}")
    by_goal: dict[str, dict[int, list[tuple[str, float, int]]]] = {}
    for role, table in (("expert", expert), ("agent", agent)):
        for name in ("episode_id", "goal_index", "episode_reward", "num_steps"):
            if name not in table:
                raise KeyError(f"{role} episodes lack column {name!r} (build them with episode_table)")
        goals: dict[int, list[tuple[str, float, int]]] = {}
        for eid, goal, reward, n in zip(table["episode_id"], table["goal_index"], table["episode_reward"],
                                        table["num_steps"]):
            goals.setdefault(int(goal), []).append((str(eid), float(reward), int(n)))
        by_goal[role] = {g: sorted(v) for g, v in goals.items()}
    index: dict[str, list] = {c: [] for c in ("pair_id", "goal_index", "chosen_role", "chosen_episode_id",
                                              "rejected_role", "rejected_episode_id", "chosen_reward",
                                              "rejected_reward")}
    dropped = {"ties": 0, "unknown_reward": 0, "too_long": 0, "agent_wins": 0}
    chosen_by = {"expert": 0, "agent": 0}
    paired_goals = sorted(set(by_goal["expert"]) & set(by_goal["agent"]))
    compared = 0
    for goal in paired_goals:
        for e_id, e_reward, e_steps in by_goal["expert"][goal]:
            for a_id, a_reward, a_steps in by_goal["agent"][goal]:
                compared += 1
                if math.isnan(e_reward) or math.isnan(a_reward):
                    dropped["unknown_reward"] += 1
                    continue
                if max_steps is not None and max(e_steps, a_steps) > max_steps:
                    dropped["too_long"] += 1
                    continue
                if abs(e_reward - a_reward) <= TIE_TOLERANCE:
                    dropped["ties"] += 1
                    continue
                if a_reward > e_reward and expert_wins_only:
                    dropped["agent_wins"] += 1
                    continue
                expert_side = ("expert", e_id, e_reward)
                agent_side = ("agent", a_id, a_reward)
                chosen, rejected = (expert_side, agent_side) if e_reward > a_reward else (agent_side, expert_side)
                chosen_by[chosen[0]] += 1
                index["pair_id"].append(f"{goal}/{e_id}/{a_id}")
                index["goal_index"].append(goal)
                for side, (role, eid, reward) in (("chosen", chosen), ("rejected", rejected)):
                    index[f"{side}_role"].append(role)
                    index[f"{side}_episode_id"].append(eid)
                    index[f"{side}_reward"].append(reward)
    counts = PairCounts(
        expert_episodes=len(expert["episode_id"]), agent_episodes=len(agent["episode_id"]),
        goals_paired=len(paired_goals), goals_expert_only=len(set(by_goal["expert"]) - set(by_goal["agent"])),
        goals_agent_only=len(set(by_goal["agent"]) - set(by_goal["expert"])), compared=compared,
        pairs=len(index["pair_id"]), chosen_expert=chosen_by["expert"], chosen_agent=chosen_by["agent"],
        dropped_ties=dropped["ties"], dropped_unknown_reward=dropped["unknown_reward"],
        dropped_too_long=dropped["too_long"], dropped_agent_wins=dropped["agent_wins"])
    numeric = {"goal_index": np.int64, "chosen_reward": np.float64, "rejected_reward": np.float64}
    return TrajectoryPairing({name: (np.asarray(values, dtype=numeric[name]) if name in numeric else _objects(values))
                              for name, values in index.items()}, counts)


def pair_rows(index: Mapping[str, np.ndarray], expert: Mapping[str, np.ndarray],
              agent: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The pair file's rows (:data:`TRAJECTORY_PAIR_SCHEMA`): ``index`` from
    :func:`pair_trajectories` joined with episode rows that carry the reference log-probs."""
    episodes: dict[str, dict[str, int]] = {}
    tables = {"expert": expert, "agent": agent}
    for role, table in tables.items():
        if "ref_step_logps" not in table:
            raise KeyError(f"{role} episodes carry no reference log-probs: run the reference pass "
                           "(ReferenceLogProbs + chosen_ref_logp) before episode_table")
        episodes[role] = {str(eid): i for i, eid in enumerate(table["episode_id"])}
    rows: dict[str, list] = {name: [] for name in TRAJECTORY_PAIR_SCHEMA.names}
    for p in range(len(index["pair_id"])):
        rows["pair_id"].append(str(index["pair_id"][p]))
        rows["kind"].append(KIND)
        rows["goal_index"].append(int(index["goal_index"][p]))
        for side in SIDES:
            role, eid = str(index[f"{side}_role"][p]), str(index[f"{side}_episode_id"][p])
            if eid not in episodes.get(role, {}):
                raise KeyError(f"pair {index['pair_id'][p]!r}: no {role} episode {eid!r} among the episode rows")
            table, i = tables[role], episodes[role][eid]
            if int(table["goal_index"][i]) != rows["goal_index"][-1]:
                raise ValueError(f"pair {index['pair_id'][p]!r}: episode {eid!r} is on goal {table['goal_index'][i]}")
            if side == "chosen":
                rows["split"].append(str(table["split"][i]))
            rows[f"{side}_role"].append(role)
            rows[f"{side}_episode_id"].append(eid)
            rows[f"{side}_source"].append(str(table["source"][i]))
            rows[f"{side}_reward"].append(float(table["episode_reward"][i]))
            rows[f"{side}_num_steps"].append(int(table["num_steps"][i]))
            rows[f"{side}_states"].append(list(table["states"][i]))
            rows[f"{side}_candidate_texts"].append([list(t) for t in table["candidate_texts"][i]])
            rows[f"{side}_actions"].append([int(a) for a in table["actions"][i]])
            rows[f"{side}_ref_step_logps"].append([float(v) for v in table["ref_step_logps"][i]])
            rows[f"ref_{side}_logp"].append(float(table["ref_logp"][i]))
    out = {}
    for field in TRAJECTORY_PAIR_SCHEMA:
        values = rows[field.name]
        if pa.types.is_integer(field.type):
            out[field.name] = np.asarray(values, dtype=np.int64)
        elif pa.types.is_floating(field.type):
            out[field.name] = np.asarray(values, dtype=np.float64)
        else:
            out[field.name] = _objects(values)
    return out


# ---------------------------------------------------------------------------- the build
@dataclass(frozen=True)
class TrajectoryPairSummary:
    """What a build wrote (also in the ``SUMMARY_FILE``, with ``kind``, the inputs and the shop).

    Attributes:
        counts: the pairing counts (:class:`PairCounts`).
        longest: the most steps of any trajectory in the file (the DPO learner pads to it).
        steps_scored: steps that went through the reference pass.
        reference: the reference checkpoint, absolute.
    """

    counts: PairCounts
    longest: int
    steps_scored: int
    reference: str

    def line(self) -> str:
        c = self.counts
        return (f"{c.pairs} trajectory pairs on {c.goals_paired} goals (chosen: {c.chosen_expert} expert, "
                f"{c.chosen_agent} agent) from {c.compared} expert x agent comparisons; dropped {c.dropped_ties} "
                f"ties, {c.dropped_unknown_reward} unknown rewards, {c.dropped_too_long} too long, "
                f"{c.dropped_agent_wins} agent wins; {c.goals_expert_only} expert-only and {c.goals_agent_only} "
                f"agent-only goals skipped; longest trajectory {self.longest} steps")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": KIND, **asdict(self.counts), "longest": self.longest, "steps_scored": self.steps_scored,
                "reference": self.reference}


def _shop_of(path: Path) -> Optional[dict]:
    return (read_summary(path) or {}).get("shop_config")


def _reference_pass(steps: pd.DataFrame, reference: str, *, batch_size: int, use_ray: bool) -> pd.DataFrame:
    """``steps`` + ``ref_logp`` = log pi_ref(chosen | state), in batches of the frozen reference."""
    from rl_app.data.pairs import ReferenceLogProbs

    columns = ["role", "episode_id", "step", "state", "candidate_texts", "chosen"]
    if use_ray:
        import ray

        ds = ray.data.from_pandas(steps[columns].reset_index(drop=True))
        ds = ds.map_batches(ReferenceLogProbs, fn_constructor_kwargs={"checkpoint": reference, "batch_size": batch_size},
                            batch_size=batch_size * 4, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=1))
        ds = ds.map_batches(chosen_ref_logp, batch_format="numpy")
        scored = ds.to_pandas()
    else:
        ref = ReferenceLogProbs(reference, batch_size=batch_size)
        scored = pd.DataFrame(chosen_ref_logp(ref({c: steps[c].to_numpy() for c in columns})))
    keyed = scored.set_index(["role", "episode_id", "step"])["ref_logp"]
    out = steps.copy()
    out["ref_logp"] = keyed.reindex(pd.MultiIndex.from_frame(steps[["role", "episode_id", "step"]])).to_numpy()
    if out["ref_logp"].isna().any():
        raise RuntimeError("the reference pass lost steps (a row came back without ref_logp)")
    return out


def _write(rows: dict[str, np.ndarray], record: dict[str, Any], out: Path, *, use_ray: bool) -> None:
    columns = {}
    for field in TRAJECTORY_PAIR_SCHEMA:
        values = list(rows[field.name])
        if field.name.endswith("_candidate_texts"):
            values = [[list(t) for t in v] for v in values]
        elif pa.types.is_list(field.type):
            values = [list(v) for v in values]
        columns[field.name] = pa.array(values, type=field.type)
    table = pa.table(columns, schema=TRAJECTORY_PAIR_SCHEMA)

    def write(tmp: Path) -> None:
        if use_ray:  # Ray Data writes the files (in parallel for large sets; shared storage on a cluster)
            import ray.data

            ray.data.from_arrow(table).write_parquet(str(tmp))
        else:
            pq.write_table(table, tmp / "pairs.parquet")
        (tmp / SUMMARY_FILE).write_text(json.dumps(record, indent=2) + "\n")

    atomic_write_dir(out, write)


def build_trajectory_pairs(expert: str | os.PathLike, agent: str | os.PathLike, reference: str | os.PathLike,
                           out: str | os.PathLike, *, max_steps: Optional[int] = None,
                           expert_wins_only: bool = False, batch_size: int = 32, use_ray: Optional[bool] = None,
                           overwrite: bool = False) -> TrajectoryPairSummary:
    """Expert and agent trajectory parquet -> trajectory pairs parquet (atomic), with pi_ref log-probs.

    Args:
        expert: expert trajectories (rl_app.data trajectory parquet: demos, human demos).
        agent: the agent's trajectories on the same shop and goals (rl_app.data.generated
            with ``min_reward=0``, or other rollouts).
        reference: the frozen reference policy checkpoint (the IL agent DPO starts from).
        out: directory to write; must not exist unless ``overwrite``.
        max_steps: drop pairs with a longer side (None: keep all; the learner pads to the longest).
        expert_wins_only: ETO's filter: keep only pairs whose chosen side is the expert's.
        batch_size: states per reference forward pass.
        use_ray: Ray Data reference pass and write (default: when Ray is initialised) or in-process.

    Raises:
        ValueError: the two data sets were recorded in different shops (their goal indices
            would name different goals), or no pair survives (the message gives the counts).
    """
    out = Path(out).absolute()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (pass overwrite=True)")
    expert, agent, reference = Path(expert), Path(agent), str(Path(reference).absolute())
    shops = {role: _shop_of(p) for role, p in (("expert", expert), ("agent", agent))}
    if shops["expert"] and shops["agent"] and shops["expert"] != shops["agent"]:
        raise ValueError(f"expert data {expert} and agent data {agent} come from different shops "
                         f"({shops['expert']} vs {shops['agent']}): goal indices would not name the same goals")
    frames = {"expert": read_trajectories(expert), "agent": read_trajectories(agent)}
    batches = {role: {c: f[c].to_numpy() for c in f.columns} for role, f in frames.items()}
    pairing = pair_trajectories(episode_table(batches["expert"]), episode_table(batches["agent"]),
                                max_steps=max_steps, expert_wins_only=expert_wins_only)
    counts = pairing.counts
    if counts.pairs == 0:
        raise ValueError(f"no trajectory pairs: {counts}")
    if use_ray is None:
        use_ray = "ray" in sys.modules and sys.modules["ray"].is_initialized()

    # Score only the steps of trajectories that made it into a pair (ties cost nothing).
    used = {role: set(pairing.index["chosen_episode_id"][pairing.index["chosen_role"] == role])
            | set(pairing.index["rejected_episode_id"][pairing.index["rejected_role"] == role]) for role in ROLES}
    steps = pd.concat([frames[role][frames[role]["episode_id"].isin(used[role])].assign(role=role)
                       for role in ROLES], ignore_index=True)
    scored = _reference_pass(steps, reference, batch_size=batch_size, use_ray=use_ray)
    episodes = {}
    for role in ROLES:
        part = scored[scored["role"] == role]
        episodes[role] = episode_table({c: part[c].to_numpy() for c in part.columns})
    rows = pair_rows(pairing.index, episodes["expert"], episodes["agent"])
    longest = int(max(rows["chosen_num_steps"].max(), rows["rejected_num_steps"].max()))
    summary = TrajectoryPairSummary(counts=counts, longest=longest, steps_scored=len(steps), reference=reference)
    record = {**summary.to_dict(), "expert": str(expert.absolute()), "agent": str(agent.absolute()),
              "max_steps": max_steps, "expert_wins_only": expert_wins_only}
    shop = shops["expert"] or shops["agent"]
    if shop:  # carry the shop the trajectories were played in (for evaluation)
        record["shop_config"] = shop
    _write(rows, record, out, use_ray=use_ray)
    return summary


def read_trajectory_pairs(path: str | os.PathLike) -> pd.DataFrame:
    """A trajectory pairs directory (or file) as a DataFrame sorted by pair_id."""
    files = parquet_files(Path(path), what="trajectory pairs")
    frame = pd.concat([pq.read_table(f).to_pandas(ignore_metadata=True) for f in files], ignore_index=True)
    missing = set(TRAJECTORY_PAIR_SCHEMA.names) - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: not a trajectory pairs file, missing columns {sorted(missing)} "
                         "(build one with python -m rl_app.data.trajectory_pairs)")
    return frame.sort_values("pair_id", kind="stable").reset_index(drop=True)


def longest_trajectory(paths: Sequence[str | os.PathLike]) -> int:
    """The most steps of any trajectory (chosen or rejected) in trajectory pair data sets."""
    import pyarrow.compute as pc

    longest = 0
    for path in paths:
        for f in parquet_files(Path(path), what="trajectory pairs"):
            table = pq.read_table(f, columns=["chosen_num_steps", "rejected_num_steps"])
            for column in table.columns:
                if len(column):
                    longest = max(longest, int(pc.max(column).as_py()))
    return longest


def _main(argv: Optional[list[str]] = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m rl_app.data.trajectory_pairs",
                                 description="Trajectory-level (ETO) preference pairs: expert vs agent "
                                             "trajectories on the same goal, higher final reward chosen.")
    ap.add_argument("--expert", required=True, help="expert trajectories (demos)")
    ap.add_argument("--agent", required=True,
                    help="the agent's trajectories (generated with --min-reward 0 --goals-from EXPERT)")
    ap.add_argument("--reference", required=True, help="reference policy checkpoint (the IL agent)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-steps", type=int, default=None, help="drop pairs with a longer trajectory")
    ap.add_argument("--expert-wins-only", action="store_true", help="ETO's filter: only pairs the expert wins")
    ap.add_argument("--batch-size", type=int, default=32, help="states per reference forward pass")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    summary = build_trajectory_pairs(args.expert, args.agent, args.reference, args.out, max_steps=args.max_steps,
                                     expert_wins_only=args.expert_wins_only, batch_size=args.batch_size,
                                     overwrite=args.overwrite)
    print(summary.line())
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    raise SystemExit(run_command(_main))
