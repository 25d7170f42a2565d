"""Zero-cost proxies: scoring an untrained network from one batch of data.

Abdelfattah, Mehrotra, Dudziak & Lane, "Zero-Cost Proxies for Lightweight NAS", ICLR 2021, ask
how well a score computed at initialisation, from a single minibatch, ranks architectures by the
accuracy they reach after training. Most of their proxies are pruning criteria summed over the
whole network: a pruning score says how much a weight matters, so the network's total says how
much it has that matters. This file reads top to bottom:

1. the layers that are scored, and ``probe``: one forward pass and its backward passes, recording
   everything the gradient-based proxies need (gradients, a Hessian-vector product, activations
   and their gradients, the input Jacobian, the ReLU codes);
2. the proxies, each a small function named after its paper: ``grad_norm``, ``snip``, ``grasp``,
   ``fisher``, ``jacob_cov``, ``naswot``; ``synflow`` with a data-free pass of its own; ``score``
   computes any of them, with parameters and FLOPs as baselines.

Conventions follow the authors' code (github.com/SamsungLabs/zero-cost-nas) so that our numbers
compare with theirs: the scored layers are Conv2d and Linear (their weights, not biases), the
network is in training mode (BatchNorm normalises with the batch's statistics), the loss is
cross-entropy, and a proxy is the sum of its per-weight (or per-channel) scores. Larger means
"predicted better" for every proxy.

Only PyTorch, NumPy and ``nas_lab.cost``: no benchmark, data set, strategy or course machinery.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_lab.cost import count_flops, count_params

# --------------------------------------------------------------------------------------------
# The scored layers, and one probe of the network
# --------------------------------------------------------------------------------------------


def scored_layers(net: nn.Module) -> list[nn.Module]:
    """The Conv2d and Linear layers: the ones whose weights the proxies score, as in
    Abdelfattah et al.'s code (BatchNorm's scale and shift, and biases, are not scored)."""
    return [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


@dataclass
class Probe:
    """What one batch through an untrained network records, for the gradient-based proxies.

    Lists run over the scored layers (``scored_layers``), in module order; ``activations`` and
    ``activation_grads`` have one entry per call of a scored layer (a layer called twice
    appears twice). Everything is detached from the graph."""

    weights: list[torch.Tensor]  # w, per scored layer
    grads: list[torch.Tensor]  # dL/dw
    hessian_grads: list[torch.Tensor] | None  # H g, the Hessian of L times g = dL/dw (GraSP)
    activations: list[torch.Tensor]  # a, the output of each call of a scored layer
    activation_grads: list[torch.Tensor]  # dL/da
    jacobian: torch.Tensor | None  # d(sum of outputs)/d(input), one row per image
    relu_kernel: np.ndarray | None  # NASWOT's K_H, batch x batch; None without ReLUs


def probe(
    net: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    hessian: bool = True,
    jacobian: bool = True,
) -> Probe:
    """One forward pass of ``inputs`` through ``net`` in training mode, then the backward passes
    the proxies need: dL/dw and dL/da for the cross-entropy loss L, the input Jacobian of the
    summed outputs (``jacobian``), and the Hessian-vector product H g (``hessian``, a second
    backward pass through the first one's graph). The ReLU codes are read during the forward pass.

    ``net`` keeps its weights; its training mode is restored afterwards. Like any forward pass in
    training mode, this one updates BatchNorm's running statistics."""
    layers = scored_layers(net)
    if not layers:
        raise ValueError(
            "the network has no Conv2d or Linear layer, so there are no weights to score"
        )
    _check_batch(inputs, targets)
    weights = [layer.weight for layer in layers]
    activations: list[torch.Tensor] = []
    kernel = _ReluKernel()

    def keep_output(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        activations.append(output)
        # Pass a copy on: an in-place operation downstream (a ReLU(inplace=True)) then changes
        # the copy, and the activation we keep, and its gradient, stay the layer's own.
        return output.clone()

    handles = [layer.register_forward_hook(keep_output) for layer in layers]
    handles += [m.register_forward_pre_hook(kernel.add) for m in net.modules() if _is_relu(m)]
    was_training = net.training
    net.train()
    x = inputs.detach().clone().requires_grad_(jacobian)
    try:
        outputs = net(x)
    finally:
        for handle in handles:
            handle.remove()
        net.train(was_training)
    jacobian_rows = None
    if jacobian:  # Mellor et al.: backward of the summed outputs, d(sum_k y_k)/dx per image
        # A cell with no path from input to output ignores its input: a zero Jacobian.
        (jacobian_rows,) = torch.autograd.grad(
            outputs.sum(), x, retain_graph=True, allow_unused=True
        )
        jacobian_rows = _zeros_for_unused([jacobian_rows], [x])[0].flatten(1).detach()
    loss = F.cross_entropy(outputs, targets)
    grads = torch.autograd.grad(
        loss, weights + activations, create_graph=hessian, allow_unused=True
    )
    weight_grads = _zeros_for_unused(grads[: len(weights)], weights)
    hessian_grads = _hessian_vector_product(weights, weight_grads) if hessian else None
    return Probe(
        weights=[w.detach() for w in weights],
        grads=[g.detach() for g in weight_grads],
        hessian_grads=hessian_grads,
        activations=[a.detach() for a in activations],
        activation_grads=[
            g.detach() for g in _zeros_for_unused(grads[len(weights) :], activations)
        ],
        jacobian=jacobian_rows,
        relu_kernel=kernel.matrix,
    )


def _hessian_vector_product(
    weights: list[torch.Tensor], grads: list[torch.Tensor]
) -> list[torch.Tensor]:
    """H g by Pearlmutter's trick (Neural Computation, 1994): differentiate g . stop(g) once
    more, which costs one extra backward pass instead of building the Hessian."""
    dot = sum((g * g.detach()).sum() for g in grads if g.requires_grad)
    if not isinstance(dot, torch.Tensor):  # the loss is linear in every weight: H = 0
        return [torch.zeros_like(w).detach() for w in weights]
    hg = torch.autograd.grad(dot, weights, allow_unused=True)
    return [h.detach() for h in _zeros_for_unused(hg, weights)]


def _zeros_for_unused(grads: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]):
    """autograd answers None for a tensor the loss does not depend on: its gradient is zero."""
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, like, strict=True)]


