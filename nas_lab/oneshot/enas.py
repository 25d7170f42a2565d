"""ENAS: Efficient Neural Architecture Search via Parameter Sharing (Pham, Guan, Zoph, Le & Dean,
ICML 2018).

Zoph & Le's controller (lesson 03, ``strategies.reinforce``) trained every architecture it
proposed from scratch. ENAS keeps the controller and the REINFORCE update but lets all proposed
architectures share the weights of one supernet, so a reward costs one forward pass instead of a
training. Training alternates two phases (Section 2.2):

1. the shared weights w, controller fixed: each batch trains the path of an architecture
   m ~ pi(m; theta) freshly sampled from the controller (one sample per step, M = 1), on
   E_m[ L_train(m; w) ];
2. the controller theta, weights fixed: REINFORCE (Williams 1992) on the reward R(m, w), the
   accuracy of m's path on a batch of held-out data, with a moving-average baseline b and an
   entropy bonus (``strategies.reinforce.reinforce_loss``, eq. 2 there):

       loss(theta) = -(R - b) * log pi(m; theta) - beta * H(pi)

At the end (Section 2.2, "Deriving architectures") several architectures are sampled from the
trained policy and the one whose shared-weight path scores best on held-out data is returned.
ENAS scores each on a single minibatch; ours score on the whole held-out half, which costs
little here and is less noisy.

The controller is lesson 03's LSTM (``strategies.reinforce.Controller``), unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

from nas_lab.oneshot import supernet as sn
from nas_lab.spaces import nb201
from nas_lab.strategies.reinforce import Controller, reinforce_loss

# ENAS' search settings as NAS-Bench-201 ran it on this very cell (Dong & Yang, ICLR 2020), as
# keyword arguments: ``ENAS(**PAPER)``. They are the ENAS authors' own CIFAR-10 macro-search
# settings (github.com/melodyguan/enas at 4bcfd73, scripts/cifar10_macro_search.sh, "macro.sh";
# src/cifar10/main.py; src/utils.py), which NAS-Bench-201's code copies (github.com/D-X-Y/
# AutoDL-Projects at f46486e: scripts-search/NAS-Bench-201-algos/ENAS.sh, "nb.sh", and
# configs/nas-benchmark/algos/ENAS.config, "nb.config"). The weights' 0.05 and 250 epochs are
# the course's defaults already (nb.config). ENAS' micro (cell) search uses other values:
# controller lr 0.0035, 30 steps of 10 samples, batches of 160 (scripts/cifar10_micro_search.sh).
PAPER = {
    "controller_lr": 1e-3,  # macro.sh:35 --controller_lr=0.001; nb.config "controller_lr"
    "controller_steps": 50,  # macro.sh:34 --controller_train_steps=50; nb.sh
    "controller_aggregate": 20,  # macro.sh:33 --controller_num_aggregate=20; nb.sh
    "controller_betas": (0.0, 0.999),  # src/utils.py:218 beta1=0.0; nb.config
    "controller_eps": 1e-3,  # src/utils.py:218 epsilon=1e-3; nb.config
    "baseline_decay": 0.99,  # main.py:72 --controller_bl_dec default 0.99; nb.sh
    "entropy_weight": 1e-4,  # macro.sh:30 --controller_entropy_weight=0.0001; nb.sh
    "final_samples": 100,  # nb.sh --controller_num_samples 100
    "batch_size": 128,  # macro.sh:11 --batch_size=128; nb.config
}


class ENAS(sn.OneShotSearch):
    """ENAS on the NAS-Bench-201 supernet: ``ENAS(seed=0).search()`` returns a cell.

    Shared weights: SGD (momentum 0.9, learning rate ``lr`` cosine-annealed, weight decay 3e-4).
    Controller: Adam at ``controller_lr`` (``controller_betas``, ``controller_eps``),
    ``controller_steps`` steps per epoch, each averaging the REINFORCE gradient over
    ``controller_aggregate`` sampled paths, each rewarded with its accuracy on a batch of the
    held-out half; baseline b <- decay * b + (1 - decay) * R after every sample.
    ``final_samples`` architectures are drawn at the end; ``fast`` shortens the search; the
    other options are ``supernet.OneShotSearch``'s.

    ``ENAS(**enas.PAPER)`` takes the settings of the ENAS authors' code, as NAS-Bench-201 ran
    it on this cell: 50 Adam steps per epoch (lr 1e-3, betas (0, 0.999), eps 1e-3) of 20
    samples each, baseline decay 0.99, entropy weight 1e-4, 100 final samples, batches of 128.
    The course's defaults differ: 10 one-sample steps per epoch at lesson 03's 5e-3 (Adam's
    usual betas), decay 0.95 and entropy weight 1e-3. The reason is cost: the paper's settings
    draw 1,000 rewards per epoch, 250,000 forward passes over a full search, where the course's
    draw 2,500 in all to fit the lesson's budget on a CPU; with 100 times fewer samples the
    course takes larger steps and averages its baseline over a shorter past. Three things the
    presets cannot change: ENAS adds its entropy bonus to the reward, where ours is a term of
    the loss (``reinforce_loss``); its controller divides the logits by a temperature and
    squashes them with a tanh constant (NAS-Bench-201's: 5.0 and 2.5), ours does neither; and
    the shared weights keep DARTS' optimiser (``supernet.weight_optimizer``), where ENAS anneals
    to 5e-4 with Nesterov momentum and weight decay 2.5e-4 (nb.config)."""

    name = "ENAS"
    full_epochs, fast_epochs, default_lr = 250, 40, 0.05

    def __init__(
        self,
        controller_lr: float = 5e-3,
        controller_steps: int = 10,
        baseline_decay: float = 0.95,
        entropy_weight: float = 1e-3,
        final_samples: int | None = None,
        controller_aggregate: int = 1,
        controller_betas: tuple[float, float] = (0.9, 0.999),
        controller_eps: float = 1e-8,
        **options,
    ) -> None:
        fast = options.get("fast", False)
        self.final_samples = sn.check_epochs(final_samples, fast, 100, 20, "final_samples")
        if controller_steps < 1:
            raise ValueError(f"controller_steps must be >= 1, got {controller_steps!r}")
        if controller_aggregate < 1:
            raise ValueError(f"controller_aggregate must be >= 1, got {controller_aggregate!r}")
        if not 0 <= baseline_decay < 1:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay!r}")
        self.controller_steps, self.baseline_decay = controller_steps, baseline_decay
        self.controller_aggregate, self.entropy_weight = controller_aggregate, entropy_weight
        super().__init__(**options)
        self.controller = Controller(seed=self.rng)  # stays on the CPU: tiny, one step at a time
        self.controller_opt = torch.optim.Adam(
            self.controller.parameters(),
            lr=controller_lr,
            betas=tuple(controller_betas),
            eps=controller_eps,
        )
        self.baseline: float | None = None
        self.rewards: list[float] = []  # every controller sample's reward, in order
        self.candidates: dict[nb201.Cell, float] = {}  # the final samples and their accuracy

    def sample(self) -> nb201.Cell:
        """An architecture from the controller's policy (no gradient)."""
        with torch.no_grad():
            ops, _, _ = self.controller.sample(self.generator)
        return nb201.Cell(ops)

    def greedy(self) -> nb201.Cell:
        """The controller's most likely choice at every step, for the record."""
        with torch.no_grad():
            ops, _ = self.controller._steps(lambda t, logits: int(logits.argmax()))
        return nb201.Cell(tuple(nb201.OPS[i] for i in ops))

    @torch.no_grad()
    def reward(self, cell: nb201.Cell, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
        """R(m, w): the accuracy of ``cell``'s shared-weight path on one held-out batch."""
        x, y = batch
        return float((self.net.path(x, cell).argmax(dim=1) == y).float().mean())

    def train_controller(self, val_batches) -> float:
        """``controller_steps`` REINFORCE steps (phase 2), each on the mean of eq. 2 over
        ``controller_aggregate`` samples (ENAS' ``controller_num_aggregate``); returns the mean
        reward."""
        rewards = []
        for _ in range(self.controller_steps):
            self.controller_opt.zero_grad()
            for _ in range(self.controller_aggregate):
                ops, log_prob, entropy = self.controller.sample(self.generator)
                reward = self.reward(nb201.Cell(ops), next(val_batches))
                if self.baseline is None:
                    self.baseline = reward
                loss = reinforce_loss(log_prob, entropy, reward, self.baseline, self.entropy_weight)
                (loss / self.controller_aggregate).backward()
                decay = self.baseline_decay
                self.baseline = decay * self.baseline + (1 - decay) * reward
                rewards.append(reward)
            self.controller_opt.step()
        self.rewards.extend(rewards)
        return float(np.mean(rewards))

    def derive(self) -> nb201.Cell:
        """Sample ``final_samples`` cells; return the best on the whole held-out half."""
        for _ in range(self.final_samples):
            cell = self.sample()
            if cell not in self.candidates:
                self.candidates[cell] = sn.path_accuracy(self.net, cell, self.data.arch)
        return max(self.candidates, key=self.candidates.get)

    def run(self) -> nb201.Cell:
        """Alternate the two phases for ``epochs`` epochs, then derive."""
        opt, schedule = self.weight_optimizer()
        val_batches = sn.endless_batches(self.data.arch, self.batch_size, self.generator)
        bar = self.bar()
        for epoch in bar:
            loss = self.path_epoch(self.sample, opt, schedule)
            reward = self.train_controller(val_batches)
            greedy = self.greedy()
            policy = self.controller.probabilities(greedy).astype(np.float32)
            self.history.append(sn.Epoch(epoch + 1, loss, 1.0 - reward, policy, greedy))
            bar.set_postfix(loss=f"{loss:.3f}", reward=f"{reward:.3f}")
        return self.derive()


def search(seed: int = 0, fast: bool = False, **options) -> nb201.Cell:
    """Run ENAS and return the cell it finds; ``options`` go to ``ENAS``."""
    return ENAS(seed=seed, fast=fast, **options).search()
