"""DPO end to end with the tiny encoder: policy == reference at the start, margins rise, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from .conftest import ACTION_TOKENS, K_MAX, STATE_TOKENS

pytestmark = pytest.mark.slow
COLORS = ("red", "blue", "green", "black")


@pytest.fixture(scope="module")
def pair_dir(reference, tmp_path_factory):
    """"i want a <color> shirt": chosen = that colour's button, rejected ~ pi_ref (ties dropped)."""
    from rl_app.data.pairs import pairs_table, step_pairs
    import pyarrow.parquet as pq

    policy, _ = reference
    rng = np.random.default_rng(0)
    states, texts, chosen = [], [], []
    for i in range(48):
        want = COLORS[i % 4]
        t = [f"click[{c}]" for c in rng.permutation(COLORS)]
        states.append(f"instruction: i want a {want} shirt [SEP] item page [SEP] color")
        texts.append(t)
        chosen.append(t.index(f"click[{want}]"))
    obj = lambda values: np.array(list(values) + [None], dtype=object)[:-1]  # noqa: E731
    batch = {"episode_id": obj(f"ep-{i}" for i in range(48)), "goal_index": np.full(48, 1500),
             "split": obj(["train"] * 48), "step": np.zeros(48, np.int64), "source": obj(["demo"] * 48),
             "state": obj(states), "candidates": obj(texts), "candidate_texts": obj(texts),
             "chosen": np.asarray(chosen), "ref_logps": obj(policy.log_probs_batch(states, texts))}
    pairs = pd.DataFrame(step_pairs(batch, num_rejected=2, seed=0))
    directory = tmp_path_factory.mktemp("pairs")
    pq.write_table(pairs_table(pairs), directory / "pairs.parquet")
    return directory, pairs


def _config(pair_dir, ref_dir, **training):
    from rl_app.algorithms.dpo import DPOConfig

    return (DPOConfig()
            .dataset(paths=[str(pair_dir)], updates_per_iteration=4)
            .observations(k_max=K_MAX, max_state_tokens=STATE_TOKENS, max_action_tokens=ACTION_TOKENS)
            .rl_module(model_config={"encoder": "tiny", "init_checkpoint": str(ref_dir)})
            .dpo(beta=0.5)
            .training(**{"lr": 1e-3, "train_batch_size_per_learner": 16, **training})
            .debugging(seed=0))


def test_validation_names_the_fix(pair_dir, reference):
    from rl_app.algorithms.dpo import DPOConfig

    directory, _ = pair_dir
    with pytest.raises(ValueError, match="init_checkpoint"):
        DPOConfig().dataset(paths=[str(directory)]).rl_module(model_config={"encoder": "tiny"}).validate()
    with pytest.raises(ValueError, match="beta"):
        _config(directory, reference[1]).dpo(beta=0).validate()


def test_token_lengths_must_be_the_references(pair_dir, reference):
    """pi_ref was scored at the reference's lengths: tokenizing otherwise is refused, with the fix."""
    import argparse

    from rl_app.algorithms.cli import token_lengths
    from rl_app.policy.checkpoint import saved_token_lengths

    directory, _ = pair_dir
    saved = saved_token_lengths(reference[1])
    assert saved == {"max_state_tokens": STATE_TOKENS, "max_action_tokens": ACTION_TOKENS}
    _config(directory, reference[1]).check_data()  # the same lengths pass
    for wrong in ({"max_state_tokens": STATE_TOKENS * 2}, {"max_action_tokens": ACTION_TOKENS + 8}):
        config = _config(directory, reference[1]).observations(**wrong)
        config.validate()  # values alone are fine: the reference is read when the algorithm builds
        with pytest.raises(ValueError, match=rf"config.observations\(max_state_tokens={STATE_TOKENS}, "
                                             rf"max_action_tokens={ACTION_TOKENS}\)"):
            config.check_data()
    # The command lines' lengths: the flags where given, else the starting policy's, else the env's.
    flags = argparse.Namespace(max_state_tokens=None, max_action_tokens=None)
    assert token_lengths(flags, str(reference[1])) == saved
    assert token_lengths(flags) == {"max_state_tokens": 512, "max_action_tokens": 32}
    flags.max_action_tokens = 24
    assert token_lengths(flags, str(reference[1])) == {"max_state_tokens": STATE_TOKENS, "max_action_tokens": 24}
    with pytest.raises(FileNotFoundError, match="does not exist"):
        token_lengths(flags, str(reference[1]) + "-missing")
    flags.max_state_tokens = 64  # both given: the checkpoint is not read for them
    assert token_lengths(flags, str(reference[1]) + "-missing") == {"max_state_tokens": 64, "max_action_tokens": 24}


