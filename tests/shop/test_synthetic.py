"""Synthetic catalogue: determinism, schema, real-catalogue statistics, goals, JSONL round trip."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest

from rl_app.shop.catalogue import (CatalogueError, index_contents, load_documents_jsonl,
                                  load_webshop_catalogue)
from rl_app.shop.goals import build_goal_set
from rl_app.shop.search import SearchEngine
from rl_app.shop.synthetic import CATEGORY_WEIGHTS, generate_catalogue, write_catalogue_jsonl

N_STATS = 2000


@pytest.fixture(scope="module")
def catalogue():
    return generate_catalogue(N_STATS, seed=0)


def test_same_seed_same_catalogue_other_seed_differs():
    assert generate_catalogue(300, seed=1).products == generate_catalogue(300, seed=1).products
    assert generate_catalogue(300, seed=1).products != generate_catalogue(300, seed=2).products


@pytest.mark.parametrize("bad", [0, -5, True, 2.5])
def test_bad_sizes_are_rejected(bad):
    with pytest.raises(ValueError, match="n_products"):
        generate_catalogue(bad)


def test_bad_instruction_fraction_is_rejected():
    with pytest.raises(ValueError, match="instruction_fraction"):
        generate_catalogue(10, instruction_fraction=1.5)


def test_every_product_follows_the_schema(catalogue):
    asins = [p.asin for p in catalogue]
    assert len(set(asins)) == len(asins)
    for p in catalogue:
        assert re.fullmatch(r"B0[0-9A-Z]{8}", p.asin)
        assert p.category in CATEGORY_WEIGHTS
        assert p.query == p.query.lower().strip() and p.query
        assert " › " in p.product_category
        assert p.name == p.title and p.title
        assert p.contents == index_contents(p.title, p.description, p.bullet_points, p.options)
        assert len(p.pricing) in (1, 2) and all(x > 0 for x in p.pricing)
        if len(p.pricing) == 2:
            assert p.pricing[0] < p.pricing[1]
            assert p.price_tag == f"${p.pricing[0]} to ${p.pricing[1]}"
        else:
            assert p.price_tag == f"${p.pricing[0]}"
        for name, values in p.options:
            assert len(values) >= 2 and len(set(values)) == len(values)
            assert all(v == v.lower() and "/" not in v for v in values)
        assert p.rating == "N.A." and p.reviews == () and p.human_instructions == ()
        if p.instruction is not None:
            assert p.instruction.startswith("Find me ") and p.query in p.instruction
            assert len(p.instruction_attributes) >= 2
            assert set(p.instruction_attributes) <= set(p.attributes)
            assert all(a in p.instruction for a in p.instruction_attributes)


def test_statistics_follow_the_real_catalogue(catalogue):
    n = len(catalogue)
    groups = Counter(len(p.options) for p in catalogue)
    # Real: 57.7% / 24.5% / 16.5% / 1.3%.
    assert groups[0] / n == pytest.approx(0.577, abs=0.04)
    assert groups[1] / n == pytest.approx(0.245, abs=0.04)
    assert groups[2] / n == pytest.approx(0.165, abs=0.04)
    assert groups[3] / n < 0.04
    values = [len(v) for p in catalogue for _, v in p.options]
    assert 4.5 < np.mean(values) < 7.0  # real: 5.7
    words = np.array([len(p.contents.split()) for p in catalogue])
    assert 110 < words.mean() < 140  # real: 124
    assert np.mean([p.description == "" for p in catalogue]) == pytest.approx(0.30, abs=0.05)
    assert np.mean([len(p.pricing) == 2 for p in catalogue]) == pytest.approx(0.093, abs=0.03)
    assert np.mean([p.instruction is not None for p in catalogue]) == pytest.approx(0.4, abs=0.04)
    shares = Counter(p.category for p in catalogue)
    for category, weight in CATEGORY_WEIGHTS.items():
        assert shares[category] / n == pytest.approx(weight, abs=0.04)


def test_goals_build_on_the_synthetic_catalogue(catalogue):
    goals = build_goal_set(catalogue, seed=0)
    assert len(goals) > len(catalogue) * 0.4  # one goal per option combination
    for goal in goals.goals[:200]:
        product = catalogue[goal.asin]
        assert goal.instruction_text.startswith(product.instruction)
        assert goal.attributes == product.instruction_attributes
        assert {o.name for o in goal.goal_options} == set(product.option_names)


def test_instruction_fraction_controls_goals():
    assert all(p.instruction for p in generate_catalogue(50, instruction_fraction=1.0))
    with pytest.raises(CatalogueError, match="no synthetic goals"):
        build_goal_set(generate_catalogue(50, instruction_fraction=0.0))


def test_search_finds_goal_targets(catalogue):
    engine = SearchEngine.build(catalogue, cache_size=0)
    goals = build_goal_set(catalogue, seed=0).goals[:200]
    found = np.mean([g.asin in engine.search(g.instruction_text, 50) for g in goals])
    # Measured on 500 goals: 0.998 here, 0.998 on the real 1k catalogue.
    assert found >= 0.95


def test_jsonl_round_trip(tmp_path):
    original = generate_catalogue(200, seed=5)
    docs, ins = write_catalogue_jsonl(original, tmp_path / "resources_1k" / "documents.jsonl",
                                      tmp_path / "items_ins_v2_200.json")
    assert load_documents_jsonl(docs, ins).products == original.products
    assert load_webshop_catalogue(tmp_path).products == original.products
    first = json.loads(docs.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"id", "contents", "product"}
    assert {"Title", "Description", "BulletPoints", "options", "pricing", "Price"} <= set(first["product"])
    leftovers = [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
