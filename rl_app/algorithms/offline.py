"""A small base for offline algorithms over :class:`~rl_app.policy.rl_module.WebShopChoiceModule`.

IL (behaviour cloning) and DPO share everything but the loss and the columns they train on:

* :class:`OfflineChoiceConfig`: an ``AlgorithmConfig`` with no env (``_is_online=False``,
  no env runners); the observation/action spaces are built from the tokenization settings
  (``k_max``, ``max_state_tokens``, ``max_action_tokens``) so they always match what
  :class:`~rl_app.env.webshop_env.WebShopEnv` declares; trajectory parquet files are read
  with Ray Data (``read_parquet``) through RLlib's ``OfflineData``.
* :class:`ChoiceOfflinePreLearner`: tokenizes text rows in the Ray Data pipeline with the
  env's own :class:`~rl_app.env.observation.ObservationEncoder` (stored files hold text;
  token ids exist only at training time) and returns flat ``"default_policy/..."`` columns.
  Subclasses change :meth:`ChoiceOfflinePreLearner.module_batch` (DPO: chosen/rejected).
* :class:`OfflineChoiceAlgorithm`: MARWIL's offline ``training_step`` (sample from
  ``OfflineData`` -> ``LearnerGroup.update``) plus what an env-less algorithm needs in
  Ray 2.60 (whose ``Algorithm.from_checkpoint`` and ``get_module`` fail without env
  runners): a ``restore_from_path`` that does not sync env runners,
  :meth:`~OfflineChoiceAlgorithm.get_policy_module` instead of ``get_module``, and data
  iterators released before the learners stop. Every result carries ``time/learner_s``
  (learner seconds, cumulative) and ``time/learner_iter_s`` (this iteration's), so offline
  and online runs compare at matched learner time.

Subclasses supply a learner (``get_default_learner_class``) and, if their rows are not
step records, a prelearner.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

import gymnasium as gym
import numpy as np
from ray.data import ActorPoolStrategy, DataContext
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.training_data import TrainingData
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.offline.offline_prelearner import OfflinePreLearner
from ray.rllib.utils import flatten_dict
from ray.rllib.utils.checkpoints import Checkpointable
from ray.rllib.utils.metrics import LEARNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

from rl_app.algorithms.notices import silence_harmless_notices
from rl_app.algorithms.rllib_patches import PatchedConfigMixin
from rl_app.algorithms.rllib_patches.determinism import kernel_settings_kept
from rl_app.algorithms.warmup import LRWarmupConfigMixin
from rl_app.env.candidates import DEFAULT_K_MAX
from rl_app.env.observation import (
    DEFAULT_MAX_ACTION_TOKENS,
    DEFAULT_MAX_STATE_TOKENS,
    LAYOUTS,
    Layout,
    ObservationEncoder,
    SegmentSizes,
    observation_space,
)
from rl_app.policy.checkpoint import saved_tokenizer
from rl_app.policy.rl_module import WebShopChoiceModule
from rl_app.settings import PRETRAINED_LR, OfflineSettings

__all__ = [
    "OfflineChoiceConfig",
    "OfflineChoiceAlgorithm",
    "ChoiceOfflinePreLearner",
    "LEARNER_SECONDS",
    "LEARNER_SECONDS_ITER",
    "DEFAULT_MAX_STATE_TOKENS",
    "DEFAULT_MAX_ACTION_TOKENS",
]

logger = logging.getLogger(__name__)

# Result keys, namespaced like the learners' ("time/...").
LEARNER_SECONDS = "time/learner_s"
LEARNER_SECONDS_ITER = "time/learner_iter_s"
# RLlib's OfflineData fetches the learner's whole module state (all of BERT) for the
# prelearner unless it is given a non-empty one; ours tokenizes only and ignores it.
_NO_MODULE_STATE = {"unused": "ChoiceOfflinePreLearner needs no module weights"}


class OfflineChoiceConfig(PatchedConfigMixin, LRWarmupConfigMixin, AlgorithmConfig):
    """Settings of an offline algorithm that trains ``WebShopChoiceModule`` from parquet.

    Build with keyword-only builder methods (each returns ``self``)::

        config = (ILConfig()
                  .dataset(paths=["/abs/runs/demos"], updates_per_iteration=20)
                  .observations(k_max=64, max_state_tokens=512, max_action_tokens=32)
                  .rl_module(model_config={"encoder": "minilm"})
                  .training(lr=1e-4, train_batch_size_per_learner=32)
                  .learners(num_learners=0))

    ``.environment(...)`` is not needed: the spaces follow ``observations(...)``.
    """

    def __init__(self, algo_class: Optional[type] = None) -> None:
        super().__init__(algo_class=algo_class or OfflineChoiceAlgorithm)
        # No env (RLlib 2.60 asks for one unless _is_online is False, and then for spaces):
        # spaces come from the tokenization settings below.
        self._is_online = False
        self.num_env_runners = 0
        self.tokenizer: Optional[str] = None
        self.k_max = DEFAULT_K_MAX
        self.max_state_tokens = DEFAULT_MAX_STATE_TOKENS
        self.max_action_tokens = DEFAULT_MAX_ACTION_TOKENS
        self.observation_layout: Layout = "text"
        self.segment_sizes = SegmentSizes()
        self.frozen_cache = False
        self._set_spaces()
        self.input_read_method = "read_parquet"
        self.prelearner_class = ChoiceOfflinePreLearner
        # One tokenizing data actor that reserves no CPU: tokenizing is light next to a BERT
        # update, and Ray Data's file listing/read tasks need a whole free CPU, which a
        # learner plus a 1-CPU data actor leave none of on a 2-core machine (deadlock).
        # The mapped (tokenized) data is materialized once, so later epochs cost no
        # tokenization (RLlib's default; ~10 KB per step at 64 x 32 tokens).
        self.map_batches_kwargs = {"compute": ActorPoolStrategy(size=1), "concurrency": None, "num_cpus": 0.0}
        self.iter_batches_kwargs = {"local_shuffle_buffer_size": 1024}
        self.materialize_mapped_data = True
        defaults = OfflineSettings()  # the defaults' one owner (rl_app.settings)
        self.dataset_num_iters_per_learner = defaults.updates_per_iteration
        self.train_batch_size_per_learner = defaults.batch_size
        self.lr = PRETRAINED_LR
        self.precision = defaults.precision  # bf16 autocast on a bf16-capable GPU learner (rllib_patches.precision)
        self.lr_warmup_updates = defaults.lr_warmup_updates  # linear warmup over N updates (rl_app.algorithms.warmup)
        # The value head gets no gradient from offline policy losses; DDP (num_learners > 1)
        # would otherwise wait for its gradients forever.
        self.torch_ddp_kwargs = {"find_unused_parameters": True}

    # ------------------------------------------------------------------ builders
    def observations(self, *, tokenizer: Optional[str] = NotProvided, k_max: int = NotProvided,
                     max_state_tokens: int = NotProvided,
                     max_action_tokens: int = NotProvided, layout: Layout = NotProvided,
                     segment_sizes: SegmentSizes = NotProvided,
                     frozen_cache: bool = NotProvided) -> "OfflineChoiceConfig":
        """How text rows become observations; must match the env the policy will act in.

        Args:
            tokenizer: ``"minilm"``, ``"tiny"``, a Hugging Face name or a directory. None
                (default): the tokenizer of the module's ``init_checkpoint`` if one is set,
                else that of ``model_config["encoder"]``.
            k_max: candidate rows per observation (``TextEnvConfig.k_max``; default 64).
            max_state_tokens: state length (``WebShopEnvConfig.max_state_tokens``; 512).
            max_action_tokens: candidate length (``WebShopEnvConfig.max_action_tokens``; 32).
                DPO requires both to be its reference's (``init_checkpoint``), whose lengths
                scored the pairs' log-probs; the command lines default to a starting policy's.
            layout: ``text`` (default) or ``segments`` (:mod:`rl_app.env.observation`); the
                latter trains :class:`~rl_app.policy.segment_model.SegmentChoiceModel`.
            segment_sizes: the segments layout's row counts and lengths.
            frozen_cache: with the segments layout, encode the frozen part of every unique row
                of the data once before training, in a Ray Data pass, and store it beside the
                data (:mod:`rl_app.data.frozen_cache`); the learners read it into their memo.
        """
        if layout is not NotProvided:
            self.observation_layout = layout
        if segment_sizes is not NotProvided:
            self.segment_sizes = SegmentSizes(*segment_sizes)
        if frozen_cache is not NotProvided:
            self.frozen_cache = bool(frozen_cache)
        if tokenizer is not NotProvided:
            self.tokenizer = tokenizer
        if k_max is not NotProvided:
            self.k_max = int(k_max)
        if max_state_tokens is not NotProvided:
            self.max_state_tokens = int(max_state_tokens)
        if max_action_tokens is not NotProvided:
            self.max_action_tokens = int(max_action_tokens)
        self._set_spaces()
        return self

    def dataset(self, *, paths: Union[str, Sequence[str]] = NotProvided, updates_per_iteration: int = NotProvided,
                num_data_workers: int = NotProvided, cpus_per_data_worker: float = NotProvided,
                shuffle_buffer_size: int = NotProvided) -> "OfflineChoiceConfig":
        """Which parquet files to train on and how they stream to the learners.

        Args:
            paths: parquet files or directories of them (e.g. what ``rl_app.data.demos``
                writes); made absolute here, since Ray workers may run elsewhere.
            updates_per_iteration: gradient updates per learner per ``train()`` call
                (RLlib's ``dataset_num_iters_per_learner``; default 10).
            num_data_workers: Ray Data actors that tokenize rows (default 1).
            cpus_per_data_worker: CPUs each of them reserves (default 0: see ``__init__``).
            shuffle_buffer_size: rows in the local shuffle buffer the learners draw
                batches from; steps of one episode are stored next to each other
                (default 1024; 0 = file order).
        """
        if paths is not NotProvided:
            paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
            self.input_ = [p if "://" in str(p) else str(Path(p).expanduser().absolute()) for p in paths]
        if updates_per_iteration is not NotProvided:
            self.dataset_num_iters_per_learner = int(updates_per_iteration)
        if num_data_workers is not NotProvided:
            pool = ActorPoolStrategy(size=int(num_data_workers))
            self.map_batches_kwargs = {**self.map_batches_kwargs, "compute": pool, "concurrency": None}
        if cpus_per_data_worker is not NotProvided:
            self.map_batches_kwargs = {**self.map_batches_kwargs, "num_cpus": float(cpus_per_data_worker)}
        if shuffle_buffer_size is not NotProvided:
            kwargs = dict(self.iter_batches_kwargs)
            kwargs.pop("local_shuffle_buffer_size", None)
            if shuffle_buffer_size:
                kwargs["local_shuffle_buffer_size"] = int(shuffle_buffer_size)
            self.iter_batches_kwargs = kwargs
        return self

    # ------------------------------------------------------------------ derived settings
    def _set_spaces(self) -> None:
        self.observation_space = observation_space(self.k_max, self.max_state_tokens, self.max_action_tokens,
                                                   layout=self.observation_layout, segments=self.segment_sizes)
        self.action_space = gym.spaces.Discrete(self.k_max)

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        # A saved policy then records the lengths it was trained on, so ChoicePolicy
        # tokenizes the same way (the user's model_config still wins).
        return {"max_state_tokens": self.max_state_tokens, "max_action_tokens": self.max_action_tokens}

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        return RLModuleSpec(module_class=WebShopChoiceModule)

    def get_default_learner_class(self):
        raise NotImplementedError(
            f"{type(self).__name__} has no loss: use ILConfig (rl_app.algorithms.il) or another subclass, "
            "or set config.learners(learner_class=...)")

    def resolved_tokenizer(self) -> str:
        """The tokenizer name or directory the prelearner uses (see :meth:`observations`)."""
        if self.tokenizer:
            return str(self.tokenizer)
        model_config = self.get_rl_module_spec().model_config or {}
        init = model_config.get("init_checkpoint")
        if init:
            return saved_tokenizer(init)
        return str(model_config.get("encoder", "minilm"))

    def observation_encoder(self) -> ObservationEncoder:
        """The env's text -> ids encoder at this config's sizes (tokenizer loads lazily)."""
        return ObservationEncoder(self.resolved_tokenizer(), k_max=self.k_max,
                                  max_state_tokens=self.max_state_tokens, max_action_tokens=self.max_action_tokens,
                                  layout=self.observation_layout, segments=self.segment_sizes)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        silence_harmless_notices()  # RLlib's validate() logs its new-API-stack notice
        super().validate()
        if self.num_env_runners:
            self._value_error(f"{type(self).__name__} trains from files only: set "
                              "config.env_runners(num_env_runners=0)")
        if not self.input_ or not isinstance(self.input_, list):
            self._value_error("no training data: call config.dataset(paths=[<parquet files or directories>])")
        for path in self.input_:
            if "://" in str(path):
                continue
            if not Path(path).is_absolute():
                self._value_error(f"data path {path!r} is relative: Ray workers need absolute paths; "
                                  "pass it through config.dataset(paths=...), which makes it absolute")
            if not Path(path).exists():
                self._value_error(f"data path {path} does not exist: fix config.dataset(paths=...)")
        if self.input_read_method != "read_parquet":
            self._value_error("trajectory data is parquet: keep config.offline_data(input_read_method='read_parquet')")
        if not (isinstance(self.prelearner_class, type) and issubclass(self.prelearner_class, ChoiceOfflinePreLearner)):
            self._value_error("config.offline_data(prelearner_class=...) must subclass "
                              "rl_app.algorithms.offline.ChoiceOfflinePreLearner (it tokenizes the text rows)")
        if self.k_max < 1 or self.max_state_tokens < 8 or self.max_action_tokens < 4:
            self._value_error(f"need k_max >= 1, max_state_tokens >= 8, max_action_tokens >= 4; got {self.k_max}, "
                              f"{self.max_state_tokens}, {self.max_action_tokens}: fix config.observations(...)")
        if self.observation_layout not in LAYOUTS:
            self._value_error(f"unknown observation layout {self.observation_layout!r}; expected one of {LAYOUTS}")
        if self.frozen_cache and self.observation_layout != "segments":
            self._value_error("config.observations(frozen_cache=True) needs layout='segments'")
        expected = observation_space(self.k_max, self.max_state_tokens, self.max_action_tokens,
                                     layout=self.observation_layout, segments=self.segment_sizes)
        if self.observation_space != expected or self.action_space != gym.spaces.Discrete(self.k_max):
            self._value_error("the observation/action spaces differ from k_max/max_state_tokens/max_action_tokens: "
                              "set sizes with config.observations(...) instead of config.environment(...)")
        if not self.dataset_num_iters_per_learner or self.dataset_num_iters_per_learner < 1:
            self._value_error("set config.dataset(updates_per_iteration=N) with N >= 1 "
                              f"(got dataset_num_iters_per_learner={self.dataset_num_iters_per_learner})")
        if self.train_batch_size_per_learner < 1:
            self._value_error("config.training(train_batch_size_per_learner=...) must be >= 1")
        if self.num_learners > 1 and not self.torch_ddp_kwargs.get("find_unused_parameters"):
            self._value_error("num_learners > 1 wraps the module in DDP, and offline policy losses leave the value "
                              "head without gradients: set config.framework(torch_ddp_kwargs="
                              "{'find_unused_parameters': True})")
        spec = self.rl_module_spec
        if not (isinstance(spec, RLModuleSpec) and isinstance(spec.module_class, type)
                and issubclass(spec.module_class, WebShopChoiceModule)):
            self._value_error("the RLModule must be WebShopChoiceModule (or a subclass): pass "
                              "config.rl_module(model_config=...) or rl_app.policy.rl_module.module_spec(...)")


class ChoiceOfflinePreLearner(OfflinePreLearner):
    """Ray Data transform: trajectory step rows (text) -> the module's train batch.

    ``__call__`` reads ``state``, ``candidate_texts`` and ``chosen`` and returns
    ``default_policy/obs/{state_ids,action_ids,action_mask}`` and ``default_policy/actions``
    (flat keys; RLlib nests them back). It is pure: the input batch is not modified and
    nothing but the tokenizer is held.

    RLlib's base ``__init__`` is deliberately not called: it builds the RLModule (all of
    BERT) and a learner connector in every data actor, and this transform needs neither.
    """

    def __init__(self, *, config: OfflineChoiceConfig, spaces: Optional[tuple] = None,
                 module_state: Optional[Mapping[str, Any]] = None, **kwargs: Any) -> None:
        self.config = config
        self.observation_space, self.action_space = spaces or (config.observation_space, config.action_space)
        self.module_id = DEFAULT_MODULE_ID
        self.encoder = config.observation_encoder()

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return flatten_dict({self.module_id: self.module_batch(batch)})

    def module_batch(self, batch: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """One module's (nested) train columns from a batch of rows; override for other data."""
        from rl_app.data.io import tokenize_batch

        steps = tokenize_batch(batch, encoder=self.encoder)
        return {Columns.OBS: {key: steps[key] for key in self.encoder.keys}, Columns.ACTIONS: steps["actions"]}


