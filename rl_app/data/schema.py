"""One row per agent step: the trajectory record every data source writes and every learner reads.

Demonstrations (scripted), generated trajectories, human demonstrations and policy rollouts
all become :class:`StepRecord` rows with the same columns, stored as parquet with
:data:`TRAJECTORY_SCHEMA`. Rows hold text only (the observation the agent saw and the
candidate actions it was offered); tokenization happens when the data is read
(:func:`rl_app.data.io.tokenize_batch`), so one file serves any tokenizer or length.

Validation happens twice: per row when a :class:`StepRecord` is built (types, ranges,
``chosen`` inside the candidate list, ...) and per episode in :func:`validate_episodes`
(unique steps, one final step, fields that must agree across an episode). Errors are
:class:`TrajectoryValidationError` and name the episode, the step and the fix.
"""

from __future__ import annotations

import math
import numbers
from collections import defaultdict
from dataclasses import dataclass, fields
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
import pyarrow as pa

from rl_app.errors import InputError
from rl_app.shop.goals import split_of
from rl_app.shop.types import Split

__all__ = [
    "StepRecord",
    "Source",
    "SOURCES",
    "SPLITS",
    "NO_SEED",
    "UNKNOWN_REWARD",
    "TRAJECTORY_SCHEMA",
    "COLUMNS",
    "TrajectoryValidationError",
    "validate_episodes",
    "records_to_table",
    "records_from_frame",
]

Source = Literal["demo", "generated", "human", "rollout"]
SOURCES: tuple[str, ...] = ("demo", "generated", "human", "rollout")
SPLITS: tuple[str, ...] = ("test", "dev", "train")
# Episodes that were not produced by a seeded agent (human demonstrations).
NO_SEED = -1
# Human demonstrations do not store the reward; NaN keeps it from passing for a real 0.
UNKNOWN_REWARD = float("nan")


class TrajectoryValidationError(InputError):
    """A step record or an episode breaks the trajectory schema."""


