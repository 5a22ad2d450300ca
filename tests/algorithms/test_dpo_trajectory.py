"""Trajectory-level DPO (ETO): the pure tensor helpers by hand, the learner at pi == pi_ref, and the CLI.

The task: goal "i want a <colour> shirt"; the expert searches for and clicks the named colour
(reward 1), the agent picks other colours, sometimes with a detour (reward 0), so the
trajectories have 2-4 steps and the pairs need padding.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from .conftest import ACTION_TOKENS, K_MAX, STATE_TOKENS

COLORS = ("red", "blue", "green", "black")
GOALS = 12


# ---------------------------------------------------------------------------- pure helpers
def test_trajectory_logps_sum_real_steps_only():
    from rl_app.algorithms.dpo.trajectory import trajectory_logps

    # 2 pairs, T = 3. Pair 0: chosen 2 steps, rejected 3; pair 1: chosen 1 step, rejected 2.
    mask = torch.tensor([[[1, 1, 0], [1, 1, 1]], [[1, 0, 0], [1, 1, 0]]], dtype=torch.int8)
    step_logps = torch.tensor([-0.5, -0.25, -1.0, -2.0, -0.125, -0.75, -3.0, -0.5], requires_grad=True)
    chosen, rejected = trajectory_logps(step_logps, mask)
    assert chosen.tolist() == [-0.75, -0.75] and rejected.tolist() == [-3.125, -3.5]
    chosen.sum().backward()  # only the chosen steps get gradient
    assert step_logps.grad.tolist() == [1, 1, 0, 0, 0, 1, 0, 0]
    with pytest.raises(ValueError, match="real steps"):
        trajectory_logps(step_logps[:5], mask)


def test_flatten_steps_keeps_real_steps_in_order():
    from rl_app.algorithms.dpo.trajectory import STEP_ACTIONS, STEP_MASK, flatten_steps

    # obs value = 100 * pair + 10 * side + step, so the kept rows can be read off
    codes = torch.tensor([[[100 * b + 10 * s + t for t in range(3)] for s in range(2)] for b in range(2)])
    mask = torch.tensor([[[1, 0, 0], [1, 1, 0]], [[1, 1, 1], [1, 0, 0]]], dtype=torch.int8)
    batch = {"obs": {"state_ids": codes.unsqueeze(-1).repeat(1, 1, 1, 4), "action_mask": codes},
             STEP_ACTIONS: codes, STEP_MASK: mask, "ref_chosen_logp": torch.zeros(2)}
    flat = flatten_steps(batch)
    assert flat[STEP_ACTIONS].tolist() == [0, 10, 11, 100, 101, 102, 110]
    assert flat["obs"]["state_ids"].shape == (7, 4) and flat["obs"]["state_ids"][:, 0].tolist() == [0, 10, 11, 100, 101,
                                                                                                   102, 110]
    assert batch["obs"]["state_ids"].shape == (2, 2, 3, 4)  # input untouched
    assert flat[STEP_MASK] is mask and flat["ref_chosen_logp"] is batch["ref_chosen_logp"]


def test_encode_trajectory_pairs_pads_and_checks():
    from rl_app.algorithms.dpo.trajectory import STEP_ACTIONS, STEP_MASK, encode_trajectory_pairs
    from rl_app.env.observation import ObservationEncoder

    encoder = ObservationEncoder("tiny", k_max=4, max_state_tokens=16, max_action_tokens=4)

    def row(chosen_steps, rejected_steps, action=0):
        side = lambda n: ([f"page {t}" for t in range(n)], [["a", "b"]] * n, [action] * n)  # noqa: E731
        cs, ct, ca = side(chosen_steps)
        rs, rt, ra = side(rejected_steps)
        return dict(chosen_states=cs, chosen_candidate_texts=ct, chosen_actions=ca, rejected_states=rs,
                    rejected_candidate_texts=rt, rejected_actions=ra, ref_chosen_logp=-1.0, ref_rejected_logp=-2.0)

    def batch(rows):
        out = {}
        for key in rows[0]:
            values = [r[key] for r in rows]
            if isinstance(values[0], list):
                out[key] = np.empty(len(values), dtype=object)
                out[key][:] = values
            else:
                out[key] = np.array(values)
        return out

    out = encode_trajectory_pairs(batch([row(2, 3), row(1, 1), row(3, 2)]), encoder=encoder, max_steps=3)
    assert out["obs"]["state_ids"].shape == (3, 2, 3, 16) and out["obs"]["action_ids"].shape == (3, 2, 3, 4, 4)
    assert out[STEP_MASK].tolist() == [[[1, 1, 0], [1, 1, 1]], [[1, 0, 0], [1, 0, 0]], [[1, 1, 1], [1, 1, 0]]]
    assert out["obs"]["action_mask"][0, 0, 0].tolist() == [1, 1, 0, 0]
    assert not out["obs"]["state_ids"][0, 0, 2].any() and out["obs"]["state_ids"][0, 0, 1].any()  # padding is zero
    assert out[STEP_ACTIONS].dtype == np.int64 and out["ref_rejected_logp"].tolist() == [-2.0, -2.0, -2.0]
    with pytest.raises(ValueError, match="max_trajectory_steps"):
        encode_trajectory_pairs(batch([row(4, 1)]), encoder=encoder, max_steps=3)
    with pytest.raises(ValueError, match="outside"):
        encode_trajectory_pairs(batch([row(1, 1, action=2)]), encoder=encoder, max_steps=3)
    with pytest.raises(ValueError, match="missing columns"):
        encode_trajectory_pairs({"state": np.array(["s"])}, encoder=encoder, max_steps=3)


# ---------------------------------------------------------------------------- data
def _episode(eid, goal, choices, texts, reward, source):
    """One trajectory: at step t the agent sees ``texts[t]`` and takes ``choices[t]``."""
    from rl_app.data.schema import StepRecord

    want = COLORS[goal % 4]
    rows = []
    for t, (choice, cands) in enumerate(zip(choices, texts)):
        last = t == len(choices) - 1
        rows.append(StepRecord(
            episode_id=eid, goal_index=goal, split="train", step=t,
            state=f"instruction: i want a {want} shirt [SEP] page {t}", candidates=tuple(cands),
            candidate_texts=tuple(cands), chosen=choice, reward=reward if last else 0.0, done=last, source=source,
            episode_reward=reward, agent="demonstrator" if source == "demo" else "il", seed=goal))
    return rows


@pytest.fixture(scope="module")
def trajectories(tmp_path_factory):
    """The expert picks the named colour twice (reward 1); the agent picks wrong ones (reward 0),
    on every third goal with a detour (4 steps)."""
    from rl_app.data.io import write_trajectories

    rng = np.random.default_rng(0)
    expert, agent = [], []
    for g in range(1500, 1500 + GOALS):
        want = COLORS[g % 4]
        search = [f"search[{c} shirt]" for c in rng.permutation(COLORS)]
        click = [f"click[{c}]" for c in rng.permutation(COLORS)] + ["click[< prev]"]
        expert += _episode(f"d{g}", g, [search.index(f"search[{want} shirt]"), click.index(f"click[{want}]")],
                           [search, click], 1.0, "demo")
        wrong = [i for i, c in enumerate(click) if c not in (f"click[{want}]", "click[< prev]")]
        wrong_search = [i for i, c in enumerate(search) if c != f"search[{want} shirt]"]
        choices = [int(rng.choice(wrong_search)), int(rng.choice(wrong))]
        pages = [search, click]
        if g % 3 == 0:  # a detour: back from the item page, then a wrong colour again
            choices, pages = [choices[0], click.index("click[< prev]"), int(rng.choice(wrong_search)),
                              int(rng.choice(wrong))], [search, click, search, click]
        agent += _episode(f"g{g}", g, choices, pages, 0.0, "generated")
    root = tmp_path_factory.mktemp("eto")
    write_trajectories(expert, root / "expert")
    write_trajectories(agent, root / "agent")
    return root


@pytest.fixture(scope="module")
def pair_dir(trajectories, reference):
    """Pairs built in-process (the CLI test builds them again through Ray Data)."""
    from rl_app.data.trajectory_pairs import build_trajectory_pairs

    summary = build_trajectory_pairs(trajectories / "expert", trajectories / "agent", reference[1],
                                     trajectories / "pairs", use_ray=False)
    assert summary.counts.pairs == GOALS and summary.counts.chosen_expert == GOALS and summary.longest == 4
    return trajectories / "pairs"


def _config(pair_dir, ref_dir, **training):
    from rl_app.algorithms.dpo import DPOConfig

    return (DPOConfig()
            .dataset(paths=[str(pair_dir)], updates_per_iteration=training.pop("updates_per_iteration", 1))
            .observations(k_max=K_MAX, max_state_tokens=STATE_TOKENS, max_action_tokens=ACTION_TOKENS)
            .rl_module(model_config={"encoder": "tiny", "init_checkpoint": str(ref_dir)})
            .dpo(beta=0.5)
            .training(**{"lr": 1e-3, "train_batch_size_per_learner": GOALS, **training})
            .debugging(seed=0))


def test_config_reads_the_pair_level(pair_dir, reference, tmp_path):
    from rl_app.data.pairs import pairs_table
    import pandas as pd
    import pyarrow.parquet as pq

    config = _config(pair_dir, reference[1])
    config.validate()
    config.check_data()
    assert config.resolved_pair_level() == "trajectory" and config.trajectory_steps() == 4
    assert config.dpo(max_trajectory_steps=6).trajectory_steps() == 6
    # the pair files are read when the algorithm builds (check_data), not by validate()
    with pytest.raises(ValueError, match="pair_level='trajectory'"):
        _config(pair_dir, reference[1]).dpo(pair_level="step").check_data()
    with pytest.raises(ValueError, match="max_trajectory_steps>=4"):
        _config(pair_dir, reference[1]).dpo(max_trajectory_steps=3).check_data()
    with pytest.raises(ValueError, match="max_trajectory_steps must be >= 1"):
        _config(pair_dir, reference[1]).dpo(max_trajectory_steps=0).validate()
    step_dir = tmp_path / "step_pairs"
    step_dir.mkdir()
    pq.write_table(pairs_table(pd.DataFrame()), step_dir / "pairs.parquet")
    assert _config(step_dir, reference[1]).resolved_pair_level() == "step"
    with pytest.raises(ValueError, match="mixes step and trajectory"):
        _config(pair_dir, reference[1]).dataset(paths=[str(pair_dir), str(step_dir)]).check_data()


def test_learner_starts_at_ln2_and_raises_the_margin(pair_dir, reference):
    """DPOTorchLearner on one fixed batch of all pairs: at pi == pi_ref the sigmoid loss is
    ln 2 and the margin 0; gradient steps on that batch raise the margin."""
    from ray.rllib.core.learner.training_data import TrainingData
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

    from rl_app.algorithms.dpo import DPOPreLearner
    from rl_app.algorithms.dpo.dpo_torch_learner import (DPO_LOSS, LOGPS_CHOSEN, REWARDS_ACCURACIES,
                                                         REWARDS_MARGINS, STEPS_CHOSEN, STEPS_REJECTED)
    from rl_app.data.trajectory_pairs import read_trajectory_pairs

    config = _config(pair_dir, reference[1])
    pairs = read_trajectory_pairs(pair_dir)
    rows = {c: pairs[c].to_numpy() for c in pairs.columns}
    module_batch = DPOPreLearner(config=config).module_batch(rows)
    learner = config.build_learner(spaces={"__env__": (config.observation_space, config.action_space)})
    before = [p.detach().clone() for p in learner.module["default_policy"].parameters()]

    def update():
        batch = MultiAgentBatch({"default_policy": SampleBatch(module_batch)}, env_steps=GOALS)
        return learner.update(training_data=TrainingData(batch=batch), timesteps={})["default_policy"]

    first = update()
    assert float(first[DPO_LOSS]) == pytest.approx(math.log(2), abs=1e-4)
    assert float(first[REWARDS_MARGINS]) == pytest.approx(0.0, abs=1e-4)
    assert float(first[LOGPS_CHOSEN]) == pytest.approx(pairs["ref_chosen_logp"].mean(), abs=1e-4)
    steps = pairs["rejected_num_steps"].mean()  # 2 steps, or 4 with the detour
    assert float(first[STEPS_CHOSEN]) == 2.0 and float(first[STEPS_REJECTED]) == pytest.approx(steps)
    results = [update() for _ in range(20)]
    margins = [float(r[REWARDS_MARGINS]) for r in results]
    losses = [float(r[DPO_LOSS]) for r in results]
    assert np.all(np.isfinite(margins + losses))
    # a random tiny BERT starts slowly; after 20 Adam steps (lr 1e-3): margin 2.9, loss 0.40
    assert margins[-1] > 1.0 and losses[-1] < math.log(2) - 0.2 and float(results[-1][REWARDS_ACCURACIES]) >= 0.7
    after = list(learner.module["default_policy"].parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after))


@pytest.mark.slow
def test_ray_built_pairs_train_through_the_cli(ray_session, trajectories, pair_dir, reference, tmp_path):
    """Pairs built through Ray Data equal the in-process ones; the RLlib path (OfflineData ->
    Ray Data prelearner -> learner) trains on them through the DPO CLI."""
    from rl_app.algorithms.dpo.train import main as dpo_main
    from rl_app.data.trajectory_pairs import build_trajectory_pairs, read_trajectory_pairs
    from rl_app.policy.choice_policy import ChoicePolicy

    build_trajectory_pairs(trajectories / "expert", trajectories / "agent", reference[1], tmp_path / "pairs",
                           use_ray=True)
    pairs = read_trajectory_pairs(tmp_path / "pairs")
    local = read_trajectory_pairs(pair_dir)
    assert list(pairs["pair_id"]) == list(local["pair_id"])
    for column in ("ref_chosen_logp", "ref_rejected_logp"):
        assert pairs[column].to_numpy() == pytest.approx(local[column].to_numpy(), abs=1e-6)
    assert dpo_main(["--data", str(tmp_path / "pairs"), "--init-checkpoint", str(reference[1]), "--out", str(tmp_path / "dpo"),
                     "--iterations", "5", "--updates-per-iteration", "5", "--batch-size", "12", "--lr", "2e-3",
                     "--beta", "0.5", "--k-max", str(K_MAX), "--max-state-tokens", str(STATE_TOKENS),
                     "--max-action-tokens", str(ACTION_TOKENS), "--eval-goals", "0"]) == 0
    summary = json.loads((tmp_path / "dpo" / "eval.json").read_text())
    assert summary["pair_level"] == "trajectory" and summary["gradient_updates"] == 25
    rows = [json.loads(line) for line in (tmp_path / "dpo" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["losses/dpo"] for r in rows]
    margins = [r["rewards/margins"] for r in rows]
    assert np.all(np.isfinite(losses + margins))
    assert losses[0] == pytest.approx(math.log(2), abs=0.1) and margins[-1] > margins[0] + 0.3
    # the saved policy (loaded without Ray) puts a larger log-prob gap between the chosen and
    # the rejected trajectories than pi_ref: sum_t log pi(a_t | s_t), computed directly
    policy = ChoicePolicy.from_checkpoint(tmp_path / "dpo" / "policy")

    def gap(p, row):
        logp = {side: sum(math.log(p.probs(s, list(t))[a]) for s, t, a in zip(
            row[f"{side}_states"], row[f"{side}_candidate_texts"], row[f"{side}_actions"])) for side in ("chosen", "rejected")}
        return logp["chosen"] - logp["rejected"]

    trained, ref = zip(*[(gap(policy, row), gap(reference[0], row)) for _, row in pairs.iterrows()])
    assert np.mean(ref) == pytest.approx(np.mean(pairs["ref_chosen_logp"] - pairs["ref_rejected_logp"]), abs=1e-4)
    assert np.mean(trained) > np.mean(ref) + 0.6  # margin = beta * this difference; beta = 0.5
