"""Hardware-aware NAS: latency measurement, lookup table, learned predictor, FLOPs and bytes,
the MnasNet reward, ProxylessNAS's expected latency, the roofline model, the Pareto pick."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch
from pytest import approx
from torch import nn

from nas_lab import data
from nas_lab import hardware as hw
from nas_lab.cost import count_flops
from nas_lab.oneshot import proxylessnas
from nas_lab.pareto import pareto_pick
from nas_lab.spaces.mbconv import ChainArch, ChainSpace, out_side
from nas_lab.strategies.wrappers import HARD, MnasNetObjective, mnasnet_reward

SPACE = ChainSpace()


class Sleeper(nn.Module):
    """A model that computes nothing and waits 2 ms: a known answer for the two clocks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.002)
        return x


# ---- 1. measuring --------------------------------------------------------------------------------


def test_the_wall_clock_counts_waiting_and_the_cpu_clock_does_not():
    wall = hw.measure_latency(Sleeper(), (1, 1, 2, 2), warmup=1, repeats=3)
    cpu = hw.measure_latency(Sleeper(), (1, 1, 2, 2), warmup=1, repeats=3, clock="cpu")
    assert wall >= 2.0  # sleep never returns early
    assert cpu < 1.0


def test_time_forward_with_the_benchmark_builders_autorange_protocol():
    x = torch.zeros(1, 1, 2, 2)
    assert hw.time_forward(Sleeper(), x, warmup=0, min_run_time=0.01) >= 2.0
    with pytest.raises(ValueError, match="min_run_time must be a number of seconds > 0"):
        hw.time_forward(Sleeper(), x, min_run_time=0)


def test_measure_latency_restores_the_model_and_refuses_bad_input():
    net = SPACE.build(SPACE.sample(0), seed=0).train()
    ms = hw.measure_latency(net, (1, 1, 8, 8), warmup=1, repeats=2, clock="cpu")
    assert ms > 0 and net.training
    with pytest.raises(ValueError, match="batch dimension first"):
        hw.measure_latency(net, (8, 8, 0))
    with pytest.raises(ValueError, match="clock must be one of"):
        hw.measure_latency(net, (1, 1, 8, 8), clock="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no GPU is visible"):
            hw.measure_latency(net, (1, 1, 8, 8), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_measure_latency_on_cuda_leaves_the_callers_model_on_the_cpu():
    net = SPACE.build(SPACE.sample(0), seed=0)
    assert hw.measure_latency(net, (1, 1, 8, 8), device="cuda", warmup=2, repeats=3) > 0
    assert next(net.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="clock='cpu' times CPU work only"):
        hw.measure_latency(net, (1, 1, 8, 8), device="cuda", clock="cpu")


def test_measurement_is_the_lower_layer():
    """The hardware package imports no search method: ProxylessNAS (oneshot) and MnasNet's
    objective (strategies) build on it, never the other way round."""
    import ast
    from pathlib import Path

    for path in Path(hw.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            wrong = [n for n in names if n.startswith(("nas_lab.oneshot", "nas_lab.strategies"))]
            assert not wrong, f"{path.name} imports {wrong}"


# ---- 2. the lookup table and 3. the learned predictor --------------------------------------------


def fake_table(seed: int = 0) -> hw.LatencyTable:
    """A table of made-up but fixed latencies for every spec of the default space."""
    rng = np.random.default_rng(seed)
    table = hw.LatencyTable(measure_missing=False)
    size, c_in = 8, 16
    for width, stride in zip(SPACE.widths, SPACE.strides, strict=True):
        after = out_side(size, stride)
        for k, e in itertools.product(SPACE.kernels, SPACE.expansions):
            table.blocks[hw.BlockSpec(c_in, width, k, e, stride, size)] = rng.uniform(0.05, 0.3)
            table.blocks[hw.BlockSpec(width, width, k, e, 1, after)] = rng.uniform(0.05, 0.3)
        c_in, size = width, after
    table.ends["default"] = 0.1
    return table


def test_table_predicts_the_ends_plus_the_sum_of_its_blocks(tmp_path):
    table = fake_table()
    arch = SPACE.from_string("k3e4-k5e6|k7e3-k3e3-k5e6|k3e4-k3e4")
    specs = hw.block_specs(SPACE.build(arch))
    assert [s.size for s in specs] == [8, 8, 8, 4, 4, 4, 2]  # strides 1, 2, 2
    assert table.predict(SPACE.build(arch)) == approx(0.1 + sum(table.blocks[s] for s in specs))
    with pytest.raises(KeyError, match="not in the latency table"):
        table.block(hw.BlockSpec(3, 3, 3, 3, 1, 3))
    table.to_json(tmp_path / "t.json")
    again = hw.LatencyTable.from_json(tmp_path / "t.json")
    assert again.blocks == table.blocks and again.ends == table.ends


def test_a_learned_predictor_recovers_an_additive_table_exactly():
    """The table's sum is linear in block_features, so ridge 0 must recover it on unseen nets."""
    table = fake_table(1)
    archs = [SPACE.sample(seed) for seed in range(120)]
    x = np.array([hw.block_features(SPACE, a) for a in archs])
    y = np.array([table.predict(SPACE.build(a)) for a in archs])
    model = hw.LearnedLatencyPredictor(ridge=0.0).fit(x[:90], y[:90])
    assert model.predict(x[90:]) == approx(y[90:], abs=1e-9)


def test_ridge_matches_scikit_learn():
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=30)
    ours = hw.LearnedLatencyPredictor(ridge=2.0).fit(x, y)
    theirs = Ridge(alpha=2.0).fit(x, y)
    assert ours.weights == approx(theirs.coef_) and ours.intercept == approx(theirs.intercept_)
    with pytest.raises(ValueError, match="not fitted yet"):
        hw.LearnedLatencyPredictor().predict(x)
    with pytest.raises(ValueError, match="one row per measured latency"):
        hw.LearnedLatencyPredictor().fit(x, y[:5])


def test_block_features_count_first_blocks_and_the_rest():
    arch = ChainArch.from_string("k3e3-k3e3-k3e3|k5e4-k3e3|k7e6-k7e6")
    f = hw.block_features(SPACE, arch).reshape(3, 2, 9)
    assert f[0, 0, 0] == 1 and f[0, 1, 0] == 2  # (3, 3) first, then twice
    assert f[1, 0, 4] == 1 and f[1, 1, 0] == 1  # (5, 4) first, then (3, 3)
    assert f[2, 0, 8] == 1 and f[2, 1, 8] == 1
    assert f.sum() == 7


def test_prediction_errors_known_answer():
    from scipy.stats import kendalltau

    errors = hw.prediction_errors([1.1, 1.8, 3.0], [1.0, 2.0, 3.0])
    assert errors["mape"] == approx((0.1 + 0.1 + 0.0) / 3)
    assert errors["max_rel"] == approx(0.1)
    assert errors["rmse_ms"] == approx(np.sqrt((0.01 + 0.04) / 3))
    assert errors["kendall_tau"] == approx(kendalltau([1.1, 1.8, 3.0], [1, 2, 3]).statistic)


# ---- 4. FLOPs and bytes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "c_in, c_out, k, side, stride, groups",
    [(16, 32, 3, 8, 1, 1), (24, 24, 5, 7, 2, 24), (8, 8, 1, 4, 1, 1), (12, 12, 7, 9, 1, 12)],
)
def test_conv_cost_counts_torchs_flops(c_in, c_out, k, side, stride, groups):
    conv = nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, groups=groups, bias=False)
    cost = hw.conv_cost(c_in, c_out, k, side, stride, groups)
    assert cost["flops"] == count_flops(conv, (1, c_in, side, side))
    out = conv(torch.zeros(1, c_in, side, side))
    values = side * side * c_in + conv.weight.numel() + out.numel()
    assert cost["bytes"] == 4 * values


