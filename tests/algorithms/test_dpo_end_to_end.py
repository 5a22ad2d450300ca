"""demos -> pairs -> DPO -> evaluate, on the synthetic shop with the tiny encoder (the CLI path)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow
SHOP = {"catalogue": "synthetic", "synthetic_products": 1000, "synthetic_seed": 1}


def test_demos_pairs_dpo_evaluate(ray_session, tmp_path):
    import torch

    from rl_app.algorithms.dpo.train import main as dpo_main
    from rl_app.data.demos import generate_demonstrations
    from rl_app.data.pairs import build_step_pairs, read_pairs
    from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
    from rl_app.policy.choice_policy import ChoicePolicy
    from rl_app.env.tokenizer import load_tokenizer
    from rl_app.policy.encoder import EncoderConfig

    demos = generate_demonstrations(SHOP, num_goals=12, num_workers=0, out=tmp_path / "demos", progress=False,
                                    env_config={"max_steps": 10, "k_max": 40})
    assert demos.stats.episodes == 12
    torch.manual_seed(0)  # the reference: a (random) tiny policy at 128 / 16 tokens (not the defaults)
    ref = ChoicePolicy(ChoiceModel(ChoiceModelConfig(encoder=EncoderConfig("tiny"))), load_tokenizer("tiny"),
                       max_state_tokens=128, max_action_tokens=16).save_pretrained(tmp_path / "ref")
    pairs = build_step_pairs(tmp_path / "demos", ref, tmp_path / "pairs", num_rejected=1, seed=0, use_ray=False)
    assert pairs.pairs > 20 and pairs.pairs + pairs.dropped_ties == pairs.states
    assert json.loads((tmp_path / "pairs" / "_summary.json").read_text())["shop_config"]["synthetic_products"] == 1000

    # The first update's loss is computed at pi == pi_ref: exactly ln 2 only if the learner
    # tokenizes as the saved reference scored the pairs (no length flags: read from it).
    assert dpo_main(["--data", str(tmp_path / "pairs"), "--init-checkpoint", str(ref), "--out", str(tmp_path / "dpo0"),
                     "--iterations", "1", "--updates-per-iteration", "1", "--batch-size", "8", "--k-max", "40",
                     "--eval-goals", "0"]) == 0
    first = json.loads((tmp_path / "dpo0" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["losses/dpo"] == pytest.approx(np.log(2), abs=1e-6) and abs(first["rewards/margins"]) < 1e-6
    assert dpo_main(["--data", str(tmp_path / "pairs"), "--init-checkpoint", str(ref), "--out", str(tmp_path / "dpo"),
                     "--iterations", "3", "--updates-per-iteration", "4", "--batch-size", "8", "--lr", "1e-3",
                     "--beta", "0.5", "--k-max", "40", "--eval-split", "test", "--eval-goals", "4"]) == 0
    summary = json.loads((tmp_path / "dpo" / "eval.json").read_text())
    assert summary["algorithm"] == "dpo" and summary["gradient_updates"] == 12 and summary["iterations"] == 3
    assert np.isfinite(summary["final"]["losses/dpo"]) and summary["learner_s"] > 0
    for mode in ("greedy", "sampled"):
        ev = summary[f"eval/{mode}"]
        assert ev["goals"] == 4 and 0.0 <= ev["eval/score"] <= 100.0 and 0.0 <= ev["eval/success_rate"] <= 1.0
        assert (tmp_path / "dpo" / f"eval_{mode}" / "episodes.parquet").is_file()
    # the saved DPO policy loads without Ray and scores the pairs' states
    policy = ChoicePolicy.from_checkpoint(tmp_path / "dpo" / "policy")
    # no length flags: the run tokenized at the reference's lengths (those its pairs were scored at)
    assert (policy.max_state_tokens, policy.max_action_tokens) == (128, 16)
    row = read_pairs(tmp_path / "pairs").iloc[0]
    probs = policy.probs(row["state"], list(row["candidate_texts"]))
    assert probs.shape == (len(row["candidate_texts"]),) and probs.sum() == pytest.approx(1.0)
