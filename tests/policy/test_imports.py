"""Which package imports which: the env tokenizes without model code, and the checkpoint
module is the one that knows both the files and the models (no import loop)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import rl_app

PACKAGE = Path(rl_app.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_env_encoder_imports_no_policy_code():
    code = ("import sys, rl_app.env.observation as o; o.ObservationEncoder('tiny', k_max=2).encode('s', ['a']); "
            "print(sorted(m for m in sys.modules if m.startswith('rl_app.policy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})
    assert out.stdout.strip() == "[]"


def test_models_do_not_import_their_checkpoint_files():
    """Saving and loading live in rl_app.policy.checkpoint, which imports the models."""
    for model in ("choice_model.py", "segment_model.py", "models.py", "encoder.py"):
        assert "rl_app.policy.checkpoint" not in _imported_modules(PACKAGE / "policy" / model), model
    assert "rl_app.policy.models" in _imported_modules(PACKAGE / "policy" / "checkpoint.py")
