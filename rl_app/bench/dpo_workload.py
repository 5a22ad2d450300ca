"""The workload of the DPO update benchmark (:mod:`rl_app.bench.dpo_update`): its settings, a random
policy of an encoder shape, preference pairs whose texts fill their token lengths, their tokenized
batch, and the DPO config its learners use."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from rl_app.bench.policy_throughput import BERT_BASE_ARCH, BERT_BASE_SHAPE, ShapeSettingsMixin
from rl_app.env.observation import OBS_KEYS

__all__ = ["UpdateBenchSettings", "LR", "BETA", "GRAD_CLIP", "bert_config", "make_policy", "write_pair_file",
           "tokenized_batch", "pair_workload", "dpo_config", "module_batch"]

LR = 1e-5
BETA = 0.1
GRAD_CLIP = 1.0  # DPOConfig's default, so the loss-only row clips like the learner


@dataclass(frozen=True)
class UpdateBenchSettings(ShapeSettingsMixin):
    """Shapes, timing, precision and the rows of one run.

    Attributes:
        batch: preference pairs per update.
        k: candidate rows per state (the observation's ``k_max``).
        valid: real candidates per state (None = k).
        state_len, action_len: tokens per state / per candidate (texts fill them).
        seconds: timed seconds of each step row (median step; after warm-up).
        updates: DPO updates per ``train()`` call of the RLlib rows.
        iterations: timed ``train()`` calls per ``train()`` row (after ``warmup_iterations``).
        warmup_iterations: untimed ``train()`` calls (data actors start, data set materializes).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
        precision: ``auto`` | ``fp32`` | ``bf16``.
        rllib: run the RLlib rows (``train()``, data path; they need Ray, the others do not).
        gradient_step: the two ``_update`` rows (RLlib's and the fused gradient step) and the
            operator and host-sync counts.
        foreach: every optimizer on torch's multi-tensor path whatever the device.
        context: the ``_update`` / prefetch rows in the algorithm and the seeded / undone
            process states (needs ``rllib``).
        compile: ``torch.compile`` backend for the encoder in every update row (None = eager).
        profile_dir: if set, one more ``train()`` of the RLlib row runs under cProfile and
            ``torch.profiler`` and their tables go to ``<profile_dir>/<shape>-rllib-profile.txt``.
    """

    batch: int = 32
    k: int = 16
    valid: Optional[int] = None
    state_len: int = 256
    action_len: int = 32
    seconds: float = 3.0
    updates: int = 10
    iterations: int = 3
    warmup_iterations: int = 1
    device: str = "auto"
    precision: str = "auto"
    rllib: bool = True
    gradient_step: bool = False
    foreach: bool = False
    context: bool = False
    compile: Optional[str] = None
    profile_dir: Optional[str] = None



def bert_config(shape: str) -> dict[str, Any]:
    """Architecture of a shape (weights are random for every shape: no download)."""
    from rl_app.env.tokenizer import MINILM, TINY, packaged_minilm_dir
    from rl_app.policy.encoder import tiny_bert_config

    if shape == TINY:
        return tiny_bert_config()
    if shape == BERT_BASE_SHAPE:
        return dict(BERT_BASE_ARCH)
    if shape == MINILM:
        return json.loads((packaged_minilm_dir() / "config.json").read_text())
    raise ValueError(f"unknown shape {shape!r}: use tiny, minilm or {BERT_BASE_SHAPE}")


def make_policy(shape: str, state_len: int, action_len: int):
    """A randomly initialised choice policy of ``shape`` with the MiniLM (uncased) tokenizer."""
    from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
    from rl_app.policy.choice_policy import ChoicePolicy
    from rl_app.env.tokenizer import load_tokenizer
    from rl_app.policy.encoder import EncoderConfig, build_encoder

    label = EncoderConfig(name_or_path=f"{shape}-random" if shape != BERT_BASE_SHAPE else shape)
    encoder = build_encoder(bert_config(shape), label, seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = ChoiceModel(ChoiceModelConfig(encoder=label), encoder=encoder)
    return ChoicePolicy(model, load_tokenizer("minilm"), max_state_tokens=state_len, max_action_tokens=action_len)


def _word_pool(tokenizer) -> list[str]:
    # Whole lowercase words of the vocabulary: each one tokenizes to exactly one id, so a
    # text of n words fills n token positions.
    return sorted(w for w in tokenizer.get_vocab() if w.isascii() and w.isalpha() and len(w) >= 3)


def write_pair_file(directory: Path, tokenizer, s: UpdateBenchSettings, n_pairs: int, *, seed: int = 0) -> Path:
    """``n_pairs`` random preference pairs in ``rl_app.data.pairs.PAIR_SCHEMA`` (one parquet file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rl_app.data.pairs import PAIR_SCHEMA

    rng = np.random.default_rng(seed)
    words = np.asarray(_word_pool(tokenizer))

    def text(n: int) -> str:
        return " ".join(rng.choice(words, size=n))

    rows: dict[str, list] = {name: [] for name in PAIR_SCHEMA.names}
    uniform = float(-np.log(s.n_valid))
    for i in range(n_pairs):
        candidates = [text(s.action_len) for _ in range(s.n_valid)]
        chosen, rejected = rng.choice(s.n_valid, size=2, replace=False)
        values = dict(pair_id=f"bench/{i}/0", kind="step", episode_id=f"bench/{i}", goal_index=i, split="train",
                      step=0, source="bench", state=text(s.state_len), candidates=candidates,
                      candidate_texts=candidates, chosen=int(chosen), rejected=int(rejected),
                      ref_chosen_logp=uniform, ref_rejected_logp=uniform)
        for name, value in values.items():
            rows[name].append(value)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pairs.parquet"
    pq.write_table(pa.table({f.name: pa.array(rows[f.name], type=f.type) for f in PAIR_SCHEMA},
                            schema=PAIR_SCHEMA), path)
    return path


def tokenized_batch(pair_file: Path, s: UpdateBenchSettings, tokenizer_dir: str) -> dict[str, torch.Tensor]:
    """The first ``batch`` pairs, tokenized as the learner's prelearner does."""
    import pyarrow.parquet as pq

    from rl_app.env.observation import ObservationEncoder

    table = pq.read_table(pair_file).slice(0, s.batch).to_pydict()
    encoder = ObservationEncoder(tokenizer_dir, k_max=s.k, max_state_tokens=s.state_len,
                                 max_action_tokens=s.action_len)
    obs = encoder.encode_batch(table["state"], table["candidate_texts"])
    out = {key: torch.as_tensor(np.asarray(obs[key])) for key in OBS_KEYS["text"]}
    out.update(chosen=torch.as_tensor(table["chosen"]), rejected=torch.as_tensor(table["rejected"]),
               ref_chosen_logp=torch.as_tensor(table["ref_chosen_logp"], dtype=torch.float32),
               ref_rejected_logp=torch.as_tensor(table["ref_rejected_logp"], dtype=torch.float32))
    lengths = (out["state_ids"] != 0).sum(dim=1)
    valid_rows = out["action_ids"][out["action_mask"].bool()]
    if not (lengths == s.state_len).all() or not ((valid_rows != 0).sum(dim=1) == s.action_len).all():
        raise RuntimeError("the benchmark texts did not fill their token lengths: the workload would be smaller "
                           "than stated")
    if valid_rows.shape[0] != s.batch * s.n_valid:
        raise RuntimeError(f"expected {s.batch * s.n_valid} valid candidates, got {valid_rows.shape[0]}")
    return out


def pair_workload(directory: Path, shape: str, s: UpdateBenchSettings, n_pairs: int) -> tuple[str, Path, dict]:
    """A random ``shape`` policy saved in ``directory/policy``, ``n_pairs`` pairs of it in ``directory/pairs`` and
    the first ``s.batch`` of them tokenized: (policy dir, pair dir, batch)."""
    policy = make_policy(shape, s.state_len, s.action_len)
    policy_dir = str(policy.save_pretrained(directory / "policy"))
    pair_file = write_pair_file(directory / "pairs", policy.tokenizer, s, n_pairs)
    return policy_dir, pair_file.parent, tokenized_batch(pair_file, s, str(Path(policy_dir) / "tokenizer"))


def dpo_config(pair_dir: Path, policy_dir: str, s: UpdateBenchSettings, device: torch.device, precision: str):
    """The DPO config the benchmarks' learners use: one local learner on ``device``, the loss-only row's lr,
    beta and grad clip."""
    from rl_app.algorithms.dpo import DPOConfig

    return (DPOConfig()
            .dataset(paths=[str(pair_dir)])
            .observations(k_max=s.k, max_state_tokens=s.state_len, max_action_tokens=s.action_len)
            .rl_module(model_config={"init_checkpoint": policy_dir})
            .dpo(beta=BETA)
            .training(lr=LR, train_batch_size_per_learner=s.batch, grad_clip=GRAD_CLIP)
            .learners(num_learners=0, num_gpus_per_learner=1 if device.type == "cuda" else 0, precision=precision))


def module_batch(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, Any]:
    """A :func:`tokenized_batch` as the learner's ``_update`` takes it, on ``device``."""
    obs = {key: batch[key].to(device) for key in OBS_KEYS["text"]}
    rest = {key: batch[key].to(device) for key in ("chosen", "rejected", "ref_chosen_logp", "ref_rejected_logp")}
    return {"default_policy": {"obs": obs, **rest}}
