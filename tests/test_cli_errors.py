"""Expected user errors end a command line with one ``error: ...`` line and exit status 2.

Run through the real command lines (``python -m ...`` in a subprocess): no traceback, nothing
written, Ray not started; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rl_app.errors import EXIT_USER_ERROR, InputError, one_line, run_command

pytestmark = pytest.mark.slow


def _run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "RL_APP_DEBUG": "", "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "")}
    env.pop("RL_APP_WEBSHOP_DATA", None)
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=240, env=env,
                          cwd=cwd)


def _assert_one_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode == EXIT_USER_ERROR, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-2000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def test_unknown_preset():
    _assert_one_line(_run("rl_app.tune", "dpo_vs_ppo", "--preset", "nonexistent"),
                     "preset 'nonexistent' not found", "known: ci, smoke")


def test_bad_data_dir_is_refused_before_ray_starts_and_writes_nothing(tmp_path):
    out = tmp_path / "results"
    proc = _run("rl_app.tune", "dpo_vs_ppo", "--preset", "cpu60", "--data-dir", str(tmp_path / "nope"),
                "--out", str(out))
    _assert_one_line(proc, "WebShop data directory", "does not exist")
    assert "Started a local Ray instance" not in proc.stderr + proc.stdout
    assert not out.exists()


@pytest.mark.parametrize("section, key", [("model", "trainable_layer"), ("dpo", "betta")])
def test_misspelt_preset_key_names_file_section_and_key(tmp_path, section, key):
    preset = tmp_path / "mine.yaml"
    preset.write_text(f"{section}:\n  {key}: 1\n")
    proc = _run("rl_app.tune", "dpo_vs_ppo", "--preset", str(preset), "--out", str(tmp_path / "r"))
    _assert_one_line(proc, "mine.yaml", f"'{key}'", f"'{section}'")
    assert "Started a local Ray instance" not in proc.stderr + proc.stdout
    assert not (tmp_path / "r").exists()


def test_missing_experiment_directory():
    _assert_one_line(_run("rl_app.tune", "analyze", "/nonexistent/experiment"), "no such experiment directory")


def test_checkpoint_that_is_not_one(tmp_path):
    (tmp_path / "junk.txt").write_text("x")
    _assert_one_line(_run("rl_app.eval.evaluate", "--agent", "policy", "--checkpoint", str(tmp_path),
                          "--out", str(tmp_path / "ev")), str(tmp_path))
    assert not (tmp_path / "ev").exists()


def test_missing_training_data(tmp_path):
    _assert_one_line(_run("rl_app.algorithms.il.train", "--data", str(tmp_path / "none"), "--out",
                          str(tmp_path / "il")), "no trajectory data at")


def test_malformed_catalogue_names_file_and_line(tmp_path):
    (tmp_path / "resources_1k").mkdir()
    (tmp_path / "resources_1k" / "documents.jsonl").write_bytes(b'{"product": "caf\xe9"}\n')
    (tmp_path / "items_ins_v2_1000.json").write_text(json.dumps({}))
    _assert_one_line(_run("rl_app.play", "--catalogue", "webshop", "--data-dir", str(tmp_path)),
                     "documents.jsonl:1: not UTF-8 text")


def test_bad_flag_value_is_one_line_too():
    _assert_one_line(_run("rl_app.tune", "dpo_vs_ppo", "--seeds", "x"),
                     "argument --seeds: invalid int value: 'x'", "see python -m rl_app.tune dpo_vs_ppo --help")


def test_debug_shows_the_traceback():
    proc = _run("rl_app.tune", "dpo_vs_ppo", "--preset", "nonexistent", "--debug")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "FileNotFoundError" in proc.stderr


# ----------------------------------------------------------------------------- in process
def test_unexpected_errors_keep_their_traceback(capsys):
    def main(argv):
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        run_command(main, [])
    assert run_command(lambda argv: (_ for _ in ()).throw(InputError("bad\nvalue; fix it")), []) == 2
    assert capsys.readouterr().err == "error: bad value; fix it\n"


def test_one_line_of_oserrors_and_ray_task_errors():
    missing = FileNotFoundError(2, "No such file or directory", "/x/y")
    assert one_line(missing) == "/x/y: no such file or directory"

    class TaskError(Exception):  # the shape of ray.exceptions.RayTaskError: the user's error as .cause
        def __init__(self, cause):
            super().__init__("ray::Task() (pid=1)\nTraceback ...\n" + str(cause))
            self.cause = cause

    assert one_line(TaskError(InputError("bad rows"))) == "bad rows"
