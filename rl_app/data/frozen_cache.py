"""Stored frozen-encoder caches: the frozen part of every unique token row of a data set, on disk.

The cached-encoder mode (:class:`~rl_app.policy.segment_model.SegmentChoiceModel` with a
frozen encoder below a cut) needs each unique instruction, page line and candidate row
encoded once. :func:`build_frozen_cache` does that in a Ray Data pass over trajectory (or
pair) parquet files, and stores the result beside the data::

    <data>.frozen_cache/<fingerprint>-<rows>/rows.parquet   key (token ids), n (tokens), h (float16 bytes)
    <data>.frozen_cache/<fingerprint>-<rows>/manifest.json  fingerprint, encoder, cut, token lengths, rows

The directory name starts with :attr:`~rl_app.policy.frozen_rows.FrozenRows.fingerprint`, a
hash of the encoder's architecture, the layer cut and the frozen weights, followed by a hash
of how the data was cut into rows (layout version, token lengths); the keys are the token ids
themselves (so another tokenizer or other token lengths give other keys). A cache is read only
into a memo of the same fingerprint (:func:`load_into` refuses any other), so a changed encoder
or cut is never served stale rows; it builds its own cache instead. Directories are written to
a temporary name and renamed when complete.

A root may hold more than one directory of a fingerprint: :func:`save_memo_rows` adds
``<fingerprint>-<rows>-<name>`` with the rows a policy computed while it played (e.g. the IL
agent's evaluation pages, which every later evaluation on those goals meets again), and
:func:`load_into` reads them all.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from rl_app.data.files import atomic_write_dir
from rl_app.env.observation import SEGMENTS_VERSION
from rl_app.errors import InputError
from rl_app.policy.frozen_rows import FrozenRows, row_key, rows_of_keys

__all__ = ["CACHE_SUFFIX", "ROWS_FILE", "MANIFEST_FILE", "cache_root", "cache_dir", "load_into",
           "load_into_policy", "build_frozen_cache", "save_memo_rows", "FrozenCacheError"]

CACHE_SUFFIX = ".frozen_cache"
ROWS_FILE = "rows.parquet"
MANIFEST_FILE = "manifest.json"
_ENCODE_BATCH_ROWS = 512


class FrozenCacheError(InputError):
    """A stored cache that does not belong to the model it is loaded into."""


def cache_root(data_path: str | os.PathLike) -> Path:
    """Where the caches of a data set live: ``<data>.frozen_cache`` beside it."""
    path = Path(data_path).absolute()
    return path.parent / f"{path.name}{CACHE_SUFFIX}"


def cache_dir(root: str | os.PathLike, frozen: FrozenRows, observation_encoder) -> Path:
    """``<root>/<fingerprint>-<rows key>``: the frozen weights, and which rows (layout version,
    token lengths) the data set was cut into. (Another tokenizer gives other ids, so other keys.)"""
    rows = json.dumps({"version": SEGMENTS_VERSION, "segments": list(observation_encoder.segments),
                       "action": observation_encoder.max_action_tokens, "k_max": observation_encoder.k_max},
                      sort_keys=True)
    return Path(root) / f"{frozen.fingerprint}-{hashlib.sha256(rows.encode()).hexdigest()[:8]}"


def load_into(frozen: FrozenRows, root_or_dir: str | os.PathLike) -> int:
    """Read the stored caches of ``frozen``'s fingerprint (every one under ``root_or_dir``, or
    that directory itself) into its memo; returns the rows read (0 when none exists). A
    directory whose manifest names another fingerprint is refused."""
    path = Path(root_or_dir)
    if (path / MANIFEST_FILE).is_file():
        return _load_dir(frozen, path)
    return sum(_load_dir(frozen, d) for d in sorted(path.glob(f"{frozen.fingerprint}-*"))
               if (d / MANIFEST_FILE).is_file())


def load_into_policy(policy, *roots: Optional[str | os.PathLike]) -> int:
    """Read the stored caches under ``roots`` (None entries skipped) into a
    :class:`~rl_app.policy.choice_policy.ChoicePolicy`'s frozen-row memo, so it plays or scores
    without re-encoding rows seen in training data; returns the rows read (0 for a policy of the
    text layout, which has no memo)."""
    frozen = getattr(policy.model, "frozen", None)
    if not isinstance(frozen, FrozenRows):
        return 0
    return sum(load_into(frozen, root) for root in roots if root is not None and Path(root).exists())


def _load_dir(frozen: FrozenRows, directory: Path) -> int:
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    if manifest.get("fingerprint") != frozen.fingerprint:
        raise FrozenCacheError(
            f"{directory} caches frozen weights {manifest.get('fingerprint')!r} but the model's are "
            f"{frozen.fingerprint!r} (another encoder or layer cut): point frozen_cache at the data's "
            f"{CACHE_SUFFIX} directory (each fingerprint has its own) or delete the stale one")
    table = pq.read_table(directory / ROWS_FILE)
    hidden = int(manifest["hidden"])
    rows = {}
    for key, n, h in zip(table["key"].to_pylist(), table["n"].to_pylist(), table["h"].to_pylist()):
        rows[key] = torch.from_numpy(np.frombuffer(h, dtype=np.float16).reshape(int(n), hidden).copy())
    frozen.update(rows)
    return len(rows)


def _add_row_keys(keys: set[bytes], encoder, states, candidate_texts) -> None:
    """Add the keys of every non-empty token row of these states' observations to ``keys``."""
    for state, texts in zip(states, candidate_texts):
        obs = encoder.encode(str(state), [str(t) for t in texts][: encoder.k_max])
        for name in ("instruction_ids", "line_ids", "action_ids"):
            rows = obs[name].reshape(-1, obs[name].shape[-1])
            keys.update(row_key(r) for r in rows if r[0] != 0)


