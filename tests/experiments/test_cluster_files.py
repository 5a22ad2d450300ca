"""cluster/: the `ray up` YAML and the KubeRay RayJob parse, run our entrypoint, and offer
what the paper preset's trials request."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from rl_app.settings import TuneSettings
from rl_app.presets import load_preset
from rl_app.tune import build_parser

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"


def _entrypoint_args(command: str):
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "rl_app.tune"], command
    args = build_parser().parse_args(argv[3:])
    preset = load_preset(args.preset)  # the preset exists and validates
    return args, TuneSettings.from_preset(preset)


def _k8s_quantity(value: str) -> float:
    return float(value[:-1]) / 1000 if str(value).endswith("m") else float(value)


def test_paper_preset_asks_for_one_gpu_per_trial():
    settings = TuneSettings.from_preset(load_preset("paper"))
    assert settings.gpus_per_trial == 1 and settings.seeds >= 3
    assert settings.bundles()[0] == {"CPU": 1.0, "GPU": 1.0} and len(settings.bundles()) == settings.cpus_per_trial


def _commented_entrypoint(text: str) -> str:
    """The documented `... -- python -m rl_app.tune ...` command of a YAML's header comment."""
    lines = [line.lstrip("#").strip().rstrip("\\").strip() for line in text.splitlines() if line.startswith("#")]
    start = next(i for i, line in enumerate(lines) if line.startswith("python -m rl_app.tune"))
    command = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("--"):
            break
        command.append(line)
    return " ".join(command)


def test_ray_up_yaml():
    from ray.autoscaler._private.util import prepare_config, validate_config

    text = (CLUSTER / "ray_up_gpu.yaml").read_text()
    config = yaml.safe_load(text)
    validate_config(prepare_config(dict(config)))  # Ray's own cluster-config schema
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type", "setup_commands",
                "head_start_ray_commands", "worker_start_ray_commands"):
        assert key in config, key
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    gpu_nodes = {name: t for name, t in types.items() if t["resources"].get("GPU", 0) > 0}
    assert gpu_nodes, "no GPU node type"
    args, settings = _entrypoint_args(_commented_entrypoint(text))
    assert args.command == "dpo_vs_ppo" and args.preset == "paper"
    for node in gpu_nodes.values():  # a trial fits on one GPU worker
        assert node["resources"]["GPU"] >= settings.gpus_per_trial
        assert node["resources"]["CPU"] >= settings.cpus_per_trial
    workers = sum(t.get("max_workers", 0) for t in gpu_nodes.values())
    assert workers <= config["max_workers"]
    setup = " && ".join(config["setup_commands"])
    assert setup.index("torch==2.13.0") < setup.index("pip install -e"), "torch must be installed first"
    assert all("RAY_AUTH_MODE=token" in c for c in config["head_start_ray_commands"] if "ray start" in c)


def test_kuberay_rayjob():
    docs = list(yaml.safe_load_all((CLUSTER / "rayjob.yaml").read_text()))
    (job,) = [d for d in docs if d and d.get("kind") == "RayJob"]
    assert job["apiVersion"] == "ray.io/v1"
    args, settings = _entrypoint_args(job["spec"]["entrypoint"])
    assert args.command == "dpo_vs_ppo" and args.preset == "paper"
    spec = job["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == "2.60.0"
    (group,) = spec["workerGroupSpecs"]
    (container,) = group["template"]["spec"]["containers"]
    limits = container["resources"]["limits"]
    assert int(limits["nvidia.com/gpu"]) >= settings.gpus_per_trial
    assert _k8s_quantity(limits["cpu"]) >= settings.cpus_per_trial
    assert float(group["rayStartParams"]["num-gpus"]) == float(limits["nvidia.com/gpu"])
    assert float(group["rayStartParams"]["num-cpus"]) <= _k8s_quantity(limits["cpu"])
    # the data dir and results live on a volume every pod mounts at the same path
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert any(args.data_dir.startswith(m) for m in mounts) and any(args.out.startswith(m) for m in mounts)


@pytest.mark.parametrize("bad", ["python -m rl_app.tune nonsense", "python -m rl_app.tune dpo_vs_ppo --preset nope"])
def test_entrypoint_check_can_fail(bad):
    with pytest.raises((SystemExit, FileNotFoundError)):
        _entrypoint_args(bad)
