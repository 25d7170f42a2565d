"""Compound scaling (Tan & Le, ICML 2019): the rule, the grid search, matched baselines, and
EfficientNet-B0 to B7 rebuilt from this library's blocks and checked against torchvision."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from pytest import approx

from nas_lab import scaling
from nas_lab.cost import count_flops, count_params
from nas_lab.scaling.efficientnet import (
    efficientnet_variant,
    load_torchvision_weights,
    torchvision_names,
)
from nas_lab.spaces.mbconv import ChainArch, ChainSpace, MBConvBlock, SqueezeExcite

BASE = scaling.BaseNet.default()


# ---- the rule ------------------------------------------------------------------------------


def test_compound_multipliers_are_powers_of_the_coefficients():
    assert scaling.compound_multipliers(0) == (1.0, 1.0, 1.0)
    assert scaling.compound_multipliers(1) == approx(scaling.PAPER_COEFFICIENTS)
    d, w, r = scaling.compound_multipliers(2.5, 1.3, 1.05, 1.2)
    assert (d, w, r) == approx((1.3**2.5, 1.05**2.5, 1.2**2.5))


def test_the_paper_coefficients_about_double_the_flops():
    # Section 3.3: alpha beta^2 gamma^2 ~ 2; 1.2 * 1.1^2 * 1.15^2 = 1.92027
    assert scaling.flops_factor(*scaling.PAPER_COEFFICIENTS) == approx(1.92027, abs=1e-5)


@pytest.mark.parametrize("bad", [float("nan"), "1", True, None])
def test_bad_phi_is_refused_with_a_message(bad):
    with pytest.raises(ValueError, match="phi must be a finite number"):
        scaling.compound_multipliers(bad)


def test_bad_coefficients_are_refused():
    with pytest.raises(ValueError, match="alpha must be > 0"):
        scaling.compound_multipliers(1, alpha=0)
    with pytest.raises(ValueError, match="coefficient must be > 1"):
        scaling.implied_phi(2.0, 1.0)


def test_round_repeats_is_torchvisions_ceil():
    from torchvision.models.efficientnet import MBConvConfig

    for repeats, mult in itertools.product(range(1, 6), (1.0, 1.1, 1.2, 1.4, 1.8, 3.1)):
        assert scaling.round_repeats(repeats, mult) == MBConvConfig.adjust_depth(repeats, mult)


def test_scale_arch_repeats_each_stages_last_block():
    arch = ChainArch.from_string("k3e4-k5e6|k7e3")
    deeper = scaling.scale_arch(arch, 2.0)
    assert str(deeper) == "k3e4-k5e6-k5e6-k5e6|k7e3-k7e3"
    assert scaling.scale_arch(arch, 0.4) == ChainArch.from_string("k3e4|k7e3")


# ---- the base network and its counted FLOPs ---------------------------------------------------


@pytest.mark.parametrize("mult", [(1, 1, 1), (1.2, 1.1, 1.15), (1.0, 1.5, 1.0), (1, 1, 1.6)])
def test_meta_flops_equal_flops_counted_on_a_real_forward(mult):
    net = BASE.build(*mult, seed=0)
    assert BASE.flops(*mult) == count_flops(net, (1, 1, 8, 8))
    assert BASE.params(*mult) == count_params(net)


def test_config_reports_the_realised_network():
    config = BASE.config(1.2, 1.1, 1.15)
    # ceil(2 * 1.2) = 3 blocks; round(16 * 1.1) = 18 channels; round(8 * 1.15) = 9 pixels
    assert config.depths == (3, 3, 3)
    assert config.widths == (18, 26, 35)
    assert config.side == 9
    net = BASE.build(1.2, 1.1, 1.15)
    assert net.resolution == 9 and net.arch.depths == (3, 3, 3)
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_flops_grow_as_the_rule_says_where_rounding_is_exact():
    # Depth x2 doubles every stage exactly; the ends (stem, head) do not grow, so a bit less.
    growth = BASE.flops(depth=2.0) / BASE.flops()
    assert 1.7 < growth < 2.0
    # Resolution x2 multiplies every layer's FLOPs by 4 (classifier aside).
    assert BASE.flops(resolution=2.0) / BASE.flops() == approx(4.0, rel=0.01)


def test_same_seed_same_weights():
    a, b = BASE.build(1.2, 1.1, 1.15, seed=3), BASE.build(1.2, 1.1, 1.15, seed=3)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)


# ---- step 1: the grid search --------------------------------------------------------------------


def test_grid_candidates_are_exactly_the_grid_points_near_the_target():
    candidates = scaling.grid_candidates(step=0.1, target=2.0, tolerance=0.1)
    grid = [1 + i / 10 for i in range(11)]
    brute = [
        (a, b, g)
        for a, b, g in itertools.product(grid, repeat=3)
        if abs(a * b * b * g * g - 2) <= 0.1 + 1e-9
    ]
    assert np.allclose(candidates, brute) and len(candidates) == len(brute)
    assert candidates == sorted(candidates)


def test_grid_search_scores_each_distinct_network_once_best_first():
    calls = []

    def evaluate(config):  # a known answer: more pixels is better
        calls.append(config.key())
        return config.side + config.depths[0] / 100

    candidates = scaling.grid_candidates(step=0.1, tolerance=0.15)
    results = scaling.grid_search(BASE, candidates, evaluate)
    assert len(calls) == len(set(calls)) == len(results)
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    limit = BASE.flops() * 2.2
    limited = scaling.grid_search(BASE, candidates, evaluate, flops_limit=limit)
    assert all(r.config.flops <= limit for r in limited) and len(limited) < len(results)
    with pytest.raises(ValueError, match="raise flops_limit"):
        scaling.grid_search(BASE, candidates, evaluate, flops_limit=1)


# ---- step 2 and the matched baselines ---------------------------------------------------------


def test_single_dimension_multiplier_lands_next_to_the_target():
    target = BASE.config(*scaling.compound_multipliers(1)).flops
    for dimension in scaling.DIMENSIONS:
        m = scaling.single_dimension_multiplier(BASE, dimension, target)
        got = BASE.flops(**{dimension: m})
        # no multiplier on a fine grid lands closer (brute force)
        grid = [1 + i / 25 for i in range(41)]  # 1 to 2.6, past every target here
        best = min(abs(BASE.flops(**{dimension: x}) - target) for x in grid)
        assert abs(got - target) <= best
    with pytest.raises(ValueError, match="dimension must be one of"):
        scaling.single_dimension_multiplier(BASE, "height", target)


def test_matched_configs_change_one_dimension_each():
    configs = scaling.matched_configs(BASE, 1, scaling.PAPER_COEFFICIENTS)
    base = BASE.config()
    assert configs["depth only"].widths == base.widths and configs["depth only"].side == 8
    assert configs["width only"].depths == base.depths and configs["width only"].side == 8
    assert configs["resolution only"].depths == base.depths
    assert configs["resolution only"].widths == base.widths
    for config in configs.values():
        assert config.flops == approx(configs["compound"].flops, rel=0.15)


def test_describe_phi_matches_the_library():
    info = scaling.describe_phi(2.0)
    assert (info["depth"], info["width"], info["resolution"]) == approx((1.44, 1.21, 1.3225))
    assert info["flops"] == BASE.config(1.44, 1.21, 1.3225).flops
    assert info["rule_growth"] == approx(1.92027**2, rel=1e-4)
    assert info["counted_growth"] == approx(info["flops"] / BASE.flops())
    assert scaling.describe_phi(0)["counted_growth"] == 1.0


# ---- EfficientNet B0-B7 against torchvision ---------------------------------------------------


@pytest.fixture(scope="module")
def efficientnet_rows():
    return scaling.efficientnet_table()


def test_rebuilt_efficientnets_have_torchvisions_parameters_and_macs(efficientnet_rows):
    assert [r["variant"] for r in efficientnet_rows] == list(scaling.VARIANTS)
    for row in efficientnet_rows:
        assert row["ours_params"] == row["params"] == row["meta_params"]
        assert row["ours_gmacs"] == approx(row["gmacs"], abs=0.0015)  # torchvision rounds to 1e-3


def test_b2_is_phi_1_of_the_paper_coefficients_in_depth_and_width(efficientnet_rows):
    b2 = efficientnet_rows[2]
    assert (b2["width_mult"], b2["depth_mult"]) == (1.1, 1.2)
    assert b2["phi_depth"] == approx(1.0) and b2["phi_width"] == approx(1.0)
    for row in efficientnet_rows:  # every step up is at least as big in every dimension
        assert row["counted_growth"] >= 1.0
    growth = [r["counted_growth"] for r in efficientnet_rows]
    assert growth == sorted(growth)


def test_variants_train_and_normalise_as_torchvisions_do():
    # Read back from torchvision's own networks: the classifier's dropout, every BatchNorm's eps
    # and momentum (1e-3 and 0.01 in B5-B7), each block's stochastic-depth rate.
    for variant in scaling.VARIANTS:
        tv = scaling.torchvision_config(variant)
        with torch.device("meta"):
            net = efficientnet_variant(variant)
        norms = {(m.eps, m.momentum) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}
        assert norms == {(tv["bn_eps"], tv["bn_momentum"])}, variant
        assert net.dropout == tv["dropout"], variant
        assert tuple(block.drop_path for block in net.blocks()) == tv["drop_path"], variant
    assert scaling.torchvision_config("b5")["bn_eps"] == 1e-3


def _torchvision_efficientnet(variant, seed):
    """torchvision's network with random weights (none downloaded): random BatchNorm scales and
    shifts, running statistics measured on a random batch (so that eval mode neither explodes
    nor has every variance 1, where eps would hardly matter), in float64."""
    import torchvision.models as tvm

    torch.manual_seed(seed)
    tv = getattr(tvm, f"efficientnet_{variant}")(weights=None).double()
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in tv.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momentum = norms[0].momentum
    with torch.no_grad():
        for m in norms:
            m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: the statistics of the batch below
        tv.train()(torch.randn(8, 3, 64, 64, generator=generator, dtype=torch.float64))
    for m in norms:
        m.momentum = momentum
    x = torch.randn(2, 3, 64, 64, generator=generator, dtype=torch.float64)
    return tv.eval(), x


@pytest.fixture
def one_thread():
    """Big networks on a busy 2-core machine: one thread is many times faster than two."""
    from nas_lab.hardware import torch_threads

    with torch_threads(1):
        yield


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("variant", ["b0", "b5"])
def test_torchvision_weights_give_torchvisions_logits(variant):
    # 64 x 64 inputs keep it fast: the networks are fully convolutional up to the global pool.
    tv, x = _torchvision_efficientnet(variant, seed=0)
    ours = load_torchvision_weights(efficientnet_variant(variant).double(), tv.state_dict())
    ours.eval()
    with torch.no_grad():
        expected, got = tv(x), ours(x)
    assert expected.std() > 0.05 and expected.abs().max() < 100  # a non-degenerate test
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("variant", ["b0", "b5"])
def test_training_step_draws_and_updates_as_torchvision(variant):
    # Training mode: dropout and stochastic depth draw the same random numbers in the same order,
    # and BatchNorm's running statistics move by torchvision's momentum.
    tv, x = _torchvision_efficientnet(variant, seed=1)
    ours = load_torchvision_weights(efficientnet_variant(variant).double(), tv.state_dict())
    tv.train(), ours.train()
    outputs = []
    for net in (tv, ours):
        torch.manual_seed(7)
        with torch.no_grad():
            outputs.append(net(x))
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-9, atol=1e-9)
    names = torchvision_names(ours)
    theirs = tv.state_dict()
    for key, value in ours.state_dict().items():
        module, _, leaf = key.rpartition(".")
        torch.testing.assert_close(value, theirs[f"{names[module]}.{leaf}"], rtol=1e-9, atol=0)
    torch.manual_seed(8)  # another seed, other drops: the randomness is exercised
    with torch.no_grad():
        assert not torch.allclose(ours(x), outputs[1])


def test_loading_a_state_dict_of_another_variant_is_refused():
    import torchvision.models as tvm

    with torch.device("meta"):
        b1 = tvm.efficientnet_b1(weights=None).state_dict()
        b0 = efficientnet_variant("b0")
        with pytest.raises(ValueError, match="same variant"):
            load_torchvision_weights(b0, b1)
        with pytest.raises(ValueError, match="variant must be one of"):
            efficientnet_variant("b8")


def test_implied_phi_inverts_the_power():
    assert scaling.implied_phi(1.2**3.5, 1.2) == approx(3.5)
    assert math.isclose(scaling.implied_phi(1.0, 1.1), 0.0)


# ---- the MBConv family options this module relies on -----------------------------------------


def test_squeeze_excite_rescales_channels_by_a_sigmoid_of_their_mean():
    torch.manual_seed(0)
    se = SqueezeExcite(6, 2)
    x = torch.randn(3, 6, 5, 5)
    pooled = x.mean(dim=(2, 3), keepdim=True)
    expected = x * torch.sigmoid(se.expand(torch.relu(se.reduce(pooled)).clamp(max=6)))
    assert torch.allclose(se(x), expected, atol=1e-6)


def test_mbconv_options_and_their_errors():
    block = MBConvBlock(16, 16, 3, 4, 1, activation="swish", se_ratio=0.25)
    assert block.se is not None and block.se.reduce.out_channels == 4  # 0.25 of the input 16
    assert isinstance(block.depthwise[2], torch.nn.SiLU)
    assert MBConvBlock(16, 16, 3, 4, 1).se is None
    with pytest.raises(ValueError, match="unknown activation 'gelu'; choose one of"):
        MBConvBlock(16, 16, 3, 4, 1, activation="gelu")
    with pytest.raises(ValueError, match="se_ratio must be a number in"):
        MBConvBlock(16, 16, 3, 4, 1, se_ratio=2)
    with pytest.raises(ValueError, match="unknown activation"):
        ChainSpace(activation="tanh")
    with pytest.raises(ValueError, match="stem_stride must be 1 or 2"):
        ChainSpace(stem_stride=3)


def test_a_hard_swish_space_with_squeeze_excite_builds_and_runs():
    space = ChainSpace(activation="hswish", se_ratio=0.25, stem_stride=2, in_channels=3)
    net = space.build(space.sample(0), seed=0)
    assert net.stem[0].stride == (2, 2)
    assert net(torch.rand(2, 3, 16, 16)).shape == (2, 10)


# ---- training for real, and the phi explorer ----------------------------------------------------


def test_scaling_study_trains_each_config_and_repeats_with_its_seed():
    from nas_lab import data
    from nas_lab.hardware import torch_threads

    splits = data.load("digits", seed=0, train_fraction=0.1)
    configs = {"base": BASE.config(), "resolution only": BASE.config(resolution=1.5)}
    with torch_threads(1):  # as the lessons run: tiny networks are fastest on one thread
        rows = scaling.scaling_study(BASE, configs, splits, epochs=1, seeds=(0, 1))
        again = scaling.train_scaled(BASE, configs["base"], splits, epochs=1, seed=1)
    assert [(r["name"], r["seed"]) for r in rows] == [
        ("base", 0),
        ("base", 1),
        ("resolution only", 0),
        ("resolution only", 1),
    ]
    assert rows[2]["side"] == 12 and rows[2]["flops"] == BASE.flops(resolution=1.5)
    assert all(0 <= r["val_acc"] <= 1 and 0 <= r["test_acc"] <= 1 for r in rows)
    assert again["val_acc"] == rows[1]["val_acc"]  # same seed, same result


def test_phi_explorer_redraws_when_phi_moves():
    from nas_lab import widgets

    box = widgets.phi_explorer()
    slider, summary = box.children
    before = summary.value
    slider.value = 3.0
    assert summary.value != before and "phi = 3.00" in summary.value
    assert f"{scaling.describe_phi(3.0)['flops']:,} FLOPs" in summary.value