class _EncodeRows:
    """Ray Data actor: row keys -> their frozen token states, from the same frozen weights.

    ``threads``: torch threads (the driver's count: Ray gives a ``num_cpus=0`` actor one
    thread, which halves the encoding speed of a pass that runs while nothing else does);
    ``RL_APP_CACHE_THREADS`` overrides it."""

    def __init__(self, model_source: dict[str, Any], fingerprint: str, threads: int = 1) -> None:
        torch.set_num_threads(max(1, int(os.environ.get("RL_APP_CACHE_THREADS", threads))))
        self.frozen = _frozen_from_source(model_source)
        if self.frozen.fingerprint != fingerprint:
            raise FrozenCacheError(f"the data worker's frozen weights {self.frozen.fingerprint} differ from the "
                                   f"driver's {fingerprint}: the encoder files changed while building")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        keys = [bytes(k) for k in batch["key"]]
        ids = rows_of_keys(keys)
        order = np.argsort([len(k) for k in keys])  # similar lengths together: less padding
        states: list[Optional[torch.Tensor]] = [None] * len(keys)
        for lo in range(0, len(keys), 128):
            idx = order[lo:lo + 128]
            for i, s in zip(idx, self.frozen.encode_rows(torch.from_numpy(ids[idx]))):
                states[int(i)] = s
        return {"key": np.array(keys, dtype=object), "n": np.array([s.shape[0] for s in states], dtype=np.int32),
                "h": np.array([s.numpy().tobytes() for s in states], dtype=object)}


def _frozen_from_source(source: dict[str, Any]) -> FrozenRows:
    """The frozen part of a model named by an encoder (fresh weights) or a checkpoint."""
    if source.get("checkpoint"):
        from rl_app.policy.checkpoint import load_choice_model

        model = load_choice_model(source["checkpoint"])
        if not hasattr(model, "frozen"):
            raise FrozenCacheError(f"{source['checkpoint']} is not a segments-layout policy: nothing to cache")
        return model.frozen
    from rl_app.policy.encoder import EncoderConfig, load_encoder

    encoder = load_encoder(EncoderConfig(name_or_path=source["encoder"]))
    n_layers = int(encoder.config.num_hidden_layers)
    return FrozenRows(encoder, n_layers - int(source.get("trainable_layers", 0)))


