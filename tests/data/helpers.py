"""Hand-made step records for the data tests."""

from __future__ import annotations

import dataclasses

from rl_app.data.schema import StepRecord


def record(**overrides) -> StepRecord:
    """A valid first step of a train episode; override any field."""
    base = dict(
        episode_id="ep-a", goal_index=1500, split="train", step=0,
        state="WebShop\nInstruction: \nfind me blue shoes\n[button] Search [button_]\n",
        candidates=("search[blue shoes]", "search[shoes]"),
        candidate_texts=("search[blue shoes]", "search[shoes]"),
        chosen=0, reward=0.0, done=False, source="demo", episode_reward=1.0, agent="demonstrator", seed=7)
    base.update(overrides)
    return StepRecord(**base)


def episode(episode_id: str = "ep-a", goal_index: int = 1500, final_reward: float = 1.0,
            n_steps: int = 3) -> list[StepRecord]:
    """search -> click an item -> buy; the last step is done and carries the final reward."""
    rows = [record(episode_id=episode_id, goal_index=goal_index, episode_reward=final_reward)]
    rows.append(record(
        episode_id=episode_id, goal_index=goal_index, episode_reward=final_reward, step=1,
        state="results page", candidates=("click[back to search]", "click[b000000001]", "click[b000000002]"),
        candidate_texts=("click[back to search]", "click[b000000001] Blue Shoe", "click[b000000002] Red Shoe"),
        chosen=1))
    for step in range(2, n_steps):
        last = step == n_steps - 1
        rows.append(record(
            episode_id=episode_id, goal_index=goal_index, episode_reward=final_reward, step=step,
            state=f"item page {step}", candidates=("click[< prev]", "click[buy now]"),
            candidate_texts=("click[< prev]", "click[buy now]"), chosen=1 if last else 0,
            reward=final_reward if last else 0.0, done=last))
    return rows


def replace(r: StepRecord, **changes) -> StepRecord:
    return dataclasses.replace(r, **changes)
