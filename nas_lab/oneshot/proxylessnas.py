"""ProxylessNAS (Cai, Zhu & Han, "ProxylessNAS: Direct Neural Architecture Search on Target Task
and Hardware", ICLR 2019): binarized paths and a latency loss on the MBConv chain space
(lesson 09, section 4). One paper's method in one file, read top to bottom (so it is longer than
the library's other modules): the supernet, its two steps, the search and its measurements.

**The problem** (Section 3.1). A DARTS supernet relaxes each block to a softmax mixture of its
candidates, ``m(x) = sum_j p_j o_j(x)`` with ``p = softmax(alpha)`` (eq. 1), so every candidate
runs and keeps its activations for the backward pass: memory grows with the number of
candidates. :meth:`LatencyAwareSupernet.forward` is that mixture; it stays here as the contrast.

**Binarized paths** (Section 3.2). Each block instead draws binary gates ``g`` from ``p``: one
gate is 1, the rest 0 (eq. 2), so the block computes ``sum_j g_j o_j(x)``, which is one
candidate (eq. 3), and only that path's activations are in memory. Training alternates two
steps on two halves of the training data:

- a **weight step** (:func:`weight_step`, the "training" half): sample one path per block from
  ``p``, run it alone, update its weights;
- an **architecture step** (:func:`architecture_step`, the "validation" half): sample *two*
  paths per block (multinomial, without replacement) and treat the block as a choice between
  those two only; pick the active one by their renormalised probabilities, gates ``(1, 0)``.
  The gates get a gradient through backpropagation, and BinaryConnect's trick (Courbariaux et
  al., NeurIPS 2015) passes it to the architecture parameters as if the gates were the
  probabilities (eq. 4, :func:`binary_gate_gradient`):

      dL/dalpha_i = sum_j dL/dg_j * p_j (delta_ij - p_i),   i, j over the two sampled paths.

  After the update the two parameters are shifted together (:func:`rescale_sampled`) so that
  ``exp(alpha_a) + exp(alpha_b)`` is what it was: the probabilities of all unsampled paths stay
  unchanged, as Section 3.2 asks.

**Latency** (Section 3.3). Block ``i`` takes candidate ``j`` with probability ``p_ij``, so its
expected latency is ``sum_j p_ij F(o_ij)`` (eq. 5) and the network's is the sum over blocks
(eq. 6), with ``F`` read from a per-block lookup table (:class:`~nas_lab.hardware.LatencyTable`);
:func:`expected_latency` computes it. The architecture step minimises ``CE + lambda *
E[LAT] / LAT_0`` (eq. 7 with the reference code's ``add#linear`` form: ``LAT_0`` makes
``lambda`` unit-free; here ``LAT_0`` is the expected latency of the uniform distribution).

**Depth** (the ``Zero`` candidate of the paper's search space and reference code). Every block
that could be dropped has an *identity* candidate besides its MBConv blocks: when it wins, the
derived network has no block there, so the search shrinks depth as well as kernels and
expansions. A non-first block of a stage keeps the stage's shape, so ProxylessNAS lets every
such block be skipped; here a block may be skipped when its index in the stage is at least the
space's smallest depth (the 3rd and 4th blocks of the default ``ChainSpace``, depths 2/3/4), so
every derived network is a member of the space that was searched (with ``depths`` starting at 1
this is the paper's rule).
Our candidates are whole MBConv blocks with their residual inside, ``x + f_j(x)``, and the
identity is ``x``; the reference code puts the residual outside and a ``Zero`` candidate
inside, ``x + sum_j g_j f_j(x)``. The two compute the same function, and their gate gradients
differ by the same term ``<dL/dy, x>`` for every candidate, which eq. 4 cancels (the
probabilities sum to 1), so the architecture gradients are equal too.

:func:`latency_aware_search` runs the whole search and derives the architecture the paper's way:
each block's most likely candidate, an identity removing its block.

Compared with the reference code (``mit-han-lab/proxylessnas``, ``search/modules/mix_op.py``
and ``search/nas_manager.py``), this module follows its ``two`` binary mode: the same two-path
sampling, eq. 4 on the sampled pair, Adam with ``beta1 = 0`` for ``alpha`` (with a zero gradient
an unsampled path's parameter then does not move), the rescaling, and the latency expectation
of the architecture step taken over the two sampled paths with their renormalised
probabilities (so that step, too, touches only the sampled pair). What differs, and why:

- the reference code skips a block's architecture update when the sampled active path is
  ``Zero`` (it never calls that block's candidates, so it has no gate gradient); eq. 4 has a
  gradient there, and we use it;
- every residual candidate starts with the scale of its last BatchNorm at zero ("zero gamma",
  Goyal et al., 2017; the authors' later Once-for-All code calls it ``zero_last_gamma``), so each
  block starts as an identity and the randomly sampled paths agree at first; the reference
  search code starts the scale at 1. On digits, 10 epochs of weight steps bring the sampled
  paths' training loss to about 0.35 with it and 2.1 without (``ln 10 = 2.3`` is chance);
- ``supernet_val_acc`` re-estimates BatchNorm's statistics on the training half for the derived
  path before evaluating it (as SPOS and Once-for-All do); the reference code validates with
  the running statistics of the search, which mix the statistics of every path sampled;
- the schedule fits a laptop: an architecture step after every weight step (the reference:
  one per 5) with Adam's learning rate ``arch_lr`` = 0.05 (the reference: 1e-3 over 120
  epochs), and ``warmup_epochs`` of weight steps only (the reference: 40);
- the reference search script defaults to its ``full_v2`` mode, which computes every
  candidate's gate gradient by re-running it in the backward pass without storing its
  activations (memory of one path, time of all); Section 3.2 describes the two-path mode used
  here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.hardware.lookup import BlockSpec, LatencyTable
from nas_lab.oneshot.supernet import endless_batches, halves
from nas_lab.spaces.mbconv import ChainArch, MBConvBlock, Stage, block_slots

__all__ = [
    "IDENTITY",
    "expected_latency",
    "binary_gate_gradient",
    "rescale_sampled",
    "MixedBlock",
    "LatencyAwareSupernet",
    "weight_step",
    "architecture_step",
    "latency_aware_search",
    "saved_activation_bytes",
    "step_costs",
]

IDENTITY = "identity"  # the candidate that skips its block (ProxylessNAS' zero operation)


# ---- eqs. 5-6: the expected latency -----------------------------------------------------------


def expected_latency(logits: torch.Tensor, latencies: torch.Tensor) -> torch.Tensor:
    """Cai, Zhu & Han (ProxylessNAS, ICLR 2019), eqs. 5-6: block ``i`` picks candidate ``j`` with
    probability ``p_ij = softmax(logits_i)_j``, so its expected latency is ``sum_j p_ij LAT_ij``
    (eq. 5) and the network's is the sum over blocks (eq. 6; the fixed ends do not depend on the
    choice). Differentiable in ``logits``: ``dE/dlogit_ij = p_ij (LAT_ij - E_i)``, so the
    gradient pushes probability towards the candidates faster than the block's average.

    ``logits`` and ``latencies`` are ``(blocks, candidates)`` tensors; a logit of ``-inf`` marks
    a candidate a block does not have (probability 0)."""
    if logits.shape != latencies.shape or logits.dim() != 2:
        raise ValueError(
            "logits and latencies must both be (blocks, candidates) tensors; "
            f"got {tuple(logits.shape)} and {tuple(latencies.shape)}"
        )
    return (torch.softmax(logits, dim=-1) * latencies).sum()


# ---- eq. 4: from the gates' gradient to the architecture parameters ---------------------------


def binary_gate_gradient(gate_grad: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """ProxylessNAS, eq. 4 (BinaryConnect's estimate): the gradient of the loss with respect to
    the architecture parameters ``alpha`` of the paths that took part, from the gradient with
    respect to their binary gates, used in place of the gradient with respect to ``p``:

        dL/dalpha_i = sum_j dL/dg_j * dp_j/dalpha_i = sum_j dL/dg_j * p_j (delta_ij - p_i),

    with ``p = softmax(alpha)`` over those paths only (the two sampled ones in the two-path
    update). ``gate_grad`` and ``logits`` are ``(..., paths)``; returns the same shape."""
    if gate_grad.shape != logits.shape:
        raise ValueError(
            f"gate_grad and logits must have the same shape, got {tuple(gate_grad.shape)} "
            f"and {tuple(logits.shape)}"
        )
    p = torch.softmax(logits, dim=-1)
    eye = torch.eye(p.shape[-1], dtype=p.dtype, device=p.device)
    # jacobian[..., i, j] = dp_j / dalpha_i = p_j (delta_ij - p_i)
    jacobian = p.unsqueeze(-2) * (eye - p.unsqueeze(-1))
    return (jacobian * gate_grad.unsqueeze(-2)).sum(dim=-1)


@torch.no_grad()
def rescale_sampled(alpha: torch.Tensor, paths: torch.Tensor, before: torch.Tensor) -> None:
    """The two-path rescaling of Section 3.2, in place: shift the updated parameters of each
    block's sampled paths (``alpha[i, paths[i]]``, which were ``before[i]``) by a common offset,
    so that their ``sum exp`` is what it was. The softmax then gives every unsampled path the
    probability it had before the update; the sampled pair keeps the ratio the update gave."""
    after = alpha.gather(1, paths)
    offset = torch.logsumexp(after, dim=1, keepdim=True) - torch.logsumexp(before, 1, True)
    alpha.scatter_(1, paths, after - offset)


# ---- the supernet -------------------------------------------------------------------------------


class MixedBlock(nn.Module):
    """One searchable position: its candidate blocks (the last one may be an identity).

    ``forward(x, weights)`` is the softmax mixture of eq. 1 (every candidate runs);
    ``binarized(x, paths, gates)`` runs the sampled paths only (eq. 3)."""

    def __init__(self, candidates: Sequence[nn.Module]) -> None:
        super().__init__()
        self.candidates = nn.ModuleList(candidates)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.candidates, strict=True))

    def binarized(
        self, x: torch.Tensor, paths: Sequence[int], gates: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Without ``gates`` (a weight step): candidate ``paths[0]`` alone. With ``gates`` (an
        architecture step, ``gates[k]`` the gate of ``paths[k]``, 1 for the active path and 0
        for the others): ``sum_k gates[k] * o_paths[k](x)``. The inactive paths run without a
        graph: their weights are not trained here, and only their outputs are kept, for the
        gates' gradient ``dL/dg_k = <dL/dy, o_k(x)>``."""
        active = self.candidates[int(paths[0])](x)
        if gates is None:
            return active
        out = gates[0] * active
        for k, index in enumerate(paths[1:], start=1):
            with torch.no_grad():
                other = self.candidates[int(index)](x)
            out = out + gates[k] * other
        return out


class LatencyAwareSupernet(nn.Module):
    """The ChainNet of ``space`` at its largest depth, each block a :class:`MixedBlock` over
    ``choices`` (``(kernel, expansion)`` pairs) plus, where a block may be skipped, an identity
    (see the module docstring); one row of architecture parameters per block.

    ``candidates`` names the columns: the choices, then :data:`IDENTITY` when any block has one.
    ``allowed[i, j]`` says whether block ``i`` has candidate ``j``; ``latencies[i, j]`` is the
    lookup-table latency of candidate ``j`` at position ``i`` (0 for the identity; all 0 with
    ``table=None``, for a supernet whose memory or accuracy is all that matters)."""

    def __init__(
        self,
        space,
        choices: Sequence[tuple[int, int]],
        table: LatencyTable | None,
        identity: bool = True,
    ) -> None:
        super().__init__()
        self.choices = [tuple(int(v) for v in c) for c in choices]
        if len(set(self.choices)) < 2 or len(set(self.choices)) != len(self.choices):
            raise ValueError(
                f"give at least two distinct (kernel, expansion) choices, got {list(choices)}"
            )
        stem, _, widths = space.scaled_widths(1.0)
        depth, shallowest = max(space.depths), min(space.depths)
        probe = space.build(space.sample(0))
        self.stem, self.head = probe.stem, probe.head
        self.pool, self.classifier = probe.pool, probe.classifier
        slots = block_slots(stem, widths, space.strides, [depth] * len(widths), side=8)
        skippable = [identity and slot.index >= shallowest for slot in slots]
        self.candidates: list = [*self.choices, IDENTITY] if any(skippable) else [*self.choices]
        blocks, rows, allowed = [], [], []
        for slot, skip in zip(slots, skippable, strict=True):
            ops = [
                MBConvBlock(
                    slot.c_in, slot.c_out, k, e, slot.stride, space.activation, space.se_ratio
                )
                for k, e in self.choices
            ]
            specs = [
                BlockSpec(slot.c_in, slot.c_out, k, e, slot.stride, slot.side)
                for k, e in self.choices
            ]
            row = [0.0 if table is None else table.block(spec) for spec in specs]
            if any(skippable):
                ops, row = ops + ([nn.Identity()] if skip else []), row + [0.0]
            blocks.append(MixedBlock(ops))
            rows.append(row)
            allowed.append([True] * len(self.choices) + ([skip] if any(skippable) else []))
        self.blocks = nn.ModuleList(blocks)
        for block in self.modules():  # zero gamma: every residual candidate starts as identity
            if isinstance(block, MBConvBlock) and block.use_residual:
                last_bn = [m for m in block.project if isinstance(m, nn.BatchNorm2d)][-1]
                nn.init.zeros_(last_bn.weight)
        self.register_buffer("latencies", torch.tensor(rows, dtype=torch.float32))
        self.register_buffer("allowed", torch.tensor(allowed))
        self.arch_logits = nn.Parameter(torch.zeros(len(blocks), len(self.candidates)))
        self.depth, self.num_stages = depth, len(widths)

    # -- the distribution over paths -----------------------------------------------------------

    def masked_logits(self) -> torch.Tensor:
        """The architecture parameters with ``-inf`` where a block has no such candidate."""
        return self.arch_logits.masked_fill(~self.allowed, float("-inf"))

    def probs(self) -> torch.Tensor:
        """``p_ij = softmax(alpha_i)_j`` over the candidates block ``i`` has."""
        return torch.softmax(self.masked_logits(), dim=-1)

    def sample_paths(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """A ``(blocks, count)`` tensor of candidate indices, drawn from ``p`` (eq. 2) without
        replacement; the first column is the active path. With ``count = 2`` the active one
        is then picked between the two by their renormalised probabilities, as in the reference
        code. Sampled on the CPU from ``generator``, so a seed repeats on any device."""
        p = self.probs().detach().cpu()
        # a probability that underflowed to 0 must still be drawable as the second of a pair
        p = torch.where(self.allowed.cpu(), p.clamp_min(1e-30), 0.0)
        paths = torch.multinomial(p, count, replacement=False, generator=generator)
        if count == 2:  # the first of the pair drawn by its renormalised probability is active
            order = torch.multinomial(p.gather(1, paths), 2, replacement=False, generator=generator)
            paths = paths.gather(1, order)
        return paths.to(self.arch_logits.device)

    # -- forward passes ------------------------------------------------------------------------

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.head(x)).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The softmax mixture (eq. 1): every candidate of every block runs. Not ProxylessNAS,
        whose point is not to do this; kept to measure what binarizing saves."""
        x = self.stem(x)
        for block, w in zip(self.blocks, self.probs(), strict=True):
            x = block(x, w[: len(block.candidates)])
        return self._head(x)

    def binarized(
        self, x: torch.Tensor, paths: torch.Tensor, gates: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The binarized network (eq. 3): in block ``i``, the paths ``paths[i]``, gated by
        ``gates[i]`` when given (see :meth:`MixedBlock.binarized`)."""
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            x = block.binarized(x, paths[i].tolist(), None if gates is None else gates[i])
        return self._head(x)

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if name != "arch_logits"]

    # -- latency and the derived architecture --------------------------------------------------

    def expected_latency(self) -> torch.Tensor:
        """``E[LAT]`` over the blocks (eqs. 5-6), without the fixed ends."""
        return expected_latency(self.masked_logits(), self.latencies)

    def derived_paths(self) -> torch.Tensor:
        """Each block's most likely candidate, as a ``(blocks, 1)`` tensor of indices."""
        return self.masked_logits().argmax(dim=-1, keepdim=True)

    def derived(self) -> list:
        """Each block's most likely candidate, ``(kernel, expansion)`` or :data:`IDENTITY`, as
        ProxylessNAS derives the final network."""
        return [self.candidates[int(j)] for j in self.derived_paths().squeeze(1)]

    def derived_arch(self) -> ChainArch:
        """The derived network as a ``ChainArch``: each block's most likely candidate, stage by
        stage, with every block whose identity won removed."""
        chosen = self.derived()
        stages = []
        for s in range(self.num_stages):
            kept = [c for c in chosen[s * self.depth : (s + 1) * self.depth] if c != IDENTITY]
            stages.append(Stage(tuple(k for k, _ in kept), tuple(e for _, e in kept)))
        return ChainArch(tuple(stages))

    def derived_latency(self) -> float:
        """The lookup table's latency of the derived blocks (ms, without the fixed ends)."""
        return float(self.latencies.gather(1, self.derived_paths()).sum())


