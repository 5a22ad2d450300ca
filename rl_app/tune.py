"""GPU-time-matched experiments under Ray Tune, and their report.

    python -m rl_app.tune dpo_vs_ppo --preset smoke                  # minutes on 2 CPU cores
    python -m rl_app.tune dpo_vs_ppo --preset paper --data-dir ../shared/webshop-data --seeds 3
    python -m rl_app.tune data_efficiency --preset smoke
    python -m rl_app.tune beta_sweep --preset smoke
    python -m rl_app.tune analyze results/dpo_vs_ppo-smoke           # any finished or partial run
    ray job submit --working-dir . -- python -m rl_app.tune dpo_vs_ppo --preset smoke --out /abs/results

Experiments:
  dpo_vs_ppo       DPO (demonstrations), DPO (generated trajectories) and PPO from one IL agent
  data_efficiency  DPO success vs number of demonstration trajectories (tune.data_sizes)
  beta_sweep       DPO over tune.betas x tune.loss_types, evaluated on the dev split

Shared preparation (demonstrations, the IL agent, generated trajectories, preference pairs)
runs first, once, and is reused by later runs of the same preset (``OUT/prep-<hash>``); it
is charged to no trial. Each trial then gets the same resources and the same training
budget (``tune`` section of the preset; ``--budget-s``, ``--seeds`` override it). Running the
same command again resumes an interrupted experiment (``Tuner.restore``); ``--restart``
starts it over. At the end the report (``report.md``, CSV tables, PNG plots) is written into
the experiment directory; TensorBoard: ``tensorboard --logdir OUT/NAME``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from rl_app.data.files import atomic_write_json
from rl_app.errors import InputError
from rl_app.experiments.spec import EXPERIMENTS

__all__ = ["main", "build_parser", "run_experiment"]

def _init_ray(num_cpus: Optional[int]) -> None:
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):  # a job on a cluster, or a user pointing at one
        ray.init(log_to_driver=False)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)


def run_experiment(experiment: str, *, preset_name: str = "smoke", out: str = "results", name: Optional[str] = None,
                   data_dir: Optional[str] = None, budget_s: Optional[float] = None, seeds: Optional[int] = None,
                   restart: bool = False, num_cpus: Optional[int] = None, verbose: int = 1,
                   **tune_overrides: Any) -> Path:
    """Prepare, run (or resume) the trials of ``experiment`` and write its report; returns its directory."""
    from ray import tune

    from rl_app.algorithms.notices import silence_harmless_notices
    from rl_app.machine import machine_line
    from rl_app.experiments.analysis import write_report
    from rl_app.experiments.prepare import prep_key, prepare
    from rl_app.experiments.spec import trial_specs
    from rl_app.settings import TuneSettings
    from rl_app.experiments.trainable import run_trial, trial_resources
    from rl_app.presets import load_preset
    from rl_app.shop.config import ShopConfig, load_shop

    if experiment not in EXPERIMENTS:
        raise InputError(f"unknown experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}")
    preset = load_preset(preset_name, data_dir=data_dir)
    overrides: dict[str, Any] = {"budget_s": budget_s, "seeds": seeds, **tune_overrides}
    if experiment == "beta_sweep":
        overrides["eval_split"] = "dev"  # hyperparameters are chosen on dev, never on test
    settings = TuneSettings.from_preset(preset, **overrides)
    storage = Path(out).absolute()
    name = name or f"{experiment}-{preset.name}"
    exp_dir = storage / name
    silence_harmless_notices()
    # Everything a user can get wrong is checked before Ray starts and before anything is written.
    load_shop(ShopConfig.from_dict(preset.shop_config()))
    if restart and exp_dir.exists():
        shutil.rmtree(exp_dir)

    _init_ray(num_cpus)
    evaluation = {"eval_split": settings.eval_split, "eval_goals": settings.eval_goals, "eval_greedy": settings.eval_greedy}
    prep_root = storage / f"prep-{prep_key(preset)}"
    t0 = time.perf_counter()
    prepared = prepare(preset, prep_root, **evaluation,
                       data_sizes=settings.data_sizes if experiment == "data_efficiency" else (),
                       num_workers=max(1, settings.cpus_per_trial), num_gpus=settings.gpus_per_trial)
    prep_s = time.perf_counter() - t0
    arms = trial_specs(experiment, settings, pair_sets=sorted(prepared.pairs))
    every_set = ["demos", "generated", *[f"demos_n{n}" for n in settings.data_sizes]]
    skipped = [a for a in trial_specs(experiment, settings, pair_sets=every_set) if a not in arms]

    exp_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(exp_dir / "experiment.json", {
        "experiment": experiment, "machine": machine_line(), "preset": preset.name, "preset_path": preset.path, "settings": dataclasses.asdict(settings),
        "arms": [dataclasses.asdict(a) for a in arms], "skipped_arms": [a.label for a in skipped],
        "prepared": prepared.to_dict(), "prep_s_this_run": prep_s, "dpo": preset.section("dpo"),
        "ppo": preset.section("ppo")}, default=str)

    trainable = tune.with_resources(run_trial, trial_resources(settings.bundles(), settings.placement_strategy))
    if tune.Tuner.can_restore(str(exp_dir)):
        print(f"resuming {exp_dir} (Tuner.restore)", flush=True)
        tuner = tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        param_space = {
            # the grid runs over arm labels (short names in Tune's tables); "arms" holds their settings
            "arm": tune.grid_search([a.label for a in arms]),
            "seed": tune.grid_search(list(range(settings.seeds))),
            "arms": {a.label: dataclasses.asdict(a) for a in arms},
            "prepared_root": prepared.root, "settings": dataclasses.asdict(settings),
            "dpo": preset.section("dpo"), "ppo": preset.section("ppo"),
        }
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(max_concurrent_trials=settings.max_concurrent_trials or None,
                                        trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
            # progress: Tune's own trial table (Ray 2.60's output engine ignores custom reporters)
            run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=verbose, failure_config=tune.FailureConfig(max_failures=1),
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    results = tuner.fit()
    errors = [str(r.error) for r in results if r.error is not None]
    report = write_report(exp_dir)
    print(report.read_text())
    print(f"report: {report}  (tables, plots beside it; TensorBoard: tensorboard --logdir {exp_dir})")
    if errors:
        raise RuntimeError(f"{len(errors)} trial(s) failed: {errors[0][:2000]}")
    return exp_dir


def _trial_name(trial) -> str:
    return f"{trial.config['arm']}_seed{trial.config['seed']}_{trial.trial_id}"


def build_parser() -> argparse.ArgumentParser:
    """The command line (also used by tests to check the entrypoints in cluster/)."""
    ap = argparse.ArgumentParser(prog="python -m rl_app.tune", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="EXPERIMENT|analyze")
    for experiment, help_text in EXPERIMENTS.items():
        p = sub.add_parser(experiment, help=help_text, description=help_text)
        p.add_argument("--preset", default="smoke", help="tune_configs/<name>.yaml or a YAML path (ci, smoke, "
                                                          "default, paper, gpu10); default smoke")
        p.add_argument("--data-dir", default=None, help="real WebShop data (presets with catalogue: webshop)")
        p.add_argument("--budget-s", type=float, default=None, help="training wall seconds per trial (overrides tune.budget_s)")
        p.add_argument("--seeds", type=int, default=None, help="seeds per arm (overrides tune.seeds)")
        p.add_argument("--out", default="results", help="storage directory (default ./results)")
        p.add_argument("--name", default=None, help="experiment name (default EXPERIMENT-PRESET)")
        p.add_argument("--restart", action="store_true", help="discard an earlier run of this name instead of resuming it")
        p.add_argument("--cpus-per-trial", type=int, default=None, help="overrides tune.cpus_per_trial")
        p.add_argument("--gpus-per-trial", type=float, default=None, help="overrides tune.gpus_per_trial")
        p.add_argument("--placement-strategy", choices=["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"],
                       default=None, help="a trial's bundles on few nodes (PACK) or many (SPREAD: env runners "
                                          "across nodes)")
        p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray started here (no cluster)")
    p = sub.add_parser("analyze", help="write the report of a finished or partial experiment directory")
    p.add_argument("directory")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "analyze":
        from rl_app.experiments.analysis import write_report

        report = write_report(Path(args.directory))
        print(report.read_text())
        print(f"report: {report}")
        return 0
    run_experiment(args.command, preset_name=args.preset, out=args.out, name=args.name, data_dir=args.data_dir,
                   budget_s=args.budget_s, seeds=args.seeds, restart=args.restart, num_cpus=args.num_cpus,
                   cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                   placement_strategy=args.placement_strategy)
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
