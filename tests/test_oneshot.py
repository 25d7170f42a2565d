"""One-shot NAS (nas_lab.oneshot): known answers for the supernet and every method.

- a single path of the supernet computes what ``nb201.CellNet`` computes, weights copied over;
  a one-hot mixture computes the same path (DARTS eq. 1);
- DARTS' second-order gradient (eq. 7 with eq. 8's finite difference) matches a central finite
  difference of the unrolled validation loss, in float64, on a tiny supernet;
- GDAS runs exactly one operation per edge per forward pass (calls counted with hooks) and its
  Gumbel-max samples follow softmax(alpha);
- PC-DARTS sends exactly 1/K of the channels through the operations, passes the rest through
  unchanged, and its training step's peak memory is below DARTS' at the same width;
- SPOS' evolution and ENAS' controller find planted optima of synthetic fitness functions.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from nas_lab.bench import Benchmark
from nas_lab.oneshot import METHODS, darts, enas, gdas, ground_truth, pcdarts, spos
from nas_lab.oneshot import supernet as sn
from nas_lab.spaces import nb201

TINY = {"C": 4, "N": 1, "progress": False}  # a supernet small enough for unit tests
CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|skip_connect~2|",
    "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|nor_conv_1x1~0|none~1|avg_pool_3x3~2|",
    "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_1x1~2|",  # node 1 is dead
    "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # the output receives nothing
]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as ``notebook.setup`` chooses for the course's tiny networks: with
    several, each small operation costs more in synchronisation than it gains."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def digits_batch(n: int = 16, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = sn.search_data(0).weights.tensors
    return x[:n].to(dtype), y[:n]


# ------------------------------------------------------------------------------------------
# The supernet
# ------------------------------------------------------------------------------------------


def copy_into_supernet(net: nb201.CellNet, supernet: sn.Supernet) -> None:
    """Load a CellNet's weights into the matching modules of the supernet."""
    supernet.stem.load_state_dict(net.stem.state_dict(), strict=False)
    supernet.lastact.load_state_dict(net.lastact.state_dict(), strict=False)
    supernet.classifier.load_state_dict(net.classifier.state_dict())
    for layer, super_layer in zip(net.cells, supernet.layers, strict=True):
        if isinstance(layer, nb201.ResidualReduction):
            super_layer.load_state_dict(layer.state_dict(), strict=False)
            continue
        for key, module in layer.edges.items():
            source, target = (int(k) for k in key.split("->"))
            edge = nb201.EDGES.index((source, target))
            op = nb201.OPS.index(layer.cell.ops[edge])
            super_layer.edges[edge].ops[op].load_state_dict(module.state_dict(), strict=False)


@pytest.mark.parametrize("arch", CELLS)
def test_a_single_path_computes_what_the_benchmark_network_computes(arch):
    torch.manual_seed(0)
    net, supernet = nb201.CellNet(arch, C=4, N=2), sn.Supernet(C=4, N=2)
    copy_into_supernet(net, supernet)
    x, _ = digits_batch()
    net.train()  # batch statistics, as the supernet always uses
    expected = net(x)
    assert torch.allclose(supernet.path(x, arch), expected, atol=1e-5)
    # ... and the supernet's other weights were not involved: a fresh supernet differs.
    assert not torch.allclose(sn.Supernet(C=4, N=2).path(x, arch), expected, atol=1e-3)


def test_a_one_hot_mixture_is_the_single_path():
    torch.manual_seed(0)
    supernet = sn.Supernet(C=4, N=1)
    cell = nb201.Cell.from_string(CELLS[0])  # no `none` edge: every edge is on the path
    one_hot = torch.zeros(6, 5)
    one_hot[range(6), [nb201.OPS.index(op) for op in cell.ops]] = 1.0
    x, _ = digits_batch()
    assert torch.allclose(supernet(x, one_hot), supernet.path(x, cell), atol=1e-6)


def test_the_mixture_is_linear_in_the_weights():
    """DARTS eq. 1: the edge's output is sum_o w_o o(x), so it is linear in w."""
    torch.manual_seed(0)
    edge = sn.MixedEdge(4)
    x = torch.randn(3, 4, 5, 5)
    w1, w2 = torch.rand(5), torch.rand(5)
    edge.train()
    assert torch.allclose(edge(x, w1 + 2 * w2), edge(x, w1) + 2 * edge(x, w2), atol=1e-5)
    assert torch.allclose(edge(x, torch.eye(5)[0]), torch.zeros_like(x))  # `none` alone: zero


