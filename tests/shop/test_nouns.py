"""Title noun taggers: heuristic rule, table lookup with fallback, default choice, caching."""

from __future__ import annotations

import json

import pytest

from rl_app.shop import nouns as nouns_mod
from rl_app.shop.nouns import (
    HeuristicNounTagger,
    NounTagger,
    SpacyNounTagger,
    TableNounTagger,
    default_noun_tagger,
    spacy_available,
)


class CountingTagger:
    def __init__(self):
        self.calls = 0

    def nouns(self, text):
        self.calls += 1
        return ("fallback",)


def test_heuristic_rule():
    h = HeuristicNounTagger()
    # digits split off ("512MB" -> "mb"), possessive dropped, stop words and 1-letter runs out.
    assert h.nouns("10 Pack 512MB USB Flash Drives for Women's, 2.0 X") == (
        "pack", "mb", "usb", "flash", "drives", "women")
    assert h.nouns("Light with Light") == ("light", "light")  # duplicates kept
    assert h.nouns("") == ()
    assert isinstance(h, NounTagger)


def test_table_lookup_fallback_and_cache():
    fallback = CountingTagger()
    t = TableNounTagger({"Red Shoe": ["shoe"], "Empty": []}, fallback=fallback)
    assert t.nouns("Red Shoe") == ("shoe",)
    assert t.nouns("Empty") == ()
    assert t.nouns("Unknown") == t.nouns("Unknown") == ("fallback",)
    assert (fallback.calls, t.misses) == (1, 1)  # cached per text
    assert "Red Shoe" in t and len(t) == 2


def test_table_without_fallback_names_the_title():
    with pytest.raises(KeyError, match="Unknown Title"):
        TableNounTagger({}).nouns("Unknown Title")


def test_table_from_json_validates_schema(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"model": "x", "nouns": {"A Lamp": ["lamp"]}}))
    assert TableNounTagger.from_json(good).nouns("A Lamp") == ("lamp",)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"A Lamp": ["lamp"]}))
    with pytest.raises(ValueError, match="expected"):
        TableNounTagger.from_json(bad)
    with pytest.raises(FileNotFoundError):
        TableNounTagger.from_json(tmp_path / "missing.json")


def test_default_choice(tmp_path, monkeypatch):
    monkeypatch.setattr(nouns_mod, "spacy_available", lambda model="en_core_web_sm": False)
    assert isinstance(default_noun_tagger(), HeuristicNounTagger)
    assert isinstance(default_noun_tagger(tmp_path), HeuristicNounTagger)
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "title_nouns.json").write_text(json.dumps({"nouns": {"A": ["a"]}}))
    table = default_noun_tagger(tmp_path)
    assert isinstance(table, TableNounTagger)
    assert isinstance(table.fallback, HeuristicNounTagger)
    monkeypatch.setattr(nouns_mod, "spacy_available", lambda model="en_core_web_sm": True)
    with_spacy = default_noun_tagger(tmp_path)  # the table still wins; spaCy (lazy) is its fallback
    assert isinstance(with_spacy, TableNounTagger) and isinstance(with_spacy.fallback, SpacyNounTagger)
    assert isinstance(default_noun_tagger(), SpacyNounTagger)


@pytest.mark.skipif(spacy_available(), reason="spaCy and en_core_web_sm are installed here")
def test_spacy_tagger_without_spacy_is_a_clear_error():
    tagger = SpacyNounTagger()  # constructing imports nothing
    with pytest.raises(RuntimeError, match="TableNounTagger"):
        tagger.nouns("Red Shoe")
