"""WebShop human-demonstration reader on hand-written files covering each edge case."""

from __future__ import annotations

import json
import math

import pytest

from rl_app.data.human import (
    BAD_INDEX,
    GOAL_NOT_FOUND,
    LENGTH_MISMATCH,
    MALFORMED,
    OTHER_SPLIT,
    SEARCH_WITHOUT_ACTION,
    HumanDemoFormatError,
    load_human_goals,
    main,
    read_human_demos,
    recover_instruction,
)
from rl_app.data.io import read_trajectories, write_trajectories
from rl_app.data.schema import validate_episodes

SHOES = "i need blue running shoes for women"        # goal 1501 (train)
CANDLES = "i want  birthday candles for my cake"     # goal 700 (dev), with WebShop's double space
SOAP = "find me a lavender soap bar"                 # goal 3 (test)


@pytest.fixture
def goals_file(tmp_path):
    goals = [f"filler goal {i}" for i in range(1600)]
    goals[1501], goals[700], goals[3] = SHOES, CANDLES, SOAP
    goals[1550] = SHOES  # a duplicate: the first index wins, as human_goals.index()
    path = tmp_path / "human_goals.json"
    path.write_text(json.dumps(goals))
    return path


def text_state(instruction: str) -> str:
    return f"WebShop\nInstruction:  \n{instruction}\n[button] Search [button_]"


RESULTS = ["click[back to search]", "click[next >]", "click[b07abc1234]", "click[b07abc9999]"]
ITEM = ["click[back to search]", "click[< prev]", "click[size 8]", "click[buy now]"]

# 1. train goal in text mode, quotes and a price clause in the instruction; search query not listed
SHOES_TRAJ = {
    "states": [text_state("I need \"blue\" running shoes for women, and price lower than 50.00 dollars"),
               "results page", "item page"],
    "available_actions": [[], RESULTS, ITEM],
    "action_idxs": [-1, 2, 3],
    "actions": ["search[blue running shoes]", "click[b07abc1234]", "click[buy now]"],
    "images": [0, 0, 0],
}
# 2. dev goal in simple ([SEP]) mode, no `actions`: its -1 search step cannot be kept
CANDLES_TRAJ = {
    "states": ["WebShop [SEP] Instruction: [SEP] I want  birthday candles for my cake, and price lower than "
               "40.00 dollars [SEP] Search", "results", "item"],
    "available_actions": [["search[candles]"], RESULTS, ITEM],
    "action_idxs": [-1, 3, 3],
}
# 3. test goal whose query IS among the listed actions; an action text that disagrees with its index
SOAP_TRAJ = {
    "states": [text_state("Find me a lavender soap bar"), "results", "item"],
    "available_actions": [["search[lavender soap]", "search[soap]"], RESULTS, ITEM],
    "action_idxs": [-1, 2, 3],
    "actions": ["search[soap]", "click[b07abc9999]", "click[buy now]"],
}


def write_jsonl(path, lines):
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_recover_instruction_follows_webshop():
    assert recover_instruction(SHOES_TRAJ["states"][0]) == SHOES
    assert recover_instruction(CANDLES_TRAJ["states"][0]) == CANDLES
    assert recover_instruction("Amazon Shopping Game\nInstruction:\nI'd like \"red\" socks\n"
                               "[button] Search [button_]") == "id like red socks"
    # our own env's text_rich first state reads back too
    assert recover_instruction("WebShop\nInstruction: \nFind me x, and price lower than 9.00 dollars\n"
                               "[button] Search [button_]\n") == "find me x"


def test_three_trajectories_each_edge_case(tmp_path, goals_file):
    demos = write_jsonl(tmp_path / "il.jsonl", [SHOES_TRAJ, "", CANDLES_TRAJ, SOAP_TRAJ])
    records, report = read_human_demos(demos, goals_file)
    validate_episodes(records)
    by_goal = {}
    for r in records:
        by_goal.setdefault(r.goal_index, []).append(r)
    assert sorted(by_goal) == [3, 700, 1501]
    assert {g: rows[0].split for g, rows in by_goal.items()} == {3: "test", 700: "dev", 1501: "train"}

    shoes = by_goal[1501]  # search query appended as the chosen candidate
    assert [r.step for r in shoes] == [0, 1, 2]
    assert shoes[0].candidates == ("search[blue running shoes]",) and shoes[0].chosen == 0
    assert shoes[0].state == SHOES_TRAJ["states"][0]  # unchanged text
    assert shoes[1].action == "click[b07abc1234]" and shoes[2].action == "click[buy now]"
    assert shoes[1].candidate_texts == shoes[1].candidates
    assert [r.done for r in shoes] == [False, False, True]
    assert all(math.isnan(r.reward) and math.isnan(r.episode_reward) for r in shoes)
    assert {(r.source, r.agent, r.seed) for r in records} == {("human", "human", -1)}
    assert shoes[0].episode_id == "human/il.jsonl/1"

    candles = by_goal[700]  # no `actions`: the search step is dropped, positions kept
    assert [r.step for r in candles] == [1, 2] and candles[-1].done

    soap = by_goal[3]  # listed query: chosen by its index, nothing appended
    assert soap[0].candidates == ("search[lavender soap]", "search[soap]") and soap[0].chosen == 1
    assert soap[1].action == "click[b07abc1234]"  # action_idxs wins over a disagreeing `actions` text

    assert report.lines == 3 and report.trajectories_kept == 3 and report.steps_kept == 8
    assert dict(report.steps_dropped) == {SEARCH_WITHOUT_ACTION: 1}
    assert not report.trajectories_dropped
    assert report.search_queries_appended == 1 and report.action_text_mismatches == 1
    assert "kept 3 trajectories / 8 steps" in report.line()


