"""``WebShopChoiceModule``: the choice model as an RLlib (new API stack) RLModule.

One class hosts the policy for IL, DPO, PPO and evaluation, so each stage starts from the
previous one's checkpoint; only the losses differ. Configure it through ``model_config``::

    module_spec(env.observation_space, env.action_space, {"encoder": "minilm"})

``model_config`` keys (all optional; keys RLlib adds itself, e.g. ``vf_share_layers``,
are ignored, near-misses of these names are errors):

* ``encoder``: ``"minilm"`` (default), ``"tiny"``, a Hugging Face BERT name or path;
* ``dropout`` (0.0), ``gradient_checkpointing`` (False);
* ``pooling`` ("mean" | "cls"), ``attention_heads`` (4), ``interaction_dim`` (None = hidden
  size), ``value_hidden`` (256);
* ``max_state_tokens`` / ``max_action_tokens``: cut inputs to this many tokens (None = as
  the observation space gives them);
* ``encode_valid_only`` (True);
* ``trainable_layers``: None (full fine-tuning) or the number of top encoder layers that
  train; the rest is frozen. With the ``segments`` observation layout (the module reads the
  layout from its observation space) the model is the late-interaction
  :class:`~rl_app.policy.segment_model.SegmentChoiceModel`, whose frozen part is computed once
  per unique row (default 0: the whole encoder frozen); ``head_dim`` (128) and
  ``match_heads`` (4) size its head; ``match_signals`` (True) adds its exact-match signals;
* ``frozen_cache``: a directory of stored frozen-row caches (:mod:`rl_app.data.frozen_cache`);
  the one whose fingerprint matches the model's frozen weights is read into its memo;
* ``init_checkpoint``: start from saved weights (``ChoicePolicy.save_pretrained`` dir, a
  module checkpoint, or an Algorithm checkpoint); its architecture wins, run-time keys above
  may still be set;
* ``vf_share_encoder`` (True): whether PPO's value loss trains the shared BERT (False
  detaches the embeddings so only the value head learns from it).

Outputs: ``Columns.ACTION_DIST_INPUTS`` are the masked logits (float32, -1e9 on invalid
candidates) for RLlib's ``TorchCategorical``; ``_forward_inference`` adds greedy
``Columns.ACTIONS``; ``_forward_train`` adds ``Columns.EMBEDDINGS`` (pooled state) for
``compute_values``.
"""

from __future__ import annotations

import dataclasses
import difflib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule

from rl_app.policy.checkpoint import (
    RUNTIME_KEYS,
    apply_overrides,
    load_checkpoint_tokenizer,
    model_from_checkpoint,
    read_choice_checkpoint,
    write_policy_files,
)
from rl_app.env.observation import OBS_KEYS as LAYOUT_KEYS
from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
from rl_app.env.tokenizer import load_tokenizer
from rl_app.policy.encoder import EncoderConfig, bert_architecture
from rl_app.policy.models import config_from_dict, build_model
from rl_app.policy.segment_model import SegmentModelConfig

__all__ = ["WebShopChoiceModule", "ChoiceModuleSettings", "module_spec", "validate_spaces", "OBS_KEYS",
           "layout_of_space"]

# The text layout's keys (kept under this name for callers that predate the segments layout).
OBS_KEYS = LAYOUT_KEYS["text"]
# Written into the checkpointed constructor arguments so a restored module rebuilds its
# architecture without the original encoder files or init checkpoint.
_SAVED_ARCHITECTURE = "_saved_architecture"
_ARCH_KEYS = ("encoder", "pooling", "attention_heads", "interaction_dim", "value_hidden")
_OWN_KEYS = ("encoder", "dropout", "gradient_checkpointing", "pooling", "attention_heads", "interaction_dim",
             "value_hidden", "max_state_tokens", "max_action_tokens", "encode_valid_only", "init_checkpoint",
             "vf_share_encoder", "trainable_layers", "head_dim", "match_heads", "match_signals", "frozen_cache",
             _SAVED_ARCHITECTURE)
