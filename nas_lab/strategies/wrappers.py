"""Ask-and-tell wrappers: change what a strategy is told, or what it may propose, without
touching the strategy. Any strategy of :mod:`nas_lab.strategies` goes inside any wrapper.

- :class:`Constrained`: the strategy is told a reward in place of the validation accuracy;
- :class:`MnasNetObjective`: that reward is MnasNet's ``ACC * (LAT / T)^w`` (Tan et al., CVPR
  2019, eq. 2), with a record of what was really measured;
- :class:`Filtered`: proposals outside a free-to-check limit are dropped before training;
- :class:`WarmStartedEvolution`: regularized evolution started from given cells (a zero-cost
  proxy's top picks, lesson 11) instead of random ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from nas_lab.arguments import is_real
from nas_lab.bench import Result
from nas_lab.spaces import nb201
from nas_lab.strategies.evolution import RegularizedEvolution


class Constrained:
    """An ask-and-tell strategy told ``reward(result)`` in place of the validation accuracy, so
    that a strategy that maximises ``val_acc`` (evolution, BO, REINFORCE) maximises the reward."""

    def __init__(self, strategy, reward: Callable[[Result], float]):
        self.strategy, self.reward = strategy, reward

    def ask(self) -> nb201.Cell:
        return self.strategy.ask()

    def tell(self, cell: nb201.Cell, result: Result) -> None:
        self.strategy.tell(cell, dataclasses.replace(result, val_acc=float(self.reward(result))))


class Filtered:
    """An ask-and-tell strategy whose proposals outside ``accept`` are dropped before training.

    Latency is free to look up, so a proposal over the limit costs nothing: ask again, up to
    ``max_tries`` times (then the last proposal goes through, and the clock charges it)."""

    def __init__(self, strategy, accept: Callable[[nb201.Cell], bool], max_tries: int = 1000):
        if max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {max_tries!r}")
        self.strategy, self.accept, self.max_tries = strategy, accept, int(max_tries)

    def ask(self) -> nb201.Cell:
        for _ in range(self.max_tries):
            cell = self.strategy.ask()
            if self.accept(cell):
                return cell
        return cell

    def tell(self, cell: nb201.Cell, result: Result) -> None:
        self.strategy.tell(cell, result)


def mnasnet_reward(
    accuracy: float, latency: float, target: float, alpha: float = -0.07, beta: float = -0.07
) -> float:
    """Tan et al. (MnasNet, CVPR 2019), eq. 2: ``ACC * (LAT / T)^w`` with ``w = alpha`` when
    ``LAT <= T`` and ``w = beta`` otherwise.

    The soft reward (``alpha = beta = -0.07``, the paper's choice) trades accuracy for latency
    smoothly: half the latency is worth ``2^0.07 - 1``, about 5% more accuracy (Section 3). The
    hard constraint of eq. 1 is ``alpha = 0, beta = -1``: no reward for being faster than the
    target, a steep penalty above it."""
    for name, value in (("accuracy", accuracy), ("latency", latency), ("target", target)):
        if not is_real(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if latency <= 0 or target <= 0:
        raise ValueError(f"latency and target must be positive (ms), got {latency!r}, {target!r}")
    w = alpha if latency <= target else beta
    return float(accuracy * (latency / target) ** w)


HARD = {"alpha": 0.0, "beta": -1.0}  # eq. 1 as a reward: the hard latency constraint


class MnasNetObjective(Constrained):
    """Make any ask-and-tell strategy maximise the MnasNet reward instead of accuracy: ``tell``
    hands the strategy a result whose ``val_acc`` is the reward of the measured accuracy and
    latency (MnasNet's controller is rewarded the same way). The record of what was really
    measured (validation accuracy, latency, reward; a search never sees a test accuracy) stays in
    ``history``."""

    def __init__(self, strategy, target: float, alpha: float = -0.07, beta: float = -0.07):
        if not is_real(target) or target <= 0:
            raise ValueError(f"target must be a positive latency in ms, got {target!r}")
        super().__init__(strategy, self._reward)
        self.target, self.alpha, self.beta = target, alpha, beta
        self.history: list[dict] = []

    def _reward(self, result: Result) -> float:
        reward = mnasnet_reward(
            result.val_acc, result.latency_ms, self.target, self.alpha, self.beta
        )
        self.history.append(
            {
                "arch": result.arch,
                "val_acc": result.val_acc,
                "latency_ms": result.latency_ms,
                "reward": reward,
            }
        )
        return reward

    @property
    def best(self) -> dict:
        """The member with the highest reward."""
        if not self.history:
            raise ValueError("nothing told yet: run the strategy first")
        return max(self.history, key=lambda row: row["reward"])


class WarmStartedEvolution:
    """Regularized evolution (:class:`~nas_lab.strategies.evolution.RegularizedEvolution`) whose
    random start is replaced by ``warm`` cells: the first ``len(warm)`` asks return them, in
    order, and evolution takes over from the population they form. With an empty ``warm`` it is
    plain regularized evolution, draw for draw."""

    def __init__(self, warm: Sequence[nb201.Cell | str], **evolution_kwargs):
        self.warm = [nb201.as_cell(c) for c in warm]
        self.evolution = RegularizedEvolution(**evolution_kwargs)

    def ask(self) -> nb201.Cell:
        told = len(self.evolution.history)
        return self.warm[told] if told < len(self.warm) else self.evolution.ask()

    def tell(self, cell: nb201.Cell, result: Result) -> None:
        self.evolution.tell(cell, result)

    @property
    def history(self):
        return self.evolution.history
