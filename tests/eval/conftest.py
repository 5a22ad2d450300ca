"""Agents whose results are known by construction (test-only: the oracle reads the target),
a small shop and a tiny random policy saved to disk."""

from __future__ import annotations

from typing import Optional

import pytest

from rl_app.agents.specs import AgentSpec, Decision
from rl_app.env.text_env import WebShopTextEnv
from rl_app.shop.site import BACK_TO_SEARCH, BUY_NOW, NEXT_PAGE

SMALL = {"catalogue": "synthetic", "synthetic_products": 300, "synthetic_seed": 1}


def _decision(env: WebShopTextEnv, action: str) -> Decision:
    candidates = tuple(env.candidates())
    if action not in candidates:  # the oracle's title search is not an offered candidate
        candidates = candidates + (action,)
    return Decision(candidates, candidates.index(action))


class OracleAgent:
    """Cheats (tests only): searches the target's title, opens the target, selects exactly the
    goal's options in goal order, buys. Its reward is the reward function's value for the
    target with the goal's options, so it succeeds where that value is 1."""

    name = "oracle"

    def reset(self, env: WebShopTextEnv, *, visit: int = 0) -> None:
        pass

    def decide(self, env: WebShopTextEnv) -> Decision:
        session, goal = env.session, env.goal
        if session.page == "search":
            return _decision(env, f"search[{goal.name}]")
        if session.page == "results":
            asins = [a.upper() for a in session.page_asins()]
            if goal.asin in asins:
                return _decision(env, f"click[{goal.asin.lower()}]")
            return _decision(env, f"click[{NEXT_PAGE}]")
        if session.page == "item":
            if session.state.asin != goal.asin:
                raise AssertionError("the oracle opened the wrong item")
            chosen = session.state.options
            for option in goal.goal_options:
                if chosen.get(option.name) != option.value:
                    return _decision(env, f"click[{option.value}]")
            return _decision(env, f"click[{BUY_NOW}]")
        raise AssertionError(f"the oracle never visits a {session.page} page")

    def act(self, env: WebShopTextEnv) -> str:
        return self.decide(env).action


class BackToSearchAgent:
    """Clicks "back to search" forever: on the search page that is a no-op, so every
    episode runs into the step limit with reward 0."""

    name = "back-to-search"

    def reset(self, env: WebShopTextEnv, *, visit: int = 0) -> None:
        pass

    def decide(self, env: WebShopTextEnv) -> Decision:
        return _decision(env, f"click[{BACK_TO_SEARCH}]")

    def act(self, env: WebShopTextEnv) -> str:
        return self.decide(env).action


def oracle_factory(spec: AgentSpec) -> OracleAgent:
    return OracleAgent()


def back_to_search_factory(spec: AgentSpec) -> BackToSearchAgent:
    return BackToSearchAgent()


@pytest.fixture(scope="session")
def small_shop():
    from rl_app.shop.config import ShopConfig, load_shop

    return load_shop(ShopConfig.from_dict(SMALL))


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory) -> str:
    """A random tiny ChoicePolicy written with save_pretrained (seeded)."""
    import torch

    from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
    from rl_app.policy.choice_policy import ChoicePolicy
    from rl_app.env.tokenizer import load_tokenizer
    from rl_app.policy.encoder import EncoderConfig

    torch.manual_seed(0)
    # short token limits keep the CPU forward pass cheap; they are saved with the policy
    model = ChoiceModel(ChoiceModelConfig(encoder=EncoderConfig("tiny"), max_state_tokens=128,
                                          max_action_tokens=24))
    return ChoicePolicy(model.eval(), load_tokenizer("tiny")).save_pretrained(tmp_path_factory.mktemp("policy") / "tiny")


@pytest.fixture()
def one_torch_thread():
    """Tiny models gain nothing from a second thread (and a shared 2-core machine makes
    OpenMP teams slow); restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def policy_spec(path: str, *, greedy: bool = True, seed: int = 0, name: Optional[str] = None) -> AgentSpec:
    return AgentSpec.parse(f"policy:{path}", greedy=greedy, seed=seed, name=name)
