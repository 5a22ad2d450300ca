"""AgentSpec, make_agent and per-episode seeding."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from rl_app.agents.specs import AgentSpec, ScriptedEvalAgent, episode_seed, make_agent, parse_agents
from rl_app.env.text_env import TextEnvConfig, WebShopTextEnv
from rl_app.eval.evaluate import play_goals


def test_spec_validation_names_the_fix():
    with pytest.raises(ValueError, match="needs a checkpoint"):
        AgentSpec(name="p", kind="policy")
    with pytest.raises(ValueError, match="takes no checkpoint"):
        AgentSpec(name="r", kind="rule", checkpoint="somewhere")
    with pytest.raises(ValueError, match="kind must be one of"):
        AgentSpec(name="x", kind="oracle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed must be >= 0"):
        AgentSpec(name="r", kind="rule", seed=-1)


def test_parse_command_line_agents(tmp_path):
    assert AgentSpec.parse("rule") == AgentSpec(name="rule", kind="rule")
    policy = AgentSpec.parse(f"policy:{tmp_path / 'ckpt'}", greedy=False, seed=4)
    assert policy.kind == "policy" and policy.checkpoint == str(tmp_path / "ckpt")
    assert policy.name == "policy:ckpt:sampled" and policy.mode == "sampled" and policy.seed == 4
    assert AgentSpec.parse("dpo=policy:rel/dir").name == "dpo"
    assert Path(AgentSpec.parse("dpo=policy:rel/dir").checkpoint).is_absolute()  # Ray workers need it
    assert AgentSpec.parse("demonstrator").mode == "scripted"
    for bad in ("oracle", "policy", "rule:dir"):
        with pytest.raises(ValueError):
            AgentSpec.parse(bad)
    with pytest.raises(ValueError, match="unique"):
        parse_agents(["rule", "rule"])


def test_make_agent_refuses_a_policy_for_a_scripted_agent():
    assert isinstance(make_agent(AgentSpec("rule", "rule")), ScriptedEvalAgent)
    with pytest.raises(ValueError, match="takes no policy"):
        make_agent(AgentSpec("rule", "rule"), policy=object())


def test_episode_seed_is_the_demonstrations_seed():
    from rl_app.data.demos import episode_seed as demos_episode_seed

    assert episode_seed(3, 1600) == demos_episode_seed(3, 1600)
    assert episode_seed(3, 1600, visit=1) != episode_seed(3, 1600)
    assert len({episode_seed(0, g) for g in range(100)}) == 100


def test_demonstrator_replays_the_generated_demonstrations(small_shop):
    """Evaluating the demonstrator with seed s plays the episodes rl_app.data.demos records with seed s."""
    from rl_app.data.demos import _play_chunk as demos_play_chunk

    goals = [500, 501, 502, 503]  # demos refuse test goals; evaluation plays any
    shop = dataclasses.asdict(small_shop.config)
    rows = demos_play_chunk(shop, {"split": "all"}, goals, "demonstrator", 7)
    demo_actions = {g: tuple(r.candidates[r.chosen] for r in rows if r.goal_index == g) for g in goals}
    env = WebShopTextEnv(loaded=small_shop, config=TextEnvConfig(split="all"))
    ours = play_goals(env, make_agent(AgentSpec("demonstrator", "demonstrator", seed=7)), goals, seed=7)
    assert {r.goal_index: r.actions for r in ours} == demo_actions


def test_episodes_do_not_depend_on_goal_order(small_shop):
    env = WebShopTextEnv(loaded=small_shop, config=TextEnvConfig(split="all"))
    agent = make_agent(AgentSpec("demonstrator", "demonstrator", seed=1))
    forward = play_goals(env, agent, range(10, 30), seed=1)
    backward = play_goals(env, agent, range(29, 9, -1), seed=1)
    assert forward == backward[::-1]
    # and the seed matters: another seed changes some episode of this stochastic shopper
    other = play_goals(env, make_agent(AgentSpec("demonstrator", "demonstrator", seed=2)), range(10, 30), seed=2)
    assert [r.actions for r in other] != [r.actions for r in forward]


def test_policy_agent_maps_the_chosen_index_to_the_candidate(small_shop, tiny_policy_dir, one_torch_thread):
    env = WebShopTextEnv(loaded=small_shop, config=TextEnvConfig(split="all"))
    env.reset(goal_index=0)
    greedy = make_agent(AgentSpec.parse(f"policy:{tiny_policy_dir}"))
    greedy.reset(env)
    decision = greedy.decide(env)
    assert decision.candidates == tuple(env.candidates())
    assert decision.index == int(np.argmax(decision.probs)) and decision.action == env.candidates()[decision.index]
    assert decision.probs.sum() == pytest.approx(1.0)
