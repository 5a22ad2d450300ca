"""Trajectory parquet built by hand or by playing the demonstrator, and tiny IL configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pytest

SHOP = {"catalogue": "synthetic", "synthetic_products": 300, "synthetic_seed": 1}
# Small tokenization so the tiny encoder trains fast; K must cover the widest page.
K_MAX, STATE_TOKENS, ACTION_TOKENS = 40, 96, 16
# The 300-product shop has 968 goals: test 0-499, dev 500-967 (no train goals); tests use dev.
FIRST_GOAL = 500


def step_row(episode_id: str, step: int, state: str, texts: Sequence[str], chosen: int, *,
             candidates: Sequence[str] | None = None, goal_index: int = FIRST_GOAL, reward: float = 0.0,
             done: bool = False, episode_reward: float = 0.0) -> dict[str, Any]:
    """One trajectory row with the columns the offline path reads (candidates default to texts)."""
    return dict(episode_id=episode_id, goal_index=goal_index, split="dev", step=step, state=state,
                candidates=list(candidates if candidates is not None else texts), candidate_texts=list(texts),
                chosen=chosen, reward=reward, done=done, source="demo", episode_reward=episode_reward)


def write_rows(rows: Sequence[dict], path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(list(rows)).to_parquet(path)
    return str(path)


def play_demonstrations(goals: Sequence[int]) -> list[dict[str, Any]]:
    """The DemonstratorAgent on the synthetic shop, recorded as trajectory rows."""
    from rl_app.agents.scripted import DemonstratorAgent
    from rl_app.env.text_env import TextEnvConfig, WebShopTextEnv

    env = WebShopTextEnv(SHOP, TextEnvConfig(split="dev"))
    rows: list[dict[str, Any]] = []
    for goal in goals:
        env.reset(goal_index=goal, seed=goal)
        agent = DemonstratorAgent(seed=goal)
        agent.reset(env)
        episode, done = [], False
        while not done:
            state, candidates, texts = env.observation(), env.candidates(), env.candidate_texts()
            action = agent.act(env)
            _, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            episode.append(step_row(f"demo/g{goal}", len(episode), state, texts, candidates.index(action),
                                    candidates=candidates, goal_index=goal, reward=float(reward), done=done))
        for row in episode:
            row["episode_reward"] = episode[-1]["reward"]
        rows += episode
    return rows


@pytest.fixture(scope="session")
def demo_rows() -> list[dict[str, Any]]:
    rows = play_demonstrations(range(FIRST_GOAL, FIRST_GOAL + 8))
    assert max(len(r["candidate_texts"]) for r in rows) <= K_MAX
    return rows


@pytest.fixture(scope="session")
def demo_dir(demo_rows, tmp_path_factory) -> Path:
    """A data set directory like rl_app.data.demos writes (parquet + _summary.json)."""
    import json

    directory = tmp_path_factory.mktemp("demos")
    write_rows(demo_rows, directory / "part-00000.parquet")
    (directory / "_summary.json").write_text(json.dumps({"shop_config": SHOP}))
    return directory


def tiny_il_config(paths, **training):
    """ILConfig at test sizes with the tiny encoder (lr 1e-3, batch 16, 4 updates per iteration)."""
    from rl_app.algorithms.il import ILConfig

    return (ILConfig()
            .dataset(paths=paths, updates_per_iteration=training.pop("updates_per_iteration", 4))
            .observations(k_max=K_MAX, max_state_tokens=STATE_TOKENS, max_action_tokens=ACTION_TOKENS)
            .rl_module(model_config={"encoder": "tiny"})
            .training(**{"lr": 1e-3, "train_batch_size_per_learner": 16, **training})
            .debugging(seed=0))


def fixed_batch(config, rows) -> dict[str, Any]:
    """Module input (torch tensors) for the given rows, tokenized as the prelearner does."""
    import torch

    obs = config.observation_encoder().encode_batch([r["state"] for r in rows],
                                                    [r["candidate_texts"] for r in rows])
    return {"obs": {k: torch.as_tensor(v) for k, v in obs.items()}}


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The local learner runs in this process: one thread is faster for tiny models on a
    shared 2-core machine (see tests/policy/conftest.py); restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def as_numpy_batch(rows: Sequence[dict]) -> dict[str, np.ndarray]:
    """Rows as Ray Data hands them to map_batches: list columns become object arrays of arrays."""
    batch: dict[str, np.ndarray] = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if isinstance(values[0], (list, tuple)):
            column = np.empty(len(values), dtype=object)
            column[:] = [np.array(v, dtype=object) for v in values]
            batch[key] = column
        else:
            batch[key] = np.array(values)
    return batch


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A random tiny choice policy at this package's token lengths, saved: (policy, directory);
    the DPO tests' pi_ref and starting point (seeded, so each module gets the same one)."""
    import torch

    from rl_app.policy.choice_model import ChoiceModel, ChoiceModelConfig
    from rl_app.policy.choice_policy import ChoicePolicy
    from rl_app.env.tokenizer import load_tokenizer
    from rl_app.policy.encoder import EncoderConfig

    torch.manual_seed(0)
    policy = ChoicePolicy(ChoiceModel(ChoiceModelConfig(encoder=EncoderConfig("tiny"))), load_tokenizer("tiny"),
                          max_state_tokens=STATE_TOKENS, max_action_tokens=ACTION_TOKENS)
    return policy, policy.save_pretrained(tmp_path_factory.mktemp("ref") / "policy")


