"""Catalogue loading, goal building and splits, checked against WebShop's own outputs."""

from __future__ import annotations

import json
import random

import pytest

from rl_app.shop.catalogue import (
    Catalogue,
    CatalogueError,
    index_contents,
    load_documents_jsonl,
    load_raw_products,
    load_webshop_catalogue,
    resolve_webshop_data_dir,
    sample_prices,
)
from rl_app.shop.goals import build_goal_set, split_of
from rl_app.shop.types import NO_PRICE_LIMIT, GoalOption, Product


def _product(asin="B000000001", pricing=(12.0,), options=(), instruction="Find me tea with tea tree",
             instruction_attributes=("tea tree",)) -> Product:
    return Product(
        asin=asin, name="Green Tea", title="Green Tea", description="d", bullet_points=("b",),
        category="grocery", query="tea", product_category="Grocery › Tea", pricing=pricing,
        price_tag=f"${pricing[0]}", options=options, attributes=("tea tree",), contents="green tea d b",
        instruction=instruction, instruction_attributes=instruction_attributes)


# ----------------------------------------------------------------------------- hand-made

def test_price_bounds_and_option_combinations_by_hand():
    # Price 12.0 -> bounds above it: 20, 30, 40, 50 (first four); sample 2, keep the larger.
    p = _product(options=(("size", ("s", "m")), ("color", ("red", "blue", "green"))))
    cat = Catalogue((p,))
    gs = build_goal_set(cat, seed=0)
    assert len(gs) == 6  # 2 sizes x 3 colours
    rng = random.Random(0)
    expected_upper = sorted(rng.sample([20.0, 30.0, 40.0, 50.0], 2))[1]
    assert {g.price_upper for g in gs.goals} == {expected_upper}
    texts = {g.instruction_text for g in gs.goals}
    # option names are sorted (color before size) in the text, as WebShop does
    assert f"Find me tea with tea tree with color: red, and size: s, and price lower than {expected_upper:.2f} dollars" in texts
    assert all(g.goal_options[0].name == "color" for g in gs.goals)
    # every goal shares the one attribute, so weight = 1/6
    assert all(g.weight == pytest.approx(1 / 6) for g in gs.goals)


def test_no_price_limit_when_fewer_than_two_bounds():
    p = _product(pricing=(985.0,))  # only 990 lies above
    gs = build_goal_set(Catalogue((p,)), seed=3)
    (g,) = gs.goals
    assert g.price_upper == NO_PRICE_LIMIT and "price lower than" not in g.instruction_text


def test_range_price_draws_uniform_in_catalogue_order():
    a = _product("B000000001", pricing=(10.0, 20.0))
    b = _product("B000000002", pricing=(5.0,))
    prices = sample_prices([a, b], random.Random(7))
    rng = random.Random(7)
    assert prices == {"B000000001": rng.uniform(10.0, 20.0), "B000000002": 5.0}


def test_splits():
    assert [split_of(i) for i in (0, 499, 500, 1499, 1500, 6909)] == ["test", "test", "dev", "dev", "train", "train"]
    with pytest.raises(ValueError):
        split_of(-1)


def test_duplicate_asin_is_an_error():
    with pytest.raises(CatalogueError, match="duplicate asin"):
        Catalogue((_product(), _product()))


def test_bad_files_name_file_and_field(tmp_path):
    ins = tmp_path / "ins.json"
    ins.write_text("{}")
    docs = tmp_path / "documents.jsonl"
    docs.write_text('{"product": {"asin": "B1"}}\n')
    with pytest.raises(CatalogueError, match=r"documents.jsonl:1.*'options'"):
        load_documents_jsonl(docs, ins)
    docs.write_text("{not json\n")
    with pytest.raises(CatalogueError, match=r"documents.jsonl:1: not valid JSON"):
        load_documents_jsonl(docs, ins)
    with pytest.raises(CatalogueError, match="file not found"):
        load_documents_jsonl(tmp_path / "missing.jsonl", ins)
    with pytest.raises(CatalogueError, match="does not exist"):
        resolve_webshop_data_dir(tmp_path / "nope")


