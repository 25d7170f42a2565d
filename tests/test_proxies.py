"""Zero-cost proxies against answers computed another way.

The known answers come from a tiny network with set weights and inputs (3 inputs -> Linear ->
ReLU -> Linear -> 2 classes), differentiated by hand with the chain rule in NumPy, and from
closed forms (SynFlow of a chain of scalar layers, NASWOT's kernel of hand-picked codes,
jacob_cov of two perfectly anti-correlated Jacobians). GraSP's Hessian-vector product is checked
against central finite differences of the gradient, on the tiny network and on a small
NAS-Bench-201 network with BatchNorm in training mode."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from nas_lab import proxies
from nas_lab.spaces import nb201

# --- the tiny network and its hand computation ------------------------------------------------

X = np.array([[1.0, -1.0, 2.0], [0.5, 1.0, -1.0], [-2.0, -0.5, 1.0]])
Y = np.array([0, 1, 0])
W1 = np.diag([1.0, 2.0, 0.5])  # hidden pre-activations h = x W1^T keep the signs of x
W2 = np.array([[0.5, -1.0, 0.25], [-0.3, 0.8, 1.0]])


def tiny_net(w1: np.ndarray = W1, w2: np.ndarray = W2) -> nn.Module:
    net = nn.Sequential(nn.Linear(3, 3, bias=False), nn.ReLU(), nn.Linear(3, 2, bias=False))
    net.double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(w1))
        net[2].weight.copy_(torch.tensor(w2))
    return net


def tiny_probe(**kwargs) -> proxies.Probe:
    return proxies.probe(tiny_net(), torch.tensor(X), torch.tensor(Y), **kwargs)


def by_hand(w1: np.ndarray = W1, w2: np.ndarray = W2) -> dict[str, np.ndarray]:
    """Forward and backward of the mean cross-entropy through the tiny network, chain rule."""
    h = X @ w1.T
    r = np.maximum(h, 0.0)
    z = r @ w2.T
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dz = (p - np.eye(2)[Y]) / len(X)  # d mean CE / d logits
    dh = (dz @ w2) * (h > 0)
    return {"h": h, "z": z, "dz": dz, "dh": dh, "dW1": dh.T @ X, "dW2": dz.T @ r}


def test_probe_gradients_match_the_chain_rule():
    p, hand = tiny_probe(), by_hand()
    np.testing.assert_allclose(p.grads[0].numpy(), hand["dW1"], rtol=1e-12)
    np.testing.assert_allclose(p.grads[1].numpy(), hand["dW2"], rtol=1e-12)
    np.testing.assert_allclose(p.activations[0].numpy(), hand["h"], rtol=1e-12)
    np.testing.assert_allclose(p.activation_grads[1].numpy(), hand["dz"], rtol=1e-12)


def test_grad_norm_is_the_sum_of_layer_norms():
    hand = by_hand()
    expected = np.linalg.norm(hand["dW1"]) + np.linalg.norm(hand["dW2"])
    assert proxies.grad_norm(tiny_probe()) == pytest.approx(expected, rel=1e-12)


def test_snip_is_the_sum_of_abs_gradient_times_weight():
    hand = by_hand()
    expected = np.abs(hand["dW1"] * W1).sum() + np.abs(hand["dW2"] * W2).sum()
    assert proxies.snip(tiny_probe()) == pytest.approx(expected, rel=1e-12)


def test_fisher_is_half_the_mean_squared_activation_times_gradient():
    hand = by_hand()
    expected = sum(
        0.5 * ((hand[a] * hand[g]) ** 2).mean(axis=0).sum() for a, g in (("h", "dh"), ("z", "dz"))
    )
    assert proxies.fisher(tiny_probe()) == pytest.approx(expected, rel=1e-12)


def test_fisher_sums_a_convolution_over_space_before_squaring():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 2, 3, padding=1, bias=False).double()
    net = nn.Sequential(conv, nn.Flatten(), nn.Linear(2 * 4 * 4, 3, bias=False)).double()
    x, y = torch.randn(5, 1, 4, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 1, 0])
    # Independently: keep the convolution's output and read its gradient with retain_grad.
    a = conv(x)
    a.retain_grad()
    torch.nn.functional.cross_entropy(net[2](net[1](a)), y).backward()
    logits = net(x).detach()
    dz = (torch.softmax(logits, 1) - torch.eye(3, dtype=torch.float64)[y]) / len(y)
    expected = 0.5 * ((a.detach() * a.grad).sum(dim=(2, 3)) ** 2).mean(0).sum()
    expected += 0.5 * ((logits * dz) ** 2).mean(0).sum()
    assert proxies.fisher(proxies.probe(net, x, y)) == pytest.approx(float(expected), rel=1e-10)


def finite_difference_hg(grad_fn, weights: list[torch.Tensor], eps: float = 1e-6):
    """H g by central differences of the gradient along g: (grad(w + e g) - grad(w - e g)) / 2e."""
    g = grad_fn(weights)
    plus = grad_fn([w + eps * d for w, d in zip(weights, g, strict=True)])
    minus = grad_fn([w - eps * d for w, d in zip(weights, g, strict=True)])
    return [(a - b) / (2 * eps) for a, b in zip(plus, minus, strict=True)]


def test_grasp_matches_finite_differences_of_the_hand_gradient():
    def grad_fn(ws):
        hand = by_hand(ws[0], ws[1])
        return [hand["dW1"], hand["dW2"]]

    hg = finite_difference_hg(grad_fn, [W1, W2])
    expected = -((W1 * hg[0]).sum() + (W2 * hg[1]).sum())
    p = tiny_probe()
    np.testing.assert_allclose(p.hessian_grads[1].numpy(), hg[1], rtol=1e-6, atol=1e-10)
    assert proxies.grasp(p) == pytest.approx(expected, rel=1e-6)


def test_grasp_on_a_cell_network_with_batchnorm_matches_finite_differences():
    torch.manual_seed(0)
    net = nb201.build_network(nb201.unique_cells()[-1000], C=2, N=1).double()
    x, y = torch.rand(6, 1, 8, 8, dtype=torch.float64), torch.arange(6) % 3
    layers = proxies.scored_layers(net)
    originals = [layer.weight.detach().clone() for layer in layers]

    def grad_fn(ws):
        with torch.no_grad():
            for layer, w in zip(layers, ws, strict=True):
                layer.weight.copy_(w)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        return [g.detach() for g in torch.autograd.grad(loss, [la.weight for la in layers])]

    hg = finite_difference_hg(grad_fn, originals)
    grad_fn(originals)  # put the weights back
    expected = -sum(float((w * h).sum()) for w, h in zip(originals, hg, strict=True))
    assert proxies.grasp(proxies.probe(net, x, y)) == pytest.approx(expected, rel=1e-5)


def test_jacobian_rows_are_the_input_gradients_of_the_summed_outputs():
    hand = by_hand()
    expected = ((np.ones(2) @ W2) * (hand["h"] > 0)) @ W1  # one row per image
    np.testing.assert_allclose(tiny_probe().jacobian.numpy(), expected, rtol=1e-12)


def probe_with(**fields) -> proxies.Probe:
    empty = dict(weights=[], grads=[], hessian_grads=None, activations=[], activation_grads=[])
    return proxies.Probe(**{**empty, "jacobian": None, "relu_kernel": None, **fields})


def test_jacob_cov_closed_form_for_two_anti_correlated_images():
    # Correlation -1: Sigma = [[1, -1], [-1, 1]], eigenvalues 0 and 2.
    jacobian = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    k = 1e-5
    expected = -(math.log(k) + 1 / k + math.log(2 + k) + 1 / (2 + k))
    assert proxies.jacob_cov(probe_with(jacobian=jacobian)) == pytest.approx(expected, rel=1e-9)


def test_jacob_cov_is_highest_for_uncorrelated_jacobians():
    uncorrelated = torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]])  # Sigma = I
    correlated = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 5.0]])
    best = proxies.jacob_cov(probe_with(jacobian=uncorrelated))
    assert best == pytest.approx(-2 * (math.log(1 + 1e-5) + 1 / (1 + 1e-5)))
    assert proxies.jacob_cov(probe_with(jacobian=correlated)) < best


def test_jacob_cov_of_a_constant_jacobian_is_nan():
    jacobian = torch.tensor([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]])
    assert math.isnan(proxies.jacob_cov(probe_with(jacobian=jacobian)))


def test_naswot_kernel_and_score_by_hand():
    # h keeps x's signs, so the codes are (1,0,1), (1,1,0), (0,0,1): K = 3 - Hamming distance.
    p = tiny_probe()
    expected_kernel = np.array([[3.0, 1.0, 2.0], [1.0, 3.0, 0.0], [2.0, 0.0, 3.0]])
    np.testing.assert_array_equal(p.relu_kernel, expected_kernel)
    assert proxies.naswot(p) == pytest.approx(math.log(12.0), rel=1e-12)  # det = 12


def test_naswot_reads_an_inplace_relu_before_it_overwrites_its_input():
    net = tiny_net()
    net[1] = nn.ReLU(inplace=True)
    p = proxies.probe(net, torch.tensor(X), torch.tensor(Y))
    assert proxies.naswot(p) == pytest.approx(math.log(12.0), rel=1e-12)
    np.testing.assert_allclose(p.activations[0].numpy(), by_hand()["h"])  # not the ReLU's output


def test_synflow_of_the_tiny_network_is_twice_its_synaptic_flow():
    # R = 1^T |W2| |W1| 1; every path has one weight per layer, so sum_w w dR/dw = 2 R.
    flow = np.ones(2) @ np.abs(W2) @ np.abs(W1) @ np.ones(3)
    assert flow == pytest.approx(5.025)
    assert proxies.synflow(tiny_net(), (3,)) == pytest.approx(math.log10(2 * flow), rel=1e-12)


def test_synflow_removes_batchnorm_and_leaves_the_network_alone():
    net = tiny_net()
    with_bn = nn.Sequential(net[0], nn.BatchNorm1d(3), net[1], net[2]).double()
    with torch.no_grad():
        with_bn[1].weight.fill_(-7.0)
        with_bn[1].running_var.fill_(100.0)
    before = [t.clone() for t in with_bn.state_dict().values()]
    assert proxies.synflow(with_bn, (3,)) == pytest.approx(proxies.synflow(net, (3,)))
    for old, new in zip(before, with_bn.state_dict().values(), strict=True):
        assert torch.equal(old, new)


def test_synflow_does_not_overflow_where_float64_would():
    # 40 scalar layers of weight 1e10: R = 1e400 > float64's 1.8e308; synflow = 40 R.
    chain = nn.Sequential(*[nn.Linear(1, 1, bias=False) for _ in range(40)])
    for layer in chain:
        nn.init.constant_(layer.weight, 1e10)
    assert proxies.synflow(chain, (1,)) == pytest.approx(400 + math.log10(40), rel=1e-12)


def test_synflow_rescaling_is_exact_on_a_cell_network(monkeypatch):
    torch.manual_seed(0)
    net = nb201.build_network(nb201.unique_cells()[-1], C=4, N=2)
    plain = proxies.synflow(net, (1, 8, 8))
    monkeypatch.setattr(proxies.scores, "SYNFLOW_SCALES", (2.0**-256,))
    assert proxies.synflow(net, (1, 8, 8)) == pytest.approx(plain, abs=1e-9)


def test_synflow_raises_a_clear_error_beyond_reach():
    chain = nn.Sequential(*[nn.Linear(1, 1, bias=False) for _ in range(10)]).double()
    for layer in chain:
        nn.init.constant_(layer.weight, 1e80)  # R = 1e800
    with pytest.raises(OverflowError, match="smaller network"):
        proxies.synflow(chain, (1,))


# --- the proxies on the benchmark's networks -------------------------------------------------

SMALL = proxies.Settings(batch_size=16, channels=4, cells_per_stage=1)
CELLS = [nb201.unique_cells()[i] for i in (5, 1000, 4000, 6465)]


def test_score_shares_one_probe_and_agrees_with_each_proxy_alone():
    together = proxies.score_cell(CELLS[2], SMALL)
    for name in proxies.PROXIES:
        alone = proxies.score_cell(CELLS[2], SMALL, names=[name])
        assert alone[name] == pytest.approx(together[name], rel=1e-5), name


def test_score_cell_repeats_with_its_seed_and_changes_with_another():
    first, again = proxies.score_cell(CELLS[1], SMALL), proxies.score_cell(CELLS[1], SMALL)
    assert first == again
    other = proxies.score_cell(CELLS[1], proxies.Settings(**{**SMALL.__dict__, "seed": 1}))
    assert other["snip"] != first["snip"]
    assert all(math.isfinite(v) for v in first.values())


def test_params_and_flops_are_the_benchmark_cost_model():
    scores = proxies.score_cell(CELLS[2], SMALL, names=["params", "flops"])
    params, flops = nb201.params_and_flops(CELLS[2], C=4, N=1)
    assert scores == {"params": params, "flops": flops}


def test_a_pool_gives_the_same_table_as_one_process():
    inline = proxies.score_cells(CELLS[:3], SMALL, workers=1, progress=False)
    pooled = proxies.score_cells(CELLS[:3], SMALL, workers=2, progress=False)
    np.testing.assert_array_equal(inline, pooled)
    assert inline.shape == (3, len(proxies.PROXIES))


class FakeBench:
    """What ``compute_table`` and ``correlations`` read of a benchmark."""

    def __init__(self, archs, test_acc):
        self.archs = [str(a) for a in archs]
        self.test_acc = np.asarray(test_acc, dtype=float)
        recipe = {"dataset": "digits", "data_seed": 0, "channels": 4, "cells_per_stage": 1}
        self.manifest = {"recipe": recipe, "sha256": "f" * 64}

    def column(self, name):
        assert name == "test_acc"
        return self.test_acc

    def row(self, arch):
        return self.archs.index(str(nb201.canonical(arch)))


def test_table_round_trip_and_correlations(tmp_path):
    bench = FakeBench(CELLS, [0.9, 0.8, 0.7, 0.6])
    path = proxies.compute_table(
        bench, tmp_path / "p.npz", batch_size=16, progress=False, workers=1, cells=CELLS
    )
    table = proxies.load_table(path)
    assert table.archs == [str(c) for c in CELLS]
    assert table.manifest["settings"]["channels"] == 4
    assert table.manifest["benchmark_sha256"] == "f" * 64
    direct = proxies.score_cell(CELLS[3], SMALL)
    assert table.column("snip")[3] == pytest.approx(direct["snip"])
    # Any member of a class answers through its representative.
    member = next(c for c in nb201.all_cells() if nb201.canonical(c) == CELLS[1] and c != CELLS[1])
    assert table.column("snip", [member])[0] == table.column("snip")[1]
    # A known correlation: score the architectures by their own accuracy, and its reverse.
    table.scores["params"][:] = [4, 3, 2, 1]
    table.scores["flops"][:] = [1, 2, 3, 4]
    rows = {r["proxy"]: r for r in proxies.correlations(bench, table, names=["params", "flops"])}
    assert rows["params"]["spearman"] == pytest.approx(1.0)
    assert rows["flops"]["kendall"] == pytest.approx(-1.0)
    assert "| params | 1.000 | 1.000 |" in proxies.format_correlations(list(rows.values()))


def test_a_tampered_table_is_refused(tmp_path):
    bench = FakeBench(CELLS[:2], [0.9, 0.8])
    path = proxies.compute_table(
        bench, tmp_path / "p.npz", batch_size=16, progress=False, workers=1, cells=CELLS[:2]
    )
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="sha256"):
        proxies.load_table(path)
    with pytest.raises(FileNotFoundError, match="nas-lab proxies compute"):
        proxies.load_table(tmp_path / "missing.npz")


# --- bad input ---------------------------------------------------------------------------------


def test_clear_errors_on_bad_input():
    with pytest.raises(ValueError, match="unknown proxy 'snipp'"):
        proxies.score(tiny_net(), torch.tensor(X), torch.tensor(Y), names=["snipp"])
    with pytest.raises(ValueError, match="no Conv2d or Linear"):
        proxies.probe(nn.Sequential(nn.ReLU()), torch.tensor(X), torch.tensor(Y))
    with pytest.raises(ValueError, match="same length"):
        proxies.probe(tiny_net(), torch.tensor(X), torch.tensor(Y[:2]))
    no_relu = nn.Sequential(nn.Linear(3, 2)).double()
    with pytest.raises(ValueError, match="no nn.ReLU"):
        proxies.naswot(proxies.probe(no_relu, torch.tensor(X), torch.tensor(Y)))
    with pytest.raises(ValueError, match="batch_size must be between 2"):
        proxies.proxy_batch(proxies.Settings(batch_size=100_000))
