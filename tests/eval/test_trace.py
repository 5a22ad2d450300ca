"""Episode traces: rendered step by step, the same episode evaluate() plays, written to file."""

from __future__ import annotations

import pytest

from rl_app.agents.specs import AgentSpec, make_agent
from rl_app.env.text_env import TextEnvConfig, WebShopTextEnv
from rl_app.eval.evaluate import play_episode
from rl_app.eval.trace import main, render_trace, trace_episode, write_trace

from .conftest import BackToSearchAgent, policy_spec


@pytest.fixture()
def env(small_shop):
    return WebShopTextEnv(loaded=small_shop, config=TextEnvConfig(split="all"))


def test_demonstrator_trace_renders_and_is_the_evaluated_episode(env, tmp_path):
    agent = make_agent(AgentSpec("demonstrator", "demonstrator", seed=2))
    trace = trace_episode(env, agent, 3, seed=2)
    record = play_episode(env, agent, 3, seed=2)
    assert tuple(s.action for s in trace.steps) == record.actions and trace.reward == record.reward
    text = render_trace(trace)
    assert trace.instruction in text and "click[buy now]" in text
    assert f"reward: {trace.reward:.4f}" in text and "| r_type |" in text and "| w_att |" in text
    assert all(s.probs is None for s in trace.steps) and "candidates (-> = chosen):" in text  # scripted
    assert "pi(a|s)" not in text
    path = write_trace(trace, tmp_path / "trace.md")
    assert path.read_text() == text


def test_step_limit_trace(env):
    trace = trace_episode(env, BackToSearchAgent(), 5, seed=0)
    text = render_trace(trace)
    assert len(trace.steps) == 20 and not trace.terminated
    assert "Step limit reached" in text and "reward: 0.0000" in text
    assert "(no-op: not on this page)" in text


def test_policy_trace_shows_probabilities(env, tiny_policy_dir, one_torch_thread):
    env = WebShopTextEnv(loaded=env.loaded, config=TextEnvConfig(split="all", max_steps=3))
    trace = trace_episode(env, make_agent(policy_spec(tiny_policy_dir)), 0)
    first = trace.steps[0]
    assert first.probs is not None and sum(first.probs) == pytest.approx(1.0)
    assert f"{first.probs[first.chosen]:6.1%}" in render_trace(trace)


def test_cli_writes_the_trace(tmp_path, capsys):
    out = tmp_path / "t.md"
    assert main(["--agent", "rule", "--goal", "1", "--synthetic-products", "300", "--synthetic-seed", "1",
                 "--out", str(out), "--no-pages"]) == 0
    printed = capsys.readouterr().out
    assert "click[buy now]" in out.read_text() and out.read_text() in printed
