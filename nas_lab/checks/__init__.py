"""Exercise checks: the learner's answer against the library's reference, on fresh random inputs.

An exercise is registered once, beside its reference implementation and a few plausible wrong
answers (the tests prove each check rejects them). A check has three parts, kept apart so that the
grader can run the first in a sandboxed child process and the others in its own:

- ``inputs(rng)``: fresh random arguments, a list of tuples;
- ``call(answer, args)``: run an answer on one input and return plain data (numbers, strings,
  lists, arrays); by default ``answer(*args)``;
- ``compare(expected, got)``: ``None`` when they agree, else the reason, in words.

:func:`verdict` is the one place that runs the reference and decides, for ``check`` here and for
``nas-lab grade`` (:mod:`nas_lab.grading`) alike.

In a notebook ``check("01.2", my_function)`` prints a verdict and never raises, so an unsolved
lesson runs top to bottom. ``NAS_LAB_STRICT=1`` (set when CI runs the solutions) makes a failed
check raise :class:`CheckFailed` instead.
"""

from __future__ import annotations

import copy
import importlib
import os
import pkgutil
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Reason = str | None


class CheckFailed(AssertionError):
    """Raised by a failed check in strict mode (CI running the solutions)."""


# ---------------------------------------------------------------------------------------------
# Comparisons: each returns None when the answer is right, else a sentence saying why not.
# ---------------------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """Numpy scalars and arrays as plain Python values, so messages read like the learner's code."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, list | tuple):
        return type(value)(plain(v) for v in value)
    return value


