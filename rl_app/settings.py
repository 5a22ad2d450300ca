"""Typed settings: one owner for each setting's name, type, default and help.

Every section of a preset (``tune_configs/*.yaml``) is read through one class here
(:data:`SECTIONS`), whose loader refuses keys it does not have, naming the file, section and
key in one line with a did-you-mean. The training command lines get their flags from the same
fields (:meth:`Settings.add_arguments` / :meth:`Settings.from_args`), and the RLlib configs are
built from them (``ILConfig.from_settings``, ``DPOConfig.from_settings``,
``WebShopPPOConfig.from_settings``), so a default is written once, here; the RLlib configs' own
defaults (``ILConfig()``, ``DPOConfig()``, ``WebShopPPOConfig()``) are read from here too. This
module imports no algorithm: the algorithms import it.

The ``shop`` and ``env`` sections are owned by the env's own configs
(:class:`~rl_app.shop.config.ShopConfig`, :class:`~rl_app.env.webshop_env.WebShopEnvConfig`):
:func:`shop_from_section` and :func:`env_from_section` check their keys the same way.

PPO's batch: 512 env steps per update in minibatches of 32 (:class:`PPOSettings`), the paper
preset's numbers and what RLlib users of ``WebShopPPOConfig()`` get; presets for small
machines set smaller batches in their ``ppo`` section.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence, Union

from rl_app.env.candidates import DEFAULT_K_MAX
from rl_app.env.observation import DEFAULT_MAX_ACTION_TOKENS, DEFAULT_MAX_STATE_TOKENS, LAYOUTS
from rl_app.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from rl_app.shop.config import ShopConfig
    from rl_app.env.webshop_env import WebShopEnvConfig

__all__ = ["SettingsError", "Settings", "ModelSettings", "ObservationSettings", "BudgetSettings",
           "EvalSettings", "DemosSettings", "OfflineSettings", "ILSettings", "GeneratedSettings",
           "PairsSettings", "DPOSettings", "PPOSettings", "TuneSettings", "SECTIONS", "MOVED_SECTIONS",
           "shop_from_section", "env_from_section", "check_keys", "DEFAULT_ITERATIONS", "TINY_LR",
           "PRETRAINED_LR", "DEFAULT_ENV_RUNNERS"]

# train() calls of a training command line (and of the IL stage) unless told otherwise.
DEFAULT_ITERATIONS = 20
# IL learning rates: a randomly initialised tiny encoder, or the segments model's head over a
# frozen encoder, has nothing to forget; pretrained BERTs are fine-tuned at the usual 1e-4.
TINY_LR = 1e-3
PRETRAINED_LR = 1e-4
# PPO's remote env runners on a command line (a trial's are its CPU bundles but one).
DEFAULT_ENV_RUNNERS = 2


class SettingsError(InputError):
    """A preset section or flag that the settings refuse (unknown key, wrong value)."""


Choices = Union[Sequence[Any], Callable[[], Sequence[Any]]]


def _setting(default: Any, help: str, *, kind: Optional[Callable] = None, choices: Optional[Choices] = None):
    """A field with its help text; ``kind`` parses its flag; ``choices`` (or a function giving
    them, for choices owned by a module too heavy to import here) closes its values."""
    return field(default=default, metadata={"help": help, "kind": kind, "choices": choices})


def _choices(f: dataclasses.Field) -> Optional[tuple]:
    choices = f.metadata.get("choices")
    return tuple(choices() if callable(choices) else choices) if choices is not None else None


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def check_keys(section: Mapping[str, Any], known: Sequence[str], *, name: str, where: str = "") -> None:
    """Refuse a key of ``section`` not in ``known``: one line naming where, the section and the key."""
    for key in section:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(known)}"
            raise SettingsError(f"{_prefix(where)}unknown key {key!r} in section {name!r}{hint}")


@dataclass(frozen=True)
class Settings:
    """Base of the typed settings: section reading, derived command-line flags, closed choices."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            expected = _KIND_CHECKS.get(f.metadata.get("kind"))
            if expected is not None and value is not f.default and not expected[1](value):
                raise SettingsError(f"{f.name} must be {expected[0]}; got {value!r}")
            # a default is one of its choices: only other values are checked (and the module
            # owning the choices imported)
            if f.metadata.get("choices") is None or value == f.default:
                continue
            choices = _choices(f)
            if getattr(self, f.name) not in choices:
                raise SettingsError(f"{f.name} must be one of {', '.join(map(str, choices))}; "
                                    f"got {getattr(self, f.name)!r}")

    @classmethod
    def from_section(cls, section: Optional[Mapping[str, Any]], *, name: str = "", where: str = "") -> "Settings":
        """The settings of a preset section; unknown keys are an error naming where and which."""
        section = dict(section or {})
        check_keys(section, [f.name for f in dataclasses.fields(cls)], name=name or cls.__name__, where=where)
        try:
            return cls(**section)
        except (TypeError, ValueError) as e:
            raise SettingsError(f"{_prefix(where)}section {name!r}: {e}") from None

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, skip: Sequence[str] = (),
                      only: Optional[Sequence[str]] = None, prefix: str = "") -> None:
        """One ``--flag`` per field (``trainable_layers`` -> ``--trainable-layers``, with ``prefix``
        ``eval``: ``split`` -> ``--eval-split``); booleans get ``--x/--no-x``. Flags left unset keep
        the field's default (or a section's value, through :meth:`from_args`)."""
        for f in dataclasses.fields(cls):
            if f.name in skip or (only is not None and f.name not in only):
                continue
            dest = f"{prefix}_{f.name}" if prefix else f.name
            flag = "--" + dest.replace("_", "-")
            help_text = f"{f.metadata.get('help', '')} (default: {f.default!r})"
            if f.metadata.get("kind") is bool:
                parser.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None,
                                    help=help_text)
            else:
                parser.add_argument(flag, dest=dest, type=f.metadata.get("kind") or str, default=None,
                                    choices=_choices(f), help=help_text)

    @classmethod
    def from_args(cls, args: argparse.Namespace, base: Optional["Settings"] = None, *, prefix: str = "") -> "Settings":
        """``base`` (or the defaults) with every flag the user set."""
        base = base if base is not None else cls()
        given = {f.name: getattr(args, f"{prefix}_{f.name}" if prefix else f.name, None) for f in dataclasses.fields(cls)}
        return dataclasses.replace(base, **{k: v for k, v in given.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def argv(self, *, prefix: str = "") -> list[str]:
        """The flags that reproduce these settings on a command line (fields set to None are left out)."""
        out: list[str] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            flag = "--" + (f"{prefix}_{f.name}" if prefix else f.name).replace("_", "-")
            if f.metadata.get("kind") is bool:
                out.append(flag if value else flag.replace("--", "--no-", 1))
            elif value is not None:
                out += [flag, str(value)]
        return out


def _optional_int(text: str) -> Optional[int]:
    return None if text.lower() in ("none", "all", "") else int(text)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# What a preset value of a field with this ``kind`` must be (command-line flags arrive parsed
# by the kind; a YAML value arrives as YAML typed it, so "yes" or 2.5 would pass unchecked).
_KIND_CHECKS: dict[Callable, tuple[str, Callable[[Any], bool]]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", _is_int),
    float: ("a number", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)),
    _optional_int: ("an integer or null", lambda v: v is None or _is_int(v)),
}


def _loss_types() -> tuple[str, ...]:
    from rl_app.algorithms.dpo.loss import LOSS_TYPES

    return LOSS_TYPES


def _pair_levels() -> tuple[str, ...]:
    from rl_app.data.pairs import PAIR_LEVELS

    return PAIR_LEVELS


def _precisions() -> tuple[str, ...]:
    from rl_app.algorithms.rllib_patches.precision import PRECISIONS

    return PRECISIONS


def _rejected_strategies() -> tuple[str, ...]:
    from rl_app.data.pairs import REJECTED_STRATEGIES

    return REJECTED_STRATEGIES


# ----------------------------------------------------------------------------- shop, env
def shop_from_section(section: Optional[Mapping[str, Any]], *, where: str = "") -> "ShopConfig":
    """The ``shop`` section as the env's :class:`~rl_app.shop.config.ShopConfig` (its owner)."""
    from rl_app.shop.config import ShopConfig

    section = dict(section or {})
    check_keys(section, [f.name for f in dataclasses.fields(ShopConfig)], name="shop", where=where)
    try:
        return ShopConfig(**section)
    except (TypeError, ValueError) as e:
        raise SettingsError(f"{_prefix(where)}section 'shop': {e}") from None


def env_keys() -> list[str]:
    """The ``env`` section's keys: the episode's (TextEnvConfig) and the tokenized env's own."""
    from rl_app.env.text_env import TextEnvConfig
    from rl_app.env.webshop_env import WebShopEnvConfig

    return [f.name for f in dataclasses.fields(TextEnvConfig)] + \
        [f.name for f in dataclasses.fields(WebShopEnvConfig) if f.name not in ("shop", "episode")]


def env_from_section(section: Optional[Mapping[str, Any]], shop: Optional[Mapping[str, Any]] = None, *,
                     where: str = "") -> "WebShopEnvConfig":
    """The ``env`` section (with the ``shop`` section) as :class:`~rl_app.env.webshop_env.WebShopEnvConfig`."""
    from rl_app.env.webshop_env import WebShopEnvConfig

    section = dict(section or {})
    check_keys(section, env_keys(), name="env", where=where)
    try:
        return WebShopEnvConfig.from_dict({**dict(shop or {}), **section})
    except (TypeError, ValueError) as e:
        raise SettingsError(f"{_prefix(where)}section 'env': {e}") from None


# ----------------------------------------------------------------------------- model
@dataclass(frozen=True)
class ModelSettings(Settings):
    """The ``model`` section: which encoder, and how much of it trains.

    Full fine-tuning of BERT over the ``text`` layout, or the cached-encoder mode over the
    ``segments`` layout (``trainable_layers`` top layers train, the rest is frozen and computed
    once per unique row).

    Attributes:
        encoder: ``minilm`` (packaged all-MiniLM-L6-v2), ``tiny`` (random, tests) or any
            Hugging Face BERT name or local path.
        dropout: encoder dropout.
        trainable_layers: top encoder layers that train. None fine-tunes the whole encoder
            (the ``text`` layout's default); with the ``segments`` layout None means 0 (all
            frozen: each unique row is encoded once).
        frozen_cache: with the ``segments`` layout, encode the frozen part of every unique row
            of the training data once, store it beside the data and read it into the learners.
        head_dim: width of the segments model's late-interaction head.
        match_heads: heads of its token- and line-level matching.
        match_signals: its exact-match signals (off: the learned matching alone, the ablation).
    """

    encoder: str = _setting("minilm", "minilm, tiny, or a BERT name/path")
    dropout: float = _setting(0.0, "encoder dropout", kind=float)
    trainable_layers: Optional[int] = _setting(
        None, "top encoder layers that train; none = all (text layout) / 0 (segments layout)", kind=_optional_int)
    frozen_cache: bool = _setting(True, "segments layout: cache the frozen part of every unique data row", kind=bool)
    head_dim: int = _setting(128, "segments model: width of its late-interaction head", kind=int)
    match_heads: int = _setting(4, "segments model: heads of its token/line matching", kind=int)
    match_signals: bool = _setting(True, "segments model: exact-match signals (word pieces shared with the "
                                         "instruction, each candidate's own page line)", kind=bool)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.encoder, str) or not self.encoder:
            raise SettingsError(f"encoder must be a non-empty string, got {self.encoder!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise SettingsError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.trainable_layers is not None and int(self.trainable_layers) < 0:
            raise SettingsError(f"trainable_layers must be >= 0 or None, got {self.trainable_layers!r}")
        if int(self.head_dim) < 8 or int(self.head_dim) % int(self.match_heads):
            raise SettingsError(f"head_dim ({self.head_dim}) must be >= 8 and divisible by match_heads "
                                f"({self.match_heads})")

    def to_model_config(self, layout: str = "text") -> dict[str, Any]:
        """``WebShopChoiceModule``'s ``model_config`` for a policy reading ``layout``."""
        config: dict[str, Any] = {"encoder": self.encoder, "dropout": float(self.dropout)}
        if layout == "segments":
            config.update(trainable_layers=int(self.trainable_layers or 0), head_dim=int(self.head_dim),
                          match_heads=int(self.match_heads), match_signals=bool(self.match_signals))
        elif self.trainable_layers is not None:
            config["trainable_layers"] = int(self.trainable_layers)
        return config

    def cached(self, layout: str) -> bool:
        """Whether training reads a stored frozen-row cache (segments layout with ``frozen_cache``)."""
        return layout == "segments" and bool(self.frozen_cache)


# ----------------------------------------------------------------------------- observations
@dataclass(frozen=True)
class ObservationSettings(Settings):
    """What the offline trainers tokenize: the candidate cap, the layout and the token lengths
    (flags of the command lines; a preset's ``env`` section gives them to the trials through
    :meth:`of_env`).

    Attributes:
        k_max: candidate slots per step.
        observation_layout: ``text`` or ``segments`` (:mod:`rl_app.env.observation`).
        max_state_tokens, max_action_tokens: token lengths; None = the starting policy's
            (a policy continued at other lengths sees other token ids; for DPO its stored
            reference log-probs would then not be its own), else the env's defaults.
    """

    k_max: int = _setting(DEFAULT_K_MAX, "candidate slots per step", kind=int)
    observation_layout: str = _setting(
        "text", "text (the page as one token row) or segments (instruction, lines, candidates as short rows: the "
                "cached-encoder mode)", choices=LAYOUTS)
    max_state_tokens: Optional[int] = _setting(
        None, f"state length in tokens (default: the --init-checkpoint policy's, else {DEFAULT_MAX_STATE_TOKENS})",
        kind=int)
    max_action_tokens: Optional[int] = _setting(
        None, f"candidate length in tokens (default: the --init-checkpoint policy's, else "
              f"{DEFAULT_MAX_ACTION_TOKENS})", kind=int)

    @classmethod
    def of_env(cls, env: "WebShopEnvConfig") -> "ObservationSettings":
        return cls(k_max=env.episode.k_max, observation_layout=env.observation_layout,
                   max_state_tokens=env.max_state_tokens, max_action_tokens=env.max_action_tokens)

    def token_lengths(self, init_checkpoint: Optional[str] = None) -> dict[str, int]:
        """``max_state_tokens`` / ``max_action_tokens``: these where set, else those the starting
        policy was trained at, else the env's defaults."""
        from rl_app.policy.checkpoint import TOKEN_LENGTH_KEYS, saved_token_lengths

        lengths = {key: getattr(self, key) for key in TOKEN_LENGTH_KEYS}
        saved = saved_token_lengths(init_checkpoint) if init_checkpoint and None in lengths.values() else {}
        defaults = {"max_state_tokens": DEFAULT_MAX_STATE_TOKENS, "max_action_tokens": DEFAULT_MAX_ACTION_TOKENS}
        return {key: int(value) if value is not None else saved.get(key, defaults[key])
                for key, value in lengths.items()}

    def to_kwargs(self, *, layout: Optional[str] = None, frozen_cache: bool = False,
                  init_checkpoint: Optional[str] = None) -> dict[str, Any]:
        """Keyword arguments of ``OfflineChoiceConfig.observations``."""
        return {"k_max": int(self.k_max), "layout": layout or self.observation_layout, "frozen_cache": frozen_cache,
                **self.token_lengths(init_checkpoint)}


# ----------------------------------------------------------------------------- the loop's budget, evaluation
@dataclass(frozen=True)
class BudgetSettings(Settings):
    """How long a training command line trains (:mod:`rl_app.algorithms.budgeted_training`)."""

    iterations: int = _setting(DEFAULT_ITERATIONS, "train() calls", kind=int)
    time_budget_s: Optional[float] = _setting(None, "stop earlier once training took this long", kind=float)


@dataclass(frozen=True)
class EvalSettings(Settings):
    """The training command lines' ``--eval-*`` flags (no preset section: the main job's
    evaluation is ``tune.eval_*``): greedy and sampled play of the trained policy on the first
    ``goals`` goals of ``split``."""

    split: str = _setting("test", "split the trained policy is evaluated on", choices=("test", "dev"))
    goals: int = _setting(200, "first N goals of the split; 0 = no evaluation", kind=int)
    seed: int = _setting(0, "seed of the sampled evaluation", kind=int)
    workers: int = _setting(0, "Ray tasks playing the goals (0 = here)", kind=int)


# ----------------------------------------------------------------------------- data stages
@dataclass(frozen=True)
class DemosSettings(Settings):
    """The ``demos`` section: scripted demonstrations on train goals (:mod:`rl_app.data.demos`)."""

    num_goals: Optional[int] = _setting(None, "the first N train goals; None = every train goal", kind=_optional_int)
    seed: int = _setting(0, "seed of the demonstrator", kind=int)


@dataclass(frozen=True)
class GeneratedSettings(Settings):
    """The ``generated`` section: the IL agent's trajectories kept by a reward filter
    (:mod:`rl_app.data.generated`)."""

    num_episodes: int = _setting(100, "trajectories to keep", kind=int)
    max_attempts: int = _setting(2000, "episodes played at most", kind=int)
    min_reward: float = _setting(1.0, "reward filter", kind=float)
    seed: int = _setting(0, "seed of the goal order and the sampling", kind=int)


@dataclass(frozen=True)
class PairsSettings(Settings):
    """The ``pairs`` section: step-level preference pairs against the IL reference (:mod:`rl_app.data.pairs`)."""

    num_rejected: int = _setting(1, "rejected actions per state", kind=int)
    seed: int = _setting(0, "seed of the rejected-action sampling", kind=int)
    rejected: str = _setting("sample", "how the rejected action is picked", choices=_rejected_strategies)
    only_success: bool = _setting(False, "pair only the steps of episodes whose final reward is 1 (a demonstrator "
                                  "below its IL student otherwise pulls it toward its failures)", kind=bool)


# ----------------------------------------------------------------------------- algorithms
@dataclass(frozen=True)
class _LearnerSettings(Settings):
    """What IL, DPO and PPO share: the learner's precision and warmup, the seed."""

    lr_warmup_updates: int = _setting(0, "linear learning-rate warmup over this many updates (0 = none)", kind=int)
    precision: str = _setting("auto", "learner precision: auto = bf16 autocast on a bf16-capable GPU, else fp32",
                              choices=_precisions)
    seed: int = _setting(0, "seed", kind=int)


@dataclass(frozen=True)
class OfflineSettings(_LearnerSettings):
    """IL's and DPO's batches and learners (``OfflineChoiceConfig``'s defaults)."""

    updates_per_iteration: int = _setting(10, "gradient updates per learner per train()", kind=int)
    batch_size: int = _setting(32, "rows per update per learner", kind=int)
    num_learners: int = _setting(0, "0 = learn in this process", kind=int)
    gpus_per_learner: float = _setting(0.0, "GPUs per learner", kind=float)

    def learners_of(self, config):
        """``config`` with these settings' learners, precision and seed (the algorithms'
        ``from_settings`` builders share this)."""
        return (config.learners(num_learners=int(self.num_learners), num_gpus_per_learner=float(self.gpus_per_learner),
                                precision=self.precision)
                .debugging(seed=int(self.seed)))


@dataclass(frozen=True)
class ILSettings(OfflineSettings):
    """The ``il`` section: behaviour cloning of the demonstrations (:mod:`rl_app.algorithms.il`).

    ``lr`` None: ``TINY_LR`` for the tiny encoder or the segments layout, else ``PRETRAINED_LR``.
    """

    iterations: int = _setting(DEFAULT_ITERATIONS, "train() calls", kind=int)
    lr: Optional[float] = _setting(None, f"learning rate (default: {TINY_LR:g} for the tiny encoder or the "
                                         f"segments layout, else {PRETRAINED_LR:g})", kind=float)

    def resolved_lr(self, model: ModelSettings, layout: str) -> float:
        if self.lr is not None:
            return float(self.lr)
        return TINY_LR if model.encoder == "tiny" or layout == "segments" else PRETRAINED_LR

@dataclass(frozen=True)
class DPOSettings(OfflineSettings):
    """The ``dpo`` section: DPO from the IL reference on preference pairs (:mod:`rl_app.algorithms.dpo`).

    ``max_iterations`` caps a trial's train() calls (the paper's "3,000 DPO steps" are 3,000
    gradient updates = ``max_iterations x updates_per_iteration``); the budget still applies.
    """

    lr: float = _setting(1e-5, "learning rate", kind=float)
    beta: float = _setting(0.1, "inverse temperature of the implicit reward beta * log(pi / pi_ref)", kind=float)
    loss_type: str = _setting("sigmoid", "preference loss (sigmoid: the paper)", choices=_loss_types)
    label_smoothing: float = _setting(0.0, "assumed preference-label noise (cDPO / robust DPO)", kind=float)
    nll_coeff: float = _setting(0.0, "alpha of an NLL term on the chosen actions (RPO; 0 = plain DPO as in the paper)",
                                kind=float)
    pair_level: str = _setting("auto", "step pairs (rl_app.data.pairs) or trajectory pairs "
                                       "(rl_app.data.trajectory_pairs); auto: from the data's columns",
                               choices=_pair_levels)
    max_trajectory_steps: Optional[int] = _setting(
        None, "trajectory pairs: steps each trajectory is padded to (default: the data's longest)", kind=int)
    max_iterations: int = _setting(0, "a trial's train() calls at most (0 = the budget alone)", kind=int)

@dataclass(frozen=True)
class PPOSettings(_LearnerSettings):
    """The ``ppo`` section: PPO on the env from the IL policy (:mod:`rl_app.algorithms.ppo`).

    ``num_env_runners`` None: a trial's CPU bundles but its own (same resources as DPO's
    trial), ``DEFAULT_ENV_RUNNERS`` on the command line. ``max_iterations``: as for DPO.
    """

    lr: float = _setting(1e-5, "learning rate", kind=float)
    train_batch: int = _setting(512, "env steps per update", kind=int)
    minibatch: int = _setting(32, "steps per minibatch", kind=int)
    epochs: int = _setting(2, "passes over each batch", kind=int)
    entropy: float = _setting(0.01, "entropy bonus coefficient", kind=float)
    num_env_runners: Optional[int] = _setting(
        None, f"remote env runners (default: {DEFAULT_ENV_RUNNERS}; in a trial, its CPU bundles but one)", kind=int)
    envs_per_runner: int = _setting(1, "envs per env runner", kind=int)
    il_coeff: float = _setting(0.0, "weight of an IL term on demonstrations (WebShop's IL+RL; 0 = off)", kind=float)
    il_data: Optional[str] = _setting(None, "demonstrations the IL term clones")
    max_iterations: int = _setting(0, "a trial's train() calls at most (0 = the budget alone)", kind=int)

# ----------------------------------------------------------------------------- tune
@dataclass(frozen=True)
class TuneSettings(Settings):
    """The ``tune`` section: one comparison's budget and resources (defaults: a few CPU minutes).

    Every trial gets the same resources (``cpus_per_trial`` CPUs, ``gpus_per_trial`` GPUs, as
    one placement group) and the same training budget, so arms compare at matched compute.
    """

    budget_s: float = _setting(60.0, "training seconds per trial, in budget_unit", kind=float)
    # wall: seconds of the trial's own clock from its start (build included; the paper's GPU-time
    # matching). cpu: CPU seconds of the trial process and its env runners in train() calls
    # (what another process's load on the machine cannot eat); the build is reported apart.
    budget_unit: str = _setting("wall", "wall or cpu seconds", choices=("wall", "cpu"))
    seeds: int = _setting(2, "seeds per arm", kind=int)
    eval_every_s: float = _setting(20.0, "evaluation points along the budget (plus the end)", kind=float)
    eval_goals: int = _setting(50, "first N goals of eval_split", kind=int)
    eval_split: str = _setting("test", "split of the evaluations", choices=("test", "dev"))
    eval_greedy: bool = _setting(True, "greedy (else sampled) evaluation", kind=bool)
    cpus_per_trial: int = _setting(2, "CPUs of each trial", kind=int)
    gpus_per_trial: float = _setting(0.0, "GPUs of each trial", kind=float)
    placement_strategy: str = _setting("PACK", "a trial's bundles on few nodes (PACK) or many (SPREAD)",
                                       choices=("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"))
    max_concurrent_trials: int = _setting(0, "0 = as many as the resources allow", kind=int)
    data_sizes: tuple[int, ...] = _setting((20, 60, 200), "data_efficiency: demonstration trajectories per arm")
    betas: tuple[float, ...] = _setting((0.05, 0.1, 0.5), "beta_sweep: betas")
    loss_types: tuple[str, ...] = _setting(("sigmoid", "ipo"), "beta_sweep: DPO losses")

    def __post_init__(self) -> None:
        for key in ("data_sizes", "betas", "loss_types"):  # YAML lists
            object.__setattr__(self, key, tuple(getattr(self, key)))
        super().__post_init__()
        if self.budget_s <= 0:
            raise SettingsError(f"tune.budget_s must be > 0, got {self.budget_s}")
        if self.seeds < 1:
            raise SettingsError(f"tune.seeds must be >= 1, got {self.seeds}")
        if self.eval_every_s <= 0 or self.eval_goals < 1:
            raise SettingsError("tune.eval_every_s must be > 0 and tune.eval_goals >= 1")
        if self.cpus_per_trial < 1 or self.gpus_per_trial < 0:
            raise SettingsError("tune.cpus_per_trial must be >= 1 and tune.gpus_per_trial >= 0")
        if any(n < 1 for n in self.data_sizes) or any(b <= 0 for b in self.betas):
            raise SettingsError("tune.data_sizes must be >= 1 and tune.betas > 0")

    @classmethod
    def from_preset(cls, preset, **overrides: Any) -> "TuneSettings":
        """The preset's ``tune`` section with the ``overrides`` that are not None (command-line flags)."""
        raw = {**preset.section("tune"), **{k: v for k, v in overrides.items() if v is not None}}
        return cls.from_section(raw, name="tune", where=preset.path)

    def bundles(self) -> list[dict[str, float]]:
        """One trial's placement group: the trial process (learner; the GPU) + CPU bundles
        (PPO's env runners, DPO's data workers)."""
        head: dict[str, float] = {"CPU": 1.0}
        if self.gpus_per_trial:
            head["GPU"] = float(self.gpus_per_trial)
        return [head] + [{"CPU": 1.0} for _ in range(self.cpus_per_trial - 1)]


# The settings class of each preset section (``shop`` and ``env``: the env's configs, read by
# shop_from_section / env_from_section), in the order a preset lists them.
SECTIONS: dict[str, Optional[type[Settings]]] = {
    "shop": None, "env": None, "model": ModelSettings, "demos": DemosSettings, "il": ILSettings,
    "generated": GeneratedSettings, "pairs": PairsSettings, "dpo": DPOSettings, "ppo": PPOSettings,
    "tune": TuneSettings,
}
# Sections a preset once had, and the keys that own their facts now.
MOVED_SECTIONS: dict[str, str] = {
    "eval": "set the main job's evaluation with tune.eval_split, tune.eval_goals and tune.eval_greedy",
}