def _as_int(value: Any, name: str, where: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TrajectoryValidationError(f"{where}: {name} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


def _as_float(value: Any, name: str, where: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TrajectoryValidationError(f"{where}: {name} must be a float, got {type(value).__name__} {value!r}")
    return float(value)


def _as_strings(value: Any, name: str, where: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TrajectoryValidationError(
            f"{where}: {name} must be a sequence of strings, got {type(value).__name__}")
    out = tuple(value)
    bad = [v for v in out if not isinstance(v, str)]
    if bad:
        raise TrajectoryValidationError(f"{where}: {name} must hold strings only, got {bad[0]!r}")
    return out


@dataclass(frozen=True)
class StepRecord:
    """One step of one episode, as the agent saw and took it.

    Attributes:
        episode_id: unique per episode within a data set (e.g. ``demo/demonstrator/s0/g001500``).
        goal_index: index of the goal in the goal list of its source (the env's goal set for
            demo/generated/rollout rows; ``human_goals.json`` for human rows).
        split: the goal's split, WebShop's convention: test 0-499, dev 500-1499, train 1500+.
        step: position of this state in the episode (0 = first state; not necessarily
            contiguous when a reader dropped steps, see :mod:`rl_app.data.human`).
        state: the observation text the agent saw.
        candidates: the action strings offered (``search[...]``, ``click[...]``).
        candidate_texts: what a policy reads for each candidate (``env.candidate_texts()``:
            click[asin] with the result's title, option buttons with their group).
        chosen: index into ``candidates`` of the action taken.
        reward: reward received after this step (NaN when unknown: human demonstrations).
        done: the episode ended with this step (bought, or hit the step limit).
        source: where the episode comes from: ``demo`` (scripted demonstrator), ``generated``
            (reference-policy rollouts kept for DPO), ``human`` or ``rollout``.
        episode_reward: the final reward of the episode (NaN when unknown).
        agent: who acted (``demonstrator``, ``rule``, ``human``, a policy name).
        seed: the seed that reproduces this episode (:data:`NO_SEED` when none).
    """

    episode_id: str
    goal_index: int
    split: Split
    step: int
    state: str
    candidates: tuple[str, ...]
    candidate_texts: tuple[str, ...]
    chosen: int
    reward: float
    done: bool
    source: Source
    episode_reward: float
    agent: str
    seed: int

    def __post_init__(self) -> None:
        where = f"episode {self.episode_id!r} step {self.step!r}"
        set_ = object.__setattr__  # frozen: normalise numpy scalars and lists once, here
        if not isinstance(self.episode_id, str) or not self.episode_id:
            raise TrajectoryValidationError(f"{where}: episode_id must be a non-empty string")
        for name in ("goal_index", "step", "chosen", "seed"):
            set_(self, name, _as_int(getattr(self, name), name, where))
        for name in ("reward", "episode_reward"):
            set_(self, name, _as_float(getattr(self, name), name, where))
        for name in ("candidates", "candidate_texts"):
            set_(self, name, _as_strings(getattr(self, name), name, where))
        if not isinstance(self.done, (bool, np.bool_)):
            raise TrajectoryValidationError(f"{where}: done must be a bool, got {self.done!r}")
        set_(self, "done", bool(self.done))
        for name in ("state", "agent"):
            if not isinstance(getattr(self, name), str):
                raise TrajectoryValidationError(f"{where}: {name} must be a string")
        if not self.agent:
            raise TrajectoryValidationError(f"{where}: agent must be a non-empty string")

        if self.goal_index < 0:
            raise TrajectoryValidationError(f"{where}: goal_index must be >= 0, got {self.goal_index}")
        if self.split not in SPLITS:
            raise TrajectoryValidationError(f"{where}: split must be one of {SPLITS}, got {self.split!r}")
        if self.split != split_of(self.goal_index):
            raise TrajectoryValidationError(
                f"{where}: split {self.split!r} disagrees with goal_index {self.goal_index} "
                f"(which is {split_of(self.goal_index)!r}: test 0-499, dev 500-1499, train 1500+)")
        if self.step < 0:
            raise TrajectoryValidationError(f"{where}: step must be >= 0")
        if self.source not in SOURCES:
            raise TrajectoryValidationError(f"{where}: source must be one of {SOURCES}, got {self.source!r}")
        if not self.candidates:
            raise TrajectoryValidationError(f"{where}: no candidates; a step needs at least the chosen action")
        if len(self.candidates) != len(self.candidate_texts):
            raise TrajectoryValidationError(
                f"{where}: {len(self.candidates)} candidates but {len(self.candidate_texts)} candidate_texts; "
                "they must be parallel (use the candidates themselves when there is no richer text)")
        if not 0 <= self.chosen < len(self.candidates):
            raise TrajectoryValidationError(
                f"{where}: chosen={self.chosen} is out of range for {len(self.candidates)} candidates")
        if self.seed < NO_SEED:
            raise TrajectoryValidationError(f"{where}: seed must be >= 0 (or {NO_SEED} for none), got {self.seed}")
        for name in ("reward", "episode_reward"):
            value = getattr(self, name)
            if math.isinf(value) or (math.isnan(value) and self.source != "human"):
                raise TrajectoryValidationError(
                    f"{where}: {name} must be finite (NaN = unknown is allowed for human rows only), got {value}")

    @property
    def action(self) -> str:
        """The action string taken."""
        return self.candidates[self.chosen]

    def to_row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "StepRecord":
        """From a dict / DataFrame row (numpy arrays and scalars are accepted)."""
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise TrajectoryValidationError(f"row is missing columns {missing}")
        return cls(**{c: row[c] for c in COLUMNS})


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(StepRecord))

TRAJECTORY_SCHEMA = pa.schema([
    pa.field("episode_id", pa.string(), nullable=False),
    pa.field("goal_index", pa.int64(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("step", pa.int32(), nullable=False),
    pa.field("state", pa.string(), nullable=False),
    pa.field("candidates", pa.list_(pa.string()), nullable=False),
    pa.field("candidate_texts", pa.list_(pa.string()), nullable=False),
    pa.field("chosen", pa.int32(), nullable=False),
    pa.field("reward", pa.float64(), nullable=False),
    pa.field("done", pa.bool_(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("episode_reward", pa.float64(), nullable=False),
    pa.field("agent", pa.string(), nullable=False),
    pa.field("seed", pa.int64(), nullable=False),
], metadata={"rl_app.schema": "trajectory/v1"})
if tuple(TRAJECTORY_SCHEMA.names) != COLUMNS:  # one source of truth for the column order
    raise RuntimeError("TRAJECTORY_SCHEMA and StepRecord disagree on the columns")


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def validate_episodes(records: Iterable[StepRecord]) -> None:
    """Checks across the rows of each episode.

    - (episode_id, step) is unique;
    - goal_index, split, source, agent, seed and episode_reward agree across an episode;
    - at most one row is ``done`` and it is the episode's last step;
    - on the done row, episode_reward equals that step's reward.
    """
    episodes: dict[str, list[StepRecord]] = defaultdict(list)
    for r in records:
        episodes[r.episode_id].append(r)
    for eid, rows in episodes.items():
        steps = [r.step for r in rows]
        if len(set(steps)) != len(steps):
            dup = sorted({s for s in steps if steps.count(s) > 1})
            raise TrajectoryValidationError(f"episode {eid!r}: step(s) {dup} appear more than once")
        first = rows[0]
        for name in ("goal_index", "split", "source", "agent", "seed", "episode_reward"):
            values = {getattr(r, name) for r in rows}
            if len(values) > 1 and not (name == "episode_reward" and all(math.isnan(v) for v in values)):
                raise TrajectoryValidationError(
                    f"episode {eid!r}: {name} differs between its steps ({sorted(map(str, values))})")
        done_rows = [r for r in rows if r.done]
        if len(done_rows) > 1:
            raise TrajectoryValidationError(
                f"episode {eid!r}: {len(done_rows)} rows are done (steps {[r.step for r in done_rows]}); "
                "only the final step may be")
        if done_rows:
            last = done_rows[0]
            if last.step != max(steps):
                raise TrajectoryValidationError(
                    f"episode {eid!r}: step {last.step} is done but step {max(steps)} follows it")
            if not _same(last.reward, first.episode_reward):
                raise TrajectoryValidationError(
                    f"episode {eid!r}: episode_reward {first.episode_reward} != final step reward {last.reward}")


def records_to_table(records: Sequence[StepRecord]) -> pa.Table:
    """Rows -> an Arrow table with :data:`TRAJECTORY_SCHEMA` (records are validated on creation)."""
    columns = {c: [getattr(r, c) for r in records] for c in COLUMNS}
    columns["candidates"] = [list(v) for v in columns["candidates"]]
    columns["candidate_texts"] = [list(v) for v in columns["candidate_texts"]]
    return pa.Table.from_pydict(columns, schema=TRAJECTORY_SCHEMA)


def records_from_frame(frame) -> list[StepRecord]:
    """A DataFrame with the trajectory columns -> validated :class:`StepRecord` rows.

    Extra columns are an error (they would be lost on write): drop them first.
    """
    missing = [c for c in COLUMNS if c not in frame.columns]
    extra = [c for c in frame.columns if c not in COLUMNS]
    if missing or extra:
        raise TrajectoryValidationError(
            f"trajectory frame has missing columns {missing} and unknown columns {extra}; "
            f"expected exactly {list(COLUMNS)}")
    cols = {c: frame[c].tolist() for c in COLUMNS}
    return [StepRecord(**{c: cols[c][i] for c in COLUMNS}) for i in range(len(frame))]
