"""Title noun taggers for the reward's type match (WebShop ``goal.get_type_reward``).

WebShop runs spaCy on the goal's and the purchased product's names and keeps the
lower-cased text of every token tagged NOUN or PROPN, duplicates included; title_score is
computed from those lists (see :mod:`rl_app.shop.reward`). Three interchangeable taggers
implement the :class:`NounTagger` protocol:

* :class:`SpacyNounTagger`: the real thing, when spaCy and a model are installed (lazy:
  spaCy is imported on the first call, never at module import).
* :class:`TableNounTagger`: a precomputed ``{title: [nouns]}`` table, e.g.
  ``reference/title_nouns.json`` (en_core_web_sm's nouns for every name of the 1k catalogue;
  it reproduces the reference title scores without spaCy), with a fallback for unknown titles.
* :class:`HeuristicNounTagger`: a deliberately simple, dependency-free approximation for
  synthetic catalogues (content words, not nouns; see its docstring for how far it is
  from spaCy on the real catalogue).

:func:`default_noun_tagger` picks spaCy, else the table, else the heuristic. Every tagger
caches per text: titles repeat on every buy.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence, runtime_checkable

__all__ = [
    "NounTagger",
    "SpacyNounTagger",
    "TableNounTagger",
    "HeuristicNounTagger",
    "default_noun_tagger",
    "spacy_available",
    "NOUN_TABLE_RELPATH",
    "NOUN_POS",
    "DEFAULT_SPACY_MODEL",
]

# Part-of-speech tags WebShop keeps (it also lists 'PNOUN', which spaCy never emits).
NOUN_POS = ("NOUN", "PROPN")
# The reference table was made with en_core_web_sm 3.8.0 (title_nouns.json header);
# WebShop's goal.py loads en_core_web_lg, whose tags can differ on some titles.
DEFAULT_SPACY_MODEL = "en_core_web_sm"
# Where the noun table sits inside a WebShop data directory.
NOUN_TABLE_RELPATH = Path("reference") / "title_nouns.json"


@runtime_checkable
class NounTagger(Protocol):
    """Anything that maps a product name to its lower-cased nouns, duplicates kept, in order."""

    def nouns(self, text: str) -> tuple[str, ...]:
        ...


class _CachedTagger:
    """Memoises ``_compute`` per text (unbounded: one entry per distinct product name)."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, ...]] = {}

    def nouns(self, text: str) -> tuple[str, ...]:
        found = self._cache.get(text)
        if found is None:
            if not isinstance(text, str):
                raise TypeError(f"noun tagger expects a str, got {type(text).__name__}")
            found = self._compute(text)
            self._cache[text] = found
        return found

    def _compute(self, text: str) -> tuple[str, ...]:  # pragma: no cover - abstract
        raise NotImplementedError


# ----------------------------------------------------------------------------- spaCy

def spacy_available(model: str = DEFAULT_SPACY_MODEL) -> bool:
    """Whether ``spacy`` and the model package can be imported (nothing is imported here)."""
    try:
        return (importlib.util.find_spec("spacy") is not None
                and importlib.util.find_spec(model) is not None)
    except (ImportError, ValueError):
        return False


class SpacyNounTagger(_CachedTagger):
    """spaCy's NOUN/PROPN tokens, lower-cased, exactly as WebShop's ``get_type_reward``.

    The model is loaded on the first call. Only the tagger-related pipes are needed, but
    the whole pipeline is kept so the tags equal those of ``nlp(text)`` in WebShop.
    """

    def __init__(self, model: str = DEFAULT_SPACY_MODEL) -> None:
        super().__init__()
        self.model = model
        self._nlp: Optional[Callable[[str], Any]] = None

    def _load(self) -> Callable[[str], Any]:
        if self._nlp is None:
            try:
                import spacy  # heavy: imported only when a title is first tagged
                self._nlp = spacy.load(self.model)
            except (ImportError, OSError) as e:
                raise RuntimeError(
                    f"SpacyNounTagger needs spaCy and the {self.model!r} model "
                    f"(pip install spacy && python -m spacy download {self.model}); "
                    "or use TableNounTagger / HeuristicNounTagger") from e
        return self._nlp

    def _compute(self, text: str) -> tuple[str, ...]:
        return tuple(t.text.lower() for t in self._load()(text) if t.pos_ in NOUN_POS)


# ----------------------------------------------------------------------------- heuristic

