"""The repository stands alone: no comment, docstring or README cites a design note kept outside it.

Such a note is not shipped with the code, so a reader who meets "see <note> 9" cannot follow it;
the reason has to be stated where it applies. This test greps the shipped text for the names of
those notes and fails naming file:line.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("rl_app", "tests", "tune_configs", "cluster", ".ci", "README.md", "pyproject.toml")

# The note names, split so that this file does not match its own patterns. Whole upper-case
# words only: ``_ARCHITECTURE_KEYS`` or the English word "decisions" are not citations.
_NOTE_NAMES = ["DECI" + "SIONS", "ST" + "YLE", "RLLIB" + "_NOTES", "ARCHI" + "TECTURE", "ANC" + "HORS"]
CITATION = re.compile(r"\b(?:" + "|".join(_NOTE_NAMES) + r")\b|" + re.escape("shared/" + "design"))

def _shipped_text_files():
    for name in SCANNED:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            if "__pycache__" in f.parts or f.suffix in {".pyc", ".parquet", ".safetensors", ".bin"}:
                continue
            try:
                yield f.relative_to(ROOT).as_posix(), f.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def citations_outside_the_repository() -> list[str]:
    """``file:line: text`` of every line that cites a note kept outside the repository."""
    found = []
    for rel, text in _shipped_text_files():
        for number, line in enumerate(text.splitlines(), start=1):
            if CITATION.search(line):
                found.append(f"{rel}:{number}: {line.strip()}")
    return found


def test_the_pattern_finds_citations_and_spares_identifiers():
    assert CITATION.search("(" + _NOTE_NAMES[0] + " 9: at least 3 seeds)")
    assert CITATION.search("follows " + _NOTE_NAMES[2] + " trap 4")
    assert CITATION.search("see ../shared/" + "design/x.md")
    assert not CITATION.search("_" + _NOTE_NAMES[3] + "_KEYS = (")
    assert not CITATION.search("decisions that hold everywhere")


def test_no_comment_cites_a_note_outside_the_repository():
    found = citations_outside_the_repository()
    assert not found, ("state the reason in place instead of citing a note kept outside the repository:\n"
                       + "\n".join(found))
