"""WebShopChoiceModule: space validation, forward contracts, compute_values, checkpoints."""

from __future__ import annotations

import copy
import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical
from ray.rllib.core.rl_module.rl_module import RLModule

from rl_app.policy.checkpoint import save_choice_model
from rl_app.policy.rl_module import WebShopChoiceModule, module_spec, validate_spaces

from .conftest import ACTION_LEN, K_MAX, STATE_LEN, TINY, as_tensors, make_obs, webshop_spaces


def _module(**model_config) -> WebShopChoiceModule:
    obs_space, act_space = webshop_spaces()
    return module_spec(obs_space, act_space, {**TINY, **model_config}).build()


def _batch(n: int = 4, seed: int = 0, **kwargs) -> dict:
    return {Columns.OBS: as_tensors(make_obs(n, seed=seed, **kwargs))}


@pytest.fixture(scope="module")
def module() -> WebShopChoiceModule:
    return _module()


# ---------------------------------------------------------------------- spaces and config
def test_valid_spaces_give_the_sizes():
    assert validate_spaces(*webshop_spaces()) == (K_MAX, STATE_LEN, ACTION_LEN)


def test_the_env_space_is_accepted():
    observation = pytest.importorskip("rl_app.env.observation")
    assert validate_spaces(observation.observation_space(64, 512, 32), gym.spaces.Discrete(64)) == (64, 512, 32)


@pytest.mark.parametrize("make_bad, message", [
    (lambda o, a: (gym.spaces.Box(0, 1, (STATE_LEN,), np.int32), a), "Dict observation space"),
    (lambda o, a: (gym.spaces.Dict({k: v for k, v in o.spaces.items() if k != "action_mask"}), a), "lacks keys"),
    (lambda o, a: (o, gym.spaces.Discrete(K_MAX + 1)), r"Discrete\(6\)"),
    (lambda o, a: (o, gym.spaces.MultiDiscrete([K_MAX])), "Discrete"),
    (lambda o, a: (gym.spaces.Dict(dict(o.spaces, action_mask=gym.spaces.Box(0, 1, (K_MAX + 2,), np.int8))), a),
     "rows"),
    (lambda o, a: (gym.spaces.Dict(dict(o.spaces, state_ids=gym.spaces.Box(0, 1, (STATE_LEN,), np.float32))), a),
     "integer Box"),
])
def test_bad_spaces_are_refused_with_the_fix(make_bad, message):
    obs_space, act_space = make_bad(*webshop_spaces())
    with pytest.raises(ValueError, match=message) as info:
        module_spec(obs_space, act_space, TINY)
    assert "WebShopEnv" in str(info.value) or "Discrete" in str(info.value)
    # The module itself validates too (in setup, before loading any encoder).
    spec = module_spec(*webshop_spaces(), TINY)
    spec.observation_space, spec.action_space = obs_space, act_space
    with pytest.raises(ValueError, match=message):
        spec.build()


def test_state_longer_than_the_encoder_positions_is_refused():
    with pytest.raises(ValueError, match="max_state_tokens"):
        module_spec(*webshop_spaces(state_len=600), TINY).build()
    # ... unless the model cuts it.
    assert module_spec(*webshop_spaces(state_len=600), {**TINY, "max_state_tokens": 512}).build() is not None


def test_model_config_typos_are_caught_and_rllib_keys_ignored():
    with pytest.raises(ValueError, match="did you mean 'dropout'"):
        module_spec(*webshop_spaces(), {**TINY, "dropuot": 0.1})
    assert _module(vf_share_layers=False).settings.vf_share_encoder is True


# ---------------------------------------------------------------------- forward passes
def test_inference_is_greedy_argmax_of_exploration_logits(module):
    batch = _batch(5, n_valid=[1, 3, 6, 2, 4])
    inference = module.forward_inference(batch)
    exploration = module.forward_exploration(batch)
    assert Columns.ACTIONS not in exploration  # RLlib samples from ACTION_DIST_INPUTS
    assert torch.equal(inference[Columns.ACTIONS], exploration[Columns.ACTION_DIST_INPUTS].argmax(-1))
    assert torch.equal(inference[Columns.ACTION_DIST_INPUTS], exploration[Columns.ACTION_DIST_INPUTS])


def test_rllib_categorical_never_samples_masked_candidates(module):
    batch = _batch(6, n_valid=[1, 2, 3, 4, 5, 6], seed=4)
    logits = module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS]
    dist = TorchCategorical.from_logits(logits)
    samples = torch.stack([dist.sample() for _ in range(50)])
    mask = batch[Columns.OBS]["action_mask"].bool()
    assert mask.gather(1, samples.T).all()
    assert torch.isfinite(dist.entropy()).all() and torch.isfinite(dist.logp(samples[0])).all()
    assert torch.isfinite(dist.kl(TorchCategorical.from_logits(logits * 0.5))).all()


def test_forward_methods_do_not_mutate_the_batch(module):
    batch = _batch(3, seed=9)
    before = copy.deepcopy(batch)
    module.forward_inference(batch)
    module.forward_exploration(batch)
    out = module.forward_train(batch)
    module.compute_values(batch)
    module.compute_values(batch, embeddings=out[Columns.EMBEDDINGS])
    assert batch.keys() == before.keys() and batch[Columns.OBS].keys() == before[Columns.OBS].keys()
    for key, value in before[Columns.OBS].items():
        assert torch.equal(batch[Columns.OBS][key], value) and batch[Columns.OBS][key].dtype == value.dtype


