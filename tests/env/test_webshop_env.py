"""The gymnasium env (numeric observations) and the text env around it."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rl_app.env.text_env import TextEnvConfig, WebShopTextEnv
from rl_app.env.webshop_env import ENV_ID, WebShopEnv, WebShopEnvConfig

SMALL = {"catalogue": "synthetic", "synthetic_products": 300, "synthetic_seed": 1}


@pytest.fixture(scope="module")
def env():
    return WebShopEnv({**SMALL, "split": "all", "max_steps": 8, "k_max": 24, "max_state_tokens": 128,
                       "max_action_tokens": 16})


def test_check_env(env):
    check_env(env, skip_render_check=True)


def test_gymnasium_make():
    import gymnasium as gym

    e = gym.make(ENV_ID, config={**SMALL, "split": "all"})
    obs, _ = e.reset(seed=3)
    assert set(obs) == {"state_ids", "action_ids", "action_mask"}


def test_observation_is_the_tokenized_page(env):
    obs, info = env.reset(seed=0)
    n = info["n_candidates"]
    assert obs["action_mask"].sum() == n == len(env.candidates) > 0
    assert obs["action_mask"][n:].sum() == 0 and obs["action_ids"][n:].sum() == 0
    tok = env.tokenizer
    # row i decodes to candidate i (uncased tokenizer, so compare lower-cased, spaces removed)
    for i, text in enumerate(env.candidate_texts()):
        decoded = tok.decode(obs["action_ids"][i], skip_special_tokens=True)
        assert decoded.replace(" ", "")[:30] == text.lower().replace(" ", "")[:30]
    state = tok.decode(obs["state_ids"], skip_special_tokens=True)
    assert state.startswith("webshop instruction")
    assert obs["state_ids"][0] == tok.cls_token_id


def test_masked_action_is_a_noop(env):
    obs, info = env.reset(seed=1)
    before = obs["state_ids"].copy()
    masked = info["n_candidates"]  # first masked index
    obs, reward, terminated, truncated, info = env.step(masked)
    assert (reward, terminated, info["valid"]) == (0.0, False, False)
    assert np.array_equal(obs["state_ids"], before)


@pytest.mark.parametrize("action", [float("inf"), "0", 1.7, True, np.float64(2.9), None, np.bool_(True)])
def test_action_must_be_an_integer(env, action):
    env.reset(seed=0)
    with pytest.raises(TypeError, match="action must be an integer index in"):
        env.step(action)


@pytest.mark.parametrize("action", [2, np.int64(2), np.int32(2), np.array(2), np.array([2])])
def test_integer_actions_of_any_integer_type_act_alike(env, action):
    env.reset(seed=0)
    expected = env.candidates[2]
    env.step(action)
    assert env.text_env.prev_actions[-1] == expected


def test_unencodable_search_text_is_replaced_at_the_boundary(env):
    # A lone surrogate cannot be UTF-8 encoded; it becomes "?" before the search engine and the
    # observation's tokenizer see it.
    env.reset(seed=0)
    _, _, _, _, info = env.text_env.step("search[\ud800 wool]")
    assert info["valid"] and env.text_env.prev_actions[-1] == "search[? wool]"
    obs = env.encoder.encode(env.text_env.observation(), env.candidate_texts())
    assert obs["action_mask"].sum() > 0


def test_seeded_reset_draws_the_same_goals(env):
    first = [env.reset(seed=s)[1]["goal_index"] for s in range(5)]
    again = [env.reset(seed=s)[1]["goal_index"] for s in range(5)]
    assert first == again and len(set(first)) > 1


def test_goal_index_option_and_truncation(env):
    _, info = env.reset(options={"goal_index": 7})
    assert info["goal_index"] == 7
    truncated = False
    steps = 0
    while not truncated:
        # always choose "back to search" or the first query: never buys
        _, reward, terminated, truncated, _ = env.step(0)
        steps += 1
        assert not terminated and reward == 0.0
    assert steps == 8
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown WebShop env config keys.*'kmax'"):
        WebShopEnvConfig.from_dict({"kmax": 3})
    with pytest.raises(ValueError, match="catalogue must be"):
        WebShopEnvConfig.from_dict({"catalogue": "amazon"})
    with pytest.raises(ValueError, match="max_steps"):
        WebShopEnvConfig.from_dict({"max_steps": 0})


def test_webshop_reduction_caps_item_pages():
    text = WebShopTextEnv(SMALL, TextEnvConfig(split="all", reduction="webshop"))
    full = WebShopTextEnv(SMALL, TextEnvConfig(split="all"))
    big = None
    for p in text.loaded.catalogue:  # a product with more than 14 option values -> > 20 clickables
        if len(p.option_values) > 14:
            big = p
            break
    if big is None:
        pytest.skip("no product with that many options in this synthetic catalogue")
    for e in (text, full):
        e.reset(goal_index=0, seed=0)
        e.step(f"search[{big.title}]")  # its own title ranks it on the first page
        e.step(f"click[{big.asin.lower()}]")
        assert e.session.page == "item"
    # six buttons (back, prev, description, features, reviews, buy now) + each distinct option value
    assert len(full.candidates()) == min(64, 6 + len(dict.fromkeys(big.option_values)))
    reduced = text.candidates()
    assert len(reduced) == 16 and reduced[:6] == full.candidates()[:6]
    assert set(reduced) <= set(full.candidates())


# ----------------------------------------------------------------------------- real data

@pytest.mark.webshop_data
def test_real_env_first_observation(webshop_data_dir):
    env = WebShopEnv({"catalogue": "webshop", "data_dir": str(webshop_data_dir), "split": "test"})
    obs, info = env.reset(options={"goal_index": 1})
    assert info["split"] == "test"
    assert env.text_env.observation().startswith("WebShop\nInstruction: \nFind me butt lifting")
    # search page: the instruction, without its price clause, without its option clause, the core phrase
    assert env.candidates == [
        "search[find me butt lifting, light weight women's shorts with high waist, tummy control with color: "
        "black, and size: 3x-large, and price lower than 50.00 dollars]",
        "search[find me butt lifting, light weight women's shorts with high waist, tummy control with color: "
        "black, and size: 3x-large]",
        "search[find me butt lifting, light weight women's shorts with high waist, tummy control]",
        "search[butt lifting, light weight women's shorts]",
    ]


def test_previous_actions_precede_the_page_like_webshops_num_prev_actions():
    env = WebShopTextEnv(SMALL, TextEnvConfig(split="all", num_prev_actions=2))
    env.reset(goal_index=0)
    assert env.observation() == env.page_text()  # nothing before the first action
    first = env.candidates()[0]
    env.step(first)
    assert env.observation() == f"{first} [SEP] {env.page_text()}"
    env.step("click[not there]")  # invalid actions are remembered too, as in WebShop
    env.step("click[next >]")
    assert env.observation() == f"click[not there] [SEP] click[next >] [SEP] {env.page_text()}"
    plain = WebShopTextEnv(SMALL, TextEnvConfig(split="all", num_prev_actions=0))
    plain.reset(goal_index=0)
    plain.step(first)
    assert plain.observation() == plain.page_text()
    with pytest.raises(ValueError, match="num_prev_actions"):
        TextEnvConfig(num_prev_actions=-1)


def test_registered_for_rllib_by_name():
    from ray.tune.registry import ENV_CREATOR, _global_registry

    from rl_app.env.webshop_env import RLLIB_ENV_NAME, register_rllib_env

    assert register_rllib_env() == RLLIB_ENV_NAME
    env = _global_registry.get(ENV_CREATOR, RLLIB_ENV_NAME)({**SMALL, "split": "all"})
    assert isinstance(env, WebShopEnv) and env.action_space.n == 64
