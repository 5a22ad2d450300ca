"""Trajectory parquet files: atomic writes, pandas / Ray Data reads, and the tokenizing transform.

A trajectory data set is a directory of ``*.parquet`` files with
:data:`~rl_app.data.schema.TRAJECTORY_SCHEMA` (plus an optional
:data:`~rl_app.data.files.SUMMARY_FILE`, which both pyarrow and Ray Data skip because of its
leading underscore). A single ``.parquet``
file is accepted wherever a path is read.

Writes go to a temporary sibling directory that is renamed into place only once every file
is complete (:func:`~rl_app.data.files.atomic_write_dir`), so a crash or an invalid row never
leaves a half-written data set at ``path``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rl_app.data.files import SUMMARY_FILE, atomic_write_dir
from rl_app.env.observation import OBS_KEYS as _LAYOUT_KEYS
from rl_app.data.schema import (
    COLUMNS,
    TRAJECTORY_SCHEMA,
    StepRecord,
    TrajectoryValidationError,
    records_from_frame,
    records_to_table,
    validate_episodes,
)

__all__ = [
    "write_trajectories",
    "read_trajectories",
    "trajectory_dataset",
    "tokenize_batch",
    "parquet_files",
    "parquet_columns",
    "OBS_COLUMNS",
    "ROWS_PER_FILE",
]

# Rows per parquet file when writing through Ray Data (one write task per file).
ROWS_PER_FILE = 50_000
TEXT_OBS_KEYS = _LAYOUT_KEYS["text"]
OBS_COLUMNS = TEXT_OBS_KEYS
WriteEngine = Literal["auto", "ray", "pyarrow"]


def _ray_running() -> bool:
    # Ray cannot be initialised in a process that never imported it; checking sys.modules
    # first keeps a plain pyarrow write from paying for `import ray`.
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


def parquet_files(path: Path, *, what: str = "trajectory data") -> list[Path]:
    """The ``*.parquet`` files of a data set (a directory, or one file); hidden/underscore files
    skipped. ``what`` names the data in the error when there is none."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no {what} at {path} (expected a directory of .parquet files or a file)")
    files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith(("_", ".")))
    if not files:
        raise FileNotFoundError(f"{path} holds no .parquet files")
    return files


def parquet_columns(path: Path, *, what: str = "trajectory data") -> tuple[str, ...]:
    """The column names of a data set, from its first file's schema (no rows are read)."""
    return tuple(pq.read_schema(parquet_files(path, what=what)[0]).names)


def write_trajectories(data: Iterable[StepRecord] | pd.DataFrame, path: str | os.PathLike, *,
                       overwrite: bool = False, summary: Optional[Mapping[str, Any]] = None,
                       engine: WriteEngine = "auto") -> Path:
    """Validate and write step records (or a DataFrame with exactly the trajectory columns).

    Args:
        data: :class:`StepRecord` rows or a DataFrame (e.g. from :func:`read_trajectories`).
        path: the data set directory to create.
        overwrite: replace an existing data set at ``path`` (else FileExistsError).
        summary: JSON-serialisable facts about the data, written as ``SUMMARY_FILE``.
        engine: ``ray`` writes with Ray Data (``ray.data.from_arrow(...).write_parquet``):
            the files are written by Ray tasks, in parallel for large sets, and on a cluster
            the path must be shared storage. ``pyarrow`` writes one file from this process.
            ``auto`` (default) uses Ray Data when Ray is already initialised and pyarrow
            otherwise, because starting Ray only to write a file costs seconds and a local
            cluster. Both give the same schema and rows. (``from_arrow`` rather than
            ``from_pandas``: the Arrow table already carries the exact schema, so Ray does
            not re-infer list/int widths from pandas.)

    Returns:
        ``path`` as an absolute Path.
    """
    path = Path(path).absolute()
    if engine not in ("auto", "ray", "pyarrow"):
        raise ValueError(f"engine must be 'auto', 'ray' or 'pyarrow', got {engine!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True or choose another path")
    records = records_from_frame(data) if isinstance(data, pd.DataFrame) else list(data)
    for i, r in enumerate(records):
        if not isinstance(r, StepRecord):
            raise TypeError(f"item {i} is a {type(r).__name__}, expected StepRecord (or pass a DataFrame)")
    validate_episodes(records)
    table = records_to_table(records)
    summary_text = json.dumps(dict(summary), indent=2, sort_keys=True) if summary is not None else None
    use_ray = engine == "ray" or (engine == "auto" and _ray_running())
    if table.num_rows == 0:
        use_ray = False  # Ray Data writes no file for an empty data set; keep the schema on disk

    def write(tmp: Path) -> None:
        if use_ray:
            import ray.data

            ray.data.from_arrow(table).write_parquet(str(tmp), max_rows_per_file=ROWS_PER_FILE)
        else:
            pq.write_table(table, tmp / "part-00000.parquet")
        if summary_text is not None:
            (tmp / SUMMARY_FILE).write_text(summary_text + "\n")

    atomic_write_dir(path, write)
    return path


