"""WebShop's reward: hand-worked sub-rewards, both quirks, and the 600 reference cases."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from rl_app.shop.nouns import HeuristicNounTagger, TableNounTagger
from rl_app.shop.reward import (
    COLOR_SET,
    attribute_reward,
    category_match,
    compute_reward,
    normalize_color,
    option_reward,
    price_reward,
    title_score,
    token_set_ratio,
    type_reward,
)
from rl_app.shop.types import Goal, GoalOption, Product

# ----------------------------------------------------------------------------- hand-made shop

GOAL_NAME = "Lavender Body Lotion Bottle Pump"
# Nouns chosen by hand (a table tagger, no spaCy): 5 distinct goal nouns.
NOUNS = {
    GOAL_NAME: ["lavender", "body", "lotion", "bottle", "pump"],
    "Body Lotion": ["body", "lotion"],                            # 2/5 = 0.4
    "Rose Lotion Gift": ["rose", "lotion", "gift"],              # 1/5 = 0.2
    "Lotion": ["lotion"],                                        # 1/5 = 0.2
    "Garden Hose": ["garden", "hose"],                           # 0/5 = 0.0
    "Wall Light Light Fixture": ["wall", "light", "light", "fixture"],
    "Lamp with Light": ["lamp", "light"],
    "Eleven Nouns": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"],
    "One Of Eleven": ["a"],                                      # 1/11 = 0.0909
    "Quickly": [],
}
TAGGER = TableNounTagger(NOUNS)  # no fallback: a title missing here is a test bug


def make_product(**changes) -> Product:
    base = Product(
        asin="B000000001", name=GOAL_NAME, title=GOAL_NAME,
        description="Made with Natural Ingredients and shea butter.",
        bullet_points=("Soothing scent", "Travel size"),
        category="beauty", query="body lotion",
        product_category="Beauty & Personal Care › Skin Care › Body › Lotions",
        pricing=(10.0,), price_tag="$10.0",
        options=(("color", ("black", "white")), ("size", ("small", "large"))),
        attributes=("long-lasting", "shea butter"), contents="")
    return dataclasses.replace(base, **changes)


def make_goal(**changes) -> Goal:
    base = Goal(
        asin="B000000001", instruction_text="i want body lotion",
        attributes=("long lasting", "natural ingredients", "paraben free"),
        goal_options=(GoalOption("color", "black"), GoalOption("size", "large")),
        price_upper=20.0, query="body lotion", category="beauty",
        product_category="Beauty & Personal Care › Skin Care › Body › Lotions",
        name=GOAL_NAME)
    return dataclasses.replace(base, **changes)


def test_total_two_of_three_attributes_one_of_two_options_price_ok():
    # attributes: "long lasting" ~ "long-lasting" (fuzzy 100); "natural ingredients" is in
    # the lower-cased description; "paraben free" is nowhere -> 2 of 3.
    # options: color black == black; size "small" vs ('size', 'large') scores 13 -> 1 of 2.
    # price 10 <= 20. Same title -> title_score 1, r_type 1.
    # reward = (2 + 1 + 1) / (3 + 2 + 1) * 1 = 4/6.
    b = compute_reward(make_product(), make_goal(), 10.0, {"color": "black", "size": "small"},
                       nouns=TAGGER)
    assert b.reward == pytest.approx(4 / 6)
    assert (b.num_attr_matches, b.num_option_matches) == (2, 1)
    assert b.r_att == pytest.approx(2 / 3) and b.w_att == pytest.approx(3 / 6)
    assert b.r_option == pytest.approx(1 / 2) and b.w_option == pytest.approx(2 / 6)
    assert b.r_price is True and b.w_price == pytest.approx(1 / 6)
    assert (b.r_type, b.query_match, b.category_match, b.title_score) == (1.0, True, True, 1.0)


def test_r_type_multiplies_the_total():
    # Same purchase as above but a different product kind: query and category differ and
    # "Rose Lotion Gift" shares 1 of 5 goal nouns (0.2, not > 0.2) -> r_type 0.5.
    # Its attributes/text match nothing but "long lasting" (product attribute) -> 1 of 3.
    # reward = (1 + 1 + 1) / 6 * 0.5 = 0.25.
    other = make_product(asin="B000000002", name="Rose Lotion Gift", title="Rose Lotion Gift",
                         query="gift sets", description="", bullet_points=(),
                         product_category="Home › Gifts", attributes=("long lasting",))
    b = compute_reward(other, make_goal(), 10.0, {"color": "black", "size": "small"}, nouns=TAGGER)
    assert (b.r_type, b.title_score, b.query_match, b.category_match) == (0.5, 0.2, False, False)
    assert b.reward == pytest.approx(3 / 6 * 0.5)


def test_attribute_reward_fuzzy_then_text_fallback():
    p = make_product()
    # "shea butter" is a product attribute; "soothing scent" only in a bullet point;
    # "travel size lotion" nowhere as a substring and fuzzy 0 against the attributes.
    g = make_goal(attributes=("Shea Butter", "soothing scent", "travel size lotion"))
    assert attribute_reward(p, g) == (pytest.approx(2 / 3), 2)
    # The text fallback is case-insensitive on the product side only (goal text as is).
    g = make_goal(attributes=("natural ingredients", "Natural Ingredients"))
    assert attribute_reward(make_product(attributes=()), g).matches == 1


def test_attribute_reward_rejects_goal_without_attributes():
    with pytest.raises(ValueError, match="no attributes"):
        attribute_reward(make_product(), make_goal(attributes=()))


def test_token_set_ratio_emulates_thefuzz():
    assert token_set_ratio("fuzzy was a bear", "fuzzy fuzzy was a bear") == 100
    # A tuple is scored through str(): "('color', 'black')" -> "color black" contains "black".
    assert token_set_ratio(("color", "black"), "black") == 100
    # Code points 128..255 are deleted, not replaced: "café" -> "caf".
    assert token_set_ratio("café", "caf") == 100
    assert token_set_ratio(None, "x") == 0
    assert token_set_ratio("paraben free", "cruelty free") == 58


def test_normalize_color_substring_for_strings_membership_for_tuples():
    assert COLOR_SET[:3] == ("alabaster", "apricot", "aqua") and len(COLOR_SET) == 102
    assert normalize_color("rectangular") == "tan"          # 'tan' is a substring
    assert normalize_color("fashion black woman") == "ash"  # 'ash' precedes 'black'
    assert normalize_color("navy blue") == "blue"           # 'blue' precedes 'navy'
    assert normalize_color("medium") == "medium"
    assert normalize_color(("color", "black")) == "black"
    assert normalize_color(("shape", "rectangular")) == ("shape", "rectangular")


@pytest.mark.parametrize("value, webshop, corrected", [
    ("black", 1.0, 1.0),                # exact colour element of the tuple -> 'black' both sides
    ("jet black", 1.0, 1.0),            # 'black' vs "color jet black": a token subset, 100
    ("rectangular", 0.0, 1.0),          # 'tan' vs "shape rectangular": 30
    ("fashion black woman", 0.0, 1.0),  # 'ash' vs "shape fashion black woman": no shared token
    ("medium", 1.0, 1.0),               # 'medium' vs "size medium": 100
])
def test_option_reward_tuple_quirk(value, webshop, corrected):
    goal_options = (GoalOption("shape", value),)
    assert option_reward([value], goal_options).score == webshop
    assert option_reward([value], goal_options, variant="corrected").score == corrected


def test_option_reward_human_goals_compare_strings():
    # Human goal options carry no name: both sides become 'tan', a match.
    assert option_reward(["rectangular"], (GoalOption(None, "rectangular"),)) == (1.0, 1)
    # Two purchased values matching one goal option count once; None without goal options.
    assert option_reward(["large", "x-large"], (GoalOption(None, "large"),)).matches == 1
    assert option_reward(["large"], ()) == (None, 0)


def test_corrected_option_matches_identical_strings_thefuzz_would_empty():
    # "½" is deleted by thefuzz (code point 189) -> empty -> score 0 in webshop.
    assert option_reward(["½"], (GoalOption(None, "½"),)).score == 0.0
    assert option_reward(["½"], (GoalOption(None, "½"),), variant="corrected").score == 1.0


def test_title_score_duplicates_in_denominator():
    goal = NOUNS["Wall Light Light Fixture"]
    # Target against itself: 3 distinct shared / 4 with duplicates = 0.75 (quirk 2).
    assert title_score(goal, goal) == 0.75
    assert title_score(goal, goal, variant="corrected") == 1.0
    # "Lamp with Light": {light} -> 1/4 webshop, 1/3 corrected.
    assert title_score(NOUNS["Lamp with Light"], goal) == 0.25
    assert title_score(NOUNS["Lamp with Light"], goal, variant="corrected") == pytest.approx(1 / 3)
    assert title_score(["x"], []) == 0.2


@pytest.mark.parametrize("name, query, category, expected_r_type", [
    (GOAL_NAME, "other", "X › Y", 1.0),             # title 1.0 > 0.2
    ("Body Lotion", "other", "X › Y", 1.0),         # title 0.4 > 0.2
    ("Lotion", "other", "X › Y", 0.5),              # title 0.2 is not > 0.2, nothing else
    ("Lotion", "body lotion", "X › Y", 1.0),        # ... but the query matches
    ("Lotion", "other", "Beauty & Personal Care › Skin Care", 1.0),  # 2 parts shared
    ("One Of Eleven", "body lotion", "X › Y", 0.1),  # title 1/11 < 0.1 overrides the query
    ("Garden Hose", "body lotion", "X › Y", 0.0),   # title 0.0 overrides everything
])
def test_type_reward_thresholds(name, query, category, expected_r_type):
    goal = make_goal(name="Eleven Nouns") if name == "One Of Eleven" else make_goal()
    p = make_product(name=name, title=name, query=query, product_category=category)
    assert type_reward(p, goal, TAGGER).r_type == expected_r_type


def test_goal_title_without_nouns_scores_point_two():
    p = make_product(name="Garden Hose", query="other", product_category="X")
    t = type_reward(p, make_goal(name="Quickly"), TAGGER)
    assert (t.title_score, t.r_type) == (0.2, 0.5)
    # With a query match the 0.2 is no penalty.
    assert type_reward(make_product(name="Garden Hose"), make_goal(name="Quickly"), TAGGER).r_type == 1.0


def test_title_score_zero_zeroes_the_reward():
    p = make_product(name="Garden Hose")
    b = compute_reward(p, make_goal(), 10.0, {"color": "black", "size": "large"}, nouns=TAGGER)
    assert (b.r_type, b.reward) == (0.0, 0.0)
    assert b.r_att > 0 and b.r_option == 1.0  # the parts are still reported


def test_category_match():
    assert category_match("A › B › C", "A › B › D")
    assert category_match("A›B", "A › B")  # split on '›', then strip
    assert not category_match("A › X", "A › Y")
    assert not category_match("A › A", "A")  # distinct parts


def test_price_reward_and_missing_bound():
    assert price_reward(10.0, 20.0) is True
    assert price_reward(20.0, 20.0) is True
    assert price_reward(30.0, 20.0) is False
    assert price_reward(5.0, 0.0) is None
    # No bound: price left out of the total: (2 + 1) / (3 + 2) with the first test's purchase.
    b = compute_reward(make_product(), make_goal(price_upper=0.0), 10.0,
                       {"color": "black", "size": "small"}, nouns=TAGGER)
    assert b.reward == pytest.approx(3 / 5) and b.w_price == 0.0 and b.r_price is None
    assert "r_price" not in b.to_info() and "w_price" not in b.to_info()


def test_price_over_bound():
    # (2 + 1 + 0) / 6
    b = compute_reward(make_product(), make_goal(), 25.0, {"color": "black", "size": "small"},
                       nouns=TAGGER)
    assert b.r_price is False and b.reward == pytest.approx(3 / 6)


def test_goal_without_options():
    # (2 attributes + price) / (3 + 0 + 1) = 0.75; options selected anyway are ignored.
    b = compute_reward(make_product(), make_goal(goal_options=()), 10.0, {"color": "white"},
                       nouns=TAGGER)
    assert b.reward == pytest.approx(3 / 4)
    assert b.r_option is None and b.w_option is None and b.num_option_matches == 0
    info = b.to_info()
    assert list(info) == ["r_type", "r_att", "w_att", "query_match", "category_match",
                          "title_score", "r_price", "w_price"]


def test_to_info_keys_and_values():
    b = compute_reward(make_product(), make_goal(), 10.0, {"color": "black", "size": "small"},
                       nouns=TAGGER)
    info = b.to_info()
    assert list(info) == ["r_type", "r_att", "w_att", "query_match", "category_match",
                          "title_score", "r_option", "w_option", "r_price", "w_price"]
    assert info["r_option"] == 0.5 and info["w_price"] == pytest.approx(1 / 6)


def test_corrected_variant_fixes_both_quirks():
    name = "Wall Light Light Fixture"
    p = make_product(name=name, title=name, options=(("shape", ("rectangular", "round")),))
    g = make_goal(name=name, attributes=("long lasting",),
                  goal_options=(GoalOption("shape", "rectangular"),))
    opts = {"shape": "rectangular"}
    # webshop: title 0.75 (r_type 1), option 0 -> (1 + 0 + 1) / 3.
    w = compute_reward(p, g, 10.0, opts, nouns=TAGGER)
    assert (w.title_score, w.r_option, w.reward) == (0.75, 0.0, pytest.approx(2 / 3))
    # corrected: title 1.0, option 1 -> 3 / 3.
    c = compute_reward(p, g, 10.0, opts, nouns=TAGGER, variant="corrected")
    assert (c.title_score, c.r_option, c.reward) == (1.0, 1.0, 1.0)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown reward variant"):
        compute_reward(make_product(), make_goal(), 10.0, {}, nouns=TAGGER, variant="fixed")
    with pytest.raises(TypeError, match="option values must be strings"):
        compute_reward(make_product(), make_goal(), 10.0, {"size": 7}, nouns=TAGGER)


def test_product_text_cache_does_not_mix_products_with_one_asin():
    g = make_goal(attributes=("natural ingredients",))
    assert attribute_reward(make_product(attributes=()), g).matches == 1
    assert attribute_reward(make_product(attributes=(), description="plain"), g).matches == 0


# ----------------------------------------------------------------------------- reference cases

REFERENCE_MIN_AGREEMENT = 0.995  # exact (1e-6) agreement wanted on >= 99.5% of the reference cases
# Measured: the heuristic tagger changes the reward on 21 of 600 cases (3.5%).
HEURISTIC_MAX_DIFF_RATE = 0.06


@pytest.fixture(scope="module")
def reward_data_dir() -> Path:
    root = Path(os.environ.get("RL_APP_WEBSHOP_DATA")
                or Path(__file__).resolve().parents[2] / ".." / "shared" / "webshop-data").resolve()
    needed = [root / "resources_1k" / "documents.jsonl",
              root / "reference" / "reward_cases_public.jsonl",
              root / "reference" / "title_nouns.json"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        pytest.skip(f"real WebShop data not found ({', '.join(missing)}); set RL_APP_WEBSHOP_DATA")
    return root


@pytest.fixture(scope="module")
def reference(reward_data_dir):
    from rl_app.shop.catalogue import load_webshop_catalogue
    from rl_app.shop.goals import build_goal_set

    catalogue = load_webshop_catalogue(reward_data_dir)
    goals = build_goal_set(catalogue, seed=0)
    with (reward_data_dir / "reference" / "reward_cases_public.jsonl").open() as f:
        cases = [json.loads(line) for line in f]
    table = TableNounTagger.from_json(reward_data_dir / "reference" / "title_nouns.json")
    return catalogue, goals, cases, table


def _breakdown_mismatches(b, case) -> list[str]:
    out = []
    if abs(b.reward - case["reward"]) > 1e-6:
        out.append(f"reward {b.reward} != {case['reward']}")
    info, expected = b.to_info(), case["reward_info"]
    if set(info) != set(expected):
        out.append(f"keys {sorted(info)} != {sorted(expected)}")
    for key in set(info) & set(expected):
        if abs(float(info[key]) - float(expected[key])) > 1e-6:
            out.append(f"{key} {info[key]} != {expected[key]}")
    return out


@pytest.mark.webshop_data
def test_reference_goals_rebuild(reference):
    _, goals, cases, _ = reference
    for case in cases:
        g, expected = goals[case["goal_idx"]], case["goal"]
        assert (g.asin, g.instruction_text, list(g.attributes), g.price_upper, g.query,
                g.category, g.product_category, g.name) == (
            expected["asin"], expected["instruction_text"], expected["attributes"],
            expected["price_upper"], expected["query"], expected["category"],
            expected["product_category"], expected["name"]), case["case_id"]
        assert [(o.name, o.value) for o in g.goal_options] == list(expected["goal_options"].items())
        assert g.weight == pytest.approx(expected["weight"])
        assert goals.prices[case["purchased_asin"]] == pytest.approx(case["price"], abs=1e-9)


@pytest.mark.webshop_data
def test_reference_cases_agree_exactly(reference):
    catalogue, goals, cases, table = reference
    mismatches = []
    for case in cases:
        b = compute_reward(catalogue[case["purchased_asin"]], goals[case["goal_idx"]],
                           case["price"], case["options"], nouns=table)
        problems = _breakdown_mismatches(b, case)
        if problems:
            mismatches.append((case["case_id"], case["kind"], problems))
    agree = len(cases) - len(mismatches)
    print(f"reference reward cases: {agree}/{len(cases)} agree exactly")
    for m in mismatches:
        print("  mismatch", m)
    assert len(cases) == 600
    assert agree / len(cases) >= REFERENCE_MIN_AGREEMENT, mismatches
    # Stricter than the target: the table tagger reproduces every case today.
    assert not mismatches, mismatches


@pytest.mark.webshop_data
def test_reference_option_quirk_count(reference):
    # reference/README.md quirk 1: buying exactly the goal options gives r_option < 1 on
    # 458 of the 6,725 goals with options; the corrected variant on none.
    _, goals, _, _ = reference
    with_options = [g for g in goals.goals if g.goal_options]
    short = {v: sum(option_reward(g.option_values, g.goal_options, variant=v).score < 1
                    for g in with_options) for v in ("webshop", "corrected")}
    assert (len(with_options), short["webshop"], short["corrected"]) == (6725, 458, 0)


@pytest.mark.webshop_data
def test_heuristic_tagger_against_table(reference):
    catalogue, goals, cases, table = reference
    heuristic = HeuristicNounTagger()
    differ = 0
    for case in cases:
        args = (catalogue[case["purchased_asin"]], goals[case["goal_idx"]], case["price"],
                case["options"])
        differ += abs(compute_reward(*args, nouns=heuristic).reward
                      - compute_reward(*args, nouns=table).reward) > 1e-6
    print(f"heuristic vs table tagger: reward differs on {differ}/{len(cases)} cases "
          f"({differ / len(cases):.1%})")
    assert differ / len(cases) <= HEURISTIC_MAX_DIFF_RATE
