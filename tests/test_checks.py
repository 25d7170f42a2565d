"""Every registered exercise: its check passes on the reference, fails on the stub, and fails on
each plausible wrong answer kept beside it. Plus the behaviour of `check` itself."""

from __future__ import annotations

import numpy as np
import pytest

import nas_lab
from nas_lab import checks

REGISTRY = checks.load_all()
SEEDS = (0, 1, 2)


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise: replace this line with your solution")


def test_every_lesson_with_exercises_has_at_least_three():
    per_lesson: dict[str, int] = {}
    for ex_id in REGISTRY:
        lesson = ex_id.split(".")[0]
        per_lesson[lesson] = per_lesson.get(lesson, 0) + 1
    assert per_lesson and all(n >= 3 for n in per_lesson.values()), per_lesson


@pytest.mark.parametrize("ex_id", sorted(REGISTRY))
def test_reference_passes(ex_id):
    ex = REGISTRY[ex_id]
    for seed in SEEDS:
        result = checks.evaluate(ex, ex.reference, seed)
        assert result.passed, result.reason
        assert result.points == ex.points > 0


@pytest.mark.parametrize("ex_id", sorted(REGISTRY))
def test_stub_fails(ex_id):
    result = checks.evaluate(REGISTRY[ex_id], stub, 0)
    assert not result.passed and result.points == 0
    assert "not implemented" in result.reason


@pytest.mark.parametrize("ex_id", sorted(REGISTRY))
def test_wrong_answers_fail(ex_id):
    ex = REGISTRY[ex_id]
    assert ex.wrong, f"exercise {ex_id} keeps no plausible wrong answer beside its check"
    for wrong in ex.wrong:
        for seed in SEEDS:
            result = checks.evaluate(ex, wrong, seed)
            assert not result.passed, f"{wrong.__name__} passed {ex_id} with seed {seed}"
            assert result.reason and "Traceback" not in result.reason


def test_hard_coded_output_fails():
    """Inputs are fresh on every call: an answer that replays one call's outputs fails."""
    ex = REGISTRY["00.1"]
    seen = [ex.reference(*args) for args in ex.inputs(__import__("numpy").random.default_rng(0))]
    replay = iter(seen * 10)
    result = checks.evaluate(ex, lambda *a: next(replay), seed=123)
    assert not result.passed


def test_check_prints_and_never_raises(capsys, monkeypatch):
    monkeypatch.delenv("NAS_LAB_STRICT", raising=False)
    assert not nas_lab.check("00.1", stub)
    assert not nas_lab.check("00.1", lambda *a: 1 / 0)
    assert not nas_lab.check("00.1", lambda *a: exit(3))
    assert not nas_lab.check("00.1", "not a function")
    out = capsys.readouterr().out
    assert out.count("[FAIL] 00.1") == 4
    assert "ZeroDivisionError" in out and "expected a function" in out


def test_unknown_exercise_lists_the_known_ones(capsys, monkeypatch):
    monkeypatch.delenv("NAS_LAB_STRICT", raising=False)
    assert not nas_lab.check("99.9", stub)
    out = capsys.readouterr().out
    assert "no exercise '99.9'" in out and "00.1" in out


def test_strict_mode_raises_only_on_failure(monkeypatch, capsys):
    monkeypatch.setenv("NAS_LAB_STRICT", "1")
    ex = REGISTRY["00.2"]
    assert nas_lab.check("00.2", ex.reference)
    with pytest.raises(checks.CheckFailed, match="00.2"):
        nas_lab.check("00.2", stub)


def test_feedback_names_input_expected_and_got():
    ex = REGISTRY["00.1"]
    result = checks.evaluate(ex, ex.wrong[0], 0)
    assert "on input (" in result.reason and "expected" in result.reason and "got" in result.reason


def test_an_answer_of_the_wrong_form_is_a_reason_not_a_crash():
    def history_is_a_number(candidates, evaluate, budget, seed):
        for candidate in candidates[:budget]:
            evaluate(candidate)
        return candidates[0], 3

    result = checks.evaluate(REGISTRY["00.3"], history_is_a_number, 0)
    assert not result.passed and "wrong form" in result.reason


def test_the_verdict_needs_one_outcome_per_case():
    """A verdict never passes an answer on fewer outputs than inputs (a child that reported
    too few, say): the cases and outcomes must line up."""
    ex = checks.get("04.3")
    cases = ex.inputs(np.random.default_rng(0))
    ran = [(True, ex.call(ex.reference, args)) for args in cases]
    assert checks.verdict(ex, cases, ran)[0]
    with pytest.raises(ValueError):
        checks.verdict(ex, cases, ran[:-1])
