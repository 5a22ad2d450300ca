"""Scripted agents: WebShop's rule baseline reproduces the original's numbers; the demonstrator shops well."""

from __future__ import annotations

import numpy as np
import pytest

from rl_app.agents.scripted import DemonstratorAgent, RuleAgent, run_episode
from rl_app.env.text_env import TextEnvConfig, WebShopTextEnv
from rl_app.play import evaluate_scripted

SMALL = {"catalogue": "synthetic", "synthetic_products": 300, "synthetic_seed": 1}


def test_rule_agent_takes_three_steps():
    env = WebShopTextEnv(SMALL, TextEnvConfig(split="all"))
    env.reset(goal_index=0)
    first_query = env.candidates()[0]  # the instruction itself
    r = run_episode(env, RuleAgent(), 0)
    assert r.terminated and r.steps == 3
    assert r.actions[0] == first_query and r.actions[1].startswith("click[b") and r.actions[2] == "click[buy now]"


def test_demonstrator_only_takes_offered_actions_and_is_seeded():
    env = WebShopTextEnv(SMALL, TextEnvConfig(split="all"))
    agent = DemonstratorAgent(seed=5)
    for gi in range(20):
        env.reset(goal_index=gi)
        agent.reset(env)
        done = False
        while not done:
            action = agent.act(env)
            assert action in env.candidates()
            _, _, term, trunc, _ = env.step(action)
            done = term or trunc
    a = [run_episode(env, DemonstratorAgent(seed=5), gi).actions for gi in range(20)]
    b = [run_episode(env, DemonstratorAgent(seed=5), gi).actions for gi in range(20)]
    assert a == b


@pytest.mark.webshop_data
def test_rule_baseline_reproduces_webshop(webshop_shop):
    """WebShop's own code on test goals 0-499: rule baseline 57.14 score / 2.2% success."""
    env = WebShopTextEnv(loaded=webshop_shop, config=TextEnvConfig(split="test"))
    report, _ = evaluate_scripted(env, "rule", env.split_indices)
    assert report.episodes == 500
    assert report.score == pytest.approx(57.14, abs=0.01)
    assert report.success_rate == pytest.approx(0.022, abs=1e-9)


@pytest.mark.webshop_data
def test_demonstrator_succeeds_like_a_careful_person(webshop_shop):
    """Human-like: 60-95% success on train goals, using next/back/sub-pages sometimes."""
    env = WebShopTextEnv(loaded=webshop_shop, config=TextEnvConfig(split="train"))
    report, results = evaluate_scripted(env, "demonstrator", env.split_indices[:300], seed=0)
    assert 0.6 <= report.success_rate <= 0.95, report.line()
    assert report.score > 80
    assert 0 < report.action_use["next"] < 1 and 0 < report.action_use["sub-pages"] <= 1
    assert np.mean([r.steps for r in results]) < 15
