"""StepRecord: field validation with clear errors, episode checks, the Arrow schema."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from rl_app.data.schema import (
    COLUMNS,
    NO_SEED,
    TRAJECTORY_SCHEMA,
    TrajectoryValidationError,
    records_from_frame,
    records_to_table,
    validate_episodes,
)
from .helpers import episode, record, replace


def test_valid_record_and_its_action():
    r = record(chosen=1)
    assert r.action == "search[shoes]"
    assert r.to_row()["candidates"] == ("search[blue shoes]", "search[shoes]")


def test_lists_and_numpy_values_are_normalised():
    r = record(candidates=["a", "b"], candidate_texts=np.array(["a", "b"], dtype=object),
               goal_index=np.int64(1501), chosen=np.int32(1), reward=np.float32(0.5), done=np.bool_(True),
               episode_reward=0.5)
    assert r.candidates == ("a", "b") and r.candidate_texts == ("a", "b")
    assert type(r.goal_index) is int and type(r.chosen) is int and type(r.done) is bool
    assert r.reward == 0.5
    with pytest.raises(AttributeError):
        r.chosen = 0  # frozen


@pytest.mark.parametrize("changes, message", [
    (dict(chosen=2), r"chosen=2 is out of range for 2 candidates"),
    (dict(chosen=-1), r"chosen=-1 is out of range"),
    (dict(candidate_texts=("only one",)), r"2 candidates but 1 candidate_texts"),
    (dict(candidates=(), candidate_texts=(), chosen=0), r"no candidates"),
    (dict(split="test"), r"split 'test' disagrees with goal_index 1500"),
    (dict(goal_index=10), r"split 'train' disagrees with goal_index 10 \(which is 'test'"),
    (dict(split="valid"), r"split must be one of"),
    (dict(source="scripted"), r"source must be one of"),
    (dict(reward=float("nan")), r"reward must be finite"),
    (dict(episode_reward=float("inf")), r"episode_reward must be finite"),
    (dict(step=-1), r"step must be >= 0"),
    (dict(goal_index=-3), r"goal_index must be >= 0"),
    (dict(chosen=1.0), r"chosen must be an int"),
    (dict(done=1), r"done must be a bool"),
    (dict(candidates="search[x]"), r"candidates must be a sequence of strings"),
    (dict(candidates=("a", 3)), r"candidates must hold strings only"),
    (dict(episode_id=""), r"episode_id must be a non-empty string"),
    (dict(seed=-2), r"seed must be >= 0"),
])
def test_invalid_records_name_the_problem(changes, message):
    with pytest.raises(TrajectoryValidationError, match=message):
        record(**changes)


def test_nan_reward_and_no_seed_are_allowed_for_human_rows_only():
    r = record(source="human", agent="human", reward=float("nan"), episode_reward=float("nan"), seed=NO_SEED)
    assert math.isnan(r.reward)
    with pytest.raises(TrajectoryValidationError, match="human rows only"):
        record(source="generated", reward=float("nan"))


def test_validate_episodes_accepts_well_formed_episodes():
    validate_episodes(episode("a") + episode("b", goal_index=1600, final_reward=0.25))


@pytest.mark.parametrize("mutate, message", [
    (lambda rows: rows + [rows[0]], r"step\(s\) \[0\] appear more than once"),
    (lambda rows: [replace(rows[0], done=True)] + rows[1:], r"2 rows are done"),
    (lambda rows: rows + [replace(rows[1], step=5)], r"step 2 is done but step 5 follows it"),
    (lambda rows: rows[:2] + [replace(rows[2], reward=0.5)], r"episode_reward 1.0 != final step reward 0.5"),
    (lambda rows: [replace(rows[0], goal_index=1501)] + rows[1:], r"goal_index differs between its steps"),
    (lambda rows: [replace(rows[0], agent="rule")] + rows[1:], r"agent differs"),
])
def test_validate_episodes_errors(mutate, message):
    with pytest.raises(TrajectoryValidationError, match=message):
        validate_episodes(mutate(episode()))


def test_schema_matches_the_dataclass_and_tables_round_trip():
    assert tuple(TRAJECTORY_SCHEMA.names) == COLUMNS
    rows = episode("a") + episode("b", goal_index=1700, final_reward=0.5)
    table = records_to_table(rows)
    assert table.schema.equals(TRAJECTORY_SCHEMA)
    assert table.schema.field("candidates").type == pa.list_(pa.string())
    frame = table.to_pandas()
    assert records_from_frame(frame) == rows


def test_records_from_frame_rejects_missing_and_extra_columns():
    frame = pd.DataFrame([r.to_row() for r in episode()])
    with pytest.raises(TrajectoryValidationError, match=r"missing columns \['seed'\]"):
        records_from_frame(frame.drop(columns=["seed"]))
    with pytest.raises(TrajectoryValidationError, match=r"unknown columns \['state_ids'\]"):
        records_from_frame(frame.assign(state_ids=0))