def _is_relu(module: nn.Module) -> bool:
    return isinstance(module, nn.ReLU)


class _ReluKernel:
    """Accumulates NASWOT's kernel over every ReLU of a forward pass (Mellor et al., ICML
    2021): each image's binary code c (1 where a ReLU's input is positive, 0 elsewhere) and

        K_H[i, j] = c_i . c_j + (1 - c_i) . (1 - c_j) = N_A - d_H(c_i, c_j),

    the number of units on which images i and j agree (N_A units, d_H the Hamming distance)."""

    def __init__(self) -> None:
        self.matrix: np.ndarray | None = None

    def add(self, module: nn.Module, args: tuple) -> None:
        # A pre-hook sees the ReLU's input before an in-place ReLU overwrites it.
        codes = (args[0].detach() > 0).flatten(1).to(torch.float64)
        k = codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T
        self.matrix = k.numpy() if self.matrix is None else self.matrix + k.numpy()


def _check_batch(inputs: torch.Tensor, targets: torch.Tensor) -> None:
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise ValueError("inputs and targets must be torch tensors (one batch: images, labels)")
    if inputs.dim() < 2 or targets.dim() != 1 or len(inputs) != len(targets):
        raise ValueError(
            f"expected a batch of inputs (batch, ...) and integer labels (batch,) of the same "
            f"length; got shapes {tuple(inputs.shape)} and {tuple(targets.shape)}"
        )
    if len(inputs) < 2:
        raise ValueError(
            "a proxy batch needs at least 2 images (jacob_cov and NASWOT compare them)"
        )


# --------------------------------------------------------------------------------------------
# The proxies
# --------------------------------------------------------------------------------------------


def grad_norm(p: Probe) -> float:
    """The gradient's size: the Euclidean norm of dL/dw per layer, summed over layers, as in
    Abdelfattah et al.'s code:  sum_l ||dL/dW_l||_2."""
    return float(sum(g.norm() for g in p.grads))


def snip(p: Probe) -> float:
    """SNIP's connection sensitivity (Lee, Ajanthan & Torr, ICLR 2019, before
    normalisation): how much the loss changes when a weight is removed, to first order,
    |dL/dw * w|, summed over all weights."""
    return float(sum((g * w).abs().sum() for w, g in zip(p.weights, p.grads, strict=True)))


