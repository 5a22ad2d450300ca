"""Saving and finding choice-model weights, config and tokenizer on disk.

Three layouts are read (so a trained agent is usable outside RLlib):

* a ``save_pretrained`` directory: ``choice_config.json``, ``model.safetensors``,
  ``tokenizer/``;
* an RLModule checkpoint written by ``WebShopChoiceModule.save_to_path`` (RLlib's
  ``module_state.pkl`` or ``.msgpack`` plus our ``choice_config.json`` and ``tokenizer/``);
* an Algorithm checkpoint: the module directory under ``learner_group/learner/rl_module/``.

No Ray import is needed to read the first two (RLlib pickles plain numpy arrays), except
for the msgpack variant.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch

from rl_app.data.files import atomic_write_dir
from rl_app.env.tokenizer import load_tokenizer
from rl_app.errors import InputError
from rl_app.policy.encoder import bert_architecture
from rl_app.policy.models import AnyChoiceModel, build_model, config_from_dict

__all__ = [
    "CONFIG_FILE", "WEIGHTS_FILE", "TOKENIZER_DIR", "FORMAT", "LoadedChoiceCheckpoint",
    "save_choice_model", "load_choice_model", "read_choice_checkpoint", "find_module_dir", "saved_tokenizer",
    "write_policy_files", "RUNTIME_KEYS", "apply_overrides", "model_from_checkpoint", "load_checkpoint_tokenizer",
    "TOKEN_LENGTH_KEYS", "saved_token_lengths", "saved_layout",
]

CONFIG_FILE = "choice_config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
FORMAT = "rl_app.choice_model"
FORMAT_VERSION = 1
_RLMODULE_STATE = "module_state"
_RLMODULE_PREFIX = "model."
_ALGO_MODULES = Path("learner_group") / "learner" / "rl_module"
# The tokenization lengths a policy acts with (ChoicePolicy tokenizes as it was trained).
TOKEN_LENGTH_KEYS = ("max_state_tokens", "max_action_tokens")
# Settings that change how the model runs, not its weights: a loader may override them.
RUNTIME_KEYS = ("dropout", "gradient_checkpointing", "encode_valid_only", *TOKEN_LENGTH_KEYS)

# The run-time keys the segments model takes (it tokenizes instruction and lines separately).
_SEGMENT_RUNTIME_KEYS = ("max_action_tokens",)

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class LoadedChoiceCheckpoint:
    """What a checkpoint directory holds, read into memory."""

    directory: Path
    model_config: dict[str, Any]
    bert_config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    tokenizer_dir: Optional[Path]


def _config_payload(model: AnyChoiceModel, overrides: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    return {"format": FORMAT, "version": FORMAT_VERSION,
            "model": apply_overrides(model.config.to_dict(), overrides or {}),
            "bert_config": bert_architecture(model.encoder)}


def write_policy_files(model: AnyChoiceModel, directory: PathLike, tokenizer=None, *,
                       overrides: Optional[Mapping[str, Any]] = None) -> None:
    """Write ``choice_config.json`` and ``tokenizer/`` (not the weights) into ``directory``;
    ``overrides`` replace run-time settings in the saved config (``RUNTIME_KEYS``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(json.dumps(_config_payload(model, overrides), indent=2, sort_keys=True))
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(model.config.encoder.name_or_path)
    tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))


def save_choice_model(model: AnyChoiceModel, directory: PathLike, tokenizer=None, *,
                      overrides: Optional[Mapping[str, Any]] = None) -> str:
    """A ``save_pretrained`` directory: config + safetensors weights + tokenizer, written to a
    temporary sibling directory and renamed, so readers never see a half-written policy.
    ``overrides``: run-time settings recorded in place of the model's (``RUNTIME_KEYS``)."""
    from safetensors.torch import save_file

    def write(tmp: Path) -> None:
        write_policy_files(model, tmp, tokenizer, overrides=overrides)
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})

    return str(atomic_write_dir(Path(directory).expanduser().resolve(), write))


def find_module_dir(path: PathLike, module_id: str = "default_policy") -> Path:
    """The directory holding ``choice_config.json`` for ``path`` (policy, module or algorithm dir)."""
    path = Path(path).expanduser().resolve()
    candidates = [path, path / _ALGO_MODULES / module_id, path / "rl_module" / module_id, path / module_id]
    for candidate in candidates:
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    raise FileNotFoundError(
        f"no {CONFIG_FILE} in {path} or its RLlib module dir ({_ALGO_MODULES / module_id}); "
        "expected a ChoicePolicy.save_pretrained directory or a checkpoint of WebShopChoiceModule")


def _read_config(directory: Path) -> dict[str, Any]:
    """The ``choice_config.json`` payload of a module directory (:func:`find_module_dir`)."""
    return json.loads((directory / CONFIG_FILE).read_text())