_SEGMENT_KEYS = ("trainable_layers", "head_dim", "match_heads", "match_signals", "value_hidden", "max_action_tokens")


@dataclass(frozen=True)
class ChoiceModuleSettings:
    """``model_config`` read into types.

    Attributes:
        choice: the choice model's config (encoder name, heads, lengths...).
        given: the ``model_config`` keys the user set (so a checkpoint's values are only
            overridden where asked).
        init_checkpoint: saved weights to start from, or None.
        vf_share_encoder: value-loss gradients reach the shared encoder.
        saved_architecture: set only in checkpointed constructor arguments.
    """

    choice: ChoiceModelConfig
    given: frozenset
    init_checkpoint: Optional[str] = None
    vf_share_encoder: bool = True
    saved_architecture: Optional[Mapping[str, Any]] = None
    frozen_cache: Optional[str] = None
    segment_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def segment_config(self, *, lines: int, instruction_tokens: int, line_tokens: int,
                       action_tokens: int) -> SegmentModelConfig:
        """The segments model's config for observations of these sizes."""
        kwargs = dict(self.segment_kwargs)
        kwargs.setdefault("trainable_layers", 0)
        kwargs["max_action_tokens"] = kwargs.get("max_action_tokens") or action_tokens
        return SegmentModelConfig(encoder=self.choice.encoder, max_lines=lines, instruction_tokens=instruction_tokens,
                                  line_tokens=line_tokens, **kwargs)

    @classmethod
    def from_model_config(cls, model_config: Any) -> "ChoiceModuleSettings":
        if model_config is None:
            mc: dict[str, Any] = {}
        elif dataclasses.is_dataclass(model_config):
            mc = dataclasses.asdict(model_config)
        elif isinstance(model_config, Mapping):
            mc = dict(model_config)
        else:
            raise TypeError(f"model_config must be a dict, got {type(model_config).__name__}")
        for key in mc:
            if key not in _OWN_KEYS:
                close = difflib.get_close_matches(key, _OWN_KEYS, n=1, cutoff=0.8)
                if close:
                    raise ValueError(f"unknown model_config key {key!r}: did you mean {close[0]!r}?")
        encoder = EncoderConfig(name_or_path=str(mc.get("encoder", "minilm")),
                                dropout=float(mc.get("dropout", 0.0)),
                                gradient_checkpointing=bool(mc.get("gradient_checkpointing", False)))
        choice_kwargs = {k: mc[k] for k in ("pooling", "attention_heads", "interaction_dim", "value_hidden",
                                            "max_state_tokens", "max_action_tokens", "encode_valid_only",
                                            "trainable_layers") if k in mc}
        return cls(
            choice=ChoiceModelConfig(encoder=encoder, **choice_kwargs),
            given=frozenset(k for k in mc if k in _OWN_KEYS),
            init_checkpoint=str(mc["init_checkpoint"]) if mc.get("init_checkpoint") else None,
            vf_share_encoder=bool(mc.get("vf_share_encoder", True)),
            saved_architecture=mc.get(_SAVED_ARCHITECTURE),
            frozen_cache=str(mc["frozen_cache"]) if mc.get("frozen_cache") else None,
            segment_kwargs={k: mc[k] for k in _SEGMENT_KEYS if mc.get(k) is not None},
        )

    def runtime_overrides(self) -> dict[str, Any]:
        """The run-time settings the user set explicitly (applied over a checkpoint's)."""
        values = {"dropout": self.choice.encoder.dropout,
                  "gradient_checkpointing": self.choice.encoder.gradient_checkpointing,
                  "encode_valid_only": self.choice.encode_valid_only,
                  "max_state_tokens": self.choice.max_state_tokens,
                  "max_action_tokens": self.choice.max_action_tokens}
        return {k: values[k] for k in RUNTIME_KEYS if k in self.given}


def layout_of_space(observation_space: Any) -> str:
    """``segments`` if the space has the segments layout's ``instruction_ids``, else ``text``."""
    if isinstance(observation_space, gym.spaces.Dict) and "instruction_ids" in observation_space.spaces:
        return "segments"
    return "text"


