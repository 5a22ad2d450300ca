"""Shared preparation of an experiment, done once and charged to no trial (it is the same for every arm).

Stages, each skipped when its output exists (so an interrupted or repeated experiment reuses
them): demonstrations on train goals -> the IL checkpoint (also evaluated: the start point
of every curve) -> generated trajectories of the IL agent (reward filter, loop pruning,
attempt cap) -> step-level preference pairs against the IL reference, for demonstrations,
generated trajectories and the demonstration subsets ``data_efficiency`` needs.

Everything lands in one directory keyed by the preset's stage settings (``prep-<hash>``),
with ``prepared.json`` recording each stage's wall seconds, counts and paths.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from rl_app.data.files import SUMMARY_FILE, atomic_write_json
from rl_app.data.pairs import subset_pairs
from rl_app.env.webshop_env import WebShopEnvConfig
from rl_app.presets import Preset
from rl_app.settings import EvalSettings, ILSettings, ObservationSettings

__all__ = ["Prepared", "prepare", "prep_key", "il_stage_settings"]

PREPARED_FILE = "prepared.json"
# Preset sections the prepared data depend on (not dpo/ppo/tune: those are per trial).
_PREP_SECTIONS = ("shop", "env", "model", "demos", "il", "generated", "pairs")
# The episode settings the data stages take from the env section, when it sets them (what the
# demonstrations' and generated trajectories' summaries record).
_ENV_TEXT_KEYS = ("max_steps", "k_max", "num_prev_actions")


@dataclasses.dataclass(frozen=True)
class Prepared:
    """Paths and facts every trial needs."""

    root: str
    shop: dict[str, Any]            # ShopConfig dict (absolute data_dir)
    env: dict[str, Any]             # flat WebShopEnv config (shop + env sections)
    il_policy: str                  # the IL agent: every trial's start and DPO's reference
    il_eval: dict[str, Any]         # its evaluation (eval/score, eval/success_rate, goals, split)
    pairs: dict[str, str]           # pair set name -> directory ("demos", "generated", "demos_n100")
    stages: dict[str, dict[str, Any]]
    # the demonstrations' stored frozen rows (cached-encoder mode), read by every later pass
    # that runs the IL agent or its successors: evaluation, generation, reference, PPO's runners
    frozen_cache: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, root: str | os.PathLike) -> "Prepared":
        return cls(**json.loads((Path(root) / PREPARED_FILE).read_text()))


def _env_as_built(env: WebShopEnvConfig) -> dict[str, Any]:
    """The ``env`` section's settings as built: the episode's and the tokenized env's own (defaults included)."""
    own = {f.name: getattr(env, f.name) for f in dataclasses.fields(env) if f.name not in ("shop", "episode")}
    return {**dataclasses.asdict(env.episode), **own}


def prep_key(preset: Preset) -> str:
    """A short hash of everything the prepared data depend on (not the evaluation settings:
    the IL agent's evaluation is kept per split / goals / mode inside the prepared dir).

    Each section enters as its settings were built, defaults included: spelling out a default
    keeps the key, a changed default is a new key (a new IL agent)."""
    from rl_app.env.observation import SEGMENTS_VERSION

    payload: dict[str, Any] = {name: dataclasses.asdict(preset.settings(name)) for name in _PREP_SECTIONS}
    env = preset.settings("env")
    payload["env"] = _env_as_built(env)
    if env.observation_layout == "segments":  # its rows are the model's input
        payload["segments_version"] = SEGMENTS_VERSION
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return digest[:10]


def _stage(stages: dict, name: str, done: Callable[[], bool], make: Callable[[], dict[str, Any]],
           log: Callable[[str], None]) -> None:
    if done() and name in stages:
        log(f"prepare: {name} exists, reused")
        return
    log(f"prepare: {name} ...")
    start = time.perf_counter()
    facts = make()
    stages[name] = {**facts, "wall_s": round(time.perf_counter() - start, 2)}
    log(f"prepare: {name} done in {stages[name]['wall_s']:.1f} s")


