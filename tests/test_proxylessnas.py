"""ProxylessNAS's binarized paths (Cai, Zhu & Han, ICLR 2019, Section 3.2): one path per block in a
weight step, two in an architecture step, eq. 4's gradient on the sampled pair and the rescaling
that leaves the other paths' probabilities alone, the identity candidate that removes a block,
seeding, and the activation memory a binarized step saves against the softmax mixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas_lab import data
from nas_lab import hardware as hw
from nas_lab.oneshot import proxylessnas as px
from nas_lab.spaces.mbconv import ChainSpace, block_slots

# Two stages of depth 1 or 2: the second block of each stage may be skipped.
TOY = ChainSpace(kernels=(3, 5), expansions=(2, 3), depths=(1, 2), widths=(8, 16), strides=(1, 2))
CHOICES = [(3, 2), (5, 2), (3, 3)]


def toy_table(space: ChainSpace, latency=lambda kernel, expansion: 0.1 * kernel * expansion):
    """A latency table with every block spec of ``space`` filled in by ``latency`` (no timing)."""
    table = hw.LatencyTable(measure_missing=False, ends={"default": 0.05})
    stem, _, widths = space.scaled_widths(1.0)
    slots = block_slots(stem, widths, space.strides, [space.max_depth] * len(widths), side=8)
    for slot in slots:
        for k in space.kernels:
            for e in space.expansions:
                spec = hw.BlockSpec(slot.c_in, slot.c_out, k, e, slot.stride, slot.side)
                table.blocks[spec] = latency(k, e)
    return table


def toy_net(seed: int = 0, **kwargs) -> px.LatencyAwareSupernet:
    torch.manual_seed(seed)
    return px.LatencyAwareSupernet(TOY, CHOICES, toy_table(TOY), **kwargs)


def batch(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def count_calls(net: px.LatencyAwareSupernet) -> list[list[int]]:
    """calls[i][j]: how many times candidate j of block i ran (forward hooks)."""
    calls = [[0] * len(block.candidates) for block in net.blocks]
    for i, block in enumerate(net.blocks):
        for j, op in enumerate(block.candidates):

            def hook(module, args, output, i=i, j=j):
                calls[i][j] += 1

            op.register_forward_hook(hook)
    return calls


# ---- (a) one path per block in a weight step, two in an architecture step ----------------------


def test_a_weight_step_runs_one_candidate_per_block_and_trains_only_it():
    net = toy_net()
    calls = count_calls(net)
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.1)
    x, y = batch()
    px.weight_step(net, x, y, opt, torch.Generator().manual_seed(0))
    assert [sum(row) for row in calls] == [1] * len(net.blocks)
    for row, block in zip(calls, net.blocks, strict=True):
        for ran, op in zip(row, block.candidates, strict=True):
            grads = [p.grad is not None for p in op.parameters()]
            assert all(grads) if ran else not any(grads)  # only the sampled path is trained
    assert net.arch_logits.grad is None


def test_an_architecture_step_runs_two_candidates_per_block_and_leaves_the_weights():
    net = toy_net()
    calls = count_calls(net)
    before = [p.detach().clone() for p in net.weight_parameters()]
    opt = torch.optim.Adam([net.arch_logits], lr=0.1, betas=(0.0, 0.999))
    x, y = batch()
    px.architecture_step(net, x, y, opt, torch.Generator().manual_seed(0), 1.0, 1.0)
    assert [sum(row) for row in calls] == [2] * len(net.blocks)
    assert all(torch.equal(a, b) for a, b in zip(before, net.weight_parameters(), strict=True))
    net_mixture = toy_net()
    calls_mixture = count_calls(net_mixture)
    net_mixture(x)
    assert calls_mixture == [[1] * len(b.candidates) for b in net_mixture.blocks]


# ---- (b) eq. 4 on the sampled pair, and the rescaling ------------------------------------------


def test_the_architecture_gradient_is_eq4_on_the_two_sampled_paths():
    net = toy_net().double()
    with torch.no_grad():
        net.arch_logits.copy_(torch.randn(net.arch_logits.shape, generator=torch.Generator()))
    x, y = batch()
    x = x.double()
    seed, lam, ref = 3, 0.7, 0.9
    # the pairs the step will draw, drawn again from the same seed
    paths = net.sample_paths(2, torch.Generator().manual_seed(seed))
    lat = net.latencies.double()

    def loss_at(gates):  # the loss as a function of the binary gates, other things fixed
        return F.cross_entropy(net.binarized(x, paths, gates), y)

    # dL/dg by central finite differences around g = (1, 0) in every block
    eps = 1e-6
    g0 = torch.zeros(paths.shape, dtype=torch.float64)
    g0[:, 0] = 1.0
    dL_dg = torch.zeros_like(g0)
    for i in range(g0.shape[0]):
        for k in range(2):
            up, down = g0.clone(), g0.clone()
            up[i, k] += eps
            down[i, k] -= eps
            dL_dg[i, k] = (loss_at(up) - loss_at(down)) / (2 * eps)
    # eq. 4 by hand, over the pair only: sum_j dL/dg_j p_j (delta_ij - p_i), p the pair's softmax
    expected = torch.zeros_like(net.arch_logits)
    for i in range(g0.shape[0]):
        pair = [int(paths[i, 0]), int(paths[i, 1])]
        a = net.arch_logits.detach()[i, pair]
        p = torch.exp(a) / torch.exp(a).sum()
        for u in range(2):
            grad = sum(dL_dg[i, v] * p[v] * (float(u == v) - p[u]) for v in range(2))
            # the latency term over the pair, lam * sum_v p_v F_v / ref, differentiated by hand
            e_pair = sum(p[v] * lat[i, pair[v]] for v in range(2))
            grad = grad + lam / ref * p[u] * (lat[i, pair[u]] - e_pair)
            expected[i, pair[u]] = grad
    frozen = torch.optim.SGD([net.arch_logits], lr=0.0)  # keeps the gradient, moves nothing
    px.architecture_step(net, x, y, frozen, torch.Generator().manual_seed(seed), lam, ref)
    assert torch.allclose(net.arch_logits.grad, expected, atol=1e-6)
    untouched = torch.ones_like(expected, dtype=torch.bool).scatter_(1, paths, False)
    assert (net.arch_logits.grad[untouched] == 0).all()  # unsampled paths: no gradient


def test_binary_gate_gradient_against_the_softmax_jacobian():
    logits = torch.tensor([[0.3, -1.2, 2.0], [5.0, -5.0, 0.0]], dtype=torch.float64)
    gate_grad = torch.tensor([[1.0, -2.0, 0.5], [0.1, 3.0, -1.0]], dtype=torch.float64)
    for row in range(2):
        jac = torch.autograd.functional.jacobian(lambda a: torch.softmax(a, 0), logits[row])
        got = px.binary_gate_gradient(gate_grad[row], logits[row])
        assert torch.allclose(got, jac.T @ gate_grad[row])  # jac[j, i] = dp_j / dalpha_i
    with pytest.raises(ValueError, match="same shape"):
        px.binary_gate_gradient(torch.zeros(3), torch.zeros(2))


def test_the_rescaling_keeps_the_unsampled_paths_probabilities():
    net = toy_net()
    with torch.no_grad():
        net.arch_logits.copy_(torch.randn(net.arch_logits.shape, generator=torch.Generator()))
    before = net.probs().detach().clone()
    paths = net.sample_paths(2, torch.Generator().manual_seed(1))
    opt = torch.optim.Adam([net.arch_logits], lr=0.3, betas=(0.0, 0.999))
    x, y = batch()
    px.architecture_step(net, x, y, opt, torch.Generator().manual_seed(1), 5.0, 1.0)
    after = net.probs().detach()
    untouched = torch.ones_like(after, dtype=torch.bool).scatter_(1, paths, False)
    assert torch.allclose(after[untouched], before[untouched], atol=1e-6)
    assert not torch.allclose(after.gather(1, paths), before.gather(1, paths))
    # the pair's total probability is what it was; only its split moved
    assert torch.allclose(after.gather(1, paths).sum(1), before.gather(1, paths).sum(1))


# ---- (c) the identity candidate -----------------------------------------------------------------


def test_identity_is_offered_only_where_a_block_can_go():
    net = toy_net()
    assert net.candidates[-1] == px.IDENTITY
    # blocks 0 and 2 start a stage: with depths (1, 2) only each stage's second block can go
    assert net.allowed[:, -1].tolist() == [False, True, False, True]
    assert isinstance(net.blocks[1].candidates[-1], nn.Identity)
    plain = px.LatencyAwareSupernet(TOY, CHOICES, toy_table(TOY), identity=False)
    assert px.IDENTITY not in plain.candidates
    deep = ChainSpace(kernels=(3, 5), expansions=(2, 3), depths=(2, 3), widths=(8,), strides=(1,))
    rows = px.LatencyAwareSupernet(deep, CHOICES, toy_table(deep)).allowed[:, -1].tolist()
    assert rows == [False, False, True]  # every derived network keeps the space's depths


def test_when_identity_wins_the_block_is_removed_from_the_derived_network():
    net = toy_net()
    with torch.no_grad():
        net.arch_logits.zero_()
        net.arch_logits[:, 1] = 1.0  # (5, 2) everywhere ...
        net.arch_logits[3, -1] = 2.0  # ... but the identity wins block 3
    assert net.derived() == [(5, 2), (5, 2), (5, 2), px.IDENTITY]
    arch = net.derived_arch()
    assert str(arch) == "k5e2-k5e2|k5e2" and TOY.validate(arch) is arch
    assert net.derived_latency() == pytest.approx(3 * 0.1 * 5 * 2)
    # the same figure as the table's prediction for the network built from the derived arch
    predicted = toy_table(TOY).predict(TOY.build(arch))
    assert net.derived_latency() + 0.05 == pytest.approx(predicted)


def test_a_heavy_latency_weight_makes_the_search_skip_blocks():
    slow = toy_table(TOY, latency=lambda kernel, expansion: 5.0)  # every MBConv block is slow
    splits = data.load("digits", seed=0, train_fraction=0.2)
    out = px.latency_aware_search(
        TOY, splits, slow, CHOICES, latency_weight=20.0, epochs=3, warmup_epochs=1, seed=0
    )
    assert out["derived"][1] == out["derived"][3] == px.IDENTITY
    assert out["arch"].depths == (1, 1)
    assert out["derived_latency_ms"] == pytest.approx(2 * 5.0 + 0.05)
    assert out["expected_latency_ms"] < out["uniform_latency_ms"]


# ---- (d) seeding -------------------------------------------------------------------------------


def test_same_seed_same_search_another_seed_another():
    splits = data.load("digits", seed=0, train_fraction=0.1)
    run = lambda seed: px.latency_aware_search(  # noqa: E731
        TOY, splits, toy_table(TOY), CHOICES, 1.0, epochs=2, warmup_epochs=0, seed=seed
    )
    first, again, other = run(0), run(0), run(1)
    assert np.array_equal(first["probs"], again["probs"]) and first["arch"] == again["arch"]
    assert first["supernet_val_acc"] == again["supernet_val_acc"]
    assert not np.array_equal(first["probs"], other["probs"])


def test_path_sampling_follows_the_probabilities_and_repeats_with_the_seed():
    net = toy_net()
    with torch.no_grad():
        net.arch_logits[:, 0] = 3.0
    draws = net.sample_paths(1, torch.Generator().manual_seed(0))
    assert torch.equal(draws, net.sample_paths(1, torch.Generator().manual_seed(0)))
    many = torch.cat([net.sample_paths(1, torch.Generator().manual_seed(s)) for s in range(300)], 1)
    share = (many == 0).double().mean(1)
    p0 = net.probs()[:, 0].detach().double()
    assert torch.allclose(share, p0, atol=0.08)
    pairs = net.sample_paths(2, torch.Generator().manual_seed(0))
    assert (pairs[:, 0] != pairs[:, 1]).all() and net.allowed.gather(1, pairs).all()


# ---- (e) activation memory ----------------------------------------------------------------------


def test_the_saved_tensor_meter_on_a_known_answer():
    x = torch.rand(32, 50, requires_grad=True)
    linear = nn.Linear(50, 7)
    # relu saves its output (32 x 50 floats); the linear layer saves its input, which is that
    # same output, and its weight, which is a parameter and not counted
    got = px.saved_activation_bytes(lambda: linear(torch.relu(x)), linear.parameters())
    assert got == 32 * 50 * 4


def test_a_binarized_step_keeps_less_activation_memory_than_the_mixture():
    net = toy_net()
    x, y = batch(32)
    weights = net.weight_parameters()
    mixture = px.saved_activation_bytes(lambda: F.cross_entropy(net(x), y), weights)
    paths = net.sample_paths(2, torch.Generator().manual_seed(0))
    gates = torch.tensor([[1.0, 0.0]] * len(net.blocks), requires_grad=True)
    one = px.saved_activation_bytes(lambda: net.binarized(x, paths[:, :1]), weights)
    two = px.saved_activation_bytes(lambda: net.binarized(x, paths, gates), weights)
    assert one < two < mixture
    assert mixture > 2 * one  # three or four candidates per block against one
    costs = px.step_costs(net, x, y, min_run_time=0.01)
    assert list(costs) == ["mixture", "weight step", "architecture step"]
    assert costs["weight step"]["activations_mb"] < costs["mixture"]["activations_mb"]
    assert costs["architecture step"]["activations_mb"] < costs["mixture"]["activations_mb"]
    assert costs["weight step"]["peak_mb"] < costs["mixture"]["peak_mb"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_cuda_the_allocator_agrees_that_binarized_steps_use_less_memory():
    net = toy_net().cuda()
    x, y = (t.cuda() for t in batch(64))
    costs = px.step_costs(net, x, y, min_run_time=0.01)
    assert costs["weight step"]["peak_mb"] < costs["mixture"]["peak_mb"]
    assert costs["architecture step"]["peak_mb"] < costs["mixture"]["peak_mb"]
    out = px.latency_aware_search(
        TOY,
        data.load("digits", train_fraction=0.1),
        toy_table(TOY),
        CHOICES,
        1.0,
        epochs=1,
        warmup_epochs=0,
        device="cuda",
    )
    assert len(out["derived"]) == 4
