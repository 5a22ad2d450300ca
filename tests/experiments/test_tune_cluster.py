"""`python -m rl_app.tune` for real, in subprocesses with their own Ray (a test that
kills a driver or starts a cluster must not share the session of the others):

* an experiment whose driver is killed mid-run resumes to completion (Tuner.restore);
* `ray job submit` to a local two-node cluster (cluster/local_two_node.sh) runs the
  experiment, places PPO's env runners on both nodes and writes the report.

Both use the ci preset and share its prepared data (the second run reuses the first's).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from rl_app.experiments.analysis import load_trials

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(ray_tmp: Path) -> dict[str, str]:
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_TMPDIR": str(ray_tmp),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    return env


def _kill_processes_under(path: Path) -> None:
    """Kill what a killed driver left behind: every process with ``path`` on its command line
    or as its RAY_TMPDIR (Ray renames some processes, hiding the command line)."""
    marker = f"RAY_TMPDIR={path}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            if str(path).encode() in (proc / "cmdline").read_bytes() or marker in environ:
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def _snapshot_has_checkpoint(exp: Path) -> bool:
    snapshots = sorted(exp.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    try:
        return bool(snapshots) and "checkpoint_000000" in snapshots[-1].read_text()
    except OSError:  # being replaced
        return False


@pytest.fixture(scope="module")
def tune_out(tmp_path_factory):
    return tmp_path_factory.mktemp("tune")


def _check_report(exp_dir: Path, budget_s: float) -> None:
    trials, curves = load_trials(exp_dir)
    assert sorted(trials["arm"]) == ["dpo_demos", "dpo_generated", "ppo"]
    assert trials["complete"].all(), trials
    assert ((trials["score"] >= 0) & (trials["score"] <= 100)).all()
    assert ((trials["success_rate"] >= 0) & (trials["success_rate"] <= 1)).all()
    assert (trials["train_s"] >= budget_s).all() and (trials["learner_s"] > 0).all()
    assert (trials["learner_s"] < trials["train_s"]).all()  # learner time is part of the budget clock
    report = (exp_dir / "report.md").read_text()
    for arm in ("IL start", "dpo_demos", "dpo_generated", "ppo"):
        assert f"| {arm} |" in report
    for name in ("summary.csv", "trials.csv", "curves.csv", "success_vs_train_s.png", "score_vs_train_s.png"):
        assert (exp_dir / name).stat().st_size > 0
    assert list(exp_dir.glob("*/events.out.tfevents.*")), "no TensorBoard logs"


def test_resume_after_killing_the_driver(tune_out):
    budget = 40.0
    ray_tmp = Path(tempfile.mkdtemp(prefix="rlres", dir="/tmp"))
    exp = tune_out / "resume"
    cmd = [sys.executable, "-m", "rl_app.tune", "dpo_vs_ppo", "--preset", "ci", "--out", str(tune_out),
           "--name", "resume", "--budget-s", str(budget), "--num-cpus", "2"]
    log = (tune_out / "resume_1.log").open("w")
    driver = subprocess.Popen(cmd, cwd=REPO, env=_env(ray_tmp), stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        # wait until Tune's experiment snapshot records a trial checkpoint (a checkpoint
        # directory alone is not enough: Tune.restore resumes from the snapshot)
        deadline = time.time() + 900
        while time.time() < deadline and driver.poll() is None and not _snapshot_has_checkpoint(exp):
            time.sleep(0.5)
        assert driver.poll() is None, (tune_out / "resume_1.log").read_text()[-3000:]
        assert _snapshot_has_checkpoint(exp), "no checkpoint within the deadline"
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and everything in its process group
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        _kill_processes_under(ray_tmp)
    checkpointed = {p.parent.name for p in exp.glob("*/checkpoint_*")}
    before, _ = load_trials(exp)
    assert not before["complete"].all(), "the experiment finished before the driver was killed"
    interrupted = checkpointed & set(before.loc[~before["complete"], "trial"])
    assert interrupted, "no trial was killed between two checkpoints: nothing to resume from"

    second = subprocess.run(cmd, cwd=REPO, env=_env(ray_tmp), capture_output=True, text=True, timeout=1200)
    _kill_processes_under(ray_tmp)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resuming" in second.stdout
    trials, _ = load_trials(exp)
    _check_report(exp, budget)
    # a trial killed after its first checkpoint carried on from it (its clock too), not from scratch
    resumed = trials[trials["trial"].isin(interrupted)]
    assert len(resumed) == len(interrupted) and (resumed["resumed"] >= 1).all(), (interrupted, trials)


def test_job_submission_on_a_two_node_cluster(tune_out):
    ray_tmp = Path(tempfile.mkdtemp(prefix="rl2n", dir="/tmp"))
    dashboard = _free_port()
    env = {**_env(ray_tmp), "RAY": str(BIN / "ray"), "RL_APP_RAY_TMPDIR": str(ray_tmp),
           "RL_APP_HEAD_PORT": str(_free_port()), "RL_APP_DASHBOARD_PORT": str(dashboard),
           "RL_APP_HEAD_AGENT_PORT": str(_free_port()), "RL_APP_WORKER_AGENT_PORT": str(_free_port()),
           "RL_APP_HEAD_CPUS": "2", "RL_APP_WORKER_CPUS": "2"}
    script = str(REPO / "cluster" / "local_two_node.sh")
    try:
        started = subprocess.run(["bash", script, "start"], env=env, capture_output=True, text=True, timeout=300)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        assert "node_worker" in started.stdout and "4.0 CPU" in started.stdout  # two nodes, 2 + 2 CPUs
        # 4 CPUs per trial spread over both nodes: PPO's 3 env runners cannot all sit on one node
        submit = [str(BIN / "ray"), "job", "submit", "--address", f"http://127.0.0.1:{dashboard}",
                  "--working-dir", str(REPO), "--", "python", "-m", "rl_app.tune", "dpo_vs_ppo", "--preset", "ci",
                  "--out", str(tune_out), "--name", "job", "--cpus-per-trial", "4", "--placement-strategy", "SPREAD"]
        for _attempt in range(12):  # the head's job agent may need a few seconds after `ray start`
            job = subprocess.run(submit, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
            if "No available agent" not in job.stdout + job.stderr:
                break
            time.sleep(5)
        assert job.returncode == 0, job.stdout[-4000:] + job.stderr[-2000:]
        assert "succeeded" in job.stdout + job.stderr
    finally:
        subprocess.run(["bash", script, "stop"], env=env, capture_output=True, timeout=120)
        _kill_processes_under(ray_tmp)
    exp = tune_out / "job"
    _check_report(exp, budget_s=8.0)
    trials, _ = load_trials(exp)
    ppo = trials.set_index("arm").loc["ppo"]
    assert ppo["env_runner_nodes"] == 2, "PPO's env runners were not placed on both nodes"
    settings = json.loads((exp / "experiment.json").read_text())["settings"]
    assert settings["cpus_per_trial"] == 4 and settings["placement_strategy"] == "SPREAD"