def test_depthwise_has_channels_times_lower_intensity_for_similar_bytes():
    dense, depthwise = hw.conv_cost(64, 64, 3, 8), hw.conv_cost(64, 64, 3, 8, groups=64)
    assert dense["flops"] == 64 * depthwise["flops"]
    assert depthwise["intensity"] < dense["intensity"] / 10


def test_layer_costs_cover_every_convolution_of_the_network():
    net = SPACE.build("k3e4-k5e6|k7e3-k3e3-k5e6|k3e4-k3e4", seed=0)
    rows = hw.layer_costs(net)
    roles = [r["role"] for r in rows]
    assert roles.count("depthwise") == 7 and roles[0] == "stem" and roles[-1] == "head"
    linear = 2 * net.classifier.in_features * net.classifier.out_features
    assert sum(r["flops"] for r in rows) + linear == count_flops(net, (1, 1, 8, 8))


# ---- 5. the MnasNet reward -----------------------------------------------------------------------


def test_mnasnet_reward_known_values():
    assert mnasnet_reward(0.9, 10.0, 10.0) == approx(0.9)
    assert mnasnet_reward(0.9, 5.0, 10.0) == approx(0.9 * 0.5**-0.07)  # faster: a bonus
    assert mnasnet_reward(0.9, 20.0, 10.0) == approx(0.9 * 2.0**-0.07)
    assert mnasnet_reward(0.9, 5.0, 10.0, **HARD) == approx(0.9)  # no bonus below
    assert mnasnet_reward(0.9, 20.0, 10.0, **HARD) == approx(0.45)  # steep above
    # Section 3: twice the latency must buy about 5% more accuracy to break even
    assert mnasnet_reward(0.9 * 2**0.07, 20.0, 10.0) == approx(mnasnet_reward(0.9, 10, 10))
    with pytest.raises(ValueError, match="must be positive"):
        mnasnet_reward(0.9, 0.0, 10.0)
    with pytest.raises(ValueError, match="accuracy must be a finite number"):
        mnasnet_reward(float("nan"), 1.0, 10.0)


