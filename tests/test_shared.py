"""The one-home modules: Pareto fronts (pareto), shipped data and manifests (datafiles), MBConv
block geometry (mbconv.block_slots) and the clock's charge."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nas_lab import bench, datafiles, pareto
from nas_lab.spaces.mbconv import ChainSpace, block_slots, out_side


def brute_latency_front(lat, acc) -> set[int]:
    """Points no other point beats: none at most as slow and more accurate, or faster and as
    accurate; of exact duplicates, the first."""
    keep = set()
    for i in range(len(lat)):
        beaten = any(
            (lat[j] <= lat[i] and acc[j] > acc[i]) or (lat[j] < lat[i] and acc[j] >= acc[i])
            for j in range(len(lat))
        )
        duplicate = any(lat[j] == lat[i] and acc[j] == acc[i] for j in range(i))
        if not beaten and not duplicate:
            keep.add(i)
    return keep


def test_the_latency_front_and_the_pick_match_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(50):
        lat = rng.integers(1, 6, size=12).astype(float)  # small integers: many ties
        acc = rng.integers(0, 5, size=12) / 4
        front = pareto.latency_front(lat, acc)
        assert set(front) == brute_latency_front(lat, acc)
        assert list(lat[front]) == sorted(lat[front])
        for limit in (0.5, 2.0, 3.5, 9.0):
            pick = pareto.best_under_limit(lat, acc, limit)
            feasible = [i for i in range(12) if lat[i] <= limit]
            if not feasible:
                assert pick is None
                continue
            best = max(acc[i] for i in feasible)
            fastest = min(lat[i] for i in feasible if acc[i] == best)
            assert (acc[pick], lat[pick]) == (best, fastest) and pick in front


def test_the_m_objective_front_is_the_non_dominated_set():
    rng = np.random.default_rng(1)
    points = rng.integers(0, 4, size=(40, 3)).astype(float)
    dominated = {
        i for i, p in enumerate(points) if any(np.all(q >= p) and np.any(q > p) for q in points)
    }
    assert pareto.pareto_front(points, chunk=7) == sorted(set(range(40)) - dominated)
    with pytest.raises(ValueError, match="2-D array"):
        pareto.pareto_front([1.0, 2.0])
    with pytest.raises(ValueError, match="equal-length"):
        pareto.latency_front([1.0, 2.0], [0.5])
    info = pareto.pareto_pick([3.0, 1.0, 2.0], [0.9, 0.5, 0.9], limit=2.5)
    assert info == {"front": [1, 2], "pick": 2, "feasible": 2}


def test_the_data_directory_override_and_its_errors(tmp_path, monkeypatch):
    assert (datafiles.data_dir() / "nb201_digits.npz").exists()
    monkeypatch.setenv(datafiles.ENV, str(tmp_path))
    assert datafiles.data_file("x.npz") == tmp_path / "x.npz"
    monkeypatch.setenv(datafiles.ENV, str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="NAS_LAB_DATA"):
        datafiles.data_dir()


def test_a_manifest_is_written_then_checked(tmp_path):
    table = tmp_path / "t.npz"
    table.write_bytes(b"abc")
    manifest = datafiles.write_manifest(table, command="made by hand")
    assert manifest["bytes"] == 3 and manifest["command"] == "made by hand"
    assert json.loads((tmp_path / "t.manifest.json").read_text()) == manifest
    assert datafiles.read_manifest(table, "rebuild it") == manifest
    table.write_bytes(b"abd")
    with pytest.raises(ValueError, match="sha256 differs.*rebuild it"):
        datafiles.read_manifest(table, "rebuild it")
    assert datafiles.read_manifest(table, "rebuild it", verify=False) == manifest
    (tmp_path / "t.manifest.json").unlink()
    with pytest.raises(FileNotFoundError, match="manifest .* is missing; rebuild it"):
        datafiles.read_manifest(table, "rebuild it")
    with pytest.raises(FileNotFoundError, match="no file at .*absent"):
        datafiles.read_manifest(tmp_path / "absent.npz", "rebuild it")


def test_block_slots_are_the_geometry_of_the_built_network():
    space = ChainSpace()
    for seed in range(5):
        arch = space.sample(seed)
        net = space.build(arch)
        stem, _, widths = space.scaled_widths(1.0)
        slots = block_slots(stem, widths, space.strides, [len(s.blocks) for s in arch.stages])
        blocks = net.blocks()
        assert len(slots) == len(blocks)
        side = 8
        for slot, block in zip(slots, blocks, strict=True):
            assert (slot.c_in, slot.c_out, slot.stride) == (
                block.c_in,
                block.c_out,
                block.stride,
            )
            assert slot.side == side
            side = out_side(side, block.stride)
    assert [out_side(s, 2) for s in (8, 7, 1)] == [4, 4, 1]
    with pytest.raises(ValueError, match="one width, stride and depth per stage"):
        block_slots(16, [16, 24], [1, 2], [2])


def test_a_charge_spends_the_budget_before_any_query():
    table = bench.load()
    first = table.archs[0]
    cost = table.query(first).train_time
    clock = table.clock(budget=100.0)
    clock.charge(100.0 - cost / 2)
    assert not clock.exhausted
    clock.query(first)
    assert clock.trajectory[0][0] == pytest.approx(100.0 + cost / 2)
    assert clock.exhausted
    with pytest.raises(ValueError, match="non-negative"):
        clock.charge(-1.0)