def test_dpo_starts_at_the_reference_and_raises_margins(ray_session, pair_dir, reference, tmp_path):
    from rl_app.algorithms.dpo.dpo_torch_learner import DPO_LOSS, REWARDS_ACCURACIES, REWARDS_MARGINS
    from rl_app.algorithms.offline import LEARNER_SECONDS
    from rl_app.policy.choice_policy import ChoicePolicy

    directory, pairs = pair_dir
    algo = _config(directory, reference[1]).build_algo()
    try:
        # Before any update the policy is pi_ref: its log-probs equal the stored ones.
        start = algo.get_choice_policy()
        row = pairs.iloc[0]
        logp = np.log(start.probs(row["state"], list(row["candidate_texts"])))
        assert logp[row["chosen"]] == pytest.approx(row["ref_chosen_logp"], abs=1e-4)
        assert logp[row["rejected"]] == pytest.approx(row["ref_rejected_logp"], abs=1e-4)

        results = [algo.train()["learners"]["default_policy"] for _ in range(10)]
        losses = [float(r[DPO_LOSS]) for r in results]
        margins = [float(r[REWARDS_MARGINS]) for r in results]
        accuracy = [float(r[REWARDS_ACCURACIES]) for r in results]
        assert np.all(np.isfinite(losses + margins + accuracy))
        # first iteration (4 updates from pi_ref): near ln 2 and near-zero margins
        assert losses[0] == pytest.approx(math.log(2), abs=0.1) and abs(margins[0]) < 0.5
        assert margins[-1] > margins[0] + 0.3 and losses[-1] < losses[0] - 0.15 and accuracy[-1] >= 0.7
        path = algo.save_to_path(str(tmp_path / "algo"))
        trained = algo.get_choice_policy()
        seconds = algo.train()[LEARNER_SECONDS]
        assert seconds > 0
    finally:
        algo.stop()
    # the trained policy puts more mass on the named colour than pi_ref; the checkpoint loads without Ray
    restored = ChoicePolicy.from_checkpoint(path)
    texts = [f"click[{c}]" for c in COLORS]
    named = []
    for i, color in enumerate(COLORS):
        state = f"instruction: i want a {color} shirt [SEP] item page [SEP] color"
        named.append((trained.probs(state, texts)[i], reference[0].probs(state, texts)[i]))
        assert restored.probs(state, texts) == pytest.approx(trained.probs(state, texts), abs=1e-6)
    p_trained, p_ref = np.mean(named, axis=0)
    assert p_trained > p_ref + 0.15, named


def test_seeded_runs_draw_the_same_batches(ray_session, pair_dir, reference):
    """The same seed twice gives the same losses iteration by iteration; another seed does not.

    Before the dataset kept Ray Data's block order the two seed-0 runs parted at the second
    iteration (the shuffle buffer got the blocks in another order)."""
    from ray.data import DataContext

    from rl_app.algorithms.dpo.dpo_torch_learner import DPO_LOSS, REWARDS_MARGINS

    directory, _ = pair_dir

    def run(seed):
        algo = _config(directory, reference[1]).debugging(seed=seed).build_algo()
        try:
            assert algo.offline_data.data.context.execution_options.preserve_order
            results = [algo.train()["learners"]["default_policy"] for _ in range(3)]
        finally:
            algo.stop()
        return [(float(r[DPO_LOSS]), float(r[REWARDS_MARGINS])) for r in results]

    first = run(0)
    assert not DataContext.get_current().execution_options.preserve_order  # only that dataset keeps order
    assert run(0) == first
    assert run(1) != first