def test_raw_layout_converts_like_webshop(tmp_path):
    items = [{
        "asin": "B0RAW00001", "name": "Wool Socks", "full_description": "Warm.",
        "small_description": ["Soft wool", "Two pairs"], "category": "fashion", "query": " Socks ",
        "product_category": "Clothing › Socks", "pricing": "$7.50 - $9.99", "images": ["x"],
        "customization_options": {"Color": [{"value": "Black/White"}, {"value": "Grey "}]},
    }, {"asin": "nan", "name": "skipped"}]
    (tmp_path / "items_shuffle_2.json").write_text(json.dumps(items))
    (tmp_path / "items_ins_v2_2.json").write_text(json.dumps({"B0RAW00001": {
        "attributes": ["wool"], "instruction": "Find me socks with wool", "instruction_attributes": ["wool"]}}))
    cat = load_raw_products(tmp_path / "items_shuffle_2.json", tmp_path / "items_ins_v2_2.json")
    (p,) = cat.products
    assert p.query == "socks" and p.pricing == (7.5, 9.99) and p.price_tag == "$7.5 to $9.99"
    assert p.options == (("color", ("black | white", "grey")),)
    assert p.contents == "wool socks warm. soft wool color: black | white, grey"
    assert load_webshop_catalogue(tmp_path).products == cat.products


# ----------------------------------------------------------------------------- real data

@pytest.mark.webshop_data
def test_small_catalogue_counts(webshop_data_dir):
    cat = load_webshop_catalogue(webshop_data_dir)
    assert len(cat) == 1000
    assert sum(p.instruction is not None for p in cat) == 415
    assert sum(len(p.pricing) == 2 for p in cat) == 93


@pytest.mark.webshop_data
def test_index_contents_matches_webshop_documents(webshop_data_dir):
    docs = [json.loads(line) for line in open(webshop_data_dir / "resources_1k" / "documents.jsonl")]
    for d in docs:
        p = d["product"]
        opts = tuple((k, tuple(v)) for k, v in p["options"].items())
        assert index_contents(p["Title"], p["Description"], p["BulletPoints"], opts) == d["contents"]


@pytest.mark.webshop_data
def test_goals_match_webshop_reference(webshop_shop, webshop_data_dir):
    """Goal list, order, texts, options, price bounds and weights equal WebShop's (seed 0)."""
    goals = webshop_shop.goals
    assert len(goals) == 6910
    ref = [json.loads(line) for line in open(webshop_data_dir / "reference" / "goals_seed0_first300.jsonl")]
    for r in ref:
        g = goals[r["idx"]]
        assert g.asin == r["asin"]
        assert g.instruction_text == r["instruction_text"]
        assert {o.name: o.value for o in g.goal_options} == r["goal_options"]
        assert g.price_upper == r["price_upper"]
        assert list(g.attributes) == r["attributes"]
        assert g.weight == pytest.approx(r["weight"], abs=1e-12)
    prices = json.load(open(webshop_data_dir / "reference" / "product_prices_seed0.json"))
    assert goals.prices == pytest.approx(prices, abs=1e-9)
    assert len(goals.indices("test")) == 500 and len(goals.indices("dev")) == 1000
    assert len(goals.indices("train")) == 5410


@pytest.mark.webshop_data
def test_human_goals_from_embedded_records(webshop_data_dir):
    cat = load_webshop_catalogue(webshop_data_dir)
    gs = build_goal_set(cat, kind="human", seed=0)
    assert len(gs) == 13  # the 13 MTurk records whose asins are in the small catalogue
    assert all(g.kind == "human" and g.weight == 1.0 for g in gs.goals)
    assert all(isinstance(o, GoalOption) and o.name is None for g in gs.goals for o in g.goal_options)


def test_written_synthetic_catalogue_loads_as_a_webshop_data_dir(tmp_path):
    from rl_app.shop.synthetic import generate_catalogue, write_catalogue_jsonl

    cat = generate_catalogue(120, seed=4)
    (tmp_path / "resources_1k").mkdir()
    write_catalogue_jsonl(cat, tmp_path / "resources_1k" / "documents.jsonl")
    assert load_webshop_catalogue(tmp_path).products == cat.products


