"""Writing result files so that readers never see half of one, and the data sets' summary file.

Every file or directory rl_app writes for others to read (data sets, pair sets, checkpoints,
caches, evaluation and benchmark results) is written to a temporary sibling first and renamed
into place when complete: the rename is atomic within one directory on POSIX, so a crash
leaves either the previous version or the new one, never a mix; the temporary sibling is
removed when writing fails. The temporary names start with ``.``, which ``*.parquet`` listings
and Ray Data skip.

A data set directory (trajectories, pairs, generated episodes) may hold :data:`SUMMARY_FILE`:
JSON facts about how it was made (counts, the shop it was played in, the reference policy).
Its leading underscore makes pyarrow and Ray Data skip it when they read the directory.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Optional, Union

__all__ = ["SUMMARY_FILE", "atomic_write", "atomic_write_text", "atomic_write_json", "atomic_write_dir",
           "read_summary"]

SUMMARY_FILE = "_summary.json"

PathLike = Union[str, os.PathLike]


def _sibling(path: Path, tag: str) -> Path:
    # A random suffix: two processes writing the same target never share a temporary.
    return path.with_name(f".{path.name}.{tag}-{uuid.uuid4().hex[:8]}")


def atomic_write(path: PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` (it creates the file ``tmp``), then rename ``tmp`` onto ``path``.

    An existing ``path`` is replaced only once ``write`` has returned; if it raises, ``path`` is
    left as it was and ``tmp`` is removed. The parent directory is created if missing.
    ``tmp`` does not end in ``path``'s suffix: writers that infer a format from the name
    (``fig.savefig``) need it passed explicitly.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    """``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: PathLike, data: Any, **dumps_kwargs: Any) -> Path:
    """``json.dumps(data, indent=2, **dumps_kwargs)`` plus a newline to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(data, **{"indent": 2, **dumps_kwargs}) + "\n")


def atomic_write_dir(path: PathLike, write: Callable[[Path], None], *, keep_existing: bool = False) -> Path:
    """Call ``write(tmp)`` on a new empty sibling directory, then rename it to ``path``.

    An existing ``path`` is swapped out only after ``write`` has returned (and put back if the
    final rename fails), then deleted; with ``keep_existing``, an existing ``path`` (another
    process finished the same directory meanwhile) is kept and the new copy discarded. If
    ``write`` raises, ``path`` is left as it was and ``tmp`` is removed.

    Returns ``path`` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    tmp.mkdir()
    try:
        write(tmp)
        if path.exists() and keep_existing:
            shutil.rmtree(tmp)
        else:
            _replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _replace_dir(new: Path, path: Path) -> None:
    """Move the finished ``new`` to ``path``; an existing ``path`` is swapped out, then removed."""
    if not path.exists():
        os.replace(new, path)
        return
    old = _sibling(path, "old")
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)  # put the previous version back
        raise
    shutil.rmtree(old, ignore_errors=True)


def read_summary(path: PathLike) -> Optional[dict[str, Any]]:
    """The :data:`SUMMARY_FILE` of a data set (its directory, or one of its files), or None."""
    path = Path(path)
    summary = path / SUMMARY_FILE if path.is_dir() else path.parent / SUMMARY_FILE if path.is_file() else None
    return json.loads(summary.read_text()) if summary is not None and summary.is_file() else None
