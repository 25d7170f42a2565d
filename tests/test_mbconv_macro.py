"""The MBConv chain space and the macro space: counting, sampling, mutation, encoding, networks.

The references here are independent of the code under test: parameter and FLOP counts are written
out by hand from the layer shapes, space sizes are checked by brute-force enumeration over a
superset of candidates, and mutations are checked by comparing the choices one by one.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas_lab.cost import count_flops, count_params
from nas_lab.device import default_device
from nas_lab.spaces.macro import MACRO_OPS, MacroArch, MacroSpace
from nas_lab.spaces.mbconv import (
    ChainArch,
    ChainNet,
    ChainSpace,
    MBConvBlock,
    Stage,
    make_divisible,
)

# =============================================================================================
# MBConv block: hand counts
# =============================================================================================


def test_block_params_and_flops_match_a_hand_count_stride_1():
    # 8 -> 8 channels, kernel 3, expansion 4: hidden = 32 channels, on an 8x8 input.
    block = MBConvBlock(8, 8, kernel=3, expansion=4, stride=1)
    expand = 8 * 32 + 2 * 32  # 1x1 weights (no bias) + BN gamma and beta
    depthwise = 3 * 3 * 32 + 2 * 32  # one 3x3 filter per channel + BN
    project = 32 * 8 + 2 * 8  # 1x1 weights + BN
    assert count_params(block) == expand + depthwise + project == 944

    pixels = 8 * 8  # stride 1: every conv runs at 8x8
    macs = pixels * 8 * 32 + pixels * 3 * 3 * 32 + pixels * 32 * 8
    assert count_flops(block, (1, 8, 8, 8)) == 2 * macs  # torch counts a multiply-add as 2


def test_block_params_and_flops_match_a_hand_count_stride_2():
    # 8 -> 16 channels, kernel 5, expansion 6: hidden = 48; the depthwise conv halves 8x8 to 4x4.
    block = MBConvBlock(8, 16, kernel=5, expansion=6, stride=2)
    params = (8 * 48 + 2 * 48) + (5 * 5 * 48 + 2 * 48) + (48 * 16 + 2 * 16)
    assert count_params(block) == params
    macs = 8 * 8 * 8 * 48 + 4 * 4 * 5 * 5 * 48 + 4 * 4 * 48 * 16
    assert count_flops(block, (1, 8, 8, 8)) == 2 * macs
    assert block(torch.zeros(2, 8, 8, 8)).shape == (2, 16, 4, 4)


def test_block_with_expansion_1_has_no_expand_conv():
    block = MBConvBlock(16, 16, kernel=3, expansion=1, stride=1)
    assert block.expand is None
    assert count_params(block) == (3 * 3 * 16 + 2 * 16) + (16 * 16 + 2 * 16)
    assert count_flops(block, (1, 16, 8, 8)) == 2 * (64 * 3 * 3 * 16 + 64 * 16 * 16)


@pytest.mark.parametrize(
    "c_in, c_out, stride, residual",
    [(8, 8, 1, True), (8, 16, 1, False), (8, 8, 2, False), (8, 16, 2, False)],
)
def test_residual_is_used_iff_stride_1_and_same_channels(c_in, c_out, stride, residual):
    block = MBConvBlock(c_in, c_out, kernel=3, expansion=3, stride=stride).eval()
    assert block.use_residual is residual
    # Zero the projection's BatchNorm: the body now outputs exactly 0, so what comes out is the
    # shortcut alone: the input itself with a residual, zeros without.
    bn = block.project[1]
    torch.nn.init.zeros_(bn.weight)
    torch.nn.init.zeros_(bn.bias)
    x = torch.randn(2, c_in, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = block(x)
    if residual:
        assert torch.equal(out, x)
    else:
        assert torch.count_nonzero(out) == 0


def _copy_block(block, **options):
    twin = MBConvBlock(
        block.c_in, block.c_out, block.kernel, block.expansion, block.stride, **options
    )
    twin.load_state_dict(block.state_dict())
    return twin


def test_drop_path_zeroes_whole_samples_of_the_residual_branch_in_training_only():
    # Stochastic depth (Huang et al., ECCV 2016): each sample keeps its residual branch with
    # probability 1 - p, scaled by 1 / (1 - p), or loses it; evaluation keeps every branch.
    torch.manual_seed(0)
    block = MBConvBlock(8, 8, kernel=3, expansion=3, stride=1, drop_path=0.5)
    x = torch.randn(64, 8, 6, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        branch = _copy_block(block).train()(x) - x  # training-mode BatchNorm, nothing dropped
        torch.manual_seed(2)
        out = block.train()(x)
        torch.manual_seed(2)
        again = block(x)
        kept = ((out - x) - 2 * branch).abs().amax(dim=(1, 2, 3)) < 1e-5
        dropped = (out == x).all(dim=(1, 2, 3))
        assert torch.equal(kept, ~dropped) and 16 < int(kept.sum()) < 48
        assert torch.equal(out, again)  # the draws follow the global seed
        assert torch.equal(block.eval()(x), _copy_block(block).eval()(x))
        everything = _copy_block(block, drop_path=1.0).train()
        assert torch.equal(everything(x), x)
        # A block without a residual has no branch to drop.
        plain = MBConvBlock(8, 16, kernel=3, expansion=3, stride=1, drop_path=0.5).train()
        assert torch.equal(plain(x), _copy_block(plain).train()(x))


def test_chain_net_options_reach_every_layer_and_default_to_pytorchs():
    space = ChainSpace()
    arch = space.from_string("k3e6-k5e4|k7e3-k3e3-k5e6|k3e4-k3e4")
    widths, strides = (16, 24, 32), (1, 2, 2)
    shape = {"stem_channels": 16, "head_channels": 64, "num_classes": 10}
    net = ChainNet(arch, widths, strides, **shape, bn_eps=1e-3, bn_momentum=0.01, drop_path=0.2)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 2 + 3 * 7  # stem, head, three per block (every block expands)
    assert {(m.eps, m.momentum) for m in norms} == {(1e-3, 0.01)}
    assert [b.drop_path for b in net.blocks()] == [0.2 * i / 7 for i in range(7)]
    default = space.build(arch, seed=0)
    assert {
        (m.eps, m.momentum) for m in default.modules() if isinstance(m, torch.nn.BatchNorm2d)
    } == {(1e-5, 0.1)}
    # By default a training step draws no random numbers: lessons' runs are unchanged.
    torch.manual_seed(3)
    default.train()(torch.rand(4, 1, 8, 8))
    after = torch.rand(1)
    torch.manual_seed(3)
    torch.rand(4, 1, 8, 8)
    assert torch.equal(after, torch.rand(1))
    for name, bad in [("dropout", 1.5), ("drop_path", -0.1), ("bn_momentum", 2), ("bn_eps", 0)]:
        with pytest.raises(ValueError, match=name):
            ChainNet(arch, widths, strides, **shape, **{name: bad})
    with pytest.raises(ValueError, match="drop_path must be a number in"):
        MBConvBlock(8, 8, kernel=3, expansion=3, stride=1, drop_path=True)


def test_bad_block_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="stride must be 1 or 2"):
        MBConvBlock(8, 8, kernel=3, expansion=3, stride=3)
    with pytest.raises(ValueError, match="kernel must be odd"):
        MBConvBlock(8, 8, kernel=4, expansion=3, stride=1)
    with pytest.raises(ValueError, match="expansion must be an integer >= 1"):
        MBConvBlock(8, 8, kernel=3, expansion=0, stride=1)


# =============================================================================================
# Chain architectures: immutable, hashable, printable
# =============================================================================================


def test_chain_string_format_parses_as_documented():
    arch = ChainArch.from_string("k3e6-k5e4|k7e3-k3e3-k5e6")
    assert arch == ChainArch((Stage((3, 5), (6, 4)), Stage((7, 3, 5), (3, 3, 6))))
    assert arch.depths == (2, 3)
    assert str(arch) == "k3e6-k5e4|k7e3-k3e3-k5e6"


def test_chain_round_trip_and_hashing():
    space = ChainSpace()
    archs = [space.sample(seed) for seed in range(30)]
    for arch in archs:
        assert ChainArch.from_string(str(arch)) == arch
        assert space.from_string(str(arch)) == arch
    # Equal architectures hash equally, even when built from lists or numpy integers.
    same = ChainArch([Stage([np.int64(3)], [6])])
    assert hash(same) == hash(ChainArch((Stage((3,), (6,)),)))
    assert len({*archs, *archs}) == len(set(archs))
    with pytest.raises(dataclasses.FrozenInstanceError):
        archs[0].stages = ()


def test_chain_bad_strings_and_stages_raise_clear_errors():
    with pytest.raises(ValueError, match=r"stage 0, block 1: 'k5x4'.*k<kernel>e<expansion>"):
        ChainArch.from_string("k3e6-k5x4|k3e3")
    with pytest.raises(ValueError, match="expected a string"):
        ChainArch.from_string("")
    with pytest.raises(ValueError, match="stage 1: kernels\\[0\\] must be odd"):
        ChainArch.from_string("k3e6|k4e6")
    with pytest.raises(ValueError, match="one expansion per kernel"):
        Stage((3, 5), (6,))
    with pytest.raises(ValueError, match="at least one block"):
        Stage((), ())


def test_validate_names_the_stage_block_and_valid_choices():
    space = ChainSpace()
    with pytest.raises(
        ValueError, match=r"stages\[1\]\.kernels\[0\] = 9 is not one of \(3, 5, 7\)"
    ):
        space.from_string("k3e6-k3e6|k9e6-k3e6|k3e6-k3e6")
    with pytest.raises(ValueError, match=r"stages\[2\]\.expansions\[1\] = 2 .*\(3, 4, 6\)"):
        space.from_string("k3e6-k3e6|k3e6-k3e6|k3e6-k3e2")
    with pytest.raises(ValueError, match=r"stages\[0\] has depth 5, not one of \(2, 3, 4\)"):
        space.from_string("k3e6-k3e6-k3e6-k3e6-k3e6|k3e6-k3e6|k3e6-k3e6")
    with pytest.raises(ValueError, match="this space has 3 stages, got 2"):
        space.from_string("k3e6-k3e6|k3e6-k3e6")
    with pytest.raises(ValueError, match="one stride per stage width"):
        ChainSpace(widths=(16, 24), strides=(1, 2, 2))
    with pytest.raises(ValueError, match="numpy Generator or an integer seed"):
        space.sample("zero")


# =============================================================================================
# Chain space: counting, sampling, mutation, encoding
# =============================================================================================


def _tiny_chain_space() -> ChainSpace:
    return ChainSpace(
        kernels=(3, 5), expansions=(3, 6), depths=(1, 2), widths=(8, 8), strides=(1, 2)
    )


def test_chain_size_matches_brute_force_enumeration():
    space = _tiny_chain_space()
    # Enumerate a superset (depth up to 3, kernel 7 too) and keep what the space accepts.
    blocks = [f"k{k}e{e}" for k in (3, 5, 7) for e in (3, 6)]
    stage_strings = [
        "-".join(combo) for d in (1, 2, 3) for combo in itertools.product(blocks, repeat=d)
    ]
    valid = set()
    for stages in itertools.product(stage_strings, repeat=2):
        try:
            valid.add(space.from_string("|".join(stages)))
        except ValueError:
            pass
    assert len(valid) == space.size() == (2 * 2 + (2 * 2) ** 2) ** 2 == 400
    assert set(space) == valid and len(list(space)) == 400


def test_chain_sample_is_seeded_and_reaches_every_architecture():
    space = ChainSpace()
    assert [str(space.sample(s)) for s in range(5)] == [str(space.sample(s)) for s in range(5)]
    assert len({space.sample(s) for s in range(20)}) == 20
    rng_a, rng_b = np.random.default_rng(7), np.random.default_rng(7)
    assert [space.sample(rng_a) for _ in range(5)] == [space.sample(rng_b) for _ in range(5)]

    tiny = ChainSpace(kernels=(3, 5), expansions=(6,), depths=(1, 2), widths=(8,), strides=(1,))
    rng = np.random.default_rng(0)
    assert {tiny.sample(rng) for _ in range(200)} == set(tiny) and tiny.size() == 6


def _chain_difference(a: ChainArch, b: ChainArch) -> list[str]:
    """Every choice that differs between two architectures of the same space."""
    diffs = []
    for s, (sa, sb) in enumerate(zip(a.stages, b.stages, strict=True)):
        if sa.depth != sb.depth:
            diffs.append(f"depth {s}")
        for i in range(min(sa.depth, sb.depth)):
            diffs += [f"kernel {s}.{i}"] * (sa.kernels[i] != sb.kernels[i])
            diffs += [f"expansion {s}.{i}"] * (sa.expansions[i] != sb.expansions[i])
    return diffs


def test_chain_mutate_changes_exactly_one_choice():
    space = ChainSpace()
    rng = np.random.default_rng(0)
    kinds = Counter()
    for _ in range(300):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        space.validate(child)
        diffs = _chain_difference(parent, child)
        assert len(diffs) == 1, (str(parent), str(child), diffs)
        kinds[diffs[0].split()[0]] += 1
    assert set(kinds) == {"depth", "kernel", "expansion"}
    parent = space.sample(3)
    assert space.mutate(parent, 11) == space.mutate(parent, 11)
    with pytest.raises(ValueError, match="nothing to mutate"):
        single = ChainSpace(kernels=(3,), expansions=(6,), depths=(2,))
        single.mutate(single.sample(0), 0)


def test_chain_encoding_is_fixed_length_one_hot_and_invertible():
    space = ChainSpace()
    arch = space.from_string("k3e6-k5e4|k7e3-k3e3-k5e6|k3e4-k3e4-k3e4-k3e4")
    vec = space.encode(arch)
    assert vec.shape == (3 * 4 * (3 + 3),)
    slots = vec.reshape(3, 4, 6)
    assert slots[0, 0].tolist() == [1, 0, 0, 0, 0, 1]  # kernel 3, expansion 6
    assert slots[1, 2].tolist() == [0, 1, 0, 0, 0, 1]  # kernel 5, expansion 6
    assert not slots[0, 2:].any() and not slots[1, 3].any()  # slots beyond the depth are empty
    assert (slots[2].sum(axis=1) == 2).all()

    tiny = _tiny_chain_space()
    codes = {space_code.tobytes() for space_code in map(tiny.encode, tiny)}
    assert len(codes) == tiny.size()  # distinct architectures, distinct vectors
    assert all(tiny.decode(tiny.encode(a)) == a for a in tiny)


# =============================================================================================
# Chain networks
# =============================================================================================


def test_chain_net_forward_shape_on_default_device():
    space = ChainSpace()
    device = default_device()
    for seed, width_mult, resolution in [(0, 1.0, None), (1, 0.5, None), (2, 1.25, 12)]:
        net = space.build(space.sample(seed), width_mult, resolution, seed=seed).to(device)
        assert net(torch.zeros(3, 1, 8, 8, device=device)).shape == (3, 10)
    with pytest.raises(ValueError, match=r"expects a \(batch, 1, height, width\) tensor"):
        net(torch.zeros(3, 3, 8, 8, device=device))


def _hand_block_params(c_in: int, c_out: int, k: int, e: int) -> int:
    hidden = c_in * e
    expand = c_in * hidden + 2 * hidden if e != 1 else 0
    return expand + k * k * hidden + 2 * hidden + hidden * c_out + 2 * c_out


def test_chain_net_params_and_residuals_follow_the_stage_layout():
    space = ChainSpace()  # stem 16, widths 16/24/32, strides 1/2/2, head 64, 10 classes
    arch = space.from_string("k3e6-k5e4|k7e3-k3e3-k5e6|k3e4-k3e4")
    net = space.build(arch)
    blocks = [
        (16, 16, 3, 6),
        (16, 16, 5, 4),
        (16, 24, 7, 3),
        (24, 24, 3, 3),
        (24, 24, 5, 6),
        (24, 32, 3, 4),
        (32, 32, 3, 4),
    ]
    stem = 1 * 16 * 9 + 2 * 16
    head = 32 * 64 + 2 * 64 + 64 * 10 + 10
    assert count_params(net) == stem + sum(_hand_block_params(*b) for b in blocks) + head
    # Stage 0 keeps 16 channels at stride 1, so even its first block is residual.
    assert [b.use_residual for b in net.blocks()] == [True, True, False, True, True, False, True]


def test_make_divisible_follows_the_mobilenet_rule():
    assert make_divisible(8.0) == 8
    assert make_divisible(12.0) == 16  # rounds half up
    assert make_divisible(18.0) == 24  # 16 would lose more than 10%
    assert make_divisible(44.8) == 48
    assert make_divisible(3.0) == 8  # never below the divisor
    for value in np.linspace(4, 200, 97):
        out = make_divisible(float(value))
        assert out % 8 == 0 and out >= 0.9 * value and abs(out - value) <= 8
    with pytest.raises(ValueError, match="positive"):
        make_divisible(0)


def test_width_multiplier_scales_channels_as_documented():
    space = ChainSpace()
    arch = space.from_string("k3e3-k3e3|k3e3-k3e3|k3e3-k3e3")

    def channels(net):
        stem = net.stem[0].out_channels
        stages = tuple(stage[-1].project[0].out_channels for stage in net.stages)
        return stem, stages, net.head[0].out_channels

    assert channels(space.build(arch)) == (16, (16, 24, 32), 64)
    # 0.75: 12 -> 16, 18 -> 24 (16 is more than 10% short), 24 -> 24, 48 -> 48.
    assert channels(space.build(arch, width_mult=0.75)) == (16, (16, 24, 24), 48)
    # 0.5: 8 -> 8, 12 -> 16, 16 -> 16, 32 -> 32.
    assert channels(space.build(arch, width_mult=0.5)) == (8, (8, 16, 16), 32)
    assert count_params(space.build(arch, width_mult=2.0)) > count_params(space.build(arch))
    with pytest.raises(ValueError, match="width_mult must be a positive number"):
        space.build(arch, width_mult=0)


def test_resolution_scales_conv_flops_by_the_pixel_count():
    space = ChainSpace()
    arch = space.sample(5)
    base = count_flops(space.build(arch), (1, 1, 8, 8))
    double = count_flops(space.build(arch, resolution=16), (1, 1, 8, 8))
    # With strides 1/2/2 every conv sees 4x the pixels at 16x16; the final linear layer
    # (64 -> 10, 2 FLOPs per multiply-add) does not grow.
    linear = 2 * 64 * 10
    assert double - linear == 4 * (base - linear)
    with pytest.raises(ValueError, match="resolution must be an integer >= 1"):
        space.build(arch, resolution=0)


def test_build_seed_fixes_weights_and_leaves_global_rng_alone():
    space = ChainSpace()
    arch = space.sample(0)
    state = torch.random.get_rng_state()
    a, b = space.build(arch, seed=4), space.build(arch, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = space.build(arch, seed=5)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


# =============================================================================================
# Macro space
# =============================================================================================


def test_macro_string_format_parses_as_documented():
    arch = MacroArch.from_string("conv3x3~|sep_conv5x5~1|max_pool3x3~01|conv5x5~101")
    assert arch.ops == ("conv3x3", "sep_conv5x5", "max_pool3x3", "conv5x5")
    assert [arch.skip_sources(i) for i in range(4)] == [(), (0,), (1,), (0, 2)]
    space = MacroSpace()
    for seed in range(30):
        sample = space.sample(seed)
        assert MacroArch.from_string(str(sample)) == sample
    with pytest.raises(dataclasses.FrozenInstanceError):
        arch.ops = ()


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_macro_size_matches_brute_force_enumeration(num_layers):
    space = MacroSpace(num_layers=num_layers, ops=("conv3x3", "max_pool3x3"))
    # Superset: any of the 6 operations and any L-bit mask in every layer.
    valid = set()
    for ops in itertools.product(MACRO_OPS, repeat=num_layers):
        for masks in itertools.product(range(2**num_layers), repeat=num_layers):
            try:
                valid.add(space.validate(MacroArch(ops, masks)))
            except ValueError:
                pass
    assert len(valid) == space.size() == 2**num_layers * 2 ** (num_layers * (num_layers - 1) // 2)
    assert set(space) == valid


def test_macro_default_size_is_ops_to_the_L_times_two_to_the_skips():
    assert MacroSpace().size() == 6**4 * 2**6
    assert MacroSpace(num_layers=12).size() == 6**12 * 2**66  # ENAS's macro space


def test_macro_sample_is_seeded_and_covers_the_space():
    space = MacroSpace()
    assert [space.sample(s) for s in range(5)] == [space.sample(s) for s in range(5)]
    assert len({space.sample(s) for s in range(20)}) == 20
    tiny = MacroSpace(num_layers=2, ops=("conv3x3", "avg_pool3x3"))
    rng = np.random.default_rng(0)
    assert {tiny.sample(rng) for _ in range(200)} == set(tiny) and tiny.size() == 8


def test_macro_mutate_changes_exactly_one_choice():
    space = MacroSpace()
    rng = np.random.default_rng(1)
    kinds = Counter()
    for _ in range(300):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        space.validate(child)
        op_changes = sum(a != b for a, b in zip(parent.ops, child.ops, strict=True))
        bit_changes = sum(
            bin(a ^ b).count("1") for a, b in zip(parent.skips, child.skips, strict=True)
        )
        assert op_changes + bit_changes == 1, (str(parent), str(child))
        kinds["op" if op_changes else "skip"] += 1
    assert set(kinds) == {"op", "skip"}
    parent = space.sample(2)
    assert space.mutate(parent, 9) == space.mutate(parent, 9)


def test_macro_encoding_is_fixed_length_and_injective():
    space = MacroSpace(num_layers=3, ops=("conv3x3", "sep_conv3x3", "avg_pool3x3"))
    arch = MacroArch(("avg_pool3x3", "conv3x3", "sep_conv3x3"), (0, 1, 2))
    vec = space.encode(arch)
    assert vec.tolist() == [0, 0, 1, 1, 0, 0, 0, 1, 0] + [1, 0, 1]
    codes = {space.encode(a).tobytes() for a in space}
    assert len(codes) == space.size() == 27 * 8


def test_macro_net_params_and_flops_match_a_hand_count():
    space = MacroSpace(num_layers=4, channels=16)
    net = space.build("conv3x3~|sep_conv5x5~1|max_pool3x3~01|conv5x5~101")
    c = 16
    stem = 1 * c * 9 + 2 * c
    conv3 = c * c * 9 + 2 * c
    sep5 = c * 25 + c * c + 2 * c  # depthwise 5x5, pointwise 1x1, BN
    conv5 = c * c * 25 + 2 * c
    classifier = c * 10 + 10
    assert count_params(net) == stem + conv3 + sep5 + conv5 + classifier
    pixels = 8 * 8  # every layer keeps 8x8; pooling and the skip sums cost no multiply-adds
    macs = pixels * (1 * c * 9 + c * c * 9 + c * 25 + c * c + c * c * 25) + c * 10
    assert count_flops(net, (1, 1, 8, 8)) == 2 * macs


def test_macro_skips_are_summed():
    space = MacroSpace(num_layers=3, channels=8)
    net = space.build("avg_pool3x3~|max_pool3x3~1|conv3x3~11", seed=0).eval()
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out0, out1, out2 = net.forward_features(x)
        h = net.stem(x)
        assert torch.allclose(out0, F.avg_pool2d(h, 3, 1, 1, count_include_pad=False))
        assert torch.allclose(out1, F.max_pool2d(out0, 3, 1, 1) + out0)
        assert torch.allclose(out2, net.layers[2](out1) + out0 + out1)


def test_macro_net_forward_shape_on_default_device():
    device = default_device()
    space = MacroSpace()
    for seed in range(4):
        net = space.build(space.sample(seed), seed=seed).to(device)
        assert net(torch.zeros(3, 1, 8, 8, device=device)).shape == (3, 10)
    with pytest.raises(ValueError, match=r"expects a \(batch, 1, height, width\)"):
        net(torch.zeros(3, 8, 8, device=device))


def test_macro_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="layer 0: unknown operation 'conv7x7'; valid .*conv3x3"):
        MacroArch(("conv7x7",), (0,))
    with pytest.raises(ValueError, match=r"layer 1: skip mask 2 must be an integer in \[0, 2\)"):
        MacroArch(("conv3x3", "conv3x3"), (0, 2))
    with pytest.raises(ValueError, match="layer 1: 'conv3x3~01' should be .* 1 digits"):
        MacroArch.from_string("conv3x3~|conv3x3~01")
    with pytest.raises(ValueError, match="layer 0: 'conv3x3' should be '<operation>~'"):
        MacroArch.from_string("conv3x3|conv3x3~0")
    with pytest.raises(ValueError, match="unknown: \\['zero'\\]"):
        MacroSpace(ops=("conv3x3", "zero"))
    with pytest.raises(ValueError, match="this space has 3 layers, got 2"):
        MacroSpace(num_layers=3).from_string("conv3x3~|conv3x3~1")
    with pytest.raises(ValueError, match="layer 1: operation 'conv5x5' is not one of"):
        MacroSpace(num_layers=2, ops=("conv3x3",)).from_string("conv3x3~|conv5x5~1")
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        MacroSpace(num_layers=0)
