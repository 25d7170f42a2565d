"""NAS Lab: the library behind a hands-on course in Neural Architecture Search.

The library is arranged by kind, in layers that import only downwards:

1. foundations: ``spaces/`` (search spaces: NAS-Bench-201 cells, MBConv chains, macro nets),
   ``data``, ``train``, ``cost``, ``device``, ``pareto``, ``datafiles``, ``arguments``;
2. evaluators: ``bench/`` (the tabular benchmark and its simulated clock), ``hardware/``
   (latency measured, tabled, predicted, modelled), ``proxies/`` (zero-cost scores), ``curves``
   (learning-curve extrapolation);
3. search methods: ``strategies/`` (ask-and-tell on a table: random search, evolution, NSGA-II,
   REINFORCE, BO, BANANAS, and wrappers that change what a strategy is told) and ``oneshot/``
   (shared weights: DARTS, GDAS, PC-DARTS, ENAS, SPOS, ProxylessNAS, Once-for-All);
4. lesson modules, which only combine the layers below: ``first_search``, ``estimation``,
   ``scaling/``, ``warmstart``, ``capstone``, ``compare``;
5. course machinery, apart from the methods: ``checks/`` (exercises), ``grading/``
   (``nas-lab grade``), ``lessons`` (student notebooks from the masters), ``widgets``,
   ``notebook`` (a lesson's first cell), ``cli``.

No module of layers 1-3 imports course machinery (a test checks it). ``nas_lab.check``, the
function every lesson calls, is loaded on first use, so a library import does not load the
exercise registry.
"""

__version__ = "0.1.0"
__all__ = ["check", "__version__"]


def __getattr__(name: str):
    if name == "check":  # lazily: the checks import much of the library
        from nas_lab.checks import check

        return check
    raise AttributeError(f"module 'nas_lab' has no attribute {name!r}")
