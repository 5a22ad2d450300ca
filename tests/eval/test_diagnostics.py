"""Diagnostics: decision types of demonstrated steps and failure kinds of evaluated episodes."""

from __future__ import annotations

from types import SimpleNamespace

from rl_app.eval.diagnostics import FAILURE_KINDS, decision_accuracy, decision_type, failure_counts, failure_kind
from rl_app.eval.evaluate import EpisodeRecord

RESULTS = "Instruction:\nfind a hat\n[button] Back to Search [button_]\nPage 1 (Total results: 50)\n[button] Next > [button_]\n"
ITEM = "Instruction:\nfind a hat\n[button] < Prev [button_]\nsize\n  [button] large [button_]\n"


def test_decision_types():
    assert decision_type(RESULTS, "search[hat]") == "search"
    assert decision_type(RESULTS, "click[b0abc12345]") == "result"
    assert decision_type(RESULTS, "click[next >]") == "page"
    assert decision_type(RESULTS, "click[< prev]") == "page"
    assert decision_type(ITEM, "click[< prev]") == "back"
    assert decision_type(ITEM, "click[back to search]") == "back"
    assert decision_type(ITEM, "click[large]") == "option"
    assert decision_type(ITEM, "click[features]") == "subpage"
    assert decision_type(ITEM, "click[buy now]") == "buy"


GOAL = SimpleNamespace(asin="B0TARGET01", goal_options=(SimpleNamespace(name="size", value="large"),),
                       price_upper=30.0)
PRICES = {"B0TARGET01": 20.0, "B0OTHER001": 25.0, "B0DEAR0001": 45.0}


def _record(asin, options=(), reward=0.5, actions=("search[hat]", "click[b0other001]", "click[buy now]")):
    return EpisodeRecord(0, reward, reward == 1.0, len(actions), asin is not None, asin, tuple(options),
                         tuple(actions))


def test_failure_kinds():
    assert failure_kind(_record("B0TARGET01", [("size", "large")], 1.0), GOAL, None, PRICES) == "success"
    assert failure_kind(_record(None, reward=0.0), GOAL, None, PRICES) == "never_bought"
    assert failure_kind(_record("B0DEAR0001"), GOAL, None, PRICES) == "over_price"
    assert failure_kind(_record("B0OTHER001"), GOAL, None, PRICES) == "first_result"
    two_items = ("search[hat]", "click[b0target01]", "click[< prev]", "click[b0other001]", "click[buy now]")
    assert failure_kind(_record("B0OTHER001", actions=two_items), GOAL, None, PRICES) == "wrong_product"
    assert failure_kind(_record("B0TARGET01", [("size", "small")]), GOAL, None, PRICES) == "wrong_options"
    assert failure_kind(_record("B0TARGET01", [("size", "large")], 0.8), GOAL, None, PRICES) == "partial"
    counts = failure_counts([_record(None, reward=0.0), _record("B0DEAR0001"), _record(None, reward=0.0)],
                            [GOAL], None, PRICES)
    assert list(counts) == list(FAILURE_KINDS) and counts["never_bought"] == 2 and counts["over_price"] == 1
    assert sum(counts.values()) == 3


class _Fixed:
    """A policy that always puts its mass on candidate 0."""

    def log_probs_batch(self, states, candidates, batch_size=32):
        import numpy as np

        return [np.log(np.array([0.9] + [0.1 / max(1, len(c) - 1)] * (len(c) - 1))) for c in candidates]


def test_decision_accuracy_counts_per_type():
    states = [RESULTS, RESULTS, ITEM, ITEM]
    candidates = [["click[b0abc12345]", "click[b0def12345]"], ["click[b0abc12345]", "click[b0def12345]"],
                  ["click[large]", "click[buy now]"], ["click[large]", "click[buy now]"]]
    out = decision_accuracy(_Fixed(), states, candidates, [0, 1, 0, 1])
    assert out["eval/accuracy/all"] == 0.5
    assert out["eval/accuracy/result"] == 0.5 and out["eval/steps/result"] == 2
    assert out["eval/accuracy/option"] == 1.0 and out["eval/accuracy/buy"] == 0.0
