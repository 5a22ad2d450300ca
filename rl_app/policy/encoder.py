"""The BERT encoder of the choice models: which one, its settings, loading it offline.

Names and paths are those of :mod:`rl_app.env.tokenizer` (``"minilm"``, the default, is the
packaged all-MiniLM-L6-v2; any Hugging Face BERT name or local path works too; nothing here
downloads unless the user's own Hugging Face settings allow it). ``"tiny"`` is a small
randomly initialised BERT (fixed seed) for tests; it shares MiniLM's uncased tokenizer.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional

from rl_app.env.tokenizer import MINILM, TINY, EncoderNotFoundError, packaged_minilm_dir, resolve_encoder_source

__all__ = ["EncoderConfig", "load_encoder", "build_encoder", "tiny_bert_config", "bert_architecture"]

# bert-base-uncased's WordPiece vocabulary, which MiniLM-L6 shares; used only when the
# packaged MiniLM (whose config.json says the same) is not installed.
_UNCASED_VOCAB_SIZE = 30522
# The tiny test encoder: small enough that tests train it on CPU in no time.
_TINY_ARCH = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=128, max_position_embeddings=512)
_TINY_SEED = 0
# The BertConfig fields that define the weights' shapes and the forward computation; what a
# checkpoint stores so that a saved policy rebuilds without the original encoder files.
_ARCHITECTURE_KEYS = (
    "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
    "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "pad_token_id",
    "position_embedding_type", "initializer_range",
)


@dataclass(frozen=True)
class EncoderConfig:
    """Which BERT encodes states and candidate actions, and how it trains.

    Attributes:
        name_or_path: ``"minilm"`` (packaged all-MiniLM-L6-v2), any Hugging Face BERT name or
            local directory (pretrained weights, offline unless the user's HF settings allow
            downloads), or ``"tiny"`` (2 layers, hidden 64, random init with a fixed seed;
            for tests, with MiniLM's tokenizer).
        dropout: hidden and attention dropout of the encoder. 0.0 by default: RL and DPO
            fine-tuning rarely need it and it slows training on CPU.
        gradient_checkpointing: recompute encoder activations in backward (less memory for
            long states on GPU, at the cost of one more forward pass).
    """

    name_or_path: str = MINILM
    dropout: float = 0.0
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name_or_path, str) or not self.name_or_path:
            raise ValueError(f"EncoderConfig.name_or_path must be a non-empty string, got {self.name_or_path!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"EncoderConfig.dropout must be in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"name_or_path": self.name_or_path, "dropout": float(self.dropout),
                "gradient_checkpointing": bool(self.gradient_checkpointing)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EncoderConfig":
        return cls(**dict(d))


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence the load report and progress bar of ``from_pretrained`` (the pooler weights we
    drop show up as UNEXPECTED), restoring the user's settings afterwards."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


def _uncased_vocab_size() -> int:
    try:
        config = json.loads((packaged_minilm_dir() / "config.json").read_text())
        return int(config["vocab_size"])
    except (EncoderNotFoundError, OSError, KeyError, ValueError):
        return _UNCASED_VOCAB_SIZE


def tiny_bert_config() -> dict[str, Any]:
    """The tiny test encoder's BertConfig as a dict (vocabulary = MiniLM tokenizer's)."""
    return dict(_TINY_ARCH, vocab_size=_uncased_vocab_size(), pad_token_id=0)


def bert_architecture(model) -> dict[str, Any]:
    """The architecture fields of a ``BertModel``'s config (JSON-ready)."""
    config = model.config
    return {k: getattr(config, k) for k in _ARCHITECTURE_KEYS if getattr(config, k, None) is not None}


def build_encoder(bert_config: Mapping[str, Any], cfg: Optional[EncoderConfig] = None, *,
                  seed: Optional[int] = None):
    """A randomly initialised ``BertModel`` of the given architecture (no pooler).

    Used for ``tiny``, for the bert-base-shaped benchmark and to rebuild a saved policy
    before its weights are loaded (so restoring never needs the original encoder files).
    ``seed`` makes the init reproducible without touching the global RNG.
    """
    from transformers import BertConfig, BertModel
    import torch

    cfg = cfg or EncoderConfig(name_or_path=TINY)
    config_dict = {k: v for k, v in dict(bert_config).items() if k in _ARCHITECTURE_KEYS}
    config_dict.update(hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout)
    config = BertConfig(**config_dict)
    if seed is None:
        model = BertModel(config, add_pooling_layer=False)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = BertModel(config, add_pooling_layer=False)
    return _finish(model, cfg)


def _finish(model, cfg: EncoderConfig):
    model.config.use_cache = False  # an encoder: no key/value cache (and checkpointing refuses one)
    if cfg.gradient_checkpointing:
        # transformers 5 renamed gradient_checkpointing_enable (deprecated) to activation_...
        enable = getattr(model, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def load_encoder(cfg: EncoderConfig = EncoderConfig()):
    """The ``transformers.BertModel`` named by ``cfg`` (without BERT's pooler head).

    Pretrained weights for ``minilm``, hub names and local paths (offline unless the user's
    Hugging Face settings allow downloads); a seeded random init for ``tiny``.
    """
    if cfg.name_or_path == TINY:
        return build_encoder(tiny_bert_config(), cfg, seed=_TINY_SEED)
    from transformers import BertModel

    source = resolve_encoder_source(cfg.name_or_path)
    try:
        with _quiet_transformers():
            model = BertModel.from_pretrained(
                source, add_pooling_layer=False,
                hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout)
    except OSError as e:
        raise EncoderNotFoundError(
            f"cannot load a BERT encoder from {cfg.name_or_path!r} offline ({e}); "
            "use 'minilm', 'tiny' or a local path") from e
    return _finish(model, cfg)
