"""Pages and transitions: scripted episodes with exact page sequences and rewards."""

from __future__ import annotations

import pytest

from rl_app.shop.catalogue import Catalogue, index_contents
from rl_app.shop.nouns import HeuristicNounTagger
from rl_app.shop.reward import compute_reward
from rl_app.shop.search import SearchEngine
from rl_app.shop.site import Shop, parse_action
from rl_app.shop.types import Goal, GoalOption, Product

# ----------------------------------------------------------------------------- hand-made shop


def _p(asin, title, price, options=(), attributes=(), bullets=("soft and warm",), description="A fine item."):
    return Product(
        asin=asin, name=title, title=title, description=description, bullet_points=bullets,
        category="fashion", query="socks", product_category="Clothing › Socks › Wool", pricing=(price,),
        price_tag=f"${price}", options=options, attributes=attributes,
        contents=index_contents(title, description, bullets, options))


WOOL = _p("B0000WOOL1", "Merino Wool Socks", 12.5, options=(("color", ("black", "grey")), ("size", ("m", "l"))),
          attributes=("merino wool",))
COTTON = _p("B000COTTON", "Cotton Socks", 5.0, attributes=("cotton",))
HAT = _p("B00000HAT1", "Wool Hat", 30.0, options=(("color", ("black", "red")),), attributes=("wool",))
GOAL = Goal(asin=WOOL.asin, instruction_text="Find me socks with merino wool with color: black, and size: l, "
            "and price lower than 20.00 dollars", attributes=("merino wool",),
            goal_options=(GoalOption("color", "black"), GoalOption("size", "l")), price_upper=20.0,
            query="socks", category="fashion", product_category=WOOL.product_category, name=WOOL.title)


@pytest.fixture()
def shop():
    cat = Catalogue((WOOL, COTTON, HAT))
    prices = {p.asin: p.pricing[0] for p in cat}
    return Shop(cat, SearchEngine.build(cat), prices, reward_fn=compute_reward,
                reward_kwargs={"nouns": HeuristicNounTagger()})


def test_parse_action_like_webshop():
    assert parse_action("search[red shoes]") == ("search", "red shoes")
    assert parse_action("click[< prev]") == ("click", "< prev")
    assert parse_action("search[]") == ("search[]", None)
    assert parse_action("buy") == ("buy", None)
    assert parse_action("search[a\nb]") == ("search[a\nb]", None)  # "." does not cross a newline
    assert parse_action("search[a] [b]") == ("search[a] ", "b")  # greedy, as WebShop's pattern


def test_full_episode_exact_pages_and_reward(shop):
    s = shop.session(GOAL)
    assert s.available_actions() == {"has_search_bar": True, "clickables": ["search"]}
    assert s.observation("text") == (
        "WebShop [SEP] Instruction: [SEP] " + GOAL.instruction_text + " [SEP] Search")

    assert s.step("search[Merino WOOL socks]").valid  # argument lower-cased
    assert s.page == "results" and s.state.keywords == "merino wool socks"
    results = s.clickables()
    assert results[:2] == ["back to search", "next >"] and results[2] == "b0000wool1"
    assert s.observation("text").startswith(
        "Instruction: [SEP] " + GOAL.instruction_text + " [SEP] Back to Search [SEP] Page 1 (Total results: ")

    s.step("click[b0000wool1]")
    assert s.clickables() == ["back to search", "< prev", "description", "features", "reviews", "buy now",
                              "black", "grey", "m", "l"]
    assert s.observation("text").endswith(
        "[SEP] color [SEP] black [SEP] grey [SEP] size [SEP] m [SEP] l [SEP] Merino Wool Socks [SEP] Price: $12.5 "
        "[SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now")

    s.step("click[black]")
    s.step("click[l]")
    rich = s.observation("text_rich")
    # newest selection on top, as the original prepends each clicked label
    assert rich.startswith("You have clicked l.\nYou have clicked black.\nInstruction:\n")
    assert "  [clicked button] black [clicked button_]\n  [button] grey [button_]\n" in rich

    s.step("click[features]")
    assert s.page == "sub" and s.clickables() == ["back to search", "< prev"]
    assert s.observation("text").endswith("[SEP] Back to Search [SEP] < Prev [SEP] soft and warm")
    s.step("click[< prev]")  # back to the item page, options kept
    assert s.page == "item" and s.state.options == {"color": "black", "size": "l"}

    out = s.step("click[buy now]")
    # attributes 1/1 + options 2/2 + price ok, over 1 + 2 + 1; same query -> r_type 1
    assert out.done and out.reward == 1.0
    assert out.breakdown.to_info()["r_option"] == 1.0
    assert s.clickables() == [] and s.observation("text").startswith("Thank you for shopping with us!")
    # nothing works after the purchase
    assert not s.step("click[buy now]").valid


def test_prev_from_item_clears_options_and_marks_visited(shop):
    s = shop.session(GOAL)
    s.step("search[wool]")
    s.step("click[b0000wool1]")
    s.step("click[grey]")
    s.step("click[< prev]")
    assert s.page == "results" and s.state.options == {}
    assert "[clicked button] B0000WOOL1 [clicked button_]" in s.observation("text_rich")
    s.step("click[b0000wool1]")
    out = s.step("click[buy now]")
    # no option selected: attributes 1 + options 0 + price 1 over 4
    assert out.reward == pytest.approx(2 / 4)
    assert out.breakdown.r_option == 0.0


