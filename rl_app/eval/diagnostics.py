"""Where success is lost: choice accuracy per decision type, and why failed episodes failed.

* :func:`decision_type` names the kind of decision a demonstrated step is (search query,
  result click, next/prev page, sub-page, option click, back, buy now);
  :func:`decision_accuracy` scores a policy's greedy choice against held-out demonstration
  steps per type (``eval/accuracy/<type>``).
* :func:`failure_kind` classifies an evaluated episode that is not a success: never bought
  (step limit), wrong product, right product with wrong or missing options, over the price
  bound, bought the first result seen without looking further, or another partial match.
  It reads the goal's hidden fields, which an evaluator may (the agent never does).

    python -m rl_app.eval.diagnostics --checkpoint runs/il/policy --data runs/demos_heldout
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from rl_app.env.observation import state_segments

__all__ = ["DECISION_TYPES", "FAILURE_KINDS", "decision_type", "decision_accuracy", "failure_kind", "read_steps",
           "failure_counts", "accuracy_key", "main"]

DECISION_TYPES = ("search", "result", "page", "subpage", "option", "back", "buy")
FAILURE_KINDS = ("success", "never_bought", "wrong_product", "wrong_options", "over_price", "first_result",
                 "partial")
# A result click: WebShop asins are 10 letters/digits (an option label rarely is, and never
# without a letter-digit mix like b07hrfsnl4; the count is a diagnostic, not a reward).
_ASIN_CLICK = re.compile(r"^click\[(?=[a-z0-9]*\d)(?=[a-z0-9]*[a-z])[a-z0-9]{10}\]$")
_SUBPAGES = ("click[description]", "click[features]", "click[reviews]", "click[attributes]")


def accuracy_key(kind: str) -> str:
    return f"eval/accuracy/{kind}"


def decision_type(state: str, action: str, candidates: Sequence[str] = ()) -> str:
    """The kind of decision ``action`` is in ``state`` (an env observation string)."""
    action = action.strip().lower()
    if action.startswith("search["):
        return "search"
    if action == "click[buy now]":
        return "buy"
    if action in _SUBPAGES:
        return "subpage"
    if action == "click[back to search]":
        return "back"
    on_results = any(line.startswith("Page ") and "(Total results" in line for line in state_segments(state).lines)
    if action in ("click[next >]", "click[< prev]"):
        return "page" if on_results else "back"
    return "result" if on_results else "option"


def decision_accuracy(policy, states: Sequence[str], candidate_texts: Sequence[Sequence[str]],
                      chosen: Sequence[int], *, candidates: Optional[Sequence[Sequence[str]]] = None,
                      batch_size: int = 32) -> dict[str, Any]:
    """Greedy accuracy of ``policy`` (a :class:`~rl_app.policy.choice_policy.ChoicePolicy`) on
    demonstrated steps: overall and per decision type, with the step counts."""
    logps = policy.log_probs_batch(list(states), [list(c) for c in candidate_texts], batch_size=batch_size)
    actions = candidates if candidates is not None else candidate_texts
    hits: Counter = Counter()
    totals: Counter = Counter()
    for state, acts, lp, c in zip(states, actions, logps, chosen):
        raw = str(list(acts)[int(c)])
        if raw.startswith("click[") and "]" in raw:  # an enriched text: "click[b0..] title words"
            raw = raw[: raw.index("]") + 1]
        kind = decision_type(state, raw)
        totals[kind] += 1
        hits[kind] += int(int(np.argmax(lp)) == int(c))
    out: dict[str, Any] = {accuracy_key("all"): sum(hits.values()) / max(1, sum(totals.values())),
                           "eval/steps/all": int(sum(totals.values()))}
    for kind in DECISION_TYPES:
        if totals[kind]:
            out[accuracy_key(kind)] = hits[kind] / totals[kind]
            out[f"eval/steps/{kind}"] = int(totals[kind])
    return out


def read_steps(path) -> dict[str, list]:
    """The columns :func:`decision_accuracy` reads (state, candidates, candidate_texts, chosen) of a
    trajectory or pair data set."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rl_app.data.io import parquet_files

    columns = ("state", "candidates", "candidate_texts", "chosen")
    tables = [pq.read_table(f, columns=list(columns)) for f in parquet_files(path)]
    table = pa.concat_tables(tables)
    return {c: table[c].to_pylist() for c in columns}


def failure_kind(record, goal, catalogue, prices: Optional[Mapping[str, float]] = None) -> str:
    """Why an :class:`~rl_app.eval.evaluate.EpisodeRecord` on ``goal`` is not a success (or ``success``)."""
    if record.success:
        return "success"
    if not record.terminated or record.purchased_asin is None:
        return "never_bought"
    asin = str(record.purchased_asin).upper()
    price = (prices or {}).get(asin)
    if price is not None and goal.price_upper and price > goal.price_upper:
        return "over_price"
    if asin != goal.asin.upper():
        items_opened = [a for a in record.actions if _ASIN_CLICK.match(a)]
        if len(items_opened) <= 1 and not any(a.startswith("click[next") for a in record.actions):
            return "first_result"
        return "wrong_product"
    bought = {str(v).lower() for _, v in record.purchased_options}
    wanted = {o.value.lower() for o in goal.goal_options}
    if not wanted <= bought:
        return "wrong_options"
    return "partial"


def failure_counts(records, goals, catalogue, prices=None) -> dict[str, int]:
    """Episodes per failure kind (every kind present, zeros included)."""
    counts = Counter(failure_kind(r, goals[r.goal_index], catalogue, prices) for r in records)
    return {kind: int(counts.get(kind, 0)) for kind in FAILURE_KINDS}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rl_app.eval.diagnostics", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="a saved policy (ChoicePolicy.save_pretrained dir)")
    ap.add_argument("--data", required=True, help="held-out demonstration parquet (goals not trained on)")
    ap.add_argument("--out", default=None, help="write the accuracies here as JSON")
    args = ap.parse_args(argv)
    from rl_app.policy.choice_policy import ChoicePolicy

    steps = read_steps(args.data)
    policy = ChoicePolicy.from_checkpoint(args.checkpoint)
    result = decision_accuracy(policy, steps["state"], steps["candidate_texts"], steps["chosen"],
                               candidates=steps["candidates"])
    for kind in ("all", *DECISION_TYPES):
        if accuracy_key(kind) in result:
            print(f"{kind:>8}: accuracy {result[accuracy_key(kind)]:.3f} over {result[f'eval/steps/{kind}']} steps")
    if args.out:
        from rl_app.data.files import atomic_write_text

        atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from rl_app.errors import run_command

    sys.exit(run_command(main))