def build_frozen_cache(paths: Sequence[str | os.PathLike], observation_encoder, model_source: dict[str, Any], *,
                       root: Optional[str | os.PathLike] = None, reuse: Sequence[str | os.PathLike] = (),
                       log=print) -> Path:
    """Encode every unique row of the data sets at ``paths`` once (in a Ray Data pass, one actor
    holding the frozen encoder) and store it (see the module doc).

    Args:
        paths: trajectory or pair parquet data sets (columns ``state``, ``candidate_texts``).
        observation_encoder: the segments-layout :class:`~rl_app.env.observation.ObservationEncoder`
            training will read the data with (its token lengths decide the rows).
        model_source: ``{"encoder": name, "trainable_layers": N}`` or ``{"checkpoint": path}``.
        root: where caches go (default: beside the first data set).
        reuse: other cache roots or directories: rows they hold for the same fingerprint are
            copied, not encoded again (a pair set's rows are its trajectories' rows).

    Returns the cache directory (existing and complete when its fingerprint was built before).
    """
    import ray.data

    if observation_encoder.layout != "segments":
        raise ValueError("a frozen cache needs the segments observation layout")
    frozen = _frozen_from_source(model_source)
    root = Path(root) if root is not None else cache_root(paths[0])
    target = cache_dir(root, frozen, observation_encoder)
    if (target / MANIFEST_FILE).is_file():
        log(f"frozen cache: {target} (hit)")
        return target
    t0 = time.perf_counter()
    from rl_app.data.io import parquet_files

    files = [str(f) for p in paths for f in parquet_files(Path(p))]
    # The unique rows, read here (tokenizing is light and the rows must meet in one set anyway);
    # the encoding, which is what costs, runs as a Ray Data pass below.
    keys_set: set[bytes] = set()
    for f in files:
        table = pq.read_table(f, columns=["state", "candidate_texts"])
        _add_row_keys(keys_set, observation_encoder, table["state"].to_pylist(), table["candidate_texts"].to_pylist())
    columns: dict[str, list] = {"key": [], "n": [], "h": []}
    for known in reuse:
        load_into(frozen, known)
    for k in sorted(k for k in keys_set if k in frozen.memo):
        states = frozen.memo[k]
        columns["key"].append(k)
        columns["n"].append(int(states.shape[0]))
        columns["h"].append(states.to("cpu", torch.float16).numpy().tobytes())
    reused = len(columns["key"])
    frozen.memo.clear()
    keys = sorted(keys_set.difference(columns["key"]))
    keys_s = time.perf_counter() - t0
    if keys:
        encoded = ray.data.from_items([{"key": k} for k in keys]).map_batches(
            _EncodeRows, fn_constructor_args=(model_source, frozen.fingerprint, torch.get_num_threads()),
            batch_size=_ENCODE_BATCH_ROWS, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0)
        for batch in encoded.iter_batches(batch_size=None, batch_format="numpy"):
            for c in columns:
                columns[c].extend(batch[c].tolist())
    manifest = {"source": model_source, "data": [str(Path(p).absolute()) for p in paths], "reused_rows": reused,
                "keys_s": round(keys_s, 2), "build_s": round(time.perf_counter() - t0, 2)}
    table = _write(target, frozen, observation_encoder, columns, manifest)
    log(f"frozen cache: {table.num_rows} unique rows, {reused} reused, {table.num_rows - reused} encoded in "
        f"{manifest['build_s']:.1f} s -> {target}")
    return target


def save_memo_rows(frozen: FrozenRows, root: str | os.PathLike, observation_encoder, model_source: dict[str, Any],
                   *, name: str, skip: Sequence[bytes] = ()) -> Optional[Path]:
    """Store the rows a policy's memo computed while it played (``frozen.memo`` less ``skip``,
    e.g. the rows it was loaded with) as one more cache of ``frozen``'s fingerprint under
    ``root``: ``<fingerprint>-<rows key>-<name>``, which :func:`load_into` reads with the
    others. Later evaluations of successor policies on the same goals meet mostly the same
    pages; they then encode only what is new. Returns the directory (None: nothing new)."""
    skip_set = set(skip)
    keys = sorted(k for k in frozen.memo if k not in skip_set)
    if not keys:
        return None
    base = cache_dir(root, frozen, observation_encoder)
    target = base.with_name(f"{base.name}-{name}")
    if (target / MANIFEST_FILE).is_file():
        return target
    columns = {"key": keys, "n": [int(frozen.memo[k].shape[0]) for k in keys],
               "h": [frozen.memo[k].to("cpu", torch.float16).numpy().tobytes() for k in keys]}
    _write(target, frozen, observation_encoder, columns, {"source": model_source, "data": [], "reused_rows": 0,
                                                         "memo_of": name})
    return target


def _write(target: Path, frozen: FrozenRows, observation_encoder, columns: dict[str, list],
           facts: dict[str, Any]) -> pa.Table:
    """Write one cache directory (rows + manifest) to a temporary sibling, then rename it."""
    table = pa.table({"key": pa.array(columns["key"], pa.binary()), "n": pa.array(columns["n"], pa.int32()),
                      "h": pa.array(columns["h"], pa.binary())})
    segments = observation_encoder.segments
    manifest = {"fingerprint": frozen.fingerprint, "frozen_layers": frozen.frozen_layers,
                "hidden": int(frozen.encoder.config.hidden_size), "rows": table.num_rows, "layout": "segments",
                "token_lengths": {"instruction": segments.instruction_tokens, "line": segments.line_tokens,
                                  "action": observation_encoder.max_action_tokens, "lines": segments.lines},
                "tokenizer": str(observation_encoder.tokenizer_name), **facts}

    def write(tmp: Path) -> None:
        pq.write_table(table, tmp / ROWS_FILE)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    # another process may have finished the same cache meanwhile: keep that one
    atomic_write_dir(target, write, keep_existing=True)
    return table
