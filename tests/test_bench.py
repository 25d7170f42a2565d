"""The benchmark machinery on a tiny recipe: resumable build, pack, hash-checked load, queries,
the simulated clock, and verify (one architecture retrained and compared, in fast form)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from nas_lab import bench
from nas_lab.bench import build
from nas_lab.spaces import nb201

TINY = replace(build.RECIPE, epochs=2, cells_per_stage=1, channels=4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    build.build(out / "log", seeds=(0, 1), workers=1, limit=3, recipe=TINY, progress=False)
    build.pack(out / "log", out / "table.npz", seeds=(0, 1), require_complete=False)
    return out


def count(log, kind):
    return sum(r["kind"] == kind for r in build.read_log(log))


def test_build_resumes_without_loss_or_duplicates(tmp_path):
    log = build.build(tmp_path, seeds=(0,), workers=1, limit=1, recipe=TINY, progress=False)
    assert (count(log, "arch"), count(log, "run")) == (1, 1)
    with log.open("a") as sink:  # a kill in the middle of a write leaves a torn line
        sink.write('{"kind": "run", "arch": "|nor_co')
    build.build(tmp_path, seeds=(0,), workers=1, limit=2, recipe=TINY, progress=False)
    records = build.read_log(log)
    assert (count(log, "arch"), count(log, "run")) == (2, 2)
    assert len({(r["kind"], r["arch"], r.get("seed")) for r in records}) == len(records)
    assert log.read_text().endswith("\n")


def test_a_log_refuses_a_second_recipe(tmp_path):
    build.build(tmp_path, seeds=(0,), workers=1, limit=1, recipe=TINY, progress=False)
    with pytest.raises(ValueError, match="another recipe"):
        build.build(tmp_path, seeds=(0,), workers=1, limit=1, recipe=replace(TINY, epochs=3))


def test_same_seed_same_numbers_and_another_seed_differs():
    cell = nb201.Cell.from_string(str(build.build_order()[0]))
    a, b = build.run_record(cell, 0, TINY), build.run_record(cell, 0, TINY)
    c = build.run_record(cell, 1, TINY)
    assert a["val_acc"] == b["val_acc"] and a["train_loss"] == b["train_loss"]
    assert a["train_loss"] != c["train_loss"]


def test_pack_refuses_an_incomplete_log(tiny):
    with pytest.raises(ValueError, match="3 of 6466 complete cells"):
        build.pack(tiny / "log", tiny / "other.npz", seeds=(0, 1))


def test_load_checks_the_hash(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match="git checkout data/"):
        bench.load(tmp_path / "missing.npz")
    altered = tmp_path / "table.npz"
    altered.write_bytes((tiny / "table.npz").read_bytes()[:-10])
    (tmp_path / "table.manifest.json").write_text((tiny / "table.manifest.json").read_text())
    with pytest.raises(ValueError, match="does not match its manifest"):
        bench.load(altered)


def test_manifest_records_how_it_was_made(tiny):
    manifest = json.loads((tiny / "table.manifest.json").read_text())
    assert manifest["recipe"]["epochs"] == 2 and "nas-lab bench build" in manifest["command"]
    assert manifest["build_sessions"][0]["torch"] and manifest["packed_by"]["cpu"]
    assert manifest["stats"]["cells"] == 3


def test_queries(tiny):
    table = bench.load(tiny / "table.npz")
    arch = table.archs[0]
    cell = nb201.Cell.from_string(arch)
    same = [c for c in nb201.all_cells() if c.canonical() == cell and c != cell]
    assert table.query(arch) == table.query(cell)
    if same:  # an isomorphic string answers with its class's result
        assert table.query(str(same[0])) == table.query(arch)
    runs = table.arrays["val_acc"][table.row(arch)]
    assert table.query(arch, seed=1, epoch=1).val_acc == pytest.approx(runs[1, 0])
    assert table.query(arch).val_acc == pytest.approx(runs[:, -1].mean())
    assert table.query(arch, epoch=1).test_acc is None
    assert table.best().val_acc == pytest.approx(table.column("val_acc").max())
    assert sorted(table) == sorted(table.archs) and len(table) == 3


def test_bad_queries_say_what_is_valid(tiny):
    table = bench.load(tiny / "table.npz")
    arch = table.archs[0]
    with pytest.raises(ValueError, match="between 1 and 2"):
        table.query(arch, epoch=3)
    with pytest.raises(ValueError, match=r"recorded seeds are \[0, 1\]"):
        table.query(arch, seed=7)
    with pytest.raises(ValueError, match="valid operations"):
        table.query("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    missing = next(str(c) for c in nb201.unique_cells() if str(c) not in table.archs)
    with pytest.raises(KeyError, match="does not hold its class"):
        table.query(missing)


def test_clock_charges_recorded_training_time(tiny):
    table = bench.load(tiny / "table.npz")
    a, b = table.archs[:2]
    full = table.query(a).train_time
    clock = table.clock(budget=full)
    clock.query(a, epoch=1)
    assert clock.elapsed == pytest.approx(full / 2) and not clock.exhausted
    clock.query(a)  # training resumes: only the second epoch is charged
    assert clock.elapsed == pytest.approx(full) and clock.exhausted
    with pytest.raises(bench.BudgetExhausted):
        clock.query(b)
    assert [t[1] for t in clock.trajectory] == [a, a]


def test_verify_reproduces_one_architecture(tiny):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # a fresh process's default: the recipe's own count must win
    try:
        (row,) = build.verify(tiny / "table.npz", sample=1)
    finally:
        torch.set_num_threads(threads)
    assert row["exact"] and row["ok"] and row["abs_diff"] < 1e-6


def test_clock_without_resume_charges_every_query_in_full(tiny):
    table = bench.load(tiny / "table.npz")
    a = table.archs[0]
    clock = table.clock(resume=False)
    clock.query(a)
    clock.query(a)
    assert clock.elapsed == pytest.approx(2 * table.query(a).train_time)


def test_run_ends_when_a_strategy_keeps_proposing_one_cell(tiny):
    from nas_lab.strategies import run

    table = bench.load(tiny / "table.npz")
    cell = nb201.Cell.from_string(table.archs[0])

    class Stubborn:
        def ask(self):
            return cell

        def tell(self, cell, result):
            pass

    budget = 3 * float(table.arrays["train_time"][0].max())
    clock = run(Stubborn(), table, budget=budget, seed=0)
    assert clock.exhausted and len(clock.trajectory) >= 3