def read_trajectories(path: str | os.PathLike) -> pd.DataFrame:
    """A data set (directory or file) -> DataFrame with :data:`COLUMNS`, sorted by (episode_id, step).

    ``candidates`` / ``candidate_texts`` cells are tuples of strings, as in :class:`StepRecord`.
    """
    files = parquet_files(Path(path))
    tables = []
    for f in files:
        t = pq.read_table(f)
        missing = [c for c in COLUMNS if c not in t.column_names]
        if missing:
            raise TrajectoryValidationError(f"{f} is not a trajectory file: missing columns {missing}")
        tables.append(t.select(list(COLUMNS)).cast(TRAJECTORY_SCHEMA))
    frame = pa.concat_tables(tables).to_pandas()
    for c in ("candidates", "candidate_texts"):
        frame[c] = [tuple(v) for v in frame[c]]
    return frame.sort_values(["episode_id", "step"], kind="stable").reset_index(drop=True)


def trajectory_dataset(path: str | os.PathLike):
    """A lazy :class:`ray.data.Dataset` over a trajectory data set (``ray.data.read_parquet``)."""
    import ray.data

    files = parquet_files(Path(path))
    source = str(Path(path).absolute()) if Path(path).is_dir() else str(files[0].absolute())
    return ray.data.read_parquet(source)


def tokenize_batch(batch: Mapping[str, np.ndarray], *, encoder, keep: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Ray Data transform: trajectory rows -> the numeric observation RLlib sees, plus ``actions``.

    Reads ``state``, ``candidate_texts`` and ``chosen``; returns ``state_ids`` (B, L),
    ``action_ids`` (B, K, A), ``action_mask`` (B, K) from the shared
    :class:`~rl_app.env.observation.ObservationEncoder` (so offline data matches what the env
    produces) and ``actions`` (B,) int64 = ``chosen``; plus the columns named in ``keep``,
    copied. The input batch is not modified. Use with
    ``ds.map_batches(tokenize_batch, fn_kwargs={"encoder": encoder}, batch_format="numpy")``.
    """
    for c in ("state", "candidate_texts", "chosen", *keep):
        if c not in batch:
            raise KeyError(f"tokenize_batch needs column {c!r}; batch has {sorted(batch)}")
    states = [str(s) for s in batch["state"]]
    texts = [[str(t) for t in c] for c in batch["candidate_texts"]]
    chosen = np.asarray(batch["chosen"]).astype(np.int64)
    if not len(states) == len(texts) == len(chosen):
        raise ValueError(f"ragged batch: {len(states)} states, {len(texts)} candidate lists, {len(chosen)} chosen")
    counts = np.array([len(t) for t in texts], dtype=np.int64)
    bad = np.flatnonzero((chosen < 0) | (chosen >= counts))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"row {i}: chosen={chosen[i]} is out of range for {counts[i]} candidates")
    if states:
        obs = encoder.encode_batch(states, texts)
    else:
        space = encoder.space
        obs = {k: np.zeros((0, *space[k].shape), dtype=space[k].dtype) for k in encoder.keys}
    out = {**obs, "actions": chosen}
    for c in keep:
        out[c] = np.array(batch[c], copy=True)
    return out