def saved_token_lengths(path: PathLike, module_id: str = "default_policy") -> dict[str, int]:
    """``max_state_tokens`` / ``max_action_tokens`` of a saved policy, from its config alone.

    The policy acts, and scores DPO reference log-probs, at these lengths; a learner that
    continues it sees the same token ids only if it tokenizes the same way. Keys the config
    does not set are left out.
    """
    model = _read_config(find_module_dir(path, module_id)).get("model", {})
    return {key: int(model[key]) for key in TOKEN_LENGTH_KEYS if model.get(key) is not None}


def saved_tokenizer(path: PathLike, module_id: str = "default_policy") -> str:
    """The tokenizer a saved policy acts with: its ``tokenizer/`` directory, else its encoder's
    name (a name or directory for :func:`~rl_app.env.tokenizer.load_tokenizer`)."""
    directory = find_module_dir(path, module_id)
    if (directory / TOKENIZER_DIR).is_dir():
        return str(directory / TOKENIZER_DIR)
    return _read_config(directory)["model"]["encoder"]["name_or_path"]


def saved_layout(path: PathLike, module_id: str = "default_policy") -> str:
    """The observation layout a saved policy reads (``segments`` or ``text``), from its config alone."""
    model = _read_config(find_module_dir(path, module_id)).get("model", {})
    return "segments" if model.get("kind") == "segments" else "text"


def _read_rlmodule_state(directory: Path) -> dict[str, Any]:
    pkl = directory / f"{_RLMODULE_STATE}.pkl"
    if pkl.is_file():
        with pkl.open("rb") as f:
            return pickle.load(f)
    packed = directory / f"{_RLMODULE_STATE}.msgpack"
    if packed.is_file():
        from ray.rllib.utils.checkpoints import try_import_msgpack

        msgpack = try_import_msgpack(error=True)
        with packed.open("rb") as f:
            return msgpack.load(f)
    raise FileNotFoundError(f"{directory} has {CONFIG_FILE} but neither {WEIGHTS_FILE} nor {_RLMODULE_STATE}.pkl")


def read_choice_checkpoint(path: PathLike, module_id: str = "default_policy") -> LoadedChoiceCheckpoint:
    """Config, architecture, weights (CPU tensors, keys of ``ChoiceModel``) and tokenizer dir."""
    directory = find_module_dir(path, module_id)
    payload = _read_config(directory)
    if payload.get("format") != FORMAT:
        raise InputError(f"{directory / CONFIG_FILE} is not an {FORMAT} config (format={payload.get('format')!r})")
    if (directory / WEIGHTS_FILE).is_file():
        from safetensors.torch import load_file

        state = load_file(str(directory / WEIGHTS_FILE))
    else:
        raw = _read_rlmodule_state(directory)
        state = {k[len(_RLMODULE_PREFIX):]: torch.as_tensor(np.asarray(v))
                 for k, v in raw.items() if k.startswith(_RLMODULE_PREFIX)}
    tokenizer_dir = directory / TOKENIZER_DIR
    return LoadedChoiceCheckpoint(directory, dict(payload["model"]), dict(payload["bert_config"]), state,
                                  tokenizer_dir if tokenizer_dir.is_dir() else None)


def load_checkpoint_tokenizer(loaded: LoadedChoiceCheckpoint):
    """The tokenizer saved with a checkpoint (uncached: a directory may be overwritten), else
    the encoder's own."""
    if loaded.tokenizer_dir is None:
        return load_tokenizer(loaded.model_config["encoder"]["name_or_path"])
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(loaded.tokenizer_dir), use_fast=True)


def apply_overrides(model_config: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A saved model config with run-time settings replaced (architecture keys refused)."""
    unknown = set(overrides) - set(RUNTIME_KEYS)
    if unknown:
        raise ValueError(f"only run-time settings {RUNTIME_KEYS} can override a checkpoint, got {sorted(unknown)}")
    config = dict(model_config)
    config["encoder"] = dict(config["encoder"])
    for key, value in overrides.items():
        if key in ("dropout", "gradient_checkpointing"):
            config["encoder"][key] = value
        elif config.get("kind") == "segments" and key not in _SEGMENT_RUNTIME_KEYS:
            continue  # the segments model has no state row (and always encodes valid rows only)
        else:
            config[key] = value
    return config


def model_from_checkpoint(loaded: LoadedChoiceCheckpoint, **overrides: Any) -> AnyChoiceModel:
    """Rebuild the choice model of a read checkpoint (random init, then its weights)."""
    config = config_from_dict(apply_overrides(loaded.model_config, overrides))
    model = build_model(config, bert_config=loaded.bert_config)
    missing, unexpected = model.load_state_dict(loaded.state_dict, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {loaded.directory} does not match the choice model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}")
    return model


def load_choice_model(path: PathLike, module_id: str = "default_policy", **overrides: Any) -> AnyChoiceModel:
    """The choice model saved at ``path``, in any of the three layouts; ``overrides`` replace
    run-time settings (``RUNTIME_KEYS``: dropout, gradient_checkpointing, encode_valid_only,
    max_state_tokens, max_action_tokens)."""
    return model_from_checkpoint(read_choice_checkpoint(path, module_id), **overrides)