def grasp(p: Probe) -> float:
    """GraSP (Wang, Zhang & Grosse, ICLR 2020): S(w) = -w * (H g), the change in the
    gradient flow g^T g when a weight is removed, to first order; summed over all weights, as
    in Abdelfattah et al. (their sign: the sum of -w * Hg)."""
    if p.hessian_grads is None:
        raise ValueError("grasp needs the Hessian-vector product: probe(..., hessian=True)")
    return float(-sum((w * hg).sum() for w, hg in zip(p.weights, p.hessian_grads, strict=True)))


def fisher(p: Probe) -> float:
    """Fisher pruning (Theis et al. 2018, as used by Turner et al., ICLR 2020): the loss
    increase from removing a channel k, estimated from activations a and their gradients,

        Delta_k = 1/(2N) sum_n ( sum_{h,w} a_nkhw * dL/da_nkhw )^2,

    summed over the channels of every Conv2d and the units of every Linear layer, as in
    Abdelfattah et al.'s code (the activation is the layer's output, before BatchNorm)."""
    total = 0.0
    for a, g in zip(p.activations, p.activation_grads, strict=True):
        per_channel = (a * g).flatten(2).sum(2) if a.dim() > 2 else a * g  # (N, channels)
        total += float(0.5 * per_channel.pow(2).mean(0).sum())
    return total


JACOB_COV_K = 1e-5  # Mellor et al.'s regulariser, so that a zero eigenvalue stays finite


def jacob_cov(p: Probe) -> float:
    """jacob_cov (Mellor, Turner, Storkey & Crowley, "Neural Architecture Search without
    Training", arXiv:2006.04647v1, 2020): how differently the network responds to
    different images. With J the input Jacobians (one row per image), Sigma their correlation
    matrix and sigma its eigenvalues,

        score = -sum_i [ log(sigma_i + k) + 1 / (sigma_i + k) ],   k = 1e-5.

    Uncorrelated Jacobians (Sigma = I, every sigma_i = 1) score highest. NaN when an image's
    Jacobian is constant (its correlation is undefined)."""
    if p.jacobian is None:
        raise ValueError("jacob_cov needs the input Jacobian: probe(..., jacobian=True)")
    rows = p.jacobian.to(torch.float64).numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(rows)
    if not np.isfinite(corr).all():
        return float("nan")
    sigma = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(sigma + JACOB_COV_K) + 1.0 / (sigma + JACOB_COV_K)))


def naswot(p: Probe) -> float:
    """The NASWOT score (Mellor, Turner, Storkey & Crowley, ICML 2021): s = log|K_H|,
    the log-determinant of the ReLU-code kernel (``_ReluKernel``). Images that the untrained
    network already tells apart (different codes) give a kernel far from singular."""
    if p.relu_kernel is None:
        raise ValueError("the network has no nn.ReLU module, so NASWOT has no codes to compare")
    _, logdet = np.linalg.slogdet(p.relu_kernel)  # -inf when K_H is singular
    return float(logdet)


# SynFlow's scale factors, tried in turn (section comment below).
SYNFLOW_SCALES: tuple[float, ...] = (1.0, 2.0**-256, 2.0**-512)


def synflow(net: nn.Module, input_shape: Sequence[int]) -> float:
    """SynFlow (Tanaka, Kunin, Yamins & Ganguli, NeurIPS 2020), as log10 of the sum.

    With every weight replaced by its absolute value and an all-ones input, R = 1^T (prod_l
    |W_l|) 1 is the total "synaptic flow" through the network, and each weight scores
    S(w) = dR/dw * w. No data are used. Following Abdelfattah et al., BatchNorm is removed (no
    batch statistics), the copy runs in float64, and the score is the sum of S over all scored
    weights. ``net`` itself is not changed.

    The sum spans dozens of orders of magnitude between architectures, so it is returned as a
    log10. When it would overflow float64, the pass is redone at a smaller scale s: with the
    BatchNorms gone, all weights positive and every ReLU the identity, the network is linear in
    its input up to the last layer's bias, so an input of s instead of 1 and a backward pass
    seeded with s instead of 1 multiply every S(w) by exactly s^2, which we divide out in log
    space."""
    model = _linearised_copy(net)
    layers = scored_layers(model)
    weights = [layer.weight for layer in layers]
    for scale in SYNFLOW_SCALES:
        x = torch.full((1, *input_shape), scale, dtype=torch.float64)
        output = model(x)
        grads = torch.autograd.grad(
            output, weights, grad_outputs=torch.full_like(output, scale), allow_unused=True
        )
        with torch.no_grad():
            grads = _zeros_for_unused(grads, weights)
            total = float(sum((w * g).sum() for w, g in zip(weights, grads, strict=True)))
        if math.isfinite(total):
            if total == 0.0:
                return float("-inf")  # no path from input to output
            return math.log10(total) - 2 * math.log10(scale)
    raise OverflowError(
        "synflow overflows float64 even at the smallest scale; the network's weights multiply "
        "to more than 1e600 along some path. Score a smaller network or smaller weights."
    )


