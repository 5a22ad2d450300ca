"""The atomic writers and the one owner of renames and of the summary file's name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import rl_app
from rl_app.data import files
from rl_app.data.files import (SUMMARY_FILE, atomic_write, atomic_write_dir, atomic_write_json, atomic_write_text,
                               read_summary)

PACKAGE = Path(rl_app.__file__).parent
OWNER = Path(files.__file__).relative_to(PACKAGE).as_posix()


def _sources() -> dict[str, str]:
    return {p.relative_to(PACKAGE).as_posix(): p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))}


def test_only_the_writer_module_renames_files():
    """A rename onto a result path is how a write becomes atomic: one module does it."""
    pattern = re.compile(r"\bos\.(replace|rename)\(")
    renaming = sorted(name for name, text in _sources().items() if pattern.search(text))
    assert renaming == [OWNER]


def test_only_its_owner_spells_the_summary_file_name():
    literal = re.compile(r"""["']_summary\.json["']""")
    spelling = sorted(name for name, text in _sources().items() if literal.search(text))
    assert spelling == [OWNER]
    assert SUMMARY_FILE == "_summary.json"  # the name data sets on disk already carry


class Boom(RuntimeError):
    pass


def _leftovers(parent: Path, keep: tuple[str, ...] = ()) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name not in keep)


def test_file_write_replaces_the_target_only_on_success(tmp_path):
    target = tmp_path / "sub" / "result.json"
    assert atomic_write_json(target, {"a": 1}) == target  # the parent is created
    assert target.read_text() == '{\n  "a": 1\n}\n'

    def fails(tmp: Path) -> None:
        tmp.write_text("half")
        raise Boom

    with pytest.raises(Boom):
        atomic_write(target, fails)
    assert json.loads(target.read_text()) == {"a": 1}  # the previous version, whole
    assert _leftovers(target.parent) == ["result.json"]  # and no temporary left
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and _leftovers(target.parent) == ["result.json"]


def test_failed_file_write_leaves_nothing(tmp_path):
    def fails(tmp: Path) -> None:
        tmp.write_bytes(b"\x00" * 10)
        raise Boom

    with pytest.raises(Boom):
        atomic_write(tmp_path / "out.bin", fails)
    assert _leftovers(tmp_path) == []


def test_directory_write_is_all_or_nothing(tmp_path):
    target = tmp_path / "data"

    def write(files_: dict[str, str]):
        def fill(tmp: Path) -> None:
            assert tmp.is_dir() and tmp.parent == tmp_path and tmp.name.startswith(".")
            for name, text in files_.items():
                (tmp / name).write_text(text)
        return fill

    atomic_write_dir(target, write({"a.txt": "1", "b.txt": "2"}))
    assert _leftovers(target) == ["a.txt", "b.txt"]

    def fails(tmp: Path) -> None:
        (tmp / "c.txt").write_text("3")
        raise Boom

    with pytest.raises(Boom):
        atomic_write_dir(target, fails)
    assert _leftovers(target) == ["a.txt", "b.txt"]  # the old directory, untouched
    assert _leftovers(tmp_path) == ["data"]  # no temporary sibling left

    atomic_write_dir(target, write({"c.txt": "3"}))  # replaced as a whole: a.txt and b.txt go
    assert _leftovers(target) == ["c.txt"] and _leftovers(tmp_path) == ["data"]

    atomic_write_dir(target, write({"d.txt": "4"}), keep_existing=True)  # someone finished it first
    assert _leftovers(target) == ["c.txt"] and _leftovers(tmp_path) == ["data"]

    with pytest.raises(Boom):
        atomic_write_dir(tmp_path / "new", fails)
    assert _leftovers(tmp_path) == ["data"]  # a failed first write leaves no target


def test_read_summary_of_a_directory_or_one_of_its_files(tmp_path):
    assert read_summary(tmp_path) is None
    atomic_write_json(tmp_path / SUMMARY_FILE, {"shop_config": {"catalogue": "synthetic"}})
    (tmp_path / "part-0.parquet").write_bytes(b"")
    assert read_summary(tmp_path) == {"shop_config": {"catalogue": "synthetic"}}
    assert read_summary(tmp_path / "part-0.parquet") == read_summary(tmp_path)
    assert read_summary(tmp_path / "missing") is None
