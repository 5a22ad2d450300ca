"""The segments observation layout: parsing the env's page text into instruction, actions, lines."""

from __future__ import annotations

import numpy as np

from rl_app.env.observation import ObservationEncoder, SegmentSizes, observation_space, state_segments

RESULTS = ("search[blue shirt] [SEP] click[b0001] [SEP] Instruction:\nfind a blue shirt\n"
           "[button] Back to Search [button_]\nPage 1 (Total results: 50)\n[button] Next > [button_]\n"
           "\n[button] B0001 [button_]\nAcme Blue Shirt\n$12.50\n"
           "\n[clicked button] B0002 [clicked button_]\nRed Shirt\n$9.99 to $15.00\n")


def test_results_page_becomes_one_line_per_result():
    seg = state_segments(RESULTS)
    assert seg.instruction == "find a blue shirt"
    assert seg.prev_actions == ("click[b0001]", "search[blue shirt]")  # most recent first
    assert seg.lines == ("Back to Search", "Page 1 (Total results: 50)", "Next >",
                         "$12.50 B0001 Acme Blue Shirt", "$9.99 to $15.00 selected B0002 Red Shirt")


def test_item_page_marks_selected_options_and_search_page_has_only_the_button():
    item = ("You have clicked blue.\nInstruction:\nfind a blue shirt\n[button] < Prev [button_]\ncolor\n"
            "  [clicked button] blue [clicked button_]\n  [button] red [button_]\nAcme Blue Shirt\nPrice: $12.50\n")
    seg = state_segments(item)
    assert seg.prev_actions == ()
    assert seg.lines == ("You have clicked blue.", "< Prev", "color", "selected blue", "red", "Acme Blue Shirt",
                         "Price: $12.50")
    search = "WebShop\nInstruction: \nfind a blue shirt\n[button] Search [button_]\n"
    assert state_segments(search) == ("find a blue shirt", (), ("Search",))


def test_text_mode_pages_split_on_sep():
    seg = state_segments("click[x] [SEP] Instruction: [SEP] find a hat [SEP] Back to Search [SEP] Buy Now")
    assert seg.prev_actions == ("click[x]",)
    assert seg.instruction == "find a hat" and seg.lines == ("Back to Search", "Buy Now")


def test_encoder_keeps_first_and_last_lines_and_repeats_rows():
    sizes = SegmentSizes(instruction_tokens=16, lines=4, line_tokens=8)
    enc = ObservationEncoder("tiny", k_max=3, max_action_tokens=8, layout="segments", segments=sizes)
    page = "Instruction:\nfind a hat\n" + "".join(f"line {i}\n" for i in range(10))
    obs = enc.encode(page, ["click[a]", "click[b]"])
    assert set(obs) == {"instruction_ids", "line_ids", "action_ids", "action_mask"}
    assert obs["line_ids"].shape == (4, 8) and obs["action_mask"].tolist() == [1, 1, 0]
    tok = enc.tokenizer
    decoded = [tok.decode([t for t in row if t], skip_special_tokens=True) for row in obs["line_ids"]]
    assert decoded == ["line 0", "line 1", "line 8", "line 9"]
    assert observation_space(3, 64, 8, layout="segments", segments=sizes).contains(obs)
    assert np.array_equal(enc.encode(page, ["click[a]"])["line_ids"], obs["line_ids"])


def test_candidates_the_page_shows_as_clicked_read_selected():
    from rl_app.env.observation import mark_selected

    page = ("Instruction:\nfind a hat\n  [clicked button] 12 [clicked button_]\n  [button] 13 [button_]\n"
            "\n[clicked button] B0002 [clicked button_]\nRed Hat\n$9.99\n")
    assert mark_selected(page, ["click[12] size", "click[13] size", "click[b0002] Red Hat", "click[buy now]"]) == [
        "selected click[12] size", "click[13] size", "selected click[b0002] Red Hat", "click[buy now]"]
    enc = ObservationEncoder("tiny", k_max=2, max_action_tokens=8, layout="segments")
    row = enc.encode(page, ["click[12] size", "click[13] size"])["action_ids"]
    assert enc.tokenizer.decode([t for t in row[0] if t], skip_special_tokens=True).startswith("selected click")
    # the text layout reads candidates as given
    assert np.array_equal(ObservationEncoder("tiny", k_max=2, max_action_tokens=8).encode(page, ["click[12] size"])[
        "action_ids"][0], ObservationEncoder("tiny", k_max=2, max_action_tokens=8).encode("", ["click[12] size"])[
        "action_ids"][0])


def test_prices_are_marked_against_the_instructions_budget():
    from rl_app.env.observation import OVER_BUDGET, UNDER_BUDGET, budget_of, mark_price

    assert budget_of("Find me socks, and price lower than 40.00 dollars") == 40.0
    assert budget_of("socks under $1,200") == 1200.0 and budget_of("Find me socks") is None
    assert mark_price("$16.05 to $40.98 B07HRFSNL4 Nautica", 40.0) == f"$16.05 to $40.98 {UNDER_BUDGET} B07HRFSNL4 Nautica"
    assert mark_price("$41.00 B0X Hat", 40.0) == f"$41.00 {OVER_BUDGET} B0X Hat"
    assert mark_price("Price: $40.00", 40.0) == f"Price: $40.00 {UNDER_BUDGET}"
    assert mark_price("Back to Search", 40.0) == "Back to Search" and mark_price("$5 B0X", None) == "$5 B0X"


def test_encoded_result_rows_carry_the_price_mark():
    from rl_app.env.observation import ObservationEncoder, SegmentSizes

    page = ("Instruction:\nFind me a hat, and price lower than 20.00 dollars\n[button] Back to Search [button_]\n"
            "\n[button] B0001 [button_]\nRed Hat\n$12.50\n\n[button] B0002 [button_]\nBlue Hat\n$25.00\n")
    enc = ObservationEncoder("tiny", k_max=2, layout="segments", segments=SegmentSizes(16, 4, 16))
    obs = enc.encode(page, ["click[b0001]", "click[b0002]"])
    rows = [enc.tokenizer.decode(r, skip_special_tokens=True) for r in obs["line_ids"] if r[0]]
    assert rows[1:] == ["$ 12. 50 under budget b0001 red hat", "$ 25. 00 over budget b0002 blue hat"]