def test_back_to_search_forgets_visited(shop):
    s = shop.session(GOAL)
    s.step("search[wool]")
    s.step("click[b0000wool1]")
    s.step("click[back to search]")
    assert s.page == "search" and s.state.visited == set()


def test_paging_past_the_end_and_zero_hits(shop):
    s = shop.session(GOAL)
    s.step("search[wool]")
    total = len(s.state.results)
    s.step("click[next >]")  # "next >" is always there, even past the last result
    assert s.clickables() == ["back to search", "< prev", "next >"]
    assert f"Page 2 (Total results: {total}) [SEP] < Prev [SEP] Next >" in s.observation("text")
    s.step("search[zzzz qqqq]")
    assert s.clickables() == ["back to search", "next >"]
    assert s.observation("text").endswith("Page 1 (Total results: 0) [SEP] Next >")


@pytest.mark.parametrize("action", [
    "search[]", "click[search]", "click[not on page]", "buy now", "",
    "click[]", "search", "\u2603[\u2603]", "search[wool\nsocks]", "click[next\n>]"])
def test_invalid_actions_are_noops(shop, action):
    s = shop.session(GOAL)
    s.step("search[wool]")
    before = s.observation("text_rich")
    out = s.step(action)
    assert (out.valid, out.reward, out.done, out.kind) == (False, 0.0, False, "invalid")
    assert s.observation("text_rich") == before


def test_blank_search_is_a_search_as_in_webshop(shop):
    # WebShop refuses only an empty argument (``action_arg != ''``): "search[ ]" searches for
    # nothing and shows an empty results page.
    s = shop.session(GOAL)
    out = s.step("search[   ]")
    assert (out.valid, out.kind) == (True, "search") and s.page == "results"
    assert "Page 1 (Total results: 0)" in s.observation("text")


def test_search_works_from_any_page_and_odd_queries(shop):
    s = shop.session(GOAL)
    s.step("search[wool]")
    s.step("click[b0000wool1]")
    assert s.step("search[cotton]").valid and s.page == "results"
    assert s.step("search[" + "wool " * 5000 + "]").valid  # huge query: truncated, not an error
    assert s.step("search[ça va \u00e9t\u00e9 \U0001f600]").valid  # unicode
    with pytest.raises(TypeError):
        s.step(3)


# ----------------------------------------------------------------------------- real catalogue

@pytest.mark.webshop_data
def test_webshop_capture_sequence(webshop_shop):
    """The goal-1 walk from reference/PAGES.md: same clickables, texts and reward as the original."""
    s = webshop_shop.shop.session(webshop_shop.goals[1])
    s.step("search[instruction: find me butt lifting, light weight women's shorts with high waist, tummy control "
           "with color: black, and size: 3x-large, and price lower than]")
    assert s.clickables() == ["back to search", "next >", "b09qcp4579", "b09qcvcyvy", "b09pl5w9pd", "b09q37jqz6",
                              "b09s632dt3", "b085s5p7wb", "b09pbpz24z", "b099231v35", "b09q5zhrvm", "b001c6jxju"]
    s.step("click[next >]")
    assert s.clickables() == ["back to search", "< prev", "next >", "b09pvnlvrw", "b09p57zkgp", "b092t8cy89",
                              "b09lhm4wqs", "b09p1hj32g", "b094q7b3ss", "b07mgb73nj", "b07yn72rh4", "b09b2hn6nn",
                              "b09msz4vs8"]
    assert "[SEP] B09PVNLVRW [SEP] Women's V-Neck Rompers Printed Jumpsuit Long Sleeve Homewear Butt Flap Pajamas " \
           "One-Piece Onesies Nightwear Sexy Bodysuit [SEP] $17.4 to $28.67 [SEP]" in s.observation("text")
    s.step("click[< prev]")
    s.step("click[b09qcp4579]")
    assert s.clickables() == ["back to search", "< prev", "description", "features", "reviews", "buy now", "black",
                              "blue", "gray", "purple", "wine", "small", "medium", "large", "x-large", "xx-large",
                              "3x-large"]
    s.step("click[black]")
    assert s.observation("text_rich").startswith(
        "You have clicked black.\nInstruction:\nFind me butt lifting, light weight women's shorts with high waist, "
        "tummy control with color: black, and size: 3x-large, and price lower than 50.00 dollars\n"
        "[button] Back to Search [button_]\n[button] < Prev [button_]\ncolor\n"
        "  [clicked button] black [clicked button_]\n  [button] blue [button_]\n")
    s.step("click[features]")
    assert s.observation("text_rich").split("\n")[4] == " Made in USA or Imported "
    s.step("click[< prev]")
    s.step("click[< prev]")
    assert "\n[clicked button] B09QCP4579 [clicked button_]\n" in s.observation("text_rich")
    s.step("click[b09qcp4579]")  # options were reset by the results page
    out = s.step("click[buy now]")
    assert out.reward == pytest.approx(0.7142857142857143, abs=1e-12)
    assert out.breakdown.to_info() == pytest.approx({
        "r_type": 1.0, "r_att": 1.0, "w_att": 0.5714285714285714, "query_match": True, "category_match": True,
        "title_score": 0.8823529411764706, "r_option": 0.0, "w_option": 0.2857142857142857, "r_price": True,
        "w_price": 0.14285714285714285})


def test_click_argument_is_lower_cased_like_webshop(shop):
    s = shop.session(GOAL)
    s.step("search[wool]")
    assert s.step("click[B0000WOOL1]").valid and s.page == "item"
