"""PPO on the WebShop env with the shared module: trains, survives a killed env runner, IL term."""

from __future__ import annotations

import time

import numpy as np
import pytest

ENV = {"catalogue": "synthetic", "synthetic_products": 1000, "synthetic_seed": 1, "split": "train",
       "max_steps": 6, "k_max": 16, "max_state_tokens": 96, "max_action_tokens": 12}
TINY = {"encoder": "tiny"}


def _config(**training):
    from rl_app.algorithms.ppo import WebShopPPOConfig

    return (WebShopPPOConfig().webshop(env_config=ENV, model_config=TINY)
            .env_runners(num_env_runners=1, num_envs_per_env_runner=2)
            .training(train_batch_size_per_learner=64, minibatch_size=32, num_epochs=1, lr=1e-4, **training))


def test_config_defaults_and_validation(tmp_path):
    from rl_app.algorithms.ppo import WebShopPPOConfig

    cfg = WebShopPPOConfig()
    assert cfg.gamma == 0.9 and cfg.restart_failed_env_runners and cfg.entropy_coeff > 0
    with pytest.raises(ValueError, match="unknown WebShop env config keys"):
        WebShopPPOConfig().webshop(env_config={"max_step": 3})
    with pytest.raises(FileNotFoundError):
        WebShopPPOConfig().webshop(init_checkpoint=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="needs demonstrations"):
        WebShopPPOConfig().il_auxiliary(coeff=0.5).validate()


@pytest.mark.slow
def test_ppo_trains_and_survives_a_killed_env_runner(ray_session):
    import ray

    algo = _config().build_algo()
    try:
        result = algo.train()
        learner = result["learners"]["default_policy"]
        assert np.isfinite(learner["policy_loss"]) and np.isfinite(learner["vf_loss"])
        # learner seconds (WebShopPPO): one update's span, inside the iteration's wall time
        first_learner_s = result["time/learner_s"]
        assert 0 < first_learner_s == pytest.approx(result["time/learner_iter_s"])
        assert first_learner_s < result["time_this_iter_s"]
        sampled = result["env_runners"]["num_env_steps_sampled_lifetime"]
        assert sampled >= 64
        (actor,) = algo.env_runner_group._worker_manager.actors().values()
        ray.kill(actor, no_restart=False)  # a crash: Ray may restart the actor
        deadline = time.time() + 120
        while time.time() < deadline:
            result = algo.train()
            if result["env_runners"].get("num_env_steps_sampled_lifetime", 0) > sampled:
                break
            time.sleep(0.5)
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] > sampled, "env runner never came back"
        assert algo.env_runner_group.num_healthy_remote_workers() == 1
        assert result["time/learner_s"] > first_learner_s  # cumulative over iterations
    finally:
        algo.stop()


@pytest.mark.slow
def test_il_auxiliary_term_is_logged(ray_session, tmp_path):
    from rl_app.data.demos import generate_demonstrations

    shop = {k: ENV[k] for k in ("catalogue", "synthetic_products", "synthetic_seed")}
    generate_demonstrations(shop, num_goals=10, num_workers=0, out=tmp_path / "demos", progress=False,
                            env_config={"max_steps": ENV["max_steps"], "k_max": ENV["k_max"]})
    import torch

    algo = _config().il_auxiliary(coeff=0.5, data=str(tmp_path / "demos"), batch_size=8).debugging(seed=0).build_algo()
    try:
        # Seeded, yet the driver (local learner and env runner) keeps torch's default kernels
        # (rl_app.algorithms.rllib_patches.determinism; RLlib's seeding would turn deterministic algorithms on).
        assert not torch.are_deterministic_algorithms_enabled()
        learner = algo.train()["learners"]["default_policy"]
        assert np.isfinite(learner["losses/il"]) and learner["losses/il"] > 0
        assert 0.0 <= learner["metrics/il_accuracy"] <= 1.0
    finally:
        algo.stop()


@pytest.mark.slow
def test_train_cli_saves_evaluates_and_logs_returns(ray_session, tmp_path):
    import json

    from rl_app.algorithms.ppo.train import main

    assert main(["--out", str(tmp_path / "ppo"), "--encoder", "tiny", "--iterations", "1", "--num-env-runners", "1",
                 "--train-batch", "64", "--minibatch", "32", "--epochs", "1", "--max-steps", "6",
                 "--max-state-tokens", "96", "--max-action-tokens", "12", "--eval-goals", "2"]) == 0
    summary = json.loads((tmp_path / "ppo" / "eval.json").read_text())
    assert summary["iterations"] == 1 and summary["env_steps"] >= 64
    assert 0.0 <= summary["eval/greedy"]["eval/score"] <= 100.0
    rows = [json.loads(line) for line in (tmp_path / "ppo" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and np.isfinite(rows[0]["policy_loss"])
    assert (tmp_path / "ppo" / "policy").is_dir()
