"""Search spaces, one module each: the NAS-Bench-201 cell, a chain of MBConv blocks, a macro space.

Use them as modules: ``from nas_lab.spaces import nb201``, then ``nb201.Cell``, ``nb201.sample``...
"""

from __future__ import annotations

from numbers import Integral

import numpy as np


def as_rng(rng: np.random.Generator | int) -> np.random.Generator:
    """Every space's randomness comes from a numpy Generator, or an integer seed for one."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy Generator or an integer seed, got {rng!r}")