def _frozen_cache(data: Path, policy: Path, env: WebShopEnvConfig, reuse: Sequence[str] = ()) -> dict[str, Any]:
    """The frozen-row cache of a pair set (shared preparation: no DPO trial pays for it)."""
    from rl_app.data.frozen_cache import build_frozen_cache
    from rl_app.env.observation import ObservationEncoder
    from rl_app.policy.checkpoint import load_checkpoint_tokenizer, read_choice_checkpoint

    encoder = ObservationEncoder(load_checkpoint_tokenizer(read_choice_checkpoint(policy)),
                                 k_max=env.episode.k_max, max_action_tokens=env.max_action_tokens, layout="segments")
    return {"path": str(build_frozen_cache([data], encoder, {"checkpoint": str(policy)}, reuse=reuse,
                                             log=lambda _m: None))}


def il_stage_settings(preset: Preset, num_gpus: float = 0) -> ILSettings:
    """The IL stage's settings: the preset's ``il`` section; with ``num_gpus``, one remote
    learner with that many GPUs (Ray places it on a GPU node, wherever the driver runs)."""
    settings = preset.settings("il")
    if num_gpus:
        settings = dataclasses.replace(settings, num_learners=1, gpus_per_learner=float(num_gpus))
    return settings


def prepare(preset: Preset, root: str | os.PathLike, *, eval_split: str, eval_goals: int, eval_greedy: bool = True,
            data_sizes: Sequence[int] = (), num_workers: int = 2, num_gpus: float = 0,
            log: Optional[Callable[[str], None]] = print) -> Prepared:
    """Make (or reuse) everything the trials share, under ``root``; Ray must be running.

    ``num_gpus`` (a trial's GPUs): the IL stage's learner and the pair stages' reference pass
    each take that many (on CPU otherwise); demonstrations, generated rollouts and evaluation
    run on CPU workers."""
    from rl_app.algorithms.il.train import train as train_il
    from rl_app.data.demos import generate_demonstrations
    from rl_app.data.frozen_cache import cache_root
    from rl_app.data.generated import generate_trajectories
    from rl_app.data.pairs import build_step_pairs
    from rl_app.eval.evaluate import evaluate_checkpoint

    log = log or (lambda _msg: None)
    root = Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    stages: dict[str, dict[str, Any]] = {}
    if (root / PREPARED_FILE).is_file():
        stages = dict(json.loads((root / PREPARED_FILE).read_text()).get("stages", {}))

    env = preset.env_config()
    shop = preset.shop_config()
    if shop.get("catalogue") == "webshop":
        from rl_app.shop.catalogue import resolve_webshop_data_dir

        shop["data_dir"] = env["data_dir"] = str(resolve_webshop_data_dir(shop.get("data_dir")))
    env_settings = preset.settings("env")
    segments = env_settings.observation_layout == "segments"
    text_env = {k: env[k] for k in _ENV_TEXT_KEYS if k in env}
    demos_cfg, gen_cfg, pair_cfg = preset.settings("demos"), preset.settings("generated"), preset.settings("pairs")
    demos, il, generated = root / "demos", root / "il", root / "generated"

    def save() -> None:
        atomic_write_json(root / PREPARED_FILE, {"root": str(root), "stages": stages}, default=str)

    def make_demos() -> dict[str, Any]:
        summary = generate_demonstrations(shop, num_goals=demos_cfg.num_goals, seed=demos_cfg.seed,
                                          num_workers=num_workers, out=demos, env_config=text_env,
                                          overwrite=True, progress=False)
        return {"episodes": summary.episodes_written, "steps": summary.rows_written,
                "success_rate": summary.stats.success_rate, "path": str(demos)}

    _stage(stages, "demos", lambda: (demos / SUMMARY_FILE).is_file(), make_demos, log)
    save()

    def make_il() -> dict[str, Any]:
        summary = train_il([str(demos)], il, settings=il_stage_settings(preset, num_gpus),
                           model=preset.settings("model"), observations=ObservationSettings.of_env(env_settings),
                           evaluation=EvalSettings(goals=0))
        return {"policy": str(il / "policy"), "gradient_updates": summary["gradient_updates"],
                "learner_s": summary["learner_s"], "gpus": num_gpus}

    _stage(stages, "il", lambda: (il / "eval.json").is_file(), make_il, log)
    save()
    # the IL stage stored the demonstrations' frozen rows beside them (cached-encoder mode)
    demo_rows = cache_root(demos)
    frozen_cache = str(demo_rows) if segments and demo_rows.is_dir() else None

    # the start point of every curve, evaluated exactly as the trials evaluate
    mode = "greedy" if eval_greedy else "sampled"
    il_eval_stage = f"il_eval_{eval_split}_{eval_goals}_{mode}"
    _stage(stages, il_eval_stage, lambda: il_eval_stage in stages,
           lambda: evaluate_checkpoint(il / "policy", shop=shop, env=env, split=eval_split, n_goals=eval_goals,
                                       greedy=eval_greedy, seed=0, label="il", out=il / il_eval_stage,
                                       frozen_cache=frozen_cache, keep_rows=frozen_cache), log)
    save()

    def make_generated() -> dict[str, Any]:
        summary = generate_trajectories(il / "policy", shop, generated,
                                        num_episodes=int(gen_cfg.num_episodes), max_attempts=int(gen_cfg.max_attempts),
                                        min_reward=float(gen_cfg.min_reward),
                                        env_config={**text_env, "split": "train"}, seed=int(gen_cfg.seed),
                                        num_workers=num_workers, progress=False, frozen_cache=frozen_cache)
        log(f"prepare: generated {summary.line()}")
        return {**dataclasses.asdict(summary), "yield": summary.yield_rate, "path": str(generated)}

    _stage(stages, "generated", lambda: (generated / SUMMARY_FILE).is_file(), make_generated, log)
    save()

    pairs: dict[str, str] = {}
    sources = {"demos": demos}
    if stages["generated"].get("kept", 0) > 0:
        sources["generated"] = generated
    else:
        log("prepare: no generated trajectory passed the reward filter; DPO on generated trajectories is skipped")
    for name, source in sources.items():
        out = root / f"pairs_{name}"

        def make_pairs(source=source, out=out) -> dict[str, Any]:
            summary = build_step_pairs(source, il / "policy", out, num_rejected=int(pair_cfg.num_rejected),
                                       seed=int(pair_cfg.seed), rejected=pair_cfg.rejected,
                                       only_success=bool(pair_cfg.only_success), use_ray=True,
                                       num_gpus=num_gpus, overwrite=True, frozen_cache=frozen_cache)
            return {**dataclasses.asdict(summary), "path": str(out)}

        _stage(stages, f"pairs_{name}", lambda out=out: (out / SUMMARY_FILE).is_file(), make_pairs, log)
        pairs[name] = str(out)
        save()
        if segments:
            _stage(stages, f"frozen_cache_{name}", lambda name=name: f"frozen_cache_{name}" in stages,
                   lambda out=out: _frozen_cache(out, il / "policy", env_settings,
                                                 reuse=[frozen_cache] if frozen_cache else []),
                   log)
            save()
    for n in data_sizes:
        out = root / f"pairs_demos_n{n}"
        _stage(stages, f"pairs_demos_n{n}", lambda out=out: (out / SUMMARY_FILE).is_file(),
               lambda n=n, out=out: {**subset_pairs(root / "pairs_demos", out, n), "path": str(out)}, log)
        pairs[f"demos_n{n}"] = str(out)
        save()

    prepared = Prepared(root=str(root), shop=shop, env=env, il_policy=str(il / "policy"),
                        il_eval={**stages[il_eval_stage], "split": eval_split},
                        pairs=pairs, stages=stages, frozen_cache=frozen_cache)
    atomic_write_json(root / PREPARED_FILE, prepared.to_dict(), default=str)
    return prepared