@pytest.mark.parametrize("first", ["train", "values", "exploration"])
def test_no_forward_depends_on_another_having_run(first):
    module, batch = _module(), _batch(2)
    if first == "train":
        assert module.forward_train(batch)[Columns.ACTION_DIST_INPUTS].shape == (2, K_MAX)
    elif first == "values":
        assert module.compute_values(batch).shape == (2,)
    else:
        assert module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS].shape == (2, K_MAX)


# ---------------------------------------------------------------------- compute_values
def test_compute_values_without_embeddings_never_builds_a_graph(module):
    batch = _batch(4)
    with torch.no_grad():
        values = module.compute_values(batch)
    assert values.shape == (4,) and values.grad_fn is None
    # GAE's connector calls it like this, with grad mode on: still no graph.
    assert torch.is_grad_enabled()
    values_gae = module.compute_values(batch)
    assert values_gae.grad_fn is None and not values_gae.requires_grad
    assert torch.allclose(values, values_gae)


def test_learner_value_loss_path_trains_head_and_encoder():
    module = _module()
    batch = _batch(4)
    out = module.forward_train(batch)
    values = module.compute_values(batch, embeddings=out[Columns.EMBEDDINGS])
    assert values.shape == (4,) and values.grad_fn is not None
    assert torch.allclose(values, module.compute_values(batch), atol=1e-6)  # same numbers as GAE's
    values.pow(2).mean().backward()
    assert module.model.value_head[0].weight.grad is not None
    assert module.model.encoder.embeddings.word_embeddings.weight.grad is not None

    detached = _module(vf_share_encoder=False)
    out = detached.forward_train(batch)
    detached.compute_values(batch, embeddings=out[Columns.EMBEDDINGS]).pow(2).mean().backward()
    assert detached.model.value_head[0].weight.grad is not None
    assert detached.model.encoder.embeddings.word_embeddings.weight.grad is None


# ---------------------------------------------------------------------- torch.compile
def test_compile_compiles_the_encoder_in_place_with_the_same_numbers(tmp_path):
    from ray.rllib.core.rl_module.torch.torch_compile_config import TorchCompileConfig
    from torch._dynamo.utils import counters

    eager = _module()
    compiled = copy.deepcopy(eager)
    torch._dynamo.reset()
    counters.clear()
    assert compiled.compile(TorchCompileConfig(torch_dynamo_backend="aot_eager")) is compiled
    assert compiled.model.encoder._compiled_call_impl is not None and eager.model.encoder._compiled_call_impl is None
    assert list(compiled.state_dict()) == list(eager.state_dict())  # checkpoints keep their names
    for n, seed in ((4, 0), (7, 1)):  # new batch shapes: dynamic, no recompile
        batch = _batch(n, seed=seed)
        outs = [m.forward_train(batch)[Columns.ACTION_DIST_INPUTS] for m in (eager, compiled)]
        torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
        for m, out in zip((eager, compiled), outs):
            m.zero_grad()
            torch.log_softmax(out, -1)[:, 0].sum().backward()
        torch.testing.assert_close(compiled.model.encoder.embeddings.word_embeddings.weight.grad,
                                   eager.model.encoder.embeddings.word_embeddings.weight.grad, rtol=1e-4, atol=1e-6)
    assert counters["stats"]["unique_graphs"] == 1
    restored = RLModule.from_checkpoint(compiled.save_to_path(tmp_path / "module"))
    batch = _batch(3, seed=2)
    assert torch.equal(restored.forward_inference(batch)[Columns.ACTION_DIST_INPUTS],
                       eager.forward_inference(batch)[Columns.ACTION_DIST_INPUTS])


# ---------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_gives_identical_probabilities(module, tmp_path):
    batch = _batch(4, seed=3)
    expected = torch.softmax(module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS], -1)
    path = module.save_to_path(tmp_path / "module")
    assert (tmp_path / "module" / "choice_config.json").is_file() and (tmp_path / "module" / "tokenizer").is_dir()

    restored = RLModule.from_checkpoint(path)
    assert isinstance(restored, WebShopChoiceModule)
    assert torch.equal(torch.softmax(restored.forward_inference(batch)[Columns.ACTION_DIST_INPUTS], -1), expected)

    fresh = _module()
    fresh.restore_from_path(path)
    assert torch.equal(torch.softmax(fresh.forward_inference(batch)[Columns.ACTION_DIST_INPUTS], -1), expected)


def test_init_checkpoint_starts_from_saved_weights(module, tmp_path):
    path = save_choice_model(module.model, tmp_path / "il")
    batch = _batch(3, seed=8)
    started = _module(init_checkpoint=path, dropout=0.0)
    assert torch.equal(started.forward_inference(batch)[Columns.ACTION_DIST_INPUTS],
                       module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS])
    # A checkpoint of the started module restores without its init checkpoint or encoder files.
    saved = started.save_to_path(tmp_path / "started")
    shutil.rmtree(path)
    restored = RLModule.from_checkpoint(saved)
    assert torch.equal(restored.forward_inference(batch)[Columns.ACTION_DIST_INPUTS],
                       module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS])
    path = save_choice_model(module.model, tmp_path / "il")
    with pytest.raises(ValueError, match="pooling"):
        _module(init_checkpoint=path, pooling="cls")
    with pytest.raises(FileNotFoundError, match="init_checkpoint"):
        _module(init_checkpoint=str(tmp_path / "missing"))