# ----------------------------------------------------------------------------- bad input, named
def _small_dir(tmp_path, n=12):
    """A small-layout data dir of a synthetic catalogue; returns (docs path, ins path, lines, ins)."""
    from rl_app.shop.synthetic import generate_catalogue, write_catalogue_jsonl

    (tmp_path / "resources_1k").mkdir()
    docs = tmp_path / "resources_1k" / "documents.jsonl"
    write_catalogue_jsonl(generate_catalogue(n, seed=1), docs)
    ins_path = next(tmp_path.rglob("items_ins_v2*.json"))
    return docs, ins_path, docs.read_text().splitlines(), json.loads(ins_path.read_text())


def test_non_utf8_documents_name_file_and_line(tmp_path):
    docs, ins_path, lines, _ = _small_dir(tmp_path)
    docs.write_bytes(("\n".join(lines[:2]) + "\n").encode() + b'{"product": "caf\xe9"}\n')
    with pytest.raises(CatalogueError, match=r"documents.jsonl:3: not UTF-8 text \(byte 16"):
        load_documents_jsonl(docs, ins_path)


def test_instruction_record_that_is_not_an_object_names_file_and_asin(tmp_path):
    docs, ins_path, lines, ins = _small_dir(tmp_path)
    asin = json.loads(lines[0])["product"]["asin"]
    ins[asin] = "not a record"
    ins_path.write_text(json.dumps(ins))
    with pytest.raises(CatalogueError, match=rf"{ins_path.name}\['{asin}'\]: expected a JSON object.*got str"):
        load_documents_jsonl(docs, ins_path)
    ins[asin] = ["a", "list"]
    ins_path.write_text(json.dumps(ins))
    with pytest.raises(CatalogueError, match=r"got list"):
        load_documents_jsonl(docs, ins_path)


def test_instruction_without_attributes_names_file_product_and_field(tmp_path):
    docs, ins_path, lines, ins = _small_dir(tmp_path)
    asin = next(a for a, r in ins.items() if r.get("instruction"))
    del ins[asin]["instruction_attributes"]
    ins_path.write_text(json.dumps(ins))
    cat = load_documents_jsonl(docs, ins_path)
    with pytest.raises(CatalogueError, match=rf"documents.jsonl: product {asin.upper()} .*'instruction_attributes'"):
        build_goal_set(cat, seed=0)


@pytest.mark.parametrize("pricing, message", [
    (["x"], "holds 'x', not a number"), ([float("nan")], "finite and >= 0"), ([-3.0], "finite and >= 0"),
    ([True], "not a number"), ([], "non-empty list"),
])
def test_bad_prices_are_refused_naming_the_product(tmp_path, pricing, message):
    docs, ins_path, lines, _ = _small_dir(tmp_path)
    doc = json.loads(lines[4])
    doc["product"]["pricing"] = pricing
    lines[4] = json.dumps(doc)  # json writes NaN as a bare NaN, which Python's json reads back
    docs.write_text("\n".join(lines) + "\n")
    with pytest.raises(CatalogueError, match=rf"documents.jsonl:5 product {doc['product']['asin']}.*{message}"):
        load_documents_jsonl(docs, ins_path)


def test_raw_layout_bad_pricing_list_and_dir_that_is_a_file(tmp_path):
    items = [{"asin": "B0RAW00001", "name": "Socks", "pricing": ["x"]}]
    (tmp_path / "items_shuffle_1.json").write_text(json.dumps(items))
    (tmp_path / "items_ins_v2_1.json").write_text("{}")
    with pytest.raises(CatalogueError, match=r"items_shuffle_1.json\[0\]: field 'pricing' holds 'x'"):
        load_raw_products(tmp_path / "items_shuffle_1.json", tmp_path / "items_ins_v2_1.json")
    with pytest.raises(CatalogueError, match="is a file; pass the directory"):
        resolve_webshop_data_dir(tmp_path / "items_shuffle_1.json")