def test_channel_shuffle_is_a_permutation_undone_by_the_transposed_grid():
    x = torch.arange(12.0).view(1, 12, 1, 1)
    shuffled = sn.channel_shuffle(x, 3)
    assert shuffled.flatten().tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert torch.equal(sn.channel_shuffle(shuffled, 4), x)


def test_discretize_takes_the_strongest_non_zero_operation():
    alpha = torch.zeros(6, 5)
    alpha[:, 0] = 10.0  # `none` strongest everywhere: DARTS ignores it
    alpha[range(6), [1, 2, 3, 4, 1, 3]] = 1.0
    expected = ("skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert sn.discretize(alpha).ops == (*expected, "skip_connect", "nor_conv_3x3")
    assert sn.discretize(alpha, exclude_none=False).ops == ("none",) * 6


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="shape \\(6, 5\\)"):
        sn.Supernet(C=4, N=1)(digits_batch()[0], torch.zeros(5, 6))
    with pytest.raises(ValueError, match="positive divisor"):
        sn.MixedEdge(6, partial=4)
    with pytest.raises(ValueError, match="unsqueeze"):
        sn.Supernet(C=4, N=1).path(torch.zeros(2, 8, 8), CELLS[0])
    with pytest.raises(ValueError, match="order must be 1"):
        darts.DARTS(order=3, **TINY)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        darts.DARTS(epochs=0, **TINY)


def test_the_search_data_are_two_disjoint_halves_of_the_benchmark_training_split():
    from nas_lab import data
    from nas_lab.bench.recipe import RECIPE

    halves = sn.search_data(seed=3)
    train = data.load(RECIPE.dataset, seed=RECIPE.data_seed).train.tensors[0]
    a, b = halves.weights.tensors[0], halves.arch.tensors[0]
    assert len(a) + len(b) == len(train) and abs(len(a) - len(b)) <= 10
    rows = {tuple(r.flatten().tolist()) for r in train}
    assert all(tuple(r.flatten().tolist()) in rows for r in torch.cat([a, b]))
    # Seeded: the same seed cuts the same halves, another seed others.
    assert torch.equal(sn.search_data(seed=3).weights.tensors[0], a)
    assert not torch.equal(sn.search_data(seed=4).weights.tensors[0], a)


# ------------------------------------------------------------------------------------------
# DARTS: the second-order gradient against a finite difference of the unrolled loss
# ------------------------------------------------------------------------------------------


def tiny_bilevel(seed: int = 0):
    """A float64 supernet, alpha and two batches: everything eq. 7 needs."""
    torch.manual_seed(seed)
    net = sn.Supernet(C=4, N=1).double()
    alpha = (0.5 * torch.randn(6, 5, dtype=torch.float64)).requires_grad_()
    x, y = digits_batch(16, torch.float64)
    train, val = (x[:8], y[:8]), (x[8:], y[8:])

    def loss_fn(batch):
        return F.cross_entropy(net(batch[0], F.softmax(alpha, dim=-1)), batch[1])

    return net, alpha, loss_fn, train, val


def unrolled_val_loss(net, alpha, loss_fn, train, val, xi) -> float:
    """L_val(w - xi * grad_w L_train(w, alpha), alpha), computed directly (weights restored)."""
    weights = list(net.parameters())
    saved = [w.detach().clone() for w in weights]
    grads = torch.autograd.grad(loss_fn(train), weights)
    with torch.no_grad():
        for w, g in zip(weights, grads, strict=True):
            w.sub_(xi * g)
        value = float(loss_fn(val))
        for w, w0 in zip(weights, saved, strict=True):
            w.copy_(w0)
    return value