def show(value: Any, limit: int = 160) -> str:
    """A short, readable rendering of a value for feedback messages."""
    text = repr(plain(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def equal(expected: Any, got: Any) -> Reason:
    """Exact equality (ints, strings, tuples, lists)."""
    if isinstance(got, np.ndarray) or isinstance(expected, np.ndarray):
        return close(expected, got, rtol=0, atol=0)
    if type(got) is tuple and type(expected) is list:
        got = list(got)
    if got == expected:
        return None
    return f"expected {show(expected)}, got {show(got)}"


def close(expected: Any, got: Any, rtol: float = 1e-5, atol: float = 1e-8) -> Reason:
    """Numerical agreement, element-wise, for numbers and arrays of the same shape."""
    try:
        got_arr = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return f"expected a number or an array of numbers, got {type(got).__name__}: {show(got)}"
    exp_arr = np.asarray(expected, dtype=float)
    if got_arr.shape != exp_arr.shape:
        return f"expected shape {exp_arr.shape}, got shape {got_arr.shape}: {show(got)}"
    if not np.allclose(got_arr, exp_arr, rtol=rtol, atol=atol, equal_nan=True):
        return f"expected {show(expected)}, got {show(got)}"
    return None


def loss_value(expected: float, value: Any) -> Reason:
    """A loss answer's value (already turned into a float when it was a one-element tensor):
    the right type, then the reference's number. The gradient checks come after, per lesson."""
    if not isinstance(value, float):
        return f"expected a one-element torch tensor (the loss), got {show(value)}"
    reason = close(expected, value, rtol=1e-6, atol=1e-9)
    return None if reason is None else f"the loss value is wrong: {reason}"


def plain_call(answer: Callable, args: tuple) -> Any:
    return answer(*args)


# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    points: int
    reference: Callable
    inputs: Callable[[np.random.Generator], list[tuple]]
    compare: Callable[[Any, Any], Reason] = equal
    call: Callable[[Callable, tuple], Any] = plain_call
    wrong: tuple[Callable, ...] = field(default=())

    def describe(self, args: tuple) -> str:
        return ", ".join(show(a, 80) for a in args)


REGISTRY: dict[str, Exercise] = {}


def exercise(
    id: str,
    *,
    title: str,
    points: int,
    inputs: Callable[[np.random.Generator], list[tuple]],
    compare: Callable[[Any, Any], Reason] = equal,
    call: Callable[[Callable, tuple], Any] = plain_call,
    wrong: Sequence[Callable] = (),
) -> Callable[[Callable], Callable]:
    """Decorator: register the decorated function as the reference answer of exercise ``id``."""

    def register(reference: Callable) -> Callable:
        if id in REGISTRY and REGISTRY[id].reference.__qualname__ != reference.__qualname__:
            raise ValueError(f"exercise {id!r} is registered twice")
        REGISTRY[id] = Exercise(id, title, points, reference, inputs, compare, call, tuple(wrong))
        return reference

    return register


def load_all() -> dict[str, Exercise]:
    """Import every lesson's check module (lazily: they import torch) and return the registry.

    Each ``nas_lab/checks/lessonNN.py`` registers its exercises when imported."""
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("lesson"):
            importlib.import_module(f"{__name__}.{module.name}")
    return REGISTRY


def get(exercise_id: str) -> Exercise:
    registry = load_all()
    if exercise_id not in registry:
        known = ", ".join(sorted(registry))
        raise KeyError(f"no exercise {exercise_id!r}; the exercises are: {known}")
    return registry[exercise_id]


# ---------------------------------------------------------------------------------------------
# Running a check
# ---------------------------------------------------------------------------------------------


@dataclass
class CheckResult:
    exercise_id: str
    passed: bool
    points: int
    max_points: int
    reason: str

    def __bool__(self) -> bool:
        return self.passed

    def _ipython_display_(self) -> None:
        """Nothing: `check` has printed the verdict already, once is enough in a notebook."""

    def __str__(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        score = f"{self.points}/{self.max_points} points"
        return f"[{mark}] {self.exercise_id} ({score}): {self.reason}"


def run_answer(ex: Exercise, answer: Any, args: tuple) -> tuple[bool, Any]:
    """Run ``answer`` on one input; (True, output) or (False, the reason it could not run)."""
    if not callable(answer):
        return False, f"expected a function, got {type(answer).__name__}: {show(answer)}"
    try:
        return True, ex.call(answer, copy.deepcopy(args))
    except NotImplementedError:
        return False, "not implemented yet: replace the `raise NotImplementedError` line"
    except (Exception, SystemExit) as err:  # a learner's bug is feedback, not a crash
        return False, f"on input ({ex.describe(args)}) your code raised {type(err).__name__}: {err}"


def compare_safely(ex: Exercise, expected: Any, got: Any) -> Reason:
    """``ex.compare``, with an answer of the wrong form turned into a reason, not a crash."""
    try:
        return ex.compare(expected, got)
    except Exception as err:
        return f"the answer has the wrong form ({type(err).__name__}: {err}); got {show(got)}"


def verdict(
    ex: Exercise,
    cases: list[tuple],
    outcomes: Iterable[tuple[bool, Any]],
    *,
    as_sent: Callable[[Any], Any] | None = None,
) -> tuple[bool, str]:
    """The one verdict on an answer: ``(True, the praise)`` or ``(False, the reason)``.

    ``outcomes`` holds, case by case, ``(True, the answer's output)`` or ``(False, why it could not
    run)``. It is read one case at a time, so that :func:`evaluate` runs the answer on an input
    just before the reference does; the first failure decides. The grader passes the outputs its
    child process reported, which crossed a JSON pipe, and ``as_sent``: the same conversion, for
    the reference's output. A comparison that breaks is then "an output of the wrong form"."""
    for args, (ran, got) in zip(cases, outcomes, strict=True):  # one outcome per case
        if not ran:
            return False, got
        if as_sent is None:
            reason = compare_safely(ex, ex.call(ex.reference, copy.deepcopy(args)), got)
        else:
            try:
                reason = ex.compare(as_sent(ex.call(ex.reference, copy.deepcopy(args))), got)
            except Exception as err:  # noqa: BLE001  an output of the wrong shape breaks `compare`
                reason = f"an output of the wrong form ({type(err).__name__}: {err})"
        if reason is not None:
            return False, f"on input ({ex.describe(args)}): {reason}"
    return True, f"{ex.title}: right on {len(cases)} fresh random inputs"


def evaluate(ex: Exercise, answer: Any, seed: int) -> CheckResult:
    """Compare ``answer`` with the reference on the inputs drawn from ``seed``; never raises."""
    cases = ex.inputs(np.random.default_rng(seed))
    passed, reason = verdict(ex, cases, (run_answer(ex, answer, args) for args in cases))
    return CheckResult(ex.id, passed, ex.points if passed else 0, ex.points, reason)


def strict_mode() -> bool:
    return os.environ.get("NAS_LAB_STRICT", "") not in ("", "0", "false", "False")


def check(exercise_id: str, answer: Any, *, seed: int | None = None) -> CheckResult:
    """Check a learner's answer to exercise ``exercise_id`` and print the verdict.

    Inputs are fresh on every call (``seed=None``), so an answer that hard-codes outputs fails.
    Never raises, unless ``NAS_LAB_STRICT=1`` is set and the check fails.
    """
    try:
        ex = get(exercise_id)
    except KeyError as err:
        result = CheckResult(exercise_id, False, 0, 0, err.args[0])
    else:
        result = evaluate(ex, answer, secrets.randbits(32) if seed is None else seed)
    print(result)
    if strict_mode() and not result.passed:
        raise CheckFailed(str(result))
    return result


__all__ = [
    "CheckFailed",
    "CheckResult",
    "Exercise",
    "REGISTRY",
    "check",
    "close",
    "equal",
    "evaluate",
    "exercise",
    "get",
    "load_all",
    "loss_value",
    "verdict",
]