def validate_spaces(observation_space: Any, action_space: Any) -> tuple[int, int, int]:
    """(k_max, state length, action length) of WebShopEnv-style spaces, or a ValueError naming the fix
    (the state length is the instruction's in the ``segments`` layout)."""
    fix = ("build the spaces with rl_app.env.webshop_env.WebShopEnv (or pass them with "
           "config.environment(observation_space=..., action_space=...))")
    layout = layout_of_space(observation_space)
    keys = LAYOUT_KEYS[layout]
    if not isinstance(observation_space, gym.spaces.Dict):
        raise ValueError(
            f"WebShopChoiceModule needs a gymnasium.spaces.Dict observation space with keys {OBS_KEYS} "
            f"(or {LAYOUT_KEYS['segments']}), got {observation_space!r}; {fix}. Do not flatten observations "
            "(no FlattenObservations connector).")
    missing = [k for k in keys if k not in observation_space.spaces]
    if missing:
        raise ValueError(f"observation space lacks keys {missing} (has {sorted(observation_space.spaces)}); {fix}")
    boxes = {k: observation_space[k] for k in keys}
    for key, box in boxes.items():
        if not isinstance(box, gym.spaces.Box) or not np.issubdtype(box.dtype, np.integer):
            raise ValueError(f"observation {key!r} must be an integer Box, got {box!r}; {fix}")
    if layout == "segments" and len(boxes["line_ids"].shape) != 2:
        raise ValueError(f"line_ids must be (lines, tokens), got {boxes['line_ids'].shape}; {fix}")
    state, actions, mask = (boxes[k].shape for k in (keys[0], "action_ids", "action_mask"))
    if len(state) != 1 or len(actions) != 2 or len(mask) != 1:
        raise ValueError(
            f"expected state_ids (L_s,), action_ids (k_max, L_a), action_mask (k_max,), got {state}, {actions}, "
            f"{mask}; {fix}")
    if actions[0] != mask[0]:
        raise ValueError(f"action_ids has {actions[0]} rows but action_mask {mask[0]} entries; {fix}")
    if not isinstance(action_space, gym.spaces.Discrete) or int(action_space.n) != mask[0] or int(action_space.start):
        raise ValueError(
            f"action space must be gymnasium.spaces.Discrete({mask[0]}) (one action per candidate row), "
            f"got {action_space!r}; {fix}")
    return int(mask[0]), int(state[0]), int(actions[1])