def test_bad_lines_are_dropped_counted_and_located(tmp_path, goals_file):
    lines = [
        SHOES_TRAJ,                                                         # line 1: kept
        "{not json",                                                        # line 2
        {**SHOES_TRAJ, "action_idxs": [-1, 2]},                             # line 3: length mismatch
        {**SHOES_TRAJ, "states": [text_state("a goal nobody wrote")] + SHOES_TRAJ["states"][1:]},  # line 4
        {**SHOES_TRAJ, "action_idxs": [-1, 9, 3]},                          # line 5: index out of range
        {"states": ["s"], "available_actions": [[]]},                       # line 6: key missing
        [1, 2, 3],                                                          # line 7: not an object
        CANDLES_TRAJ,                                                       # line 8: kept
    ]
    demos = write_jsonl(tmp_path / "mixed.jsonl", lines)
    records, report = read_human_demos(demos, goals_file)
    assert report.trajectories_kept == 2 and len({r.episode_id for r in records}) == 2
    assert dict(report.trajectories_dropped) == {MALFORMED: 3, LENGTH_MISMATCH: 1, GOAL_NOT_FOUND: 1, BAD_INDEX: 1}
    assert dict(report.steps_dropped) == {LENGTH_MISMATCH: 3, GOAL_NOT_FOUND: 3, BAD_INDEX: 3,
                                          SEARCH_WITHOUT_ACTION: 1}
    located = "\n".join(report.problems)
    for line_no in (2, 3, 4, 5, 6, 7):
        assert f"mixed.jsonl:{line_no}:" in located
    assert "mixed.jsonl:4: goal not found: goal 'a goal nobody wrote'" in located
    assert "action_idxs=9 for 4 available actions" in located

    with pytest.raises(HumanDemoFormatError, match=r"mixed.jsonl:2: malformed line: not valid JSON"):
        read_human_demos(demos, goals_file, strict=True)


def test_split_filter(tmp_path, goals_file):
    demos = write_jsonl(tmp_path / "il.jsonl", [SHOES_TRAJ, CANDLES_TRAJ, SOAP_TRAJ])
    records, report = read_human_demos(demos, goals_file, splits={"train"})
    assert {r.goal_index for r in records} == {1501}
    assert report.trajectories_dropped[OTHER_SPLIT] == 2 and report.steps_dropped[OTHER_SPLIT] == 6
    with pytest.raises(ValueError, match="splits must be among"):
        read_human_demos(demos, goals_file, splits={"eval"})


def test_files_that_are_not_in_the_format(tmp_path, goals_file):
    with pytest.raises(FileNotFoundError, match="human demonstration file not found"):
        read_human_demos(tmp_path / "nope.jsonl", goals_file)
    not_jsonl = write_jsonl(tmp_path / "array.json", ['[{"a": 1},', '{"b": 2}]'])
    with pytest.raises(HumanDemoFormatError, match=r"array.json: none of its 2 lines .*/array.json:1: malformed"):
        read_human_demos(not_jsonl, goals_file)
    demos = write_jsonl(tmp_path / "il.jsonl", [SHOES_TRAJ])
    with pytest.raises(FileNotFoundError, match="human goals file not found"):
        read_human_demos(demos, tmp_path / "missing_goals.json")
    (tmp_path / "bad_goals.json").write_text(json.dumps({"goal": 1}))
    with pytest.raises(HumanDemoFormatError, match="expected a JSON list of instruction strings"):
        read_human_demos(demos, tmp_path / "bad_goals.json")


def test_goal_lookup_first_index_and_whitespace(goals_file):
    index = load_human_goals(goals_file)
    assert index[SHOES] == 1501  # not the duplicate at 1550
    assert index[CANDLES] == 700 and index["i want birthday candles for my cake"] == 700


def test_human_rows_round_trip_through_parquet_and_cli(tmp_path, goals_file, capsys):
    demos = write_jsonl(tmp_path / "il.jsonl", [SHOES_TRAJ, CANDLES_TRAJ, SOAP_TRAJ])
    records, _ = read_human_demos(demos, goals_file)
    frame = read_trajectories(write_trajectories(records, tmp_path / "human"))
    assert len(frame) == 8 and frame["reward"].isna().all()
    assert main([str(demos), "--human-goals", str(goals_file), "--splits", "train", "--out",
                 str(tmp_path / "cli")]) == 0
    assert "kept 1 trajectories / 3 steps" in capsys.readouterr().out
    assert set(read_trajectories(tmp_path / "cli")["split"]) == {"train"}