def numeric_gradient(f, alpha: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Central differences of f(alpha), one entry at a time (alpha restored)."""
    numeric = torch.zeros_like(alpha)
    for index in itertools.product(*(range(n) for n in alpha.shape)):
        with torch.no_grad():
            alpha[index] += h
        up = f()
        with torch.no_grad():
            alpha[index] -= 2 * h
        down = f()
        with torch.no_grad():
            alpha[index] += h
        numeric[index] = (up - down) / (2 * h)
    return numeric


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_second_order_gradient_matches_a_finite_difference_of_the_unrolled_loss():
    """On the supernet itself (float64). Its ReLUs make grad_alpha L_train only piecewise
    smooth in w, and a step of the paper's size (0.01 in norm) crosses kinks, so eq. 8 is
    checked in its limit, with a small eps; the paper's eps is checked on a smooth problem
    below."""
    net, alpha, loss_fn, train, val = tiny_bilevel()
    xi = 0.5
    weights = list(net.parameters())
    before = [p.detach().clone() for p in weights]
    (grad,), _ = darts.second_order_grad(weights, [alpha], loss_fn, train, val, xi, eps=1e-5)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before, strict=True))
    numeric = numeric_gradient(
        lambda: unrolled_val_loss(net, alpha, loss_fn, train, val, xi), alpha
    )
    error = relative_error(grad, numeric)
    assert error < 1e-4, f"relative error {error:.2e}"
    # The test can fail: the first-order gradient ignores the unrolling and misses by far more.
    (first,), _ = darts.first_order_grad([alpha], loss_fn, val)
    assert relative_error(first, numeric) > 100 * error


def test_second_order_gradient_with_the_papers_eps_on_a_smooth_problem():
    """A mixed operation of three linear maps under softmax(alpha), with a logistic loss: a
    smooth bi-level problem, where eq. 8 with eps = 0.01 / ||v|| is accurate to O(eps^2)."""
    torch.manual_seed(0)
    maps = [torch.randn(5, 3, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    alpha = torch.randn(3, dtype=torch.float64, requires_grad=True)
    x, y = torch.randn(40, 5, dtype=torch.float64), torch.randint(0, 3, (40,))
    train, val = (x[:20], y[:20]), (x[20:], y[20:])

    def loss_fn(batch):
        w = F.softmax(alpha, dim=0)
        logits = sum(w[k] * torch.tanh(batch[0] @ maps[k]) for k in range(3))
        return F.cross_entropy(logits, batch[1])

    (grad,), _ = darts.second_order_grad(maps, [alpha], loss_fn, train, val, xi=1.0)
    numeric = numeric_gradient(
        lambda: unrolled_val_loss(_Params(maps), alpha, loss_fn, train, val, 1.0), alpha
    )
    error = relative_error(grad, numeric)
    assert error < 1e-3, f"relative error {error:.2e}"
    (first,), _ = darts.first_order_grad([alpha], loss_fn, val)
    assert relative_error(first, numeric) > 30 * error


class _Params:
    """Just enough of a module for ``unrolled_val_loss``: ``parameters()``."""

    def __init__(self, params):
        self.params = params

    def parameters(self):
        return iter(self.params)


def test_second_order_with_xi_zero_is_the_first_order_gradient():
    net, alpha, loss_fn, train, val = tiny_bilevel(seed=1)
    (second,), loss2 = darts.second_order_grad(
        list(net.parameters()), [alpha], loss_fn, train, val, 0.0
    )
    (first,), loss1 = darts.first_order_grad([alpha], loss_fn, val)
    assert torch.allclose(second, first, atol=1e-12) and float(loss1) == pytest.approx(float(loss2))


def test_darts_is_seeded_and_records_every_epoch(capsys):
    runs = [darts.DARTS(order=2, epochs=2, seed=s, **TINY) for s in (0, 0, 1)]
    cells = [r.search() for r in runs]
    assert cells[0] == cells[1]
    assert np.array_equal(runs[0].history[-1].weights, runs[1].history[-1].weights)
    assert not np.array_equal(runs[0].history[-1].weights, runs[2].history[-1].weights)
    assert [e.epoch for e in runs[0].history] == [1, 2]
    weights = runs[0].history[-1].weights
    assert weights.shape == (6, 5) and np.allclose(weights.sum(axis=1), 1.0)
    out = capsys.readouterr().out
    assert out.count("DARTS: ") == 3 and "s wall time" in out


# ------------------------------------------------------------------------------------------
# GDAS: one operation per edge, and Gumbel-max samples with the right probabilities
# ------------------------------------------------------------------------------------------


def count_op_calls(net: sn.Supernet) -> tuple[dict, list]:
    """Forward hooks on every candidate operation: calls[(cell, edge)] = list of op indices."""
    calls: dict[tuple[int, int], list[int]] = {}
    handles = []
    cells = [layer for layer in net.layers if isinstance(layer, sn.SuperCell)]
    for c, cell in enumerate(cells):
        for e, edge in enumerate(cell.edges):
            for o, op in enumerate(edge.ops):

                def hook(module, inputs, output, key=(c, e), o=o):
                    calls.setdefault(key, []).append(o)

                handles.append(op.register_forward_hook(hook))
    return calls, handles


def test_gdas_runs_exactly_one_operation_per_edge_per_step():
    search = gdas.GDAS(epochs=1, **TINY)
    calls, handles = count_op_calls(search.net)
    x, y = digits_batch()
    search.logits(x)
    n_cells = sum(isinstance(layer, sn.SuperCell) for layer in search.net.layers)
    assert len(calls) == n_cells * 6
    assert all(len(ops) == 1 for ops in calls.values())
    # All cells share alpha, so they run the same sampled operation on each edge.
    assert len({tuple(calls[(c, e)][0] for e in range(6)) for c in range(n_cells)}) == 1
    # A whole search step (alpha step, then weight step) is two sampled forward passes.
    calls.clear()
    opt, _ = sn.weight_optimizer(search.net, 0.025, 10)
    search.arch_step((x, y), (x, y), xi=0.0)
    search.weight_step((x, y), opt)
    assert all(len(ops) == 2 for ops in calls.values()) and len(calls) == n_cells * 6
    # DARTS, by contrast, runs the 4 non-zero operations of every edge.
    mixed = darts.DARTS(epochs=1, **TINY)
    darts_calls, _ = count_op_calls(mixed.net)
    mixed.logits(x.to(mixed.device))  # DARTS runs a batch where it is given (GDAS moves it)
    assert all(sorted(ops) == [1, 2, 3, 4] for ops in darts_calls.values())
    for handle in handles:
        handle.remove()


def test_gumbel_max_samples_follow_the_softmax_and_pass_its_gradient():
    alpha = torch.tensor([[1.0, 0.0, -1.0, 0.5, 2.0]]).requires_grad_()
    generator = torch.Generator().manual_seed(0)
    draws = 20000  # one row per draw: every row gets its own Gumbel noise
    index, _ = gdas.gumbel_softmax_sample(alpha.detach().repeat(draws, 1), 1.0, generator)
    counts = np.bincount(index.numpy(), minlength=5)
    expected = draws * F.softmax(alpha.detach().double(), dim=-1).numpy()[0]
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    # The test can fail: the softmax at another temperature is rejected.
    wrong = draws * F.softmax(alpha.detach().double() / 1.5, dim=-1).numpy()[0]
    assert stats.chisquare(counts, wrong).pvalue < 1e-6
    # Value: exactly one-hot. Gradient: the soft sample's (straight-through), so not zero.
    index, hard = gdas.gumbel_softmax_sample(alpha, tau=1.0, generator=generator)
    assert hard.detach().tolist()[0] == [float(i == int(index)) for i in range(5)]
    hard[0, int(index)].backward()
    assert alpha.grad.abs().sum() > 0


def test_gdas_temperature_falls_linearly_from_tau_max_to_tau_min():
    search = gdas.GDAS(epochs=5, tau_max=10.0, tau_min=0.1, **TINY)
    taus = []
    for epoch in range(5):
        search.start_epoch(epoch)
        taus.append(search.tau)
    assert taus == pytest.approx(np.linspace(10.0, 0.1, 5).tolist())


# ------------------------------------------------------------------------------------------
# PC-DARTS: the share of channels, the bypass, edge normalisation, memory
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", [2, 4])
def test_pcdarts_operations_see_one_kth_of_the_channels(K):
    net = sn.Supernet(C=8, N=1, partial=K)
    widths = []
    for layer in net.layers:
        if isinstance(layer, sn.SuperCell):
            for edge in layer.edges:
                for op in edge.ops:
                    op.register_forward_hook(
                        lambda m, i, o, c=edge.channels: widths.append((c, i[0].shape[1]))
                    )
    net(digits_batch()[0], F.softmax(torch.zeros(6, 5), dim=-1))
    assert {full for full, _ in widths} == {8, 16, 32}
    assert all(seen == full // K for full, seen in widths)


def test_pcdarts_passes_the_other_channels_through_unchanged():
    torch.manual_seed(0)
    K, C = 4, 8
    edge = sn.MixedEdge(C, partial=K)
    x, w = torch.randn(2, C, 4, 4), F.softmax(torch.randn(5), dim=0)
    out = sn.channel_shuffle(edge(x, w), C // K)  # undo the shuffle
    assert torch.equal(out[:, C // K :], x[:, C // K :])
    assert torch.allclose(out[:, : C // K], edge.mix(x[:, : C // K], w))


def test_edge_normalisation_is_a_softmax_over_each_nodes_inputs():
    beta = torch.tensor([0.3, 1.0, -1.0, 0.0, 2.0, 0.5])
    weights = pcdarts.edge_weights(beta)
    assert float(weights[0]) == pytest.approx(1.0)  # node 1 has one input
    assert weights[1:3].tolist() == pytest.approx(F.softmax(beta[1:3], 0).tolist())
    assert weights[3:].tolist() == pytest.approx(F.softmax(beta[3:], 0).tolist())


def test_peak_memory_measures_a_known_allocation_pattern():
    def allocate():
        a = torch.ones(1000, 1000)  # 4 MB
        b = torch.ones(1000, 1000)  # 8 MB held
        del a
        c = torch.ones(2000, 1000)  # 4 + 8 = 12 MB held at the peak
        return float(b[0, 0] + c[0, 0])

    assert sn.peak_memory(allocate) == pytest.approx(12_000_000, abs=1000)


def test_pcdarts_step_needs_less_memory_than_darts_at_equal_width():
    darts_bytes = pcdarts.training_step_memory(partial=1, C=8, N=1, batch_size=32)
    pc_bytes = pcdarts.training_step_memory(partial=4, C=8, N=1, batch_size=32)
    assert pc_bytes < 0.6 * darts_bytes, (pc_bytes, darts_bytes)


# ------------------------------------------------------------------------------------------
# SPOS and ENAS on planted fitness functions; the weight-sharing ranking
# ------------------------------------------------------------------------------------------

# A separable fitness: the best operation of each edge is known, so the best cell is too.
PLANTED = np.array([[0, 1, 3, 9, 2]] * 3 + [[0, 9, 3, 1, 2]] * 3, dtype=float)
BEST = nb201.Cell(tuple(nb201.OPS[int(i)] for i in PLANTED.argmax(axis=1)))


def planted(cell: nb201.Cell) -> float:
    return float(sum(PLANTED[e, nb201.OPS.index(op)] for e, op in enumerate(cell.ops)) / 54)


def test_spos_mutation_resamples_each_edge_with_the_given_probability():
    rng = np.random.default_rng(0)
    cell = nb201.Cell.from_string(CELLS[0])
    assert all(spos.mutate_edges(cell, 0.0, rng) == cell for _ in range(20))
    changed = np.mean(
        [
            a != b
            for _ in range(2000)
            for a, b in zip(spos.mutate_edges(cell, 0.5, rng).ops, cell.ops, strict=True)
        ]
    )
    assert changed == pytest.approx(0.5 * 4 / 5, abs=0.03)  # resampled, and a new op 4 times in 5


def test_spos_evolution_finds_the_planted_optimum():
    class Planted(spos.SPOS):
        def score(self, cell):
            self.scores.setdefault(cell, planted(cell))
            return self.scores[cell]

    search = Planted(iterations=10, seed=0, **TINY)
    assert search.evolve() == BEST
    assert search.generations == sorted(search.generations)  # the top k is kept
    # Random search with as many samples does not find it (the evolution is doing the work).
    rng = np.random.default_rng(0)
    assert max(planted(nb201.sample(rng)) for _ in range(len(search.scores))) < planted(BEST)


def test_enas_controller_learns_the_planted_optimum():
    class Planted(enas.ENAS):
        def reward(self, cell, batch):
            return planted(cell)

    search = Planted(epochs=1, controller_steps=500, controller_lr=0.01, seed=0, **TINY)
    val_batches = sn.endless_batches(search.data.arch, 64, search.generator)
    first = search.train_controller(val_batches)
    assert search.greedy() == BEST
    assert np.mean(search.rewards[-50:]) > np.mean(search.rewards[:50]) + 0.1 and first > 0


def test_weight_sharing_ranking_scores_distinct_unique_cells():
    searcher = spos.SPOS(epochs=1, seed=0, **TINY)
    searcher.train_supernet()
    ranking = spos.weight_sharing_ranking(n=30, seed=0, searcher=searcher)
    assert len(ranking) == 30
    assert all(nb201.canonical(arch) == nb201.as_cell(arch) for arch in ranking)
    assert all(0.0 <= acc <= 1.0 for acc in ranking.values())
    # The estimate is the path's accuracy on the held-out half: recompute one.
    arch, acc = next(iter(ranking.items()))
    assert sn.path_accuracy(searcher.net, arch, searcher.data.arch) == acc
    assert spos.weight_sharing_ranking(n=30, seed=0, searcher=searcher) == ranking


# ------------------------------------------------------------------------------------------
# Every method, end to end, on a tiny supernet
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_returns_a_cell_and_prints_its_wall_time(name, capsys):
    options = {"epochs": 1, **TINY}
    if name in ("SPOS",):
        options["iterations"] = 1
    if name in ("ENAS",):
        options["final_samples"] = 3
    cell = METHODS[name](seed=0, **options)
    assert isinstance(cell, nb201.Cell)
    assert nb201.canonical(cell) in nb201.unique_cells()  # so the benchmark can look it up
    out = capsys.readouterr().out
    assert "s wall time; found" in out and str(cell) in out


def small_table(cells: list[str], test: np.ndarray) -> Benchmark:
    """A benchmark of the given cells whose two seeds' test accuracies are test -+ 0.05."""
    n = len(cells)
    return Benchmark(
        {
            "archs": np.array(cells),
            "seeds": np.array([0, 1]),
            "val_acc": np.stack([test, test + 0.1], axis=1)[..., None],  # (archs, seeds, epochs)
            "train_loss": np.ones((n, 2, 1)),
            "test_acc": np.stack([test - 0.05, test + 0.05], axis=1),
            "train_time": np.ones((n, 2)),
            "params": np.zeros(n, dtype=np.int64),
            "flops": np.zeros(n, dtype=np.int64),
            "latency_ms_batch1": np.zeros(n),
            "latency_ms_train_batch": np.zeros(n),
        },
        manifest={},
    )


def test_judge_reports_test_accuracy_and_percentile_from_the_table():
    cells = [str(c) for c in nb201.unique_cells()[:4]]
    test = np.array([0.1, 0.4, 0.3, 0.2])
    table = small_table(cells, test)
    verdict = ground_truth(cells[2], table)
    assert verdict["test_acc"] == pytest.approx(0.3)  # the mean over the two seeds
    assert verdict["val_acc"] == pytest.approx(0.35)
    assert verdict["percentile"] == pytest.approx(75.0)  # beats or matches 3 of the 4
    assert ground_truth(cells[1], table)["percentile"] == pytest.approx(100.0)


# ------------------------------------------------------------------------------------------
# The collapse, early stopping, and the three-seed results files
# ------------------------------------------------------------------------------------------


def cell_with_skips(k: int) -> str:
    return str(nb201.Cell(("skip_connect",) * k + ("nor_conv_3x3",) * (6 - k)))


def test_early_stop_is_the_first_epoch_with_enough_skip_connections():
    cells = [cell_with_skips(k) for k in (0, 1, 1, 2, 3, 1)]
    assert darts.early_stop(cells, max_skips=2) == 3  # DARTS+ keeps the cell that fired it
    assert darts.early_stop(cells, max_skips=3) == 4
    assert darts.early_stop(cells, max_skips=4) == 5  # never fires: the last epoch
    assert darts.early_stop([nb201.Cell.from_string(c) for c in cells], 1) == 1
    with pytest.raises(ValueError, match="max_skips"):
        darts.early_stop(cells, max_skips=0)


def test_operation_weights_average_each_operation_over_the_edges():
    rng = np.random.default_rng(0)
    weights = [rng.dirichlet(np.ones(5), size=6) for _ in range(3)]
    history = [sn.Epoch(i + 1, 0.0, 0.0, w, None) for i, w in enumerate(weights)]
    shares = darts.operation_weights(history)
    assert shares.shape == (3, 5)
    assert np.allclose(shares.sum(axis=1), 1.0)  # each row of softmax weights sums to 1
    assert np.allclose(shares[1], weights[1].mean(axis=0))
    with pytest.raises(ValueError, match="no architecture weights"):
        darts.operation_weights([sn.Epoch(1, 0.0, 0.0, None, None)])


def test_results_files_round_trip_and_are_judged_by_the_table(tmp_path, capsys):
    from nas_lab.oneshot import results

    tiny = {"epochs": 1, "C": 4, "N": 1}
    found = results.run_one("DARTS (1st order)", 0, tmp_path, **tiny)
    spos_cell = results.run_one("SPOS", 1, tmp_path, ranking_cells=5, iterations=1, **tiny)
    searches = results.read("searches", tmp_path)
    assert [(r["method"], r["seed"], r["cell"]) for r in searches] == [
        ("DARTS (1st order)", 0, str(found)),
        ("SPOS", 1, str(spos_cell)),
    ]
    assert results.done(tmp_path) == {("DARTS (1st order)", 0), ("SPOS", 1)}
    assert open(tmp_path / "searches.csv").readline().startswith("# written by: python -m")
    history = results.read("history", tmp_path)
    assert [(h["method"], h["epoch"]) for h in history] == [("DARTS (1st order)", 1)]
    assert len(results.read("ranking", tmp_path)) == 5
    # Judged by a table in which the found cells are the best and the worst.
    cells = [str(nb201.canonical(found)), str(nb201.canonical(spos_cell)), *CELLS[:1]]
    if len(set(cells)) < 3:
        pytest.skip("the two tiny searches found the same cell")
    table = small_table(cells, np.array([0.9, 0.2, 0.5]))
    judged = results.judged(searches, table)
    assert judged[0]["test_acc"] == pytest.approx(90.0) and judged[0]["percentile"] == 100.0
    assert judged[1]["test_acc"] == pytest.approx(20.0)
    assert judged[1]["percentile"] == pytest.approx(100 / 3)
    rows = results.summary(judged)
    assert [r["method"] for r in rows] == ["DARTS (1st order)", "SPOS"]
    assert rows[0]["NB201 CIFAR-10"] == 54.30 and np.isnan(rows[1]["NB201 CIFAR-10"])
    assert rows[0]["seeds"] == 1 and np.isnan(rows[0]["test acc std"])
    assert "test acc mean" in results.format_table(rows).splitlines()[0]


def test_summary_averages_over_seeds():
    from nas_lab.oneshot import results

    runs = [
        {"method": "GDAS", "seed": s, "cell": c, "test_acc": a, "percentile": p, "skips": k}
        | {"wall_s": 10.0}
        for s, c, a, p, k in [(0, "x", 90.0, 99.0, 0), (1, "y", 80.0, 50.0, 2), (2, "x", 85, 80, 1)]
    ]
    (row,) = results.summary(runs)
    assert row["seeds"] == 3 and row["cells found"] == 2
    assert row["test acc mean"] == pytest.approx(85.0)
    assert row["test acc std"] == pytest.approx(5.0)  # sample std of 90, 80, 85
    assert row["percentile"] == pytest.approx(76.333333) and row["skips"] == 1.0
    assert row["NB201 CIFAR-10"] == 93.61


def test_lesson06_gradient_matches_the_closed_form_and_the_library():
    """On a quadratic problem eq. 7 is exact: grad_a L_val(w') - xi Q' grad_w' L_val(w')."""
    from nas_lab.checks import lesson06

    rng = np.random.default_rng(0)
    problem = lesson06.quadratic_problem(rng, n=5, m=3)
    w, a, xi = rng.normal(size=5), rng.normal(size=3), 0.2
    train, val = lesson06.quadratic_grads(problem)
    P, Q, R, S, c = (problem[k] for k in "PQRSc")
    w_prime = w - xi * (P @ w + Q @ a)
    exact = S.T @ w_prime - xi * Q.T @ (w_prime - c + S @ a)
    assert np.allclose(lesson06.darts_gradient(train, val, w, a, xi), exact, rtol=1e-6)
    # The library's torch implementation on the same problem.
    T = {k: torch.tensor(v) for k, v in problem.items()}
    wt = torch.tensor(w, requires_grad=True)
    at = torch.tensor(a, requires_grad=True)

    def loss_fn(batch):
        if batch == "train":
            return 0.5 * wt @ T["P"] @ wt + wt @ T["Q"] @ at + 0.5 * at @ T["R"] @ at
        return 0.5 * (wt - T["c"]) @ (wt - T["c"]) + wt @ T["S"] @ at

    grads, _ = darts.second_order_grad([wt], [at], loss_fn, "train", "val", xi)
    assert np.allclose(grads[0].detach().numpy(), exact, rtol=1e-6)
    assert torch.equal(wt.detach(), torch.tensor(w))  # the weights were put back exactly
