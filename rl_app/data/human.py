"""Reader for WebShop's human demonstrations (``il_trajs_finalized_images.jsonl``).

Format: one JSON object per line with parallel lists

- ``states``: the observation text of each step;
- ``available_actions``: the action strings offered in each state;
- ``action_idxs``: the index of the action taken; ``-1`` marks a search step whose query is
  not among the listed actions;
- optional ``actions`` (the action strings taken) and ``images`` (ignored here).

The goal is not stored. As WebShop's ``train_choice_il.py`` (``process_goal``) does, it is
recovered from ``states[0]`` (:func:`recover_instruction`) and looked up in
``human_goals.json``; its position there is the goal index, which decides the split
(test 0-499, dev 500-1499, train 1500+). Human goal indices index ``human_goals.json``, not
the env's goal set.

Conversion to :class:`~rl_app.data.schema.StepRecord` (``source="human"``, ``agent="human"``):

- ``state`` is the given state text, unchanged; ``candidates`` and ``candidate_texts`` are the
  available actions (the file has no richer text for them).
- A ``-1`` search step keeps the query taken (``actions[i]``): it becomes the chosen
  candidate, appended to the list when absent. Without ``actions`` the query is unknown and
  the step is dropped (``step`` keeps each state's original position, so the gap shows).
- ``reward`` and ``episode_reward`` are NaN (the file does not store them); the last state
  is ``done``.

Whole trajectories are dropped (and counted, with file:line in :attr:`HumanDemoReport.problems`)
for malformed lines, list-length mismatches, action indices out of range and goals not found
in ``human_goals.json``; ``strict=True`` raises :class:`HumanDemoFormatError` instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Optional, Sequence

from rl_app.data.schema import NO_SEED, UNKNOWN_REWARD, StepRecord
from rl_app.errors import InputError
from rl_app.shop.goals import split_of

__all__ = [
    "HumanDemoFormatError",
    "HumanDemoReport",
    "recover_instruction",
    "load_human_goals",
    "read_human_demos",
    "main",
]

# Headers WebShop's observation modes put before the instruction (lowercased): html/text
# ("amazon shopping game" in its early version), and simple/text_rich ("[sep]" separated).
_HEADERS = ("amazon shopping game\ninstruction:", "webshop\ninstruction:", "webshop [sep] instruction: [sep]")
# The search button after the instruction: text mode, simple mode.
_SEARCH_BUTTON = "\n[button] search [button_]"
_SIMPLE_SEARCH_SUFFIX = "[sep] search"
_PRICE_CLAUSE = ", and price lower than"
# Problems quoted verbatim in the report (the counts cover all of them).
MAX_PROBLEMS_LISTED = 20

# Drop reasons (report keys).
MALFORMED = "malformed line"
LENGTH_MISMATCH = "length mismatch"
BAD_INDEX = "action index out of range"
GOAL_NOT_FOUND = "goal not found"
OTHER_SPLIT = "not in requested splits"
SEARCH_WITHOUT_ACTION = "search step without actions"


class HumanDemoFormatError(InputError):
    """A human-demonstration file (or human_goals.json) does not have the expected format."""


def recover_instruction(state: str) -> str:
    """The goal's instruction as human_goals.json stores it, from a trajectory's first state.

    WebShop's ``process_goal``: lowercase; drop ``"`` and ``'``; drop the header and the search
    button; cut the ``", and price lower than X dollars"`` clause. The ``[sep]`` forms of
    the simple observation mode are handled too.
    """
    s = state.lower().replace('"', "").replace("'", "")
    for header in _HEADERS:
        s = s.replace(header, "")
    s = s.replace(_SEARCH_BUTTON, "").strip()
    if s.endswith(_SIMPLE_SEARCH_SUFFIX):
        s = s[: -len(_SIMPLE_SEARCH_SUFFIX)].strip()
    if _PRICE_CLAUSE in s:
        s = s.split(_PRICE_CLAUSE)[0]
    return s.strip()


def _normalise_space(s: str) -> str:
    return " ".join(s.split())


def load_human_goals(path: str | os.PathLike) -> dict[str, int]:
    """instruction -> index of its first occurrence in human_goals.json (a JSON list of strings).

    Duplicates keep the first index, as WebShop's ``human_goals.index(s)``. Whitespace-normalised
    forms are added too (762 of the real strings have runs of spaces) without overriding exact ones.
    """
    path = Path(path)
    try:
        goals = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"human goals file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise HumanDemoFormatError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(goals, list) or not all(isinstance(g, str) for g in goals):
        raise HumanDemoFormatError(f"{path}: expected a JSON list of instruction strings")
    index: dict[str, int] = {}
    for i, g in enumerate(goals):
        index.setdefault(g, i)
    for i, g in enumerate(goals):
        index.setdefault(_normalise_space(g), i)
    return index


@dataclass
class HumanDemoReport:
    """What a read kept and dropped, and why."""

    file: str
    lines: int = 0
    trajectories_kept: int = 0
    steps_kept: int = 0
    trajectories_dropped: Counter = field(default_factory=Counter)
    steps_dropped: Counter = field(default_factory=Counter)
    search_queries_appended: int = 0
    action_text_mismatches: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        def fmt(c: Counter) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"

        return (f"{self.file}: kept {self.trajectories_kept} trajectories / {self.steps_kept} steps; "
                f"dropped trajectories: {fmt(self.trajectories_dropped)}; dropped steps: {fmt(self.steps_dropped)}; "
                f"{self.search_queries_appended} search queries appended to their candidates")


class _Drop(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _check_trajectory(obj: Any) -> tuple[list, list, list, Optional[list]]:
    if not isinstance(obj, dict):
        raise _Drop(MALFORMED, f"expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in ("states", "available_actions", "action_idxs") if k not in obj]
    if missing:
        raise _Drop(MALFORMED, f"missing key(s) {missing}")
    states, avail, idxs, actions = obj["states"], obj["available_actions"], obj["action_idxs"], obj.get("actions")
    for name, value in (("states", states), ("available_actions", avail), ("action_idxs", idxs)):
        if not isinstance(value, list):
            raise _Drop(MALFORMED, f"{name} must be a list, got {type(value).__name__}")
    if actions is not None and not isinstance(actions, list):
        raise _Drop(MALFORMED, f"actions must be a list, got {type(actions).__name__}")
    if not states:
        raise _Drop(MALFORMED, "no states")
    if not all(isinstance(s, str) for s in states):
        raise _Drop(MALFORMED, "states must be strings")
    if not all(isinstance(a, list) and all(isinstance(x, str) for x in a) for a in avail):
        raise _Drop(MALFORMED, "available_actions must be lists of strings")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in idxs):
        raise _Drop(MALFORMED, "action_idxs must be integers")
    if actions is not None and not all(isinstance(a, str) for a in actions):
        raise _Drop(MALFORMED, "actions must be strings")
    lengths = {"states": len(states), "available_actions": len(avail), "action_idxs": len(idxs)}
    if actions is not None:
        lengths["actions"] = len(actions)
    if len(set(lengths.values())) > 1:
        raise _Drop(LENGTH_MISMATCH, f"list lengths differ: {lengths}")
    for i, (a, idx) in enumerate(zip(avail, idxs)):
        if idx < -1 or idx >= len(a):
            raise _Drop(BAD_INDEX, f"step {i}: action_idxs={idx} for {len(a)} available actions")
    return states, avail, idxs, actions


def read_human_demos(path: str | os.PathLike, human_goals_path: str | os.PathLike, *,
                     splits: Optional[Collection[str]] = None, strict: bool = False
                     ) -> tuple[list[StepRecord], HumanDemoReport]:
    """Read a human-demonstration jsonl into step records plus a report of what was dropped.

    Args:
        path: the jsonl file (one trajectory per line; blank lines are skipped).
        human_goals_path: WebShop's human_goals.json (a list of instruction strings).
        splits: keep only these goal splits (e.g. ``{"train"}`` for training data); None = all.
        strict: raise :class:`HumanDemoFormatError` (naming file and line) on the first
            dropped trajectory instead of counting it.
    Raises:
        FileNotFoundError, HumanDemoFormatError: unreadable files, or a file in which no
        line is a trajectory (so it is not in this format at all).
    """
    path = Path(path)
    goal_index = load_human_goals(human_goals_path)
    if splits is not None and not set(splits) <= {"test", "dev", "train"}:
        raise ValueError(f"splits must be among test, dev, train; got {sorted(splits)}")
    report = HumanDemoReport(file=str(path))
    records: list[StepRecord] = []
    parsed = 0
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"human demonstration file not found: {path}") from None
    with handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            report.lines += 1
            try:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise _Drop(MALFORMED, f"not valid JSON ({e.msg} at column {e.colno})") from None
                states, avail, idxs, actions = _check_trajectory(obj)
                parsed += 1
                instruction = recover_instruction(states[0])
                index = goal_index.get(instruction, goal_index.get(_normalise_space(instruction)))
                if index is None:
                    raise _Drop(GOAL_NOT_FOUND, f"goal {instruction[:80]!r} is not in {human_goals_path}")
            except _Drop as drop:
                message = f"{path}:{line_no}: {drop.reason}: {drop}"
                if strict:
                    raise HumanDemoFormatError(message) from None
                report.trajectories_dropped[drop.reason] += 1
                # steps are countable once the line parsed as a trajectory with a states list
                if drop.reason in (GOAL_NOT_FOUND, BAD_INDEX, LENGTH_MISMATCH):
                    report.steps_dropped[drop.reason] += len(obj["states"])
                if len(report.problems) < MAX_PROBLEMS_LISTED:
                    report.problems.append(message)
                continue
            split = split_of(index)
            if splits is not None and split not in splits:
                report.trajectories_dropped[OTHER_SPLIT] += 1
                report.steps_dropped[OTHER_SPLIT] += len(states)
                continue
            rows = _convert(states, avail, idxs, actions, index=index, episode_id=f"human/{path.name}/{line_no}",
                            report=report)
            if rows:
                records.extend(rows)
                report.trajectories_kept += 1
                report.steps_kept += len(rows)
    if report.lines and not parsed:
        raise HumanDemoFormatError(
            f"{path}: none of its {report.lines} lines is a human-demonstration trajectory "
            f"(objects with states / available_actions / action_idxs); first problem: {report.problems[0]}")
    return records, report


def _convert(states: list[str], avail: list[list[str]], idxs: list[int], actions: Optional[list[str]], *,
             index: int, episode_id: str, report: HumanDemoReport) -> list[StepRecord]:
    last = len(states) - 1
    rows = []
    for i, (state, cands, idx) in enumerate(zip(states, avail, idxs)):
        cands = list(cands)
        if idx == -1:
            if actions is None:
                report.steps_dropped[SEARCH_WITHOUT_ACTION] += 1
                continue
            taken = actions[i]
            if taken in cands:
                idx = cands.index(taken)
            else:
                cands.append(taken)
                idx = len(cands) - 1
                report.search_queries_appended += 1
        elif actions is not None and actions[i] != cands[idx]:
            report.action_text_mismatches += 1  # WebShop trains on the index; so do we
        rows.append(StepRecord(
            episode_id=episode_id, goal_index=index, split=split_of(index), step=i, state=state,
            candidates=tuple(cands), candidate_texts=tuple(cands), chosen=idx, reward=UNKNOWN_REWARD,
            done=i == last, source="human", episode_reward=UNKNOWN_REWARD, agent="human", seed=NO_SEED))
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m rl_app.data.human FILE --human-goals human_goals.json --out runs/human``"""
    from rl_app.data.io import write_trajectories

    ap = argparse.ArgumentParser(prog="python -m rl_app.data.human", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", help="il_trajs_finalized_images.jsonl (or the same format)")
    ap.add_argument("--human-goals", required=True, help="WebShop's human_goals.json")
    ap.add_argument("--splits", default=None, help="comma-separated splits to keep (default: all)")
    ap.add_argument("--strict", action="store_true", help="fail on the first bad trajectory")
    ap.add_argument("--out", default=None, help="write the steps as a trajectory data set here")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    splits = set(args.splits.split(",")) if args.splits else None
    records, report = read_human_demos(args.path, args.human_goals, splits=splits, strict=args.strict)
    print(report.line())
    for problem in report.problems:
        print("  ", problem)
    if args.out:
        summary = {"report": report.line(), "trajectories_kept": report.trajectories_kept,
                   "steps_kept": report.steps_kept, "trajectories_dropped": dict(report.trajectories_dropped),
                   "steps_dropped": dict(report.steps_dropped)}
        print("written to", write_trajectories(records, args.out, overwrite=args.overwrite, summary=summary))
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