@pytest.fixture(scope="module")
def tiny_dpo(reference, tmp_path_factory):
    """(build, batch): ``build(learner_class=None, **training)`` makes a DPO learner of a tiny config in
    this process (no Ray; lr 1e-3 unless given); ``batch`` is 4 preference pairs as its ``_update``
    takes them (CPU tensors)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from rl_app.algorithms.dpo import DPOConfig, DPOPreLearner
    from rl_app.data.pairs import PAIR_SCHEMA

    colors = ("red", "blue", "green", "black")
    rows = [dict(pair_id=f"p{i}/0", kind="step", episode_id=f"p{i}", goal_index=FIRST_GOAL, split="dev", step=0,
                 source="demo", state=f"instruction: i want a {colors[i]} shirt [SEP] item page [SEP] color",
                 candidates=[f"click[{c}]" for c in colors], candidate_texts=[f"click[{c}]" for c in colors],
                 chosen=i, rejected=(i + 1) % 4, ref_chosen_logp=-1.3863, ref_rejected_logp=-1.3863)
            for i in range(4)]
    directory = tmp_path_factory.mktemp("tiny_pairs")
    pq.write_table(pa.Table.from_pylist(rows, schema=PAIR_SCHEMA), directory / "pairs.parquet")

    def config(**training):
        return (DPOConfig()
                .dataset(paths=[str(directory)])
                .observations(k_max=K_MAX, max_state_tokens=STATE_TOKENS, max_action_tokens=ACTION_TOKENS)
                .rl_module(model_config={"init_checkpoint": str(reference[1])})
                .training(**{"lr": 1e-3, "train_batch_size_per_learner": 4, "grad_clip": 1.0, **training})
                .learners(num_learners=0, num_gpus_per_learner=0, precision="fp32"))

    def build(learner_class=None, **training):
        c = config(**training)
        if learner_class is not None:
            c.learners(learner_class=learner_class)
        return c.build_learner()

    columns = {key: np.array([r[key] for r in rows] + [None], dtype=object)[:-1] for key in rows[0]}
    module_batch = DPOPreLearner(config=config()).module_batch(columns)
    obs = {key: torch.as_tensor(value) for key, value in module_batch["obs"].items()}
    rest = {key: torch.as_tensor(value) for key, value in module_batch.items() if key != "obs"}
    return build, {"default_policy": {"obs": obs, **rest}}