def test_nll_term_anchors_the_chosen_actions(pair_dir, reference):
    """RPO's L = L_DPO + alpha * NLL(chosen): at pi == pi_ref the logged NLL is the mean
    -log pi_ref(chosen) of the batch, and with alpha > 0 training raises log pi(chosen) more
    than plain DPO does from the same start."""
    from ray.rllib.core.learner.training_data import TrainingData
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

    from rl_app.algorithms.dpo import DPOPreLearner
    from rl_app.algorithms.dpo.dpo_torch_learner import DPO_LOSS, LOGPS_CHOSEN, NLL_LOSS

    directory, pairs = pair_dir
    rows = {c: pairs[c].to_numpy() for c in pairs.columns}
    chosen_logps = {}
    for alpha in (0.0, 1.0):
        torch.manual_seed(0)
        config = _config(directory, reference[1]).dpo(nll_coeff=alpha)
        module_batch = DPOPreLearner(config=config).module_batch(rows)
        learner = config.build_learner(spaces={"__env__": (config.observation_space, config.action_space)})

        def update():
            batch = MultiAgentBatch({"default_policy": SampleBatch(module_batch)}, env_steps=len(pairs))
            return learner.update(training_data=TrainingData(batch=batch), timesteps={})["default_policy"]

        first = update()
        assert float(first[NLL_LOSS]) == pytest.approx(-pairs["ref_chosen_logp"].mean(), abs=1e-4)
        assert float(first[DPO_LOSS]) == pytest.approx(math.log(2), abs=1e-4)
        for _ in range(30):
            last = update()
        chosen_logps[alpha] = float(last[LOGPS_CHOSEN])
    assert chosen_logps[1.0] > chosen_logps[0.0] + 0.05, chosen_logps
    with pytest.raises(ValueError, match="nll_coeff"):
        _config(directory, reference[1]).dpo(nll_coeff=-1.0).validate()


def test_dpo_with_a_remote_learner(ray_session, pair_dir, reference):
    """num_learners=1: the pairs stream to a learner actor through RLlib's OfflineData."""
    from rl_app.algorithms.dpo.dpo_torch_learner import DPO_LOSS, REWARDS_MARGINS
    from rl_app.algorithms.offline import LEARNER_SECONDS

    directory, _ = pair_dir
    algo = _config(directory, reference[1]).learners(num_learners=1).build_algo()
    try:
        results = [algo.train() for _ in range(4)]
        learner = [r["learners"]["default_policy"] for r in results]
        assert learner[0][DPO_LOSS] == pytest.approx(math.log(2), abs=0.1)
        assert all(np.isfinite(float(r[DPO_LOSS])) for r in learner)
        assert float(learner[-1][REWARDS_MARGINS]) > float(learner[0][REWARDS_MARGINS])
        assert results[-1][LEARNER_SECONDS] > results[0][LEARNER_SECONDS] > 0
        trained = algo.get_choice_policy()
    finally:
        algo.stop()
    row_state = f"instruction: i want a {COLORS[0]} shirt [SEP] item page [SEP] color"
    texts = [f"click[{c}]" for c in COLORS]
    assert not np.allclose(trained.probs(row_state, texts), reference[0].probs(row_state, texts))


def test_torch_compile_learner_compiles_the_encoder_with_the_same_updates(pair_dir, reference):
    """``config.framework(torch_compile_learner=True)``: RLlib 2.60 alone compiles nothing for a
    MultiRLModule (rl_app.algorithms.rllib_patches.compile); with the mixin the learner's encoder is compiled,
    and three updates give the eager learner's losses and margins."""
    from ray.rllib.core.learner.training_data import TrainingData
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

    from rl_app.algorithms.dpo import DPOPreLearner
    from rl_app.algorithms.dpo.dpo_torch_learner import DPO_LOSS, REWARDS_MARGINS

    directory, pairs = pair_dir
    rows = {c: pairs[c].to_numpy() for c in pairs.columns}
    runs = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        config = _config(directory, reference[1])
        if compiled:
            config = config.framework(torch_compile_learner=True, torch_compile_learner_dynamo_backend="aot_eager")
        module_batch = DPOPreLearner(config=config).module_batch(rows)
        learner = config.build_learner(spaces={"__env__": (config.observation_space, config.action_space)})
        encoder = learner.module["default_policy"].unwrapped().model.encoder
        assert (encoder._compiled_call_impl is not None) == compiled
        batch = MultiAgentBatch({"default_policy": SampleBatch(module_batch)}, env_steps=len(pairs))
        runs[compiled] = [learner.update(training_data=TrainingData(batch=batch), timesteps={})["default_policy"]
                          for _ in range(3)]
    for eager, compiled in zip(runs[False], runs[True]):
        for key in (DPO_LOSS, REWARDS_MARGINS):
            assert float(compiled[key]) == pytest.approx(float(eager[key]), abs=1e-5)
    assert float(runs[True][-1][REWARDS_MARGINS]) > float(runs[True][0][REWARDS_MARGINS])  # it learned