def _linearised_copy(net: nn.Module) -> nn.Module:
    """SynFlow's network: a float64 copy with every BatchNorm removed and every parameter and
    buffer replaced by its absolute value (Tanaka et al.'s ``linearize``)."""
    model = copy.deepcopy(net)
    _remove_batchnorm(model)
    model.double()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    return model


def _remove_batchnorm(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            _remove_batchnorm(child)


# Each gradient-based proxy is a function of a probe; its value is larger for "better".
FROM_PROBE: dict[str, Callable[[Probe], float]] = {
    "grad_norm": grad_norm,
    "snip": snip,
    "grasp": grasp,
    "fisher": fisher,
    "jacob_cov": jacob_cov,
    "naswot": naswot,
}
BASELINES = ("params", "flops")
PROXIES: tuple[str, ...] = (*FROM_PROBE, "synflow", *BASELINES)

DESCRIPTIONS = {
    "grad_norm": "sum over layers of ||dL/dW||_2 (Abdelfattah et al., ICLR 2021)",
    "snip": "sum |dL/dw * w| (Lee et al., ICLR 2019)",
    "grasp": "sum -w * (H g) (Wang et al., ICLR 2020)",
    "fisher": "sum over channels of 1/(2N) sum_n (sum_hw a dL/da)^2 (Turner et al., ICLR 2020)",
    "jacob_cov": "-sum log(s+k) + 1/(s+k), s: eigenvalues of the input-Jacobian correlation "
    "(Mellor et al., arXiv v1 2020)",
    "naswot": "log|K_H| of the ReLU-code kernel (Mellor et al., ICML 2021)",
    "synflow": "log10 of sum dR/dw * w, |weights|, all-ones input, no BatchNorm "
    "(Tanaka et al., NeurIPS 2020)",
    "params": "trainable parameters",
    "flops": "forward FLOPs of one image (torch.utils.flop_counter)",
}


def score(
    net: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    names: Iterable[str] | None = None,
) -> dict[str, float]:
    """The proxies ``names`` (default: all of ``PROXIES``) of ``net`` on one batch.

    The gradient-based proxies share one ``probe`` (one forward pass, and only the backward
    passes they need); ``synflow`` runs on a copy, with no data; parameters and FLOPs (of one
    image) are counted on ``net``."""
    names = check_names(names)
    scores: dict[str, float] = {}
    wanted = [name for name in names if name in FROM_PROBE]
    if wanted:
        p = probe(net, inputs, targets, hessian="grasp" in wanted, jacobian="jacob_cov" in wanted)
        scores.update({name: FROM_PROBE[name](p) for name in wanted})
    if "synflow" in names:
        scores["synflow"] = synflow(net, inputs.shape[1:])
    if "params" in names:
        scores["params"] = float(count_params(net))
    if "flops" in names:
        scores["flops"] = float(count_flops(net, (1, *inputs.shape[1:])))
    return {name: scores[name] for name in names}


def check_names(names: Iterable[str] | None) -> list[str]:
    """The proxies ``names`` as a list (``None``: all of ``PROXIES``; a string: that one); an
    unknown name is an error that lists the known ones."""
    if names is None:
        return list(PROXIES)
    if isinstance(names, str):
        names = [names]
    names = list(names)
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise ValueError(f"unknown proxy {unknown[0]!r}; choose from {', '.join(PROXIES)}")
    return names