class WebShopChoiceModule(TorchRLModule, ValueFunctionAPI):
    """The BERT choice policy + value head over WebShopEnv observations."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from rl_app.algorithms.notices import silence_harmless_notices

        silence_harmless_notices()  # before RLlib's __init__ logs its own deprecation notice
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ construction
    def setup(self) -> None:
        # Spaces first: a wrong env fails before any encoder loads.
        self.k_max, state_len, action_len = validate_spaces(self.observation_space, self.action_space)
        settings = ChoiceModuleSettings.from_model_config(self.model_config)
        self.settings = settings
        self.layout = layout_of_space(self.observation_space)
        self._tokenizer = None  # loaded on first save; from init_checkpoint when given
        if settings.saved_architecture is not None:
            saved = settings.saved_architecture
            config = config_from_dict(apply_overrides(saved["model"], settings.runtime_overrides()))
            model = build_model(config, bert_config=saved["bert_config"])
        elif settings.init_checkpoint is not None:
            model = self._model_from_init_checkpoint(settings)
        elif self.layout == "segments":
            lines, line_len = self.observation_space["line_ids"].shape
            model = build_model(settings.segment_config(lines=int(lines), instruction_tokens=state_len,
                                                        line_tokens=int(line_len), action_tokens=action_len))
        else:
            model = ChoiceModel(settings.choice)
        self.model = model
        model_layout = "segments" if isinstance(model.config, SegmentModelConfig) else "text"
        if model_layout != self.layout:
            raise ValueError(
                f"the policy reads the {model_layout!r} observation layout but the observation space is "
                f"{self.layout!r}: set the env's observation_layout to {model_layout!r} (a checkpoint keeps its layout)")
        if settings.frozen_cache and self.layout == "segments":
            from rl_app.data.frozen_cache import load_into

            load_into(model.frozen, settings.frozen_cache)
        if self.layout == "segments":
            return
        for name, length, cap in (("state", state_len, model.config.max_state_tokens),
                                  ("action", action_len, model.config.max_action_tokens)):
            if min(length, cap or length) > model.max_positions:
                raise ValueError(
                    f"{name} observations have {length} tokens but the encoder has {model.max_positions} "
                    f"positions: set max_{name}_tokens <= {model.max_positions} in the env config or in model_config")

    def _model_from_init_checkpoint(self, settings: ChoiceModuleSettings) -> ChoiceModel:
        path = settings.init_checkpoint
        if not Path(path).expanduser().exists():
            raise FileNotFoundError(
                f"model_config['init_checkpoint'] = {path!r} does not exist (restoring a run whose init "
                "checkpoint moved: set init_checkpoint to its new place, or None)")
        loaded = read_choice_checkpoint(path)
        saved = config_from_dict(loaded.model_config)
        for key in _ARCH_KEYS if isinstance(saved, ChoiceModelConfig) else ("encoder",):
            if key not in settings.given:
                continue
            want = settings.choice.encoder.name_or_path if key == "encoder" else getattr(settings.choice, key)
            have = saved.encoder.name_or_path if key == "encoder" else getattr(saved, key)
            if want != have:
                raise ValueError(
                    f"model_config[{key!r}] = {want!r} but init_checkpoint {path} was saved with {have!r}; "
                    f"drop {key!r} from model_config (the checkpoint's architecture is used)")
        self._tokenizer = load_checkpoint_tokenizer(loaded)
        return model_from_checkpoint(loaded, **settings.runtime_overrides())

    def compile(self, compile_config: Any) -> "WebShopChoiceModule":
        """``torch.compile`` the BERT encoder in place, with dynamic shapes; the rest stays eager.

        Learners call this for ``config.framework(torch_compile_learner=True)`` (through
        :class:`~rl_app.algorithms.rllib_patches.compile.CompileLearnerMixin`; RLlib 2.60's env runners never
        read ``torch_compile_worker``, so sampling stays eager). RLlib's default would compile
        ``_forward_train`` and ``_forward_inference`` whole; here they select the valid candidates
        and cut padding with data-dependent shapes (graph breaks, and a recompile per new batch
        shape), while the encoder, compiled with ``dynamic=True``, takes any (rows, tokens) and
        holds nearly all of the operators. ``nn.Module.compile`` keeps parameter names, so state
        dicts and checkpoints are those of the eager module. ``compile_config.kwargs`` go to
        ``torch.compile`` (``dynamic`` included, to override the default).
        """
        kwargs = {"dynamic": True, **dict(compile_config.kwargs or {})}
        self.model.encoder.compile(backend=compile_config.torch_dynamo_backend,
                                   mode=compile_config.torch_dynamo_mode, **kwargs)
        return self

    # ------------------------------------------------------------------ forward passes
    def _inputs(self, batch: Mapping[str, Any]) -> Mapping[str, torch.Tensor]:
        obs = batch[Columns.OBS]
        keys = LAYOUT_KEYS[self.layout]
        if not isinstance(obs, Mapping) or any(k not in obs for k in keys):
            raise ValueError(
                f"batch[{Columns.OBS!r}] must be a dict with {keys}, got {type(obs).__name__}"
                f"{sorted(obs) if isinstance(obs, Mapping) else ''}; remove any observation-flattening connector")
        return obs

    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        with torch.no_grad():
            logits = self.model.forward_obs(self._inputs(batch), with_value=False).logits
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.ACTIONS: logits.argmax(dim=-1)}

    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # No ACTIONS: RLlib's GetActions samples from TorchCategorical(logits) and records logp.
        with torch.no_grad():
            logits = self.model.forward_obs(self._inputs(batch), with_value=False).logits
        return {Columns.ACTION_DIST_INPUTS: logits}

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        # The value head runs in compute_values, on these embeddings (PPO); DPO and IL never need it.
        out = self.model.forward_obs(self._inputs(batch), with_value=False)
        return {Columns.ACTION_DIST_INPUTS: out.logits, Columns.EMBEDDINGS: out.state_embedding}

    def compute_values(self, batch: dict[str, Any], embeddings: Optional[Any] = None) -> torch.Tensor:
        """V(s), shape (B,).

        With ``embeddings`` (what every RLlib 2.60 learner passes: PPO, APPO, IMPALA and
        MARWIL call ``compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))``
        after ``forward_train``, which always returns them), the value head runs on them and
        the value loss back-propagates (into the encoder too unless ``vf_share_encoder`` is
        False).

        Without ``embeddings`` the only RLlib caller is the GAE learner connector
        (``GeneralAdvantageEstimation.__call__``: ``module.compute_values(batch[mid])``,
        grad mode on, results turned into numpy value targets). That path runs under
        ``torch.no_grad()`` and in eval mode (no dropout in targets), and encodes only the
        states: a graph there would hold every BERT activation of the whole train batch for
        nothing. A custom loss that needs gradients without a train forward should call
        ``self.model.value(self.model.encode_state(state_ids)[2])``.
        """
        if embeddings is not None:
            if not self.settings.vf_share_encoder:
                embeddings = embeddings.detach()
            return self.model.value(embeddings)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self.model.value_obs(self._inputs(batch))
        finally:
            if was_training:
                self.train()

    # ------------------------------------------------------------------ checkpoints
    def get_ctor_args_and_kwargs(self):
        args, kwargs = super().get_ctor_args_and_kwargs()
        mc = dict(self.model_config or {}) if not dataclasses.is_dataclass(self.model_config) \
            else dataclasses.asdict(self.model_config)
        mc["init_checkpoint"] = None
        mc[_SAVED_ARCHITECTURE] = {"model": self.model.config.to_dict(),
                                   "bert_config": bert_architecture(self.model.encoder)}
        return args, dict(kwargs, model_config=mc)

    def save_to_path(self, path=None, *, state=None, filesystem=None, use_msgpack: bool = False) -> str:
        """RLlib's checkpoint plus ``choice_config.json`` and ``tokenizer/`` (so
        ``ChoicePolicy.from_checkpoint`` can load it without Ray)."""
        import pyarrow.fs

        if path is not None and filesystem is None and "://" not in str(path):
            path = Path(path).expanduser().resolve()  # pyarrow refuses relative local paths
        out = super().save_to_path(path, state=state, filesystem=filesystem, use_msgpack=use_msgpack)
        if filesystem is None:
            filesystem = (pyarrow.fs.LocalFileSystem() if path is None
                          else pyarrow.fs.FileSystem.from_uri(str(path))[0])
        with tempfile.TemporaryDirectory() as tmp:
            if self._tokenizer is None:
                self._tokenizer = load_tokenizer(self.model.config.encoder.name_or_path)
            write_policy_files(self.model, tmp, self._tokenizer)
            for file in sorted(Path(tmp).rglob("*")):
                if file.is_file():
                    target = f"{out}/{file.relative_to(tmp).as_posix()}"
                    filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
                    with filesystem.open_output_stream(target) as f:
                        f.write(file.read_bytes())
        return out


def module_spec(observation_space: gym.Space, action_space: gym.Space,
                model_config: Optional[Mapping[str, Any]] = None, **spec_kwargs: Any) -> RLModuleSpec:
    """An ``RLModuleSpec`` for ``WebShopChoiceModule`` (spaces validated now, not on a worker)."""
    validate_spaces(observation_space, action_space)
    ChoiceModuleSettings.from_model_config(model_config)
    return RLModuleSpec(module_class=WebShopChoiceModule, observation_space=observation_space,
                        action_space=action_space, model_config=dict(model_config or {}), **spec_kwargs)
