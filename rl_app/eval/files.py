"""Writing result files so that readers never see half of one: a temporary sibling, then a rename."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable, Union

__all__ = ["atomic_write", "atomic_write_text"]

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)``, then rename ``tmp_path`` onto ``path`` (same directory, so
    the rename is atomic on POSIX); the temporary file is removed if ``write`` fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