# Function words and a few frequent title words that spaCy practically never tags as nouns.
# Kept short on purpose: the heuristic is a stand-in, not a tagger.
_STOP_WORDS = frozenset("""
a an the and or nor but of for with without in on at to from by into onto over under up
down out off as per via vs than then so if is are be was were been being it its it's this
that these those you your yours we our us they their them he she his her i me my not no
yes all any each every both either neither some more most much many few other such only
own same too very can will just also
""".split())
# spaCy splits a token at letter/digit boundaries ("512MB" -> "512" "mb") and at most
# punctuation; numbers (NUM) are never nouns.
_TOKEN_RE = re.compile(r"[a-z]+")


class HeuristicNounTagger(_CachedTagger):
    """Content words of a title: a dependency-free stand-in for spaCy on synthetic data.

    Rule: lower-case the text, take the runs of ASCII letters (``512MB`` gives ``mb``,
    ``Women's`` gives ``women``), drop one-letter runs and a short list of function
    words and generic adjectives (``_STOP_WORDS``); keep duplicates and order. Product
    titles are mostly noun phrases in Title Case, which spaCy tags NOUN/PROPN almost
    throughout, so "content word" is a fair proxy for "noun". It is NOT spaCy: on the 1k
    WebShop catalogue it changes some title scores (the test suite measures and bounds
    how often the final reward differs from the spaCy table).
    """

    def __init__(self, stop_words: frozenset[str] = _STOP_WORDS, min_len: int = 2) -> None:
        super().__init__()
        self.stop_words = stop_words
        self.min_len = min_len

    def _compute(self, text: str) -> tuple[str, ...]:
        return tuple(w for w in _TOKEN_RE.findall(text.lower())
                     if len(w) >= self.min_len and w not in self.stop_words)


# ----------------------------------------------------------------------------- table

class TableNounTagger(_CachedTagger):
    """Nouns looked up in a precomputed ``{title: [nouns]}`` table; ``fallback`` otherwise.

    Args:
        table: title -> nouns (as the tagger that made it returned them, duplicates kept).
        fallback: tagger for titles missing from the table; ``None`` raises ``KeyError``
            naming the title (useful to prove a run never left the table).
    """

    def __init__(self, table: Mapping[str, Sequence[str]],
                 fallback: Optional[NounTagger] = None) -> None:
        super().__init__()
        self._table = {title: tuple(nouns) for title, nouns in table.items()}
        self.fallback = fallback
        self.misses = 0  # titles served by the fallback (distinct, thanks to the cache)

    @classmethod
    def from_json(cls, path: str | os.PathLike,
                  fallback: Optional[NounTagger] = None) -> "TableNounTagger":
        """Load a table with the schema ``{"nouns": {title: [noun, ...]}, ...}``."""
        path = Path(path)
        try:
            with path.open(encoding="utf-8") as f:
                raw = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"noun table {path} not found") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"noun table {path} is not valid JSON ({e})") from e
        table = raw.get("nouns") if isinstance(raw, dict) else None
        if not isinstance(table, dict) or not all(
                isinstance(v, list) and all(isinstance(n, str) for n in v) for v in table.values()):
            raise ValueError(f"noun table {path}: expected {{'nouns': {{title: [str, ...]}}}}")
        return cls(table, fallback=fallback)

    def __contains__(self, title: object) -> bool:
        return title in self._table

    def __len__(self) -> int:
        return len(self._table)

    def _compute(self, text: str) -> tuple[str, ...]:
        found = self._table.get(text)
        if found is not None:
            return found
        if self.fallback is None:
            raise KeyError(f"title not in the noun table and no fallback tagger: {text!r}")
        self.misses += 1
        return tuple(self.fallback.nouns(text))


# ----------------------------------------------------------------------------- choice

def default_noun_tagger(data_dir: Optional[str | os.PathLike] = None) -> NounTagger:
    """The data dir's noun table when it has one; else spaCy (en_core_web_sm) if importable; else the heuristic.

    ``data_dir`` is a WebShop data directory (the one holding ``reference/title_nouns.json``);
    it is not searched for when ``None`` (data locations are explicit).
    The table comes first because it holds the nouns of the exact model version WebShop's
    reference rewards were computed with (an installed spaCy may be another version); titles
    it does not hold go to spaCy or the heuristic.
    """
    fallback: NounTagger = SpacyNounTagger() if spacy_available() else HeuristicNounTagger()
    if data_dir is not None:
        table = Path(data_dir) / NOUN_TABLE_RELPATH
        if table.is_file():
            return TableNounTagger.from_json(table, fallback=fallback)
    return fallback
