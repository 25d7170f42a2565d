"""Checks for lesson 10 (Once-for-All): channel importance, the kernel transformation, and the
distillation loss of progressive shrinking (Cai et al., ICLR 2020)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from nas_lab.checks import Reason, close, exercise, loss_value
from nas_lab.oneshot import ofa

# ---- 10.1: the order of the hidden channels, most important first --------------------------


def channel_order(project_weight: torch.Tensor) -> torch.Tensor:
    """Indices of the hidden channels by decreasing L1 norm of their projection weights."""
    return ofa.channel_order(project_weight)


def _projection_weights(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for _ in range(5):
        c_out, hidden = int(rng.integers(4, 17)), int(rng.integers(8, 40))
        # Heavy-tailed weights: L1 and L2 norms then order channels differently.
        weight = rng.standard_t(2, size=(c_out, hidden, 1, 1)) * rng.uniform(0.2, 2, size=hidden)
        cases.append((weight.astype(np.float32),))
    return cases


def _order_as_list(answer: Callable, args: tuple) -> list[int]:
    order = answer(torch.as_tensor(args[0]))
    return [int(i) for i in torch.as_tensor(order).reshape(-1).tolist()]


def _ascending(project_weight):  # least important first
    return ofa.channel_order(project_weight).flip(0)


def _l2_norm(project_weight):
    return torch.argsort(project_weight.pow(2).sum(dim=(0, 2, 3)), descending=True)


def _over_outputs(project_weight):  # norms of the output channels: the wrong axis
    return torch.argsort(project_weight.abs().sum(dim=(1, 2, 3)), descending=True)


exercise(
    "10.1",
    title="hidden channels by importance",
    points=1,
    inputs=_projection_weights,
    call=_order_as_list,
    wrong=[_ascending, _l2_norm, _over_outputs],
)(channel_order)

# ---- 10.2: one step of the elastic kernel --------------------------------------------------


def transform_kernel(weight: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Centre k x k of each channel, flattened to w, becomes w M^T (F.linear(w, M))."""
    return ofa.transform_kernel(weight, matrix)


def _kernels_and_matrices(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for big, small in ((7, 5), (5, 3), (7, 5), (5, 3)):
        channels = int(rng.integers(2, 9))
        weight = rng.normal(size=(channels, 1, big, big))
        matrix = np.eye(small * small) + 0.3 * rng.normal(size=(small * small,) * 2)
        cases.append((weight, matrix))
    return cases


def _transformed(answer: Callable, args: tuple) -> list:
    weight, matrix = (torch.as_tensor(a, dtype=torch.float64) for a in args)
    out = torch.as_tensor(answer(weight, matrix))
    return out.detach().numpy().tolist()


def _plain_crop(weight, matrix):  # the matrix forgotten
    return ofa.centre_crop(weight, int(round(len(matrix) ** 0.5)))


def _matrix_not_transposed(weight, matrix):  # w M instead of w M^T
    return ofa.transform_kernel(weight, matrix.T)


def _top_left_crop(weight, matrix):
    k = int(round(len(matrix) ** 0.5))
    flat = weight[:, :, :k, :k].reshape(-1, k * k)
    return F.linear(flat, matrix).reshape(len(weight), 1, k, k)


exercise(
    "10.2",
    title="the kernel transformation matrix",
    points=2,
    inputs=_kernels_and_matrices,
    call=_transformed,
    compare=lambda expected, got: close(expected, got, rtol=1e-6, atol=1e-9),
    wrong=[_plain_crop, _matrix_not_transposed, _top_left_crop],
)(transform_kernel)

# ---- 10.3: the distillation loss of progressive shrinking ----------------------------------


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    kd_ratio: float,
    temperature: float,
) -> torch.Tensor:
    """CE(s, y) + kd_ratio * T^2 * mean_n(-sum_c softmax(t_n/T)_c log softmax(s_n/T)_c)."""
    return ofa.distillation_loss(student, teacher, labels, kd_ratio, temperature)


def _logit_batches(rng: np.random.Generator) -> list[tuple]:
    cases = []
    for temperature in (1.0, 2.0, float(rng.uniform(1.5, 5.0))):
        n = int(rng.integers(3, 9))
        student, teacher = rng.normal(0, 2, size=(n, 10)), rng.normal(0, 2, size=(n, 10))
        labels = rng.integers(0, 10, size=n)
        cases.append((student, teacher, labels, float(rng.uniform(0.3, 1.5)), temperature))
    return cases


def _loss_and_gradients(answer: Callable, args: tuple) -> list:
    """[loss, d loss / d student, whether a gradient reached the teacher]."""
    student, teacher, labels, kd_ratio, temperature = args
    s = torch.tensor(student, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(teacher, dtype=torch.float64, requires_grad=True)
    loss = answer(s, t, torch.as_tensor(labels, dtype=torch.long), kd_ratio, temperature)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        return [loss, None, False]
    if loss.requires_grad:
        loss.reshape(()).backward()
    grad = None if s.grad is None else s.grad.numpy().tolist()
    teacher_moved = t.grad is not None and bool(t.grad.abs().sum() > 0)
    return [float(loss.detach().reshape(())), grad, teacher_moved]


def _compare_loss(expected, got) -> Reason:
    value, grad, teacher_moved = got
    reason = loss_value(expected[0], value)
    if reason is not None:
        return reason
    if grad is None:
        return "the value is right but no gradient reaches the student's logits"
    if teacher_moved:
        return (
            "the value is right but gradients flow into the teacher: the soft targets are "
            "constants (use teacher.detach())"
        )
    return close(expected[1], grad, rtol=1e-6, atol=1e-9)


def _no_t_squared(student, teacher, labels, kd_ratio, temperature):
    return ofa.distillation_loss(student, teacher, labels, kd_ratio / temperature**2, temperature)


def _teacher_without_temperature(student, teacher, labels, kd_ratio, temperature):
    soft = torch.softmax(teacher.detach(), dim=1)
    soft_ce = -(soft * torch.log_softmax(student / temperature, dim=1)).sum(1).mean()
    return F.cross_entropy(student, labels) + kd_ratio * temperature**2 * soft_ce


def _teacher_not_detached(student, teacher, labels, kd_ratio, temperature):
    soft = torch.softmax(teacher / temperature, dim=1)
    soft_ce = -(soft * torch.log_softmax(student / temperature, dim=1)).sum(1).mean()
    return F.cross_entropy(student, labels) + kd_ratio * temperature**2 * soft_ce


def _soft_term_summed_over_batch(student, teacher, labels, kd_ratio, temperature):
    soft = torch.softmax(teacher.detach() / temperature, dim=1)
    soft_ce = -(soft * torch.log_softmax(student / temperature, dim=1)).sum()
    return F.cross_entropy(student, labels) + kd_ratio * temperature**2 * soft_ce


exercise(
    "10.3",
    title="the distillation loss",
    points=3,
    inputs=_logit_batches,
    call=_loss_and_gradients,
    compare=_compare_loss,
    wrong=[
        _no_t_squared,
        _teacher_without_temperature,
        _teacher_not_detached,
        _soft_term_summed_over_batch,
    ],
)(distillation_loss)
