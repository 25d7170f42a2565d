"""Once-for-All (nas_lab.oneshot.ofa): known answers for the elastic kernel, width and depth,
extraction, BN recalibration, distillation, the search, and the shipped supernet's loading."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from nas_lab import data, hardware, pareto
from nas_lab.datafiles import manifest_path
from nas_lab.oneshot import ofa
from nas_lab.oneshot.ofa import store
from nas_lab.spaces.mbconv import ChainArch, ChainSpace

TINY = ChainSpace(depths=(1, 2), widths=(8, 16), strides=(1, 2), stem_channels=8, head_channels=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks on a shared CPU: one thread is fastest (and what the lessons use)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small_splits():
    return data.load("digits", seed=0, train_fraction=0.06)


def randomised(space: ChainSpace, seed: int = 0) -> ofa.OFASupernet:
    """A supernet whose BN statistics and transformation matrices are far from their
    initial values, so that equalities below cannot hold by accident."""
    torch.manual_seed(seed)
    net = ofa.OFASupernet(space)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()
        for name, p in net.named_parameters():
            if "transforms" in name:
                p.add_(0.2 * torch.randn_like(p))
    return net.eval()


# ---- elastic kernel -------------------------------------------------------------------------


def test_identity_transformation_gives_the_centre_crop():
    weight = torch.randn(6, 1, 7, 7)
    five = ofa.transform_kernel(weight, torch.eye(25))
    assert torch.equal(five, weight[:, :, 1:6, 1:6])
    three = ofa.transform_kernel(five, torch.eye(9))
    assert torch.equal(three, weight[:, :, 2:5, 2:5])


def test_transformation_is_one_matrix_per_layer_applied_to_each_channel():
    weight, matrix = torch.randn(4, 1, 5, 5), torch.randn(9, 9)
    got = ofa.transform_kernel(weight, matrix)
    for c in range(4):  # by hand: centre 3x3 flattened, times M^T
        row = weight[c, 0, 1:4, 1:4].reshape(9)
        assert torch.allclose(got[c, 0].reshape(9), matrix @ row, atol=1e-6)


def test_fresh_block_small_kernel_is_the_centre_of_the_big_one():
    block = ofa.ElasticMBConv(8, 8, 1).eval()
    big = block.depthwise[0].weight
    assert torch.equal(block.kernel_weight(5), big[:, :, 1:6, 1:6])
    assert torch.equal(block.kernel_weight(3, 12), big[:12, :, 2:5, 2:5])


def test_bad_kernel_inputs_are_named():
    with pytest.raises(ValueError, match=r"\(C, 1, K, K\)"):
        ofa.transform_kernel(torch.randn(3, 7, 7), torch.eye(25))
    with pytest.raises(ValueError, match="k\\*k"):
        ofa.transform_kernel(torch.randn(3, 1, 7, 7), torch.eye(24))
    with pytest.raises(ValueError, match="not one of"):
        ofa.ElasticMBConv(8, 8, 1).kernel_weight(9)


# ---- elastic width: channel sorting ---------------------------------------------------------


def test_channel_order_is_descending_l1_norm():
    weight = torch.zeros(3, 4, 1, 1)
    weight[:, 0, 0, 0] = torch.tensor([1.0, -1.0, 0.0])  # L1 2
    weight[:, 1, 0, 0] = torch.tensor([0.0, 0.0, -5.0])  # L1 5
    weight[:, 2, 0, 0] = torch.tensor([0.5, 0.5, 0.5])  # L1 1.5 (L2 ranks it below channel 3)
    weight[:, 3, 0, 0] = torch.tensor([0.0, 1.6, 0.0])  # L1 1.6
    assert ofa.channel_order(weight).tolist() == [1, 0, 3, 2]


def test_sorting_channels_keeps_the_function():
    net = randomised(TINY, seed=1)
    x = torch.randn(7, 1, 8, 8)
    before = net(x)
    net.sort_channels()
    assert torch.allclose(net(x), before, atol=1e-5)
    for blocks in net.stages:
        for block in blocks:
            norms = block.project[0].weight.abs().sum(dim=(0, 2, 3))
            assert torch.all(norms[:-1] >= norms[1:])


# ---- the supernet, extraction, recalibration ------------------------------------------------


def test_extracted_subnet_computes_what_the_supernet_computes():
    net = randomised(ChainSpace(), seed=2)
    x = torch.randn(5, 1, 8, 8)
    rng = np.random.default_rng(0)
    archs = [net.largest(), net.smallest()] + [net.space.sample(rng) for _ in range(4)]
    for arch in archs:
        net.set_active(arch)
        sub = ofa.extract_subnet(net, arch)
        assert str(sub.arch) == str(arch)
        assert torch.allclose(sub(x), net(x), atol=1e-5), str(arch)
        # a stand-alone ChainNet with exactly the subnet's parameters, no more
        fresh = net.space.build(arch)
        assert sum(p.numel() for p in sub.parameters()) == sum(
            p.numel() for p in fresh.parameters()
        )


def test_elastic_depth_runs_the_first_blocks():
    net = randomised(TINY, seed=3)
    arch = ChainArch.from_string("k3e3|k5e4")
    net.set_active(arch)
    x = torch.randn(2, 1, 8, 8)
    out = net(x)
    # Changing a block past the active depth changes nothing.
    with torch.no_grad():
        net.stages[0][1].expand[0].weight.mul_(5.0)
    assert torch.equal(net(x), out)


def test_set_active_rejects_archs_outside_the_space():
    net = ofa.OFASupernet(TINY)
    with pytest.raises(ValueError, match="depth"):
        net.set_active("k3e3-k3e3-k3e3|k3e3")
    with pytest.raises(ValueError, match="activation='relu6'"):
        ofa.OFASupernet(ChainSpace(se_ratio=0.25))


def test_recalibration_is_the_plain_average_of_batch_statistics():
    net = ofa.extract_subnet(randomised(TINY, seed=4), "k3e3|k5e4-k3e6")
    images = torch.rand(64, 1, 8, 8)
    ofa.recalibrate_bn(net, images, batch_size=32)
    with torch.no_grad():
        stem_out = net.stem[0](images)  # what the first BN sees
    halves = stem_out.split(32)
    mean = torch.stack([h.mean(dim=(0, 2, 3)) for h in halves]).mean(0)
    var = torch.stack([h.var(dim=(0, 2, 3), unbiased=True) for h in halves]).mean(0)
    bn = net.stem[1]
    assert torch.allclose(bn.running_mean, mean, atol=1e-5)
    assert torch.allclose(bn.running_var, var, atol=1e-4)
    assert bn.momentum == 0.1 and not net.training


# ---- distillation ---------------------------------------------------------------------------


def test_distillation_is_cross_entropy_plus_soft_cross_entropy():
    torch.manual_seed(0)
    s, t, y = torch.randn(6, 10), torch.randn(6, 10), torch.randint(0, 10, (6,))
    T = 3.0
    p = F.softmax(t / T, dim=1)
    # soft CE = KL(p || q) + H(p): cross-check against torch's KL divergence
    kl = F.kl_div(F.log_softmax(s / T, dim=1), p, reduction="batchmean")
    entropy = -(p * p.log()).sum(1).mean()
    expected = F.cross_entropy(s, y) + 0.5 * T**2 * (kl + entropy)
    got = ofa.distillation_loss(s, t, y, kd_ratio=0.5, temperature=T)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(ofa.distillation_loss(s, t, y, kd_ratio=0.0), F.cross_entropy(s, y))


def test_distillation_does_not_train_the_teacher():
    s, t = torch.randn(4, 10, requires_grad=True), torch.randn(4, 10, requires_grad=True)
    ofa.distillation_loss(s, t, torch.zeros(4, dtype=torch.long)).backward()
    assert t.grad is None and s.grad is not None


# ---- progressive shrinking ------------------------------------------------------------------


def test_phases_free_one_dimension_at_a_time():
    space = ChainSpace()
    sizes = [ofa.phase_space(space, phase).size() for phase in ofa.PHASES]
    assert sizes[0] == 1  # the largest network only
    assert sizes[1] == 3 ** (4 * 3)  # kernels free, depth 4, expansion 6
    assert sizes[2] == (3**2 + 3**3 + 3**4) ** 3
    assert sizes[3] == space.size()
    with pytest.raises(ValueError, match="phases are"):
        ofa.phase_space(space, "width")


def test_training_is_deterministic_per_seed(small_splits):
    recipe = ofa.ShrinkingRecipe(
        epochs={"largest": 1, "kernel": 1, "depth": 1, "expansion": 1}, scratch_epochs=1
    )
    nets = [
        ofa.train_supernet(TINY, small_splits, recipe, seed=s, progress=False)[0] for s in (0, 0, 1)
    ]
    a, b, c = (n.state_dict() for n in nets)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    # the kernel phase moved the transformation matrices away from the identity
    assert not torch.equal(a["stages.0.0.transforms.5to3"], torch.eye(9))


# ---- predictor, latency, search, front ------------------------------------------------------


def test_arch_block_specs_match_the_built_network():
    space = ChainSpace()
    for seed in range(3):
        arch = space.sample(seed)
        assert ofa.arch_block_specs(space, arch) == hardware.block_specs(space.build(arch))


def test_predictor_learns_an_additive_accuracy():
    space, rng = ChainSpace(), np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(300)]
    weights = rng.normal(size=space.encoding_length)
    target = np.array([space.encode(a) @ weights for a in archs]) * 0.01 + 0.9
    model = ofa.fit_predictor(space, archs[:200], target[:200], epochs=300, seed=0)
    rho = stats.spearmanr(model.predict(archs[200:]), target[200:]).statistic
    assert rho > 0.8
    again = ofa.fit_predictor(space, archs[:200], target[:200], epochs=300, seed=0)
    assert np.array_equal(again.predict(archs[:5]), model.predict(archs[:5]))


def test_evolution_finds_the_brute_force_best_under_the_limit():
    space = ChainSpace(
        kernels=(3, 5), expansions=(3, 6), depths=(1, 2), widths=(8, 8), strides=(1, 2)
    )
    everything = list(space)

    def score(arch):  # an additive "accuracy": bigger kernels and expansions help
        return sum(k / 5 + e / 6 for st in arch.stages for k, e in st.blocks)

    def latency(arch):  # each block costs its expansion
        return float(sum(e for st in arch.stages for _, e in st.blocks))

    limit = 15.0
    best = max(score(a) for a in everything if latency(a) <= limit)
    result = ofa.evolutionary_search(
        space,
        lambda archs: np.array([score(a) for a in archs]),
        latency,
        limit,
        population=30,
        generations=15,
        seed=0,
    )
    assert result.latency_ms <= limit
    assert result.accuracy == pytest.approx(best)
    assert np.all(np.diff(result.best_per_generation) >= 0)  # parents survive: never worse
    with pytest.raises(ValueError, match="raise the limit"):
        ofa.evolutionary_search(space, lambda a: np.zeros(len(a)), latency, 1.0, population=4)


def brute_front(lat, acc):
    """The non-dominated (latency, accuracy) values, by checking every pair."""
    points = set(zip(lat, acc, strict=True))
    return sorted(
        p
        for p in points
        if not any((q[0] <= p[0] and q[1] > p[1]) or (q[0] < p[0] and q[1] >= p[1]) for q in points)
    )


def test_pareto_front_and_best_under_limit_match_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(30):
        lat = rng.integers(1, 8, size=25).astype(float)  # ties on purpose
        acc = rng.integers(0, 6, size=25).astype(float)
        front = pareto.latency_front(lat, acc)
        assert sorted((lat[i], acc[i]) for i in front) == brute_front(lat, acc)
        assert np.all(np.diff(lat[front]) > 0)  # by increasing latency, one point per value
        for limit in (0.5, 2.0, 4.5, 9.0):
            inside = [i for i in range(25) if lat[i] <= limit]
            got = pareto.best_under_limit(lat, acc, limit)
            if not inside:
                assert got is None
            else:
                top = max(acc[i] for i in inside)
                fastest = min(lat[i] for i in inside if acc[i] == top)
                assert acc[got] == top and lat[got] == fastest


# ---- shipping -------------------------------------------------------------------------------


def test_save_verify_and_load(tmp_path):
    net = randomised(TINY, seed=5)
    path = tmp_path / "net.pt"
    manifest = ofa.save_supernet(net, path, {"losses": {}}, "test")
    assert set(manifest) >= {"sha256", "command", "nas_lab", "date"}
    loaded, read = ofa.load_supernet(path)
    assert read["sha256"] == manifest["sha256"]
    x = torch.randn(3, 1, 8, 8)
    for arch in (net.largest(), "k3e3|k5e4-k7e6"):
        net.set_active(arch)
        loaded.set_active(arch)
        assert torch.equal(net(x), loaded(x))
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ValueError, match="git checkout data/"):
        ofa.load_supernet(path)
    manifest_path(path).unlink()
    with pytest.raises(FileNotFoundError, match="nas-lab ofa build"):
        ofa.load_supernet(path)


def test_missing_supernet_is_trained_tiny_in_fast_mode(tmp_path, monkeypatch):
    calls = []

    def fake_train(space=None, splits=None, recipe=None, seed=0, progress=True):
        calls.append(recipe)
        return ofa.OFASupernet(TINY), {"losses": {}}

    monkeypatch.setattr(store, "train_supernet", fake_train)
    _, manifest = ofa.load_supernet(tmp_path / "none.pt", fast=True)
    assert manifest["trained_now"] and calls[0].epochs == ofa.ShrinkingRecipe.tiny().epochs


def test_shipped_supernet_matches_its_manifest():
    if not ofa.SUPERNET.exists():
        pytest.skip("no shipped supernet yet")
    manifest = json.loads(manifest_path(ofa.SUPERNET).read_text())
    assert manifest["bytes"] <= 10 * 2**20
    assert manifest["command"].startswith("nas-lab ofa build")
    assert len(manifest["scratch"]) >= 5
    net, _ = ofa.load_supernet()
    assert isinstance(net, ofa.OFASupernet)


def test_reference_subnets_are_distinct_and_seeded():
    a = ofa.reference_subnets(ChainSpace(), 6, seed=0)
    assert len(set(map(str, a))) == 6 and a == ofa.reference_subnets(ChainSpace(), 6, seed=0)
    assert list(itertools.islice(map(str, a), 2)) == [
        "k7e6-k7e6-k7e6-k7e6|k7e6-k7e6-k7e6-k7e6|k7e6-k7e6-k7e6-k7e6",
        "k3e3-k3e3|k3e3-k3e3|k3e3-k3e3",
    ]


def test_permuting_channels_keeps_the_function_and_checks_its_input():
    net = randomised(TINY, seed=6)
    x = torch.randn(4, 1, 8, 8)
    before = net(x)
    for blocks in net.stages:
        for block in blocks:
            block.permute_channels(torch.randperm(block.depthwise[0].out_channels))
    assert torch.allclose(net(x), before, atol=1e-5)
    with pytest.raises(ValueError, match="permutation"):
        net.stages[0][0].permute_channels(torch.zeros(24, dtype=torch.long))


def test_cli_verb_builds_to_the_given_path(tmp_path, monkeypatch):
    from nas_lab import cli

    seen = {}

    def fake_build(out, seed=0, fast=False, progress=True):
        seen.update(out=out, seed=seed, fast=fast)
        return {"bytes": 1, "sha256": "0" * 64, "seconds": {"total": 1.0}}

    monkeypatch.setattr(ofa, "build", fake_build)
    out = str(tmp_path / "s.pt")
    assert cli.main(["ofa", "build", "--out", out, "--seed", "3", "--fast"]) == 0
    assert seen == {"out": out, "seed": 3, "fast": True}