def test_mnasnet_objective_tells_the_strategy_the_reward():
    from nas_lab.bench import Result

    class Recorder:
        def __init__(self):
            self.told = []

        def ask(self):
            return "cell"

        def tell(self, cell, result):
            self.told.append(result.val_acc)

    inner = Recorder()
    objective = MnasNetObjective(inner, target=2.0, **HARD)
    for acc, lat in [(0.9, 1.0), (0.95, 4.0)]:
        result = Result("a", acc, acc, 0.1, 1.0, 4, 100, 1000, lat)
        objective.tell(objective.ask(), result)
    assert inner.told == approx([0.9, 0.95 * 0.5])
    assert objective.best["val_acc"] == 0.9 and objective.history[1]["latency_ms"] == 4.0


# ---- 6. ProxylessNAS's expected latency ----------------------------------------------------------


def test_expected_latency_and_its_gradient_closed_form():
    torch.manual_seed(0)
    logits = torch.randn(4, 3, requires_grad=True)
    lat = torch.rand(4, 3) + 0.1
    e = proxylessnas.expected_latency(logits, lat)
    p = torch.softmax(logits, dim=-1)
    assert e.item() == approx((p * lat).sum().item())
    e.backward()
    per_block = (p * lat).sum(dim=-1, keepdim=True)
    assert torch.allclose(logits.grad, p * (lat - per_block), atol=1e-6)
    with pytest.raises(ValueError, match="blocks, candidates"):
        proxylessnas.expected_latency(torch.zeros(3), torch.zeros(3))


def test_a_heavy_latency_weight_derives_the_fastest_candidates():
    space = ChainSpace(depths=(1,), kernels=(3, 7), expansions=(3,))
    table = hw.LatencyTable(measure_missing=False)
    size, c_in = 8, 16
    for width, stride in zip(space.widths, space.strides, strict=True):
        table.blocks[hw.BlockSpec(c_in, width, 3, 3, stride, size)] = 1.0  # k3 slow here
        table.blocks[hw.BlockSpec(c_in, width, 7, 3, stride, size)] = 0.1
        c_in, size = width, out_side(size, stride)
    splits = data.load("digits", seed=0, train_fraction=0.1)
    out = proxylessnas.latency_aware_search(
        space, splits, table, [(3, 3), (7, 3)], latency_weight=20.0, epochs=2, seed=0
    )
    assert out["derived"] == [(7, 3)] * 3
    assert out["expected_latency_ms"] < out["uniform_latency_ms"]
    tiny = data.load("digits", seed=0, train_fraction=0.05)
    runs = [
        proxylessnas.latency_aware_search(
            space, tiny, table, [(3, 3), (7, 3)], 1.0, epochs=1, seed=3
        )
        for _ in range(2)
    ]
    assert np.array_equal(runs[0]["probs"], runs[1]["probs"])  # same seed, same result


# ---- 7. the roofline model -----------------------------------------------------------------------


def test_roofline_known_answers():
    profile = hw.DeviceProfile("toy", peak_gflops=1.0, bandwidth_gbs=1.0, overhead_us=0.0)
    assert hw.layer_time_ms(2e6, 1e6, profile) == approx(2.0)  # compute-bound: 2e6 / 1e9 s
    assert hw.layer_time_ms(1e6, 3e6, profile) == approx(3.0)  # memory-bound
    slow_launch = hw.DeviceProfile("toy", 1.0, 1.0, overhead_us=500.0)
    assert hw.layer_time_ms(1e6, 1e6, slow_launch) == approx(1.5)
    net = SPACE.build(SPACE.sample(3), seed=0)
    rows = hw.layer_costs(net)
    expected = sum(max(r["flops"], r["bytes"]) / 1e9 * 1e3 for r in rows)
    assert hw.roofline_latency(net, profile) == approx(expected)
    assert profile.ridge_intensity == 1.0


# ---- 8. the Pareto pick (lesson 09's widget) -----------------------------------------------------


def test_pareto_pick_against_brute_force():
    rng = np.random.default_rng(0)
    lat, acc = rng.uniform(1, 10, 60).round(1), rng.uniform(0.5, 1, 60).round(2)
    out = pareto_pick(lat, acc, limit=4.0)
    dominated = [
        any(
            (lat[j] <= lat[i] and acc[j] >= acc[i]) and (lat[j] < lat[i] or acc[j] > acc[i])
            for j in range(60)
        )
        for i in range(60)
    ]
    front = {i for i in range(60) if not dominated[i]}
    assert set(out["front"]) == front
    assert list(lat[out["front"]]) == sorted(lat[out["front"]])
    feasible = lat <= 4.0
    assert out["feasible"] == feasible.sum()
    assert acc[out["pick"]] == acc[feasible].max() and lat[out["pick"]] <= 4.0
    assert pareto_pick(lat, acc, limit=0.5)["pick"] is None


def test_latency_limit_explorer_reacts_to_the_slider():
    from nas_lab import widgets

    lat, acc = [1.0, 2.0, 3.0, 4.0], [0.5, 0.7, 0.6, 0.9]
    box = widgets.latency_limit_explorer(lat, acc, ["a", "b", "c", "d"])
    slider, summary = box.children[0], box.children[1]
    slider.value = 2.5
    before = summary.value
    assert "b" in before
    slider.value = 4.0
    assert summary.value != before and "d" in summary.value