# ---- the two alternating steps ------------------------------------------------------------------


def weight_step(
    net: LatencyAwareSupernet,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> float:
    """One weight update (Section 3.2): sample one path per block from ``p``, run only it, and
    step the optimizer. Only that path's weights get a gradient (the others' stay ``None``, so
    neither momentum nor weight decay touches them, as in the reference code)."""
    paths = net.sample_paths(1, generator)
    loss = F.cross_entropy(net.binarized(x, paths), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def architecture_step(
    net: LatencyAwareSupernet,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    latency_weight: float = 0.0,
    reference: float = 1.0,
) -> float:
    """One architecture update with two sampled paths per block (Section 3.2), on a batch the
    weights never trained on: gates ``(1, 0)`` on the sampled ``(active, inactive)`` pair, loss
    ``CE + latency_weight * E2[LAT] / reference`` with ``E2`` the expected latency over each
    block's sampled pair (eqs. 5-7), the gates' gradient passed to ``alpha`` by eq. 4, one step
    of ``optimizer`` (over ``[net.arch_logits]``), then :func:`rescale_sampled`. The weights are
    not updated. Returns the loss."""
    paths = net.sample_paths(2, generator)
    gates = torch.zeros(paths.shape, dtype=x.dtype, device=x.device)
    gates[:, 0] = 1.0
    gates.requires_grad_(True)
    loss = F.cross_entropy(net.binarized(x, paths, gates), y)
    inputs = [gates]
    if latency_weight:
        pair_logits = net.arch_logits.gather(1, paths)
        pair_latency = expected_latency(pair_logits, net.latencies.gather(1, paths))
        loss = loss + latency_weight * pair_latency / reference
        inputs.append(net.arch_logits)
    optimizer.zero_grad(set_to_none=True)
    loss.backward(inputs=inputs)  # the gates (and alpha, through the latency term) only
    before = net.arch_logits.detach().gather(1, paths)
    if net.arch_logits.grad is None:
        net.arch_logits.grad = torch.zeros_like(net.arch_logits)
    net.arch_logits.grad.scatter_add_(1, paths, binary_gate_gradient(gates.grad, before))
    optimizer.step()
    rescale_sampled(net.arch_logits, paths, before)
    return float(loss.detach())


# ---- the search ----------------------------------------------------------------------------------


@torch.no_grad()
def _path_accuracy(
    net: LatencyAwareSupernet, dataset, paths: torch.Tensor, device, calibration=None
) -> float:
    """Accuracy on ``dataset`` of the binarized network ``paths`` with the shared weights. With
    ``calibration`` (a dataset), BatchNorm's running statistics are first re-estimated on it
    for this path alone (their cumulative average over its batches): during the search each
    candidate's statistics averaged over whatever paths ran before it."""
    from nas_lab.train import batches, recalibrate_bn

    was_training = net.training
    if calibration is not None:
        recalibrate_bn(net, calibration.tensors[0], forward=lambda x: net.binarized(x, paths))
    net.eval()
    correct = 0
    for x, y in batches(dataset, 256, None, device):
        correct += int((net.binarized(x, paths).argmax(1) == y).sum())
    net.train(was_training)
    return correct / len(dataset)


def latency_aware_search(
    space,
    splits,
    table: LatencyTable,
    choices: Sequence[tuple[int, int]],
    latency_weight: float,
    epochs: int = 4,
    seed: int = 0,
    batch_size: int = 32,
    warmup_epochs: int = 1,
    arch_lr: float = 0.05,
    identity: bool = True,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> dict:
    """ProxylessNAS with binarized paths (Section 3.2) and the latency loss (Section 3.3) on the
    training split of ``splits``, cut into two stratified halves: each epoch runs a
    :func:`weight_step` on every batch of the first half (SGD, Nesterov momentum 0.9, lr 0.05,
    weight decay 5e-4) and, from epoch ``warmup_epochs`` on, an :func:`architecture_step`
    after each of them on a batch of the second half (Adam, ``arch_lr``, betas (0, 0.999), as
    the reference code). ``latency_weight`` is ``lambda`` of ``CE + lambda * E[LAT] / LAT_0``.

    Returns the derived blocks (``derived``: ``(kernel, expansion)`` or :data:`IDENTITY` per
    block) and architecture (``arch``), the final probabilities (``probs``), the expected latency
    now and under the uniform start (``expected_latency_ms``, ``uniform_latency_ms``) and the
    table's latency of the derived network (``derived_latency_ms``), all with the fixed ends,
    and the derived path's accuracy on the validation split with the shared weights
    (``supernet_val_acc``)."""
    from tqdm.auto import trange

    from nas_lab.device import default_device
    from nas_lab.train import batches, seed_everything

    if epochs < 1 or not 0 <= warmup_epochs <= epochs:
        raise ValueError(
            f"need epochs >= 1 and 0 <= warmup_epochs <= epochs, got {epochs}, {warmup_epochs}"
        )
    seed_everything(seed)
    device = torch.device(device) if device is not None else default_device()
    net = LatencyAwareSupernet(space, choices, table, identity=identity).to(device)
    reference = float(net.expected_latency().detach())
    opt_w = torch.optim.SGD(
        net.weight_parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    opt_a = torch.optim.Adam([net.arch_logits], lr=arch_lr, betas=(0.0, 0.999))
    data = halves(splits.train, seed, device)
    train_half, arch_half = data.weights, data.arch
    generator = torch.Generator().manual_seed(seed)
    arch_data = endless_batches(arch_half, batch_size, generator)
    for epoch in trange(epochs, desc="ProxylessNAS", disable=not progress, leave=False):
        for x, y in batches(train_half, batch_size, generator, device):
            weight_step(net, x, y, opt_w, generator)
            if epoch >= warmup_epochs:
                xa, ya = next(arch_data)
                architecture_step(net, xa, ya, opt_a, generator, latency_weight, reference)
    ends = table.ends.get("default", 0.0)
    return {
        "derived": net.derived(),
        "arch": net.derived_arch(),
        "probs": net.probs().detach().cpu().numpy(),
        "candidates": list(net.candidates),
        "expected_latency_ms": float(net.expected_latency().detach()) + ends,
        "uniform_latency_ms": reference + ends,
        "derived_latency_ms": net.derived_latency() + ends,
        "supernet_val_acc": _path_accuracy(
            net, splits.val, net.derived_paths(), device, calibration=train_half
        ),
    }


# ---- what binarizing saves: activation memory and time per step --------------------------------


def saved_activation_bytes(forward: Callable[[], object], exclude: Iterable = ()) -> int:
    """Bytes of the tensors autograd keeps for the backward pass while ``forward()`` runs
    (counted with ``torch.autograd.graph.saved_tensors_hooks``, each storage once; the storages
    of ``exclude``, e.g. the parameters, are not activations and are left out). They live until
    the backward pass, so their total at the end of the forward pass is the training step's peak
    activation memory, on any device."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    held: dict[int, torch.Tensor] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        ptr = tensor.untyped_storage().data_ptr()
        if ptr not in skip:
            held[ptr] = tensor  # holding it: its address cannot be reused while we count
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward()
    total = sum(t.untyped_storage().nbytes() for t in held.values())
    held.clear()
    return total


def step_costs(
    net: LatencyAwareSupernet,
    x: torch.Tensor,
    y: torch.Tensor,
    seed: int = 0,
    min_run_time: float = 0.5,
    clock: str = "wall",
) -> dict[str, dict[str, float]]:
    """Per kind of training step (the softmax mixture; an architecture step, with two paths per
    block drawn once from ``seed``; a weight step, the active one of those paths alone): the
    activation memory kept for its backward pass (:func:`saved_activation_bytes`, MB), the
    allocator's peak above what was allocated before, forward and backward
    (``oneshot.supernet.peak_memory``, MB), and the median time of a forward and backward pass
    (``torch.utils.benchmark`` on the clock ``clock``, ``"wall"`` or ``"cpu"``, as for latency:
    see :func:`nas_lab.hardware.measure_latency`; ms). No parameter is updated: the gradients are
    computed and dropped (BatchNorm's running statistics do move)."""
    from torch.utils import benchmark

    from nas_lab.hardware.timing import device_clock
    from nas_lab.oneshot.supernet import peak_memory

    timer_fn = device_clock(x.device, clock)

    two = net.sample_paths(2, torch.Generator().manual_seed(seed))
    one = two[:, :1]  # the weight step runs the architecture step's active path alone
    gates = torch.zeros(two.shape, dtype=x.dtype, device=x.device)
    gates[:, 0] = 1.0
    gates.requires_grad_(True)
    kinds = {
        "mixture": lambda: net(x),
        "weight step": lambda: net.binarized(x, one),
        "architecture step": lambda: net.binarized(x, two, gates),
    }
    rows = {}
    for name, forward in kinds.items():

        def step(forward=forward) -> None:
            F.cross_entropy(forward(), y).backward()
            net.zero_grad(set_to_none=True)
            gates.grad = None

        saved = saved_activation_bytes(step, net.weight_parameters())
        peak = peak_memory(step, x.device)
        timer = benchmark.Timer(
            "step()", globals={"step": step}, timer=timer_fn, num_threads=torch.get_num_threads()
        )
        ms = timer.blocked_autorange(min_run_time=min_run_time).median * 1e3
        rows[name] = {"activations_mb": saved / 2**20, "peak_mb": peak / 2**20, "ms": ms}
    return rows
