"""Argument checks shared by the library: a bad value gets a ValueError that names it."""

from __future__ import annotations

import math
from numbers import Integral, Real


def is_int(value: object) -> bool:
    """An integer, and not a bool (``True`` is an Integral, but never a count)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """A finite real number, and not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int; a ValueError naming ``name`` unless it is an integer >= ``minimum``."""
    if not is_int(value) or value < minimum:  # type: ignore[operator]
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def positive_int(name: str, value: object) -> int:
    """``value`` as an int; a ValueError naming ``name`` unless it is a positive integer."""
    if not is_int(value) or value < 1:  # type: ignore[operator]
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def check_probability(name: str, value: object) -> float:
    """``value`` as a float; a ValueError naming ``name`` unless it is a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def check_positive(name: str, value: object) -> float:
    """``value`` as a float; a ValueError naming ``name`` unless it is a positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)