@contextmanager
def _block_order_kept(keep: bool) -> Iterator[None]:
    """Ray Data's ``preserve_order`` for the datasets created inside, when ``keep``.

    Without it the streaming executor hands blocks on in whatever order its tasks finish,
    so two runs with the same seed shuffle and batch the same rows differently (measured:
    the tiny DPO's loss diverged from its second iteration). Read functions copy the
    current ``DataContext`` into the dataset, so the setting stays with that dataset only.
    """
    if not keep:
        yield
        return
    options = DataContext.get_current().execution_options
    before = options.preserve_order
    options.preserve_order = True
    try:
        yield
    finally:
        options.preserve_order = before


class _ReadFrozenCache:
    """``foreach_learner`` callable: read a stored frozen cache into the learner's model memo."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def __call__(self, learner) -> int:
        from rl_app.data.frozen_cache import load_into

        module = learner.module[DEFAULT_MODULE_ID]
        module = module.unwrapped() if hasattr(module, "unwrapped") else module
        return load_into(module.model.frozen, self.directory)


def _drop_data_iterator(learner) -> None:
    learner.iterator = None


class OfflineChoiceAlgorithm(Algorithm):
    """Offline training of ``WebShopChoiceModule``; the loss lives in the learner class."""

    @classmethod
    def get_default_config(cls) -> OfflineChoiceConfig:
        return OfflineChoiceConfig()

    def setup(self, config) -> None:
        # RLlib's seeding (rl_app.algorithms.rllib_patches.determinism); a seeded run's dataset also keeps
        # its block order (the dataset copies the DataContext when OfflineData reads it).
        with kernel_settings_kept(config), _block_order_kept(config.seed is not None):
            super().setup(config)
        # A seeded run (config.debugging(seed=...)) also seeds the local shuffle: with the
        # block order kept, two runs with the same seed draw the same batches.
        kwargs = self.offline_data.iter_batches_kwargs
        if self.config.seed is not None and kwargs.get("local_shuffle_buffer_size"):
            kwargs.setdefault("local_shuffle_seed", self.config.seed)
        self.frozen_cache_dir: Optional[str] = None
        self.frozen_cache_s = 0.0
        if config.frozen_cache:
            self._read_frozen_cache()

    def _read_frozen_cache(self) -> None:
        """Build (or find) the data's frozen-row cache and read it into every learner's model."""
        from rl_app.data.frozen_cache import build_frozen_cache

        start = time.perf_counter()
        model_config = dict(self.config.get_rl_module_spec().model_config or {})
        if model_config.get("init_checkpoint"):
            source = {"checkpoint": str(model_config["init_checkpoint"])}
        else:
            source = {"encoder": str(model_config.get("encoder", "minilm")),
                      "trainable_layers": int(model_config.get("trainable_layers") or 0)}
        directory = build_frozen_cache(self.config.input_, self.config.observation_encoder(), source,
                                       log=logger.info)
        counts = self.learner_group.foreach_learner(_ReadFrozenCache(str(directory)))
        self.frozen_cache_dir = str(directory)
        self.frozen_cache_s = time.perf_counter() - start
        logger.info("frozen cache %s: %s rows per learner, %.1f s", directory, counts, self.frozen_cache_s)

    def training_step(self) -> None:
        """MARWIL's offline step: sample -> ``LearnerGroup.update`` -> aggregate results."""
        config = self.config
        # One batch per call only with a local learner doing one update; otherwise each
        # learner pulls `dataset_num_iters_per_learner` batches from its own iterator.
        return_iterator = config.num_learners > 0 or config.dataset_num_iters_per_learner != 1
        data = self.offline_data.sample(num_samples=config.train_batch_size_per_learner,
                                        num_shards=config.num_learners, return_iterator=return_iterator,
                                        module_state=_NO_MODULE_STATE)
        self.metrics.log_value(NUM_ENV_STEPS_SAMPLED_LIFETIME,
                               config.train_batch_size_per_learner * config.dataset_num_iters_per_learner
                               * max(1, config.num_learners), reduce="lifetime_sum")
        training_data = TrainingData(data_iterators=data) if return_iterator else TrainingData(batch=data)

        start = time.perf_counter()
        results = []
        results.extend(self.learner_group.update(
            training_data=training_data,
            minibatch_size=config.train_batch_size_per_learner,
            num_iters=config.dataset_num_iters_per_learner,
            timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(NUM_ENV_STEPS_SAMPLED_LIFETIME)},
            **self.offline_data.iter_batches_kwargs,
        ))
        seconds = time.perf_counter() - start
        self.metrics.log_value(LEARNER_SECONDS, seconds, reduce="lifetime_sum")
        self.metrics.log_value(LEARNER_SECONDS_ITER, seconds, reduce="sum")
        self.metrics.aggregate(results, key=LEARNER_RESULTS)

    # ------------------------------------------------------------------ the trained policy
    def get_policy_module(self, module_id: str = DEFAULT_MODULE_ID) -> WebShopChoiceModule:
        """A fresh module with the learners' current weights (eval mode).

        ``Algorithm.get_module`` reads the env runners' module, and there are none here.
        """
        spec = self.config.get_multi_rl_module_spec(spaces=getattr(self.offline_data, "spaces", None))
        if module_id not in spec.rl_module_specs:
            raise KeyError(f"no module {module_id!r}; modules: {sorted(spec.rl_module_specs)}")
        module = spec.rl_module_specs[module_id].build()
        module.set_state(self.learner_group.get_weights(module_ids=[module_id])[module_id])
        return module.eval()

    def get_choice_policy(self, module_id: str = DEFAULT_MODULE_ID):
        """The trained policy as a plain :class:`~rl_app.policy.choice_policy.ChoicePolicy`
        (tokenizer and lengths as in training), e.g. for evaluation or ``save_pretrained``."""
        from rl_app.policy.choice_policy import ChoicePolicy

        module = self.get_policy_module(module_id)
        return ChoicePolicy(module.model, self.config.observation_encoder().tokenizer,
                            max_state_tokens=self.config.max_state_tokens,
                            max_action_tokens=self.config.max_action_tokens)

    # ------------------------------------------------------------------ checkpoints and shutdown
    def restore_from_path(self, path, *args, **kwargs) -> None:
        # Algorithm.restore_from_path syncs weights to env runners, which an offline
        # algorithm does not have ("'NoneType' object has no attribute 'sync_weights'").
        Checkpointable.restore_from_path(self, path, *args, **kwargs)

    def stop(self) -> None:
        # Learners holding Ray Data iterators at shutdown may print "Ray is not initialized"
        # and start a stray local Ray for a minute (seen with Ray 2.60); drop the iterators first.
        if getattr(self, "learner_group", None) is not None:
            try:
                self.learner_group.foreach_learner(_drop_data_iterator)
            except Exception as e:  # a dead learner must not prevent the shutdown
                logger.warning("could not release the learners' data iterators before stopping: %s", e)
        if getattr(self, "offline_data", None) is not None:
            self.offline_data.batch_iterators = None
        super().stop()
