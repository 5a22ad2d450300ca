"""Step-level preference pairs for DPO, with the reference log-probs precomputed.

Feng & Feng 2024 (arXiv 2408.16032, "DPO with demonstrations"): take a trajectory to imitate;
at each of its states, chosen = the trajectory's action and rejected = an action sampled from
the reference policy pi_ref (the IL agent); pairs whose rejected equals chosen are dropped.
``rejected="top"`` instead takes pi_ref's most probable candidate other than the chosen one
(hard negatives: the actions greedy play would take instead; no ties, every state with a
second candidate gives a pair).

The reference log-probabilities of chosen and rejected are computed here, once, in a batched
pass (Ray Data ``map_batches`` with the reference policy loaded once per worker), and stored
in the pair file. The DPO learner then needs no frozen reference module: it saves a second
BERT in learner memory and one extra forward pass per update, and pi_ref never changes, so
the numbers are the same.

Pipeline: trajectories parquet -> :class:`ReferenceLogProbs` -> :func:`step_pairs` ->
pairs parquet (written to a temp dir, then renamed). Both transforms are pure functions of a
dict-of-arrays batch and are tested on 3-row batches.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rl_app.data.files import SUMMARY_FILE, atomic_write_dir, read_summary
from rl_app.data.io import parquet_files, read_trajectories

__all__ = [
    "PAIR_SCHEMA",
    "REJECTED_STRATEGIES",
    "PairSummary",
    "ReferenceLogProbs",
    "step_pairs",
    "build_step_pairs",
    "pairs_table",
    "write_pairs",
    "read_pairs",
    "subset_pairs",
]

PAIR_SCHEMA = pa.schema([
    ("pair_id", pa.string()),
    ("kind", pa.string()),
    ("episode_id", pa.string()),
    ("goal_index", pa.int64()),
    ("split", pa.string()),
    ("step", pa.int64()),
    ("source", pa.string()),
    ("state", pa.string()),
    ("candidates", pa.list_(pa.string())),
    ("candidate_texts", pa.list_(pa.string())),
    ("chosen", pa.int64()),
    ("rejected", pa.int64()),
    ("ref_chosen_logp", pa.float64()),
    ("ref_rejected_logp", pa.float64()),
])
REJECTED_STRATEGIES = ("sample", "top")
# Which pairs a DPO data set holds: step pairs (this module), trajectory pairs
# (rl_app.data.trajectory_pairs), or "auto" (told apart by their columns).
PAIR_LEVELS = ("auto", "step", "trajectory")
_PASS_THROUGH = ("episode_id", "goal_index", "split", "step", "source", "state", "candidates", "candidate_texts")
PAIRS_FILE = "pairs.parquet"


class ReferenceLogProbs:
    """Ray Data callable class: adds ``ref_logps`` (log pi_ref over each row's candidates).

    The reference policy loads once per worker (``ChoicePolicy.from_checkpoint``), on the GPU
    when the worker has one; ``frozen_cache`` (stored caches of the trajectories' rows) fills a
    cached-encoder policy's memo first, so its frozen part is not computed again. ``threads``:
    torch threads (Ray starts a one-CPU actor with one; the pass runs while nothing else does).
    """

    def __init__(self, checkpoint: str, *, batch_size: int = 32, device: Optional[str] = None,
                 frozen_cache: Optional[str] = None, threads: Optional[int] = None) -> None:
        import torch

        from rl_app.data.frozen_cache import load_into_policy
        from rl_app.policy.choice_policy import ChoicePolicy

        if threads:
            torch.set_num_threads(int(threads))
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.policy = ChoicePolicy.from_checkpoint(checkpoint, device=device)
        load_into_policy(self.policy, frozen_cache)
        self.batch_size = batch_size

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        logps = self.policy.log_probs_batch(list(batch["state"]), [list(c) for c in batch["candidate_texts"]],
                                            batch_size=self.batch_size)
        out = dict(batch)
        out["ref_logps"] = np.array(logps + [None], dtype=object)[:-1]  # keep a 1-D object array
        return out


def _row_rng(seed: int, episode_id: str, step: int, draw: int) -> np.random.Generator:
    # crc32, not hash(): Python salts str hashes per process, and pairs must not depend on
    # which worker built them.
    return np.random.default_rng([seed, zlib.crc32(episode_id.encode()), int(step), draw])


def _rejected_indices(logps: np.ndarray, chosen: int, *, num_rejected: int, rejected: str, seed: int,
                      episode_id: str, step: int) -> list[tuple[int, int]]:
    """(draw, rejected index) of one state's pairs, ties already dropped."""
    if rejected == "top":
        # Most probable first; a stable sort so equal log-probs keep candidate order.
        others = [int(j) for j in np.argsort(-logps, kind="stable") if j != chosen]
        return list(enumerate(others[:num_rejected]))
    probs = np.exp(logps - logps.max())
    probs /= probs.sum()
    draws = [(d, int(_row_rng(seed, episode_id, step, d).choice(len(probs), p=probs))) for d in range(num_rejected)]
    return [(d, j) for d, j in draws if j != chosen]


def step_pairs(batch: Mapping[str, np.ndarray], *, num_rejected: int = 1, seed: int = 0,
               rejected: str = "sample") -> dict[str, np.ndarray]:
    """Pairs from a batch of trajectory steps that carry ``ref_logps``.

    ``rejected="sample"`` (the paper): for each step and each of ``num_rejected`` draws,
    rejected ~ pi_ref(. | s); a draw equal to the chosen action is dropped (a tie teaches
    nothing). Deterministic in (seed, episode, step, draw), whatever the batching.
    ``rejected="top"``: the ``num_rejected`` most probable candidates under pi_ref other than
    the chosen one (fewer where the state has fewer; ``seed`` is unused).
    """
    if num_rejected < 1:
        raise ValueError(f"num_rejected must be >= 1, got {num_rejected}")
    if rejected not in REJECTED_STRATEGIES:
        raise ValueError(f"rejected must be one of {REJECTED_STRATEGIES}, got {rejected!r}")
    rows: dict[str, list] = {name: [] for name in PAIR_SCHEMA.names}
    n = len(batch["chosen"])
    for i in range(n):
        logps = np.asarray(batch["ref_logps"][i], dtype=np.float64)
        chosen = int(batch["chosen"][i])
        if not 0 <= chosen < len(logps):
            raise ValueError(f"row {i}: chosen {chosen} outside its {len(logps)} candidates")
        episode_id, step = str(batch["episode_id"][i]), int(batch["step"][i])
        for draw, other in _rejected_indices(logps, chosen, num_rejected=num_rejected, rejected=rejected, seed=seed,
                                             episode_id=episode_id, step=step):
            for name in _PASS_THROUGH:
                value = batch[name][i]
                rows[name].append(list(value) if name in ("candidates", "candidate_texts") else value)
            rows["pair_id"].append(f"{episode_id}/{step}/{draw}")
            rows["kind"].append("step")
            rows["chosen"].append(chosen)
            rows["rejected"].append(other)
            rows["ref_chosen_logp"].append(float(logps[chosen]))
            rows["ref_rejected_logp"].append(float(logps[other]))
    out = {}
    for name, values in rows.items():
        kind = PAIR_SCHEMA.field(name).type
        if pa.types.is_integer(kind):
            out[name] = np.asarray(values, dtype=np.int64)
        elif pa.types.is_floating(kind):
            out[name] = np.asarray(values, dtype=np.float64)
        else:  # strings and string lists stay Python objects
            arr = np.empty(len(values), dtype=object)
            arr[:] = values
            out[name] = arr
    return out


@dataclass(frozen=True)
class PairSummary:
    """What a pair build produced: states read, pairs written, pairs not made.

    ``dropped_ties``: states x ``num_rejected`` - pairs: draws equal to the chosen action
    (``rejected="sample"``), or missing other candidates (``"top"``).
    """

    states: int
    num_rejected: int
    pairs: int
    dropped_ties: int
    reference: str
    seed: int
    rejected: str = "sample"
    only_success: bool = False

    def line(self) -> str:
        why = "ties (rejected == chosen)" if self.rejected == "sample" else "missing other candidates"
        states = f"{self.states} states" + (" of successful episodes" if self.only_success else "")
        return (f"{self.pairs} pairs from {states} x {self.num_rejected} rejected ({self.rejected}); "
                f"{self.dropped_ties} not made: {why}")


def pairs_table(frame: pd.DataFrame) -> pa.Table:
    """Pair rows (a DataFrame with :data:`PAIR_SCHEMA`'s columns; an empty one gives an empty
    table) as an Arrow table with exactly that schema."""
    # Plain Python values per column (Ray Data's pandas frames carry Arrow-backed dtypes), and
    # no pandas metadata in the file, so any reader gets plain columns back.
    columns = {}
    for field in PAIR_SCHEMA:
        values = frame[field.name].tolist() if field.name in frame else []
        if pa.types.is_list(field.type):
            values = [list(v) for v in values]
        columns[field.name] = pa.array(values, type=field.type)
    return pa.table(columns, schema=PAIR_SCHEMA)


def write_pairs(frame: pd.DataFrame, out: str | os.PathLike, summary: Mapping) -> Path:
    """A pair set directory: ``pairs.parquet`` plus ``summary`` as its :data:`SUMMARY_FILE`,
    written atomically (an existing ``out`` is replaced once both are complete)."""
    table = pairs_table(frame)

    def write(tmp: Path) -> None:
        pq.write_table(table, tmp / PAIRS_FILE)
        (tmp / SUMMARY_FILE).write_text(json.dumps(dict(summary), indent=2))

    return atomic_write_dir(out, write)


def build_step_pairs(trajectories: str | os.PathLike, reference: str | os.PathLike, out: str | os.PathLike, *,
                     num_rejected: int = 1, seed: int = 0, rejected: str = "sample", only_success: bool = False,
                     batch_size: int = 32, use_ray: Optional[bool] = None, num_gpus: float = 0,
                     overwrite: bool = False, frozen_cache: Optional[str | os.PathLike] = None) -> PairSummary:
    """Trajectory parquet -> step-level pairs parquet (atomic), with pi_ref log-probs.

    Args:
        trajectories: steps to imitate (rl_app.data trajectory parquet; demos or generated).
        reference: the reference policy checkpoint (the IL agent).
        out: directory to write; must not exist unless ``overwrite``.
        num_rejected: rejected actions per state.
        rejected: ``"sample"`` (drawn from pi_ref, the paper) or ``"top"`` (pi_ref's most
            probable other candidates); see :func:`step_pairs`.
        only_success: keep only episodes whose final reward is 1.
        use_ray: Ray Data pipeline (default: when Ray is initialised) or in-process.
        num_gpus: GPUs for the Ray pipeline's reference actor (default 0: Ray then hides every
            GPU from it and the reference pass runs on CPU); the cluster must have them. The
            in-process path uses this process's GPU when it has one.
        frozen_cache: stored frozen-row caches (a ``.frozen_cache`` root or directory) read
            into a cached-encoder reference before the pass.
    """
    cache = str(frozen_cache) if frozen_cache is not None else None

    if rejected not in REJECTED_STRATEGIES:
        raise ValueError(f"rejected must be one of {REJECTED_STRATEGIES}, got {rejected!r}")
    if num_gpus < 0:
        raise ValueError(f"num_gpus must be >= 0, got {num_gpus}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (pass overwrite=True)")
    frame = read_trajectories(trajectories)
    if only_success:
        frame = frame[frame["episode_reward"] == 1.0]
    if len(frame) == 0:
        raise ValueError(f"{trajectories}: no steps to build pairs from"
                         + (" (only_success dropped every episode)" if only_success else ""))
    if use_ray is None:
        import sys

        use_ray = "ray" in sys.modules and sys.modules["ray"].is_initialized()
    if use_ray:
        import ray

        cluster_gpus = ray.cluster_resources().get("GPU", 0) if num_gpus else 0
        if num_gpus and cluster_gpus < num_gpus:
            raise ValueError(f"num_gpus={num_gpus} for the reference pass, but the Ray cluster has "
                             f"{cluster_gpus:g} GPUs")
        import torch

        ds = ray.data.from_pandas(frame.reset_index(drop=True))
        ds = ds.map_batches(ReferenceLogProbs, fn_constructor_kwargs={"checkpoint": str(reference),
                                                                      "batch_size": batch_size,
                                                                      "frozen_cache": cache,
                                                                      "threads": torch.get_num_threads()},
                            batch_size=batch_size * 4, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=1), num_gpus=num_gpus)
        ds = ds.map_batches(step_pairs, fn_kwargs={"num_rejected": num_rejected, "seed": seed, "rejected": rejected},
                            batch_format="numpy")
        pairs = ds.to_pandas()
    else:
        ref = ReferenceLogProbs(str(reference), batch_size=batch_size, frozen_cache=cache)
        batch = {c: frame[c].to_numpy() for c in frame.columns}
        pairs = pd.DataFrame(step_pairs(ref(batch), num_rejected=num_rejected, seed=seed, rejected=rejected))
    pairs = pairs.sort_values("pair_id", kind="stable").reset_index(drop=True) if len(pairs) else pairs
    summary = PairSummary(states=len(frame), num_rejected=num_rejected, pairs=len(pairs),
                          dropped_ties=len(frame) * num_rejected - len(pairs), reference=str(reference), seed=seed,
                          rejected=rejected, only_success=bool(only_success))
    record = asdict(summary)
    shop = (read_summary(trajectories) or {}).get("shop_config")
    if shop:  # carry the shop the steps were played in (for evaluation)
        record["shop_config"] = shop
    write_pairs(pairs, out, record)
    return summary


def read_pairs(path: str | os.PathLike) -> pd.DataFrame:
    """A pairs directory (or file) as a DataFrame sorted by pair_id."""
    files = parquet_files(Path(path), what="pair data")
    frame = pd.concat([pq.read_table(f).to_pandas(ignore_metadata=True) for f in files], ignore_index=True)
    missing = set(PAIR_SCHEMA.names) - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: not a pairs file, missing columns {sorted(missing)}")
    return frame.sort_values("pair_id", kind="stable").reset_index(drop=True)


def subset_pairs(pairs_dir: str | os.PathLike, out: str | os.PathLike, n_episodes: int) -> dict[str, int]:
    """The pairs of the first ``n_episodes`` trajectories (sorted episode ids) of a pair set,
    written atomically with its own :data:`SUMMARY_FILE` (the source's, updated)."""
    frame = read_pairs(pairs_dir)
    episodes = frame["pair_id"].str.rsplit("/", n=2).str[0]
    keep = sorted(episodes.unique())[:n_episodes]
    subset = frame[episodes.isin(set(keep))].reset_index(drop=True)
    summary = read_summary(pairs_dir)
    if summary is None:
        raise FileNotFoundError(f"{Path(pairs_dir) / SUMMARY_FILE} does not exist: not a pair set built here")
    summary.update({"pairs": len(subset), "episodes": len(keep), "subset_of": str(pairs_dir)})
    write_pairs(subset, out, summary)
    return {"episodes": len(keep), "pairs": len(subset)}


def _main(argv: Optional[list[str]] = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m rl_app.data.pairs", description=build_step_pairs.__doc__)
    ap.add_argument("--trajectories", required=True)
    ap.add_argument("--reference", required=True, help="reference policy checkpoint (the IL agent)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--num-rejected", type=int, default=1)
    ap.add_argument("--rejected", choices=REJECTED_STRATEGIES, default="sample",
                    help="sample: rejected ~ pi_ref, ties dropped (the paper); top: pi_ref's most probable other "
                         "candidates")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only-success", action="store_true")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    summary = build_step_pairs(args.trajectories, args.reference, args.out, num_rejected=args.num_rejected,
                               seed=args.seed, rejected=args.rejected, only_success=args.only_success,
                               overwrite=args.overwrite)
    print(summary.line())
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    raise SystemExit(run_command(_main))

