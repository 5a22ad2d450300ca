"""The one training loop: build an RLlib algorithm, call ``train()`` until a budget is spent,
pausing at evaluation points.

Used by the IL, DPO and PPO command lines (:mod:`rl_app.algorithms.cli`) and by the Tune
trial (:mod:`rl_app.experiments.trainable`)::

    with BudgetedTraining(config.build_algo, Budget(iterations=20, seconds=600)) as training:
        for step in training:          # one train() call each
            log(step.result)
            if step.evaluate:          # an evaluation point (always the last step)
                training.algo.save_to_path(...)

The budget clock (:attr:`TrainingState.train_s`) counts the ``train()`` calls only: in wall
seconds, or in CPU seconds of this process and its remote env runners (``unit="cpu"``: what
another process's load on the machine cannot eat). With ``count_build`` the wall clock also
counts building (and restoring) the algorithm, from the trial's own start, so every
trial of a GPU-time-matched comparison gets the same wall budget.
Whatever the caller does between steps (logging, checkpointing, evaluating) is not counted.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Mapping, Optional

from rl_app.algorithms.offline import LEARNER_SECONDS_ITER

__all__ = ["Budget", "TrainingState", "Step", "BudgetedTraining", "cpu_clock"]


@dataclass(frozen=True)
class Budget:
    """When training stops, and where it pauses to be evaluated.

    Attributes:
        iterations: ``train()`` calls at most; 0 = no cap (the seconds alone).
        seconds: the budget on the clock; None = no time budget (the iterations alone).
        unit: ``wall`` or ``cpu`` seconds (module docstring).
        count_build: the wall clock also counts building the algorithm (a Tune trial's).
        eval_every_s: an evaluation point each time the clock passes another multiple of
            this; None = only at the end.
    """

    iterations: int = 0
    seconds: Optional[float] = None
    unit: Literal["wall", "cpu"] = "wall"
    count_build: bool = False
    eval_every_s: Optional[float] = None

    def __post_init__(self) -> None:
        if self.iterations <= 0 and self.seconds is None:
            raise ValueError("a budget needs iterations > 0 or seconds")
        if self.unit not in ("wall", "cpu"):
            raise ValueError(f"budget unit must be 'wall' or 'cpu', got {self.unit!r}")

    def iterations_done(self, state: "TrainingState") -> bool:
        return 0 < self.iterations <= state.iteration

    def seconds_spent(self, state: "TrainingState") -> bool:
        return self.seconds is not None and state.train_s >= self.seconds


@dataclass
class TrainingState:
    """Where a run stands; saved beside a trial's checkpoints (JSON) so a resumed run carries
    on with its clock and curve.

    Attributes:
        train_s: the budget clock. learner_s: seconds inside the learners' updates.
        eval_s: evaluation pauses (the caller's). build_s: building (and restoring) the algorithm.
        iteration: ``train()`` calls so far. next_eval_s: the clock's next evaluation point.
        evaluations: evaluation points so far. resumed: times the run was restored.
        score, success: the latest evaluation (the caller's; NaN before the first).
    """

    train_s: float = 0.0
    learner_s: float = 0.0
    eval_s: float = 0.0
    build_s: float = 0.0
    iteration: int = 0
    next_eval_s: float = math.inf
    evaluations: int = 0
    resumed: int = 0
    score: float = math.nan
    success: float = math.nan

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainingState":
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Step:
    """One ``train()`` call: its result, and what the budget says now.

    Attributes:
        result: what ``train()`` returned.
        evaluate: an evaluation point (the clock passed ``eval_every_s`` again, or the end).
        done: the last step (iterations done or seconds spent).
        seconds_spent: the time budget ended the run (the command lines say so).
    """

    result: Mapping[str, Any]
    evaluate: bool
    done: bool
    seconds_spent: bool


def cpu_clock(algo) -> Callable[[], float]:
    """CPU seconds of this process plus its remote env runners (PPO's sampling), as a clock."""
    group = getattr(algo, "env_runner_group", None)
    remote = group is not None and group.num_remote_env_runners() > 0

    def now() -> float:
        seconds = time.process_time()
        if remote:
            seconds += sum(group.foreach_env_runner(lambda _runner: time.process_time(), local_env_runner=False))
        return seconds

    return now


class BudgetedTraining:
    """Builds the algorithm on entering, stops it on leaving; iterating trains to the budget.

    Args:
        build: makes the algorithm (``config.build_algo``, or a function that prepares first).
        budget: when to stop and where to pause.
        restore: called with the built algorithm; returns the state of an earlier run it
            restored the algorithm to (a resumed Tune trial), or None for a new run.
    """

    def __init__(self, build: Callable[[], Any], budget: Budget, *,
                 restore: Optional[Callable[[Any], Optional[TrainingState]]] = None) -> None:
        self.build, self.budget, self.restore = build, budget, restore
        self.algo: Any = None
        self.state = TrainingState()

    def __enter__(self) -> "BudgetedTraining":
        start = time.perf_counter()
        self.algo = self.build()
        try:
            restored = self.restore(self.algo) if self.restore is not None else None
            if restored is not None:
                self.state = restored
                self.state.resumed += 1
            elif self.budget.eval_every_s is not None:
                self.state.next_eval_s = float(self.budget.eval_every_s)
            elapsed = time.perf_counter() - start
            self.state.build_s += elapsed
            if self.budget.count_build and self.budget.unit == "wall":
                self.state.train_s += elapsed
            self._clock = cpu_clock(self.algo) if self.budget.unit == "cpu" else time.perf_counter
        except BaseException:
            self.algo.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.algo.stop()

    def __iter__(self) -> Iterator[Step]:
        state, budget = self.state, self.budget
        while True:
            start = self._clock()
            result = self.algo.train()
            state.train_s += self._clock() - start
            state.learner_s += float(result.get(LEARNER_SECONDS_ITER, 0.0))
            state.iteration += 1
            spent = budget.seconds_spent(state)
            done = spent or budget.iterations_done(state)
            evaluate = done or state.train_s >= state.next_eval_s
            if evaluate:
                state.evaluations += 1
                if budget.eval_every_s is not None:
                    while state.next_eval_s <= state.train_s:
                        state.next_eval_s += float(budget.eval_every_s)
            yield Step(result, evaluate, done, spent)
            if done:
                return
