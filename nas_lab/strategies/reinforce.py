"""REINFORCE with an LSTM controller: the search strategy NAS began with (lesson 03).

Zoph & Le, "Neural Architecture Search with Reinforcement Learning", ICLR 2017. A recurrent
network, the controller, writes an architecture one decision at a time; the architecture is
trained and its validation accuracy R is the reward; the controller is updated to make
high-reward decisions more likely. The update is Williams' REINFORCE (Machine Learning, 1992):

    grad J(theta) = E_{a ~ pi_theta} [ (R - b) * sum_t grad log pi_theta(a_t | a_<t) ]   (eq. 1)

estimated from the sampled architectures, with a baseline b (an exponential moving average of
past rewards: it does not depend on the current sample, so the estimate stays unbiased, but it
centres the reward and so cuts its variance; Zoph & Le, Section 3.2). An entropy bonus
(Williams & Peng 1991; used by ENAS, Pham et al., ICML 2018) keeps the policy from collapsing
onto one architecture too early. The loss whose gradient we follow is therefore

    loss = -(R - b) * sum_t log pi(a_t | a_<t)  -  beta * H(pi)                          (eq. 2)

On the NAS-Bench-201 cell the controller emits the 6 operations in ``EDGES`` order, so the
"architecture" is a sequence of 6 choices among the 5 operations. The file reads top to bottom:

1. ``Controller``: the LSTM policy, which samples a cell and scores a given one;
2. ``reinforce_loss``: eq. 2, and its pieces: the score function of one categorical choice,
   the moving-average baseline, per-sample gradients (to measure what the baseline saves);
3. ``Reinforce``: the ask-and-tell strategy (sample, then one Adam step per batch of rewards).

The controller stays on the CPU on purpose: it is a few thousand parameters run one step at a
time, where a GPU's launch overhead costs more than it saves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from nas_lab.bench import Result
from nas_lab.spaces import as_rng, nb201

NUM_EDGES, NUM_OPS = len(nb201.EDGES), len(nb201.OPS)
INIT_RANGE = 0.08  # Zoph & Le, Section 4.1: parameters initialised uniformly in [-0.08, 0.08]


def _op_indices(ops: nb201.Cell | Sequence[str] | Sequence[int]) -> list[int]:
    """Operation numbers (positions in ``OPS``) from a Cell, op names or op numbers."""
    if isinstance(ops, nb201.Cell):
        ops = ops.ops
    ops = list(ops)
    if len(ops) != NUM_EDGES:
        raise ValueError(f"a cell has {NUM_EDGES} edges, so the controller needs {NUM_EDGES} ops")
    if all(isinstance(op, str) for op in ops):
        return [nb201.OPS.index(op) for op in nb201.Cell(tuple(ops)).ops]  # validates the names
    indices = [int(op) for op in ops]
    if not all(0 <= i < NUM_OPS for i in indices):
        raise ValueError(f"operation numbers must be in 0..{NUM_OPS - 1}, got {indices}")
    return indices


# --------------------------------------------------------------------------------------------
# 1. The controller: an LSTM that writes the cell one edge at a time
# --------------------------------------------------------------------------------------------


class Controller(nn.Module):
    """The policy pi_theta(a_1..a_6) = prod_t pi_theta(a_t | a_<t) (Zoph & Le 2017, Section 3.1).

    At step t the LSTM reads an embedding of the previous choice (a learned start token at t = 1),
    and a softmax classifier of its own for edge t turns the hidden state into a distribution over
    the 5 operations. The sampled operation is fed back as the next step's input, so later edges
    can depend on earlier ones."""

    def __init__(self, hidden: int = 32, seed: int | np.random.Generator = 0) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be a positive number of LSTM units, got {hidden}")
        self.hidden = hidden
        self.embed = nn.Embedding(NUM_OPS + 1, hidden)  # the last row is the start token
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleList(nn.Linear(hidden, NUM_OPS) for _ in range(NUM_EDGES))
        # Seeded initialisation, independent of torch's global random state.
        generator = torch.Generator().manual_seed(int(as_rng(seed).integers(2**63)))
        with torch.no_grad():
            for p in self.parameters():
                nn.init.uniform_(p, -INIT_RANGE, INIT_RANGE, generator=generator)

    def _steps(self, choose) -> tuple[list[int], torch.Tensor]:
        """Run the 6 steps; ``choose(t, logits)`` picks op t. Returns (ops, logits (6, 5))."""
        h = c = torch.zeros(1, self.hidden, dtype=self.embed.weight.dtype)
        previous = torch.tensor([NUM_OPS])  # the start token
        ops, logits = [], []
        for t in range(NUM_EDGES):
            h, c = self.lstm(self.embed(previous), (h, c))
            step_logits = self.heads[t](h)[0]
            op = choose(t, step_logits)
            ops.append(op)
            logits.append(step_logits)
            previous = torch.tensor([op])
        return ops, torch.stack(logits)

    @staticmethod
    def _score(ops: list[int], logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return log_prob_and_entropy(logits, ops)

    def sample(
        self, generator: torch.Generator
    ) -> tuple[tuple[str, ...], torch.Tensor, torch.Tensor]:
        """Sample a cell: (its 6 op names, sum_t log pi(a_t | a_<t), summed step entropy).

        The log-probability and entropy carry gradients unless called under ``torch.no_grad``."""

        def draw(t: int, logits: torch.Tensor) -> int:
            probs = torch.softmax(logits.detach(), dim=-1)
            return int(torch.multinomial(probs, 1, generator=generator))

        ops, logits = self._steps(draw)
        log_prob, entropy = self._score(ops, logits)
        return tuple(nb201.OPS[i] for i in ops), log_prob, entropy

    def evaluate(self, ops: nb201.Cell | Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi(ops), entropy) for a given cell, feeding its own ops back ("teacher forcing")."""
        given = _op_indices(ops)
        _, logits = self._steps(lambda t, _: given[t])
        return self._score(given, logits)

    def log_prob(self, ops: nb201.Cell | Sequence[str]) -> torch.Tensor:
        """log pi_theta(ops) = sum_t log pi_theta(a_t | a_<t), with gradients."""
        return self.evaluate(ops)[0]

    @torch.no_grad()
    def most_likely(self) -> tuple[str, ...]:
        """The greedy cell: at each step the most probable operation given the earlier ones.

        Not always the single most probable cell (a greedy path can miss it), but the one
        the policy's table along its own choices points at; for plots."""
        ops, _ = self._steps(lambda t, logits: int(torch.argmax(logits)))
        return tuple(nb201.OPS[i] for i in ops)

    @torch.no_grad()
    def probabilities(self, ops: nb201.Cell | Sequence[str]) -> np.ndarray:
        """The 6 x 5 table pi(. | a_<t) along ``ops``: row t is the distribution over edge t's
        operation given the earlier edges of ``ops``. For plots and tests."""
        given = _op_indices(ops)
        _, logits = self._steps(lambda t, _: given[t])
        return torch.softmax(logits, dim=-1).double().numpy()


# --------------------------------------------------------------------------------------------
# 2. The REINFORCE loss (eq. 2) and its pieces
# --------------------------------------------------------------------------------------------


def log_prob_and_entropy(
    logits: torch.Tensor, ops: Sequence[int] | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """For a (steps, choices) tensor of logits and one chosen op number per step:
    log pi(a) = sum_t log softmax(z_t)[a_t], and H = -sum_t sum_k p_tk log p_tk, the summed
    entropy of the step distributions. By the chain rule of entropy, the mean of H over the
    policy's own samples is the entropy of the whole cell distribution (Cover & Thomas 2006,
    Theorem 2.5.1)."""
    if logits.ndim != 2:
        raise ValueError(f"logits must be (steps, choices), got shape {tuple(logits.shape)}")
    ops = torch.as_tensor(ops, dtype=torch.long)
    if ops.shape != (logits.shape[0],):
        raise ValueError(f"need one op per step ({logits.shape[0]}), got {ops.tolist()}")
    log_p = torch.log_softmax(logits, dim=-1)
    log_prob = log_p[torch.arange(len(ops)), ops].sum()
    entropy = -(log_p.exp() * log_p).sum()
    return log_prob, entropy


def score_function(logits: np.ndarray, action: int) -> np.ndarray:
    """d log softmax(z)_a / dz = onehot(a) - softmax(z): the score function of one categorical
    choice, Williams' "characteristic eligibility" d ln g / d w (Williams 1992) for a softmax,
    the term REINFORCE multiplies by R - b. It pushes z_a up by 1 - p_a and every other z_k
    down by p_k, and its mean over a ~ softmax(z) is zero (why a baseline adds no bias)."""
    z = np.asarray(logits, dtype=float)
    if z.ndim != 1 or not 0 <= action < len(z):
        raise ValueError(f"need a 1-D vector of logits and an action in 0..{len(z) - 1}")
    p = np.exp(z - z.max())
    p /= p.sum()
    return np.eye(len(z))[action] - p


def moving_average_baselines(rewards: Sequence[float], decay: float) -> np.ndarray:
    """The baseline b_t that reward R_t is compared with: b_1 = R_1, then
    b_{t+1} = decay * b_t + (1 - decay) * R_t (Zoph & Le 2017, Section 3.2: "an exponential
    moving average of the previous architecture accuracies"). b_t uses only R_1..R_{t-1} (and
    R_1 for the first): it does not depend on the action it judges, so it keeps eq. 1 unbiased."""
    if not 0 <= decay < 1:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    rewards = np.asarray(rewards, dtype=float)
    baselines = np.empty_like(rewards)
    b = rewards[0] if len(rewards) else 0.0
    for t, reward in enumerate(rewards):
        baselines[t] = b
        b = decay * b + (1 - decay) * reward
    return baselines


def score_gradients(controller: Controller, cells: Sequence[nb201.Cell]) -> np.ndarray:
    """Per-sample gradients grad_theta log pi(cell), flattened: an (n cells, n parameters)
    array. Row i times (R_i - b) is sample i's REINFORCE estimate of grad J (eq. 1), so the
    spread of the rows measures the estimator's variance for any choice of baseline."""
    params = list(controller.parameters())
    rows = []
    for cell in cells:  # every parameter takes part in every cell's 6 steps: no None gradient
        grads = torch.autograd.grad(controller.log_prob(cell), params)
        rows.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(rows).double().numpy()


def gradient_variance(scores: np.ndarray, advantages: Sequence[float] | np.ndarray) -> float:
    """Total variance of the per-sample REINFORCE estimates (R_i - b_i) * grad log pi(a_i):
    the sum over parameters of each coordinate's variance across samples (the trace of the
    estimator's covariance). ``scores`` is ``score_gradients``' (samples, parameters) array.
    Subtracting a baseline leaves the mean unchanged (eq. 1) and changes only this number."""
    scores = np.asarray(scores, dtype=float)
    advantages = np.asarray(advantages, dtype=float)
    if scores.ndim != 2 or advantages.shape != (len(scores),):
        raise ValueError(
            f"need a (samples, parameters) array and one advantage per sample, got shapes "
            f"{scores.shape} and {advantages.shape}"
        )
    return float((advantages[:, None] * scores).var(axis=0).sum())


def reinforce_loss(
    log_prob: torch.Tensor,
    entropy: torch.Tensor,
    reward: float,
    baseline: float,
    entropy_weight: float,
) -> torch.Tensor:
    """-(R - b) * log pi(a) - beta * H (eq. 2). Its gradient is -(R - b) * grad log pi(a), the
    REINFORCE estimate of -grad J (Williams 1992, eq. 1 above), minus the entropy bonus's."""
    return -(reward - baseline) * log_prob - entropy_weight * entropy


# --------------------------------------------------------------------------------------------
# 3. The strategy: ask samples from the controller, tell takes a policy-gradient step
# --------------------------------------------------------------------------------------------


# Zoph & Le's controller settings (ICLR 2017, Section 4.1, "Training details", and Section 3.2
# for the estimator), as keyword arguments: ``Reinforce(**PAPER)``. The baseline's decay is not
# given in the paper, so the preset leaves the course's.
PAPER = {
    "lr": 6e-4,  # 4.1: "trained with the ADAM optimizer ... with a learning rate of 0.0006"
    "hidden": 35,  # 4.1: "a two-layer LSTM with 35 hidden units on each layer" (ours: one layer)
    "batch_size": 8,  # 3.2's m architectures per gradient; 4.1: "child replicas m to 8"
    "entropy_weight": 0.0,  # 3.2's estimator has no entropy bonus
}


class Reinforce:
    """NAS with REINFORCE (Zoph & Le 2017) as an ask-and-tell strategy.

    ``ask`` samples a cell from the controller and keeps its log-probability. ``tell`` receives
    the reward R (the validation accuracy); once ``batch_size`` rewards have arrived, one Adam
    step descends the mean of eq. 2 over them. The baseline b is the exponential moving average
    b <- decay * b + (1 - decay) * R of the rewards seen *before* each one (it starts at the
    first reward; ``moving_average_baselines``). ``baseline=False`` uses b = 0, plain
    REINFORCE, for the lesson's comparison.

    The loss is recomputed at ``tell`` from the kept ops under the current controller: with
    ``batch_size=1`` and ask/tell alternating this is exactly the log-probability ``ask`` kept,
    and it stays well-defined when several asks are outstanding across an update.

    ``Reinforce(**reinforce.PAPER)`` takes Zoph & Le's values: Adam at 6e-4, 35 LSTM units,
    8 architectures per update, no entropy bonus (their controller has two LSTM layers, ours
    one). The course's defaults differ: Adam at 5e-3, 32 units, one architecture per update and
    an entropy bonus of 1e-3. Zoph & Le trained 12,800 architectures; a lesson affords a few
    hundred, so the course updates after every one, with a larger step, and keeps a small
    entropy bonus, the exploration dial that lesson 03 (sections 6-7) turns. The baseline's
    decay, 0.9, is the one NAS-Bench-201's REINFORCE uses (Dong & Yang, ICLR 2020;
    ``exps/NAS-Bench-201-algos/reinforce.py`` in github.com/D-X-Y/AutoDL-Projects, run with
    ``--EMA_momentum 0.9``). That baseline learns a 6 x 5 table of logits, not an LSTM, with
    Adam at 0.5 (``docs/NAS-Bench-201.md``, command [9]; NATS-Bench reruns it at 0.01,
    ``exps/NATS-algos/run-all.sh``), no entropy bonus, and a bias-corrected moving average
    that already includes the reward it judges.
    """

    def __init__(
        self,
        seed: int | np.random.Generator = 0,
        lr: float = 0.005,
        baseline_decay: float = 0.9,
        entropy_weight: float = 1e-3,
        hidden: int = 32,
        batch_size: int = 1,
        baseline: bool = True,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not 0 <= baseline_decay < 1:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay}")
        if entropy_weight < 0:
            raise ValueError(f"entropy_weight must be >= 0 (a bonus), got {entropy_weight}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        rng = as_rng(seed)
        self.controller = Controller(hidden=hidden, seed=rng)
        self.generator = torch.Generator().manual_seed(int(rng.integers(2**63)))
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr)
        self.baseline_decay, self.entropy_weight = baseline_decay, entropy_weight
        self.batch_size, self.use_baseline = batch_size, baseline
        self.baseline: float | None = None  # the moving average, before the next reward
        self.baselines: list[float] = []  # the b each told reward was compared with
        self.entropies: list[float] = []  # summed step entropy of each ask's sample (nats)
        self.pending: dict[nb201.Cell, list[float]] = {}  # asked cell -> log-probs at sampling
        self.batch: list[tuple[nb201.Cell, float]] = []  # (cell, advantage R - b) awaiting a step
        self.history: list[tuple[nb201.Cell, float, float]] = []  # (cell, log pi at ask, reward)

    def ask(self) -> nb201.Cell:
        with torch.no_grad():
            ops, log_prob, entropy = self.controller.sample(self.generator)
        cell = nb201.Cell(ops)
        self.entropies.append(float(entropy))
        self.pending.setdefault(cell, []).append(float(log_prob))
        return cell

    def tell(self, cell: nb201.Cell, result: Result) -> None:
        cell = nb201.as_cell(cell)
        asked = self.pending.get(cell)
        if not asked:
            raise ValueError(
                f"{cell} was not asked by this controller: REINFORCE learns only from its own "
                "samples (call ask() and tell() with the cell it returned)"
            )
        log_prob_at_ask = asked.pop(0)
        if not asked:
            del self.pending[cell]
        reward = float(result.val_acc)
        if self.baseline is None:
            self.baseline = reward
        used = self.baseline if self.use_baseline else 0.0
        self.baselines.append(used)
        self.batch.append((cell, reward - used))
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        self.history.append((cell, log_prob_at_ask, reward))
        if len(self.batch) >= self.batch_size:
            self._update()

    def _update(self) -> None:
        """One Adam step on the mean of eq. 2 over the batch (advantage = R - b)."""
        self.optimizer.zero_grad()
        loss = torch.zeros(())
        for cell, advantage in self.batch:
            log_prob, entropy = self.controller.evaluate(cell)
            loss = loss + reinforce_loss(log_prob, entropy, advantage, 0.0, self.entropy_weight)
        (loss / len(self.batch)).backward()
        self.optimizer.step()
        self.batch.clear()
