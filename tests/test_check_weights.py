"""Partial credit inside a test cell: check weights in the judge registry and core.cell_points."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from autograder.checks import core

FIXTURES = Path(__file__).parent / "fixtures" / "grading"
A = "grading-fixture"


@pytest.fixture(scope="module")
def fixture_checks():
    sys.path.insert(0, str(FIXTURES))
    try:
        import grading_fixture_checks
        import grading_fixture_probes as probes

        yield probes
    finally:
        sys.path.remove(str(FIXTURES))
    assert grading_fixture_checks


def test_weights_are_equal_by_default_and_split_a_cells_points(fixture_checks):
    P = fixture_checks
    checks = core.group(A, "test_unit")
    assert [c.weight for c in checks] == [1.0, 1.0]
    half = [(P.UNIT, True, "ok"), (P.UNIT_ZERO, False, "a zero vector must raise ValueError")]
    assert core.cell_points(A, "test_unit", half, 3.0) == 1.5
    assert core.cell_points(A, "test_unit", [(P.UNIT, True, "ok"), (P.UNIT_ZERO, True, "ok")], 3.0) == 3.0
    assert core.cell_points(A, "test_unit", [(P.UNIT, True, "ok")], 3.0) == 1.5  # a missing verdict fails
    assert core.cell_points(A, "test_unit", [], 3.0) == 0.0
    with pytest.raises(KeyError, match="does not have: forged"):
        core.cell_points(A, "test_unit", [("forged", True, "ok")], 3.0)


def test_a_weight_changes_the_split(fixture_checks, monkeypatch):
    P = fixture_checks
    monkeypatch.setitem(core._WEIGHTS, (A, "test_unit", P.UNIT), 2.0)
    assert core.cell_points(A, "test_unit", [(P.UNIT, True, "ok"), (P.UNIT_ZERO, False, "no")], 3.0) == 2.0
    assert core.cell_points(A, "test_unit", [(P.UNIT, False, "no"), (P.UNIT_ZERO, True, "ok")], 3.0) == 1.0


@pytest.mark.parametrize("weight", [0, -1, float("nan"), float("inf"), True, "2"])
def test_bad_weights_are_refused(weight):
    with pytest.raises(ValueError, match="must be a finite number > 0"):
        core.add_judge("token-embeddings", "no-such-group", f"w{weight!r}", lambda data, seed: None, weight)
    assert ("token-embeddings", "no-such-group", f"w{weight!r}") not in core._JUDGES


@pytest.mark.parametrize("assignment", core.ASSIGNMENTS)
def test_every_course_check_has_a_positive_weight_and_full_marks_add_up(assignment):
    for group_name, checks in core.groups(assignment).items():
        assert checks and all(c.weight > 0 for c in checks), group_name
        every = [(c.name, True, "ok") for c in checks]
        assert core.cell_points(assignment, group_name, every, 4.0) == pytest.approx(4.0)
        assert core.cell_points(assignment, group_name, [(c.name, False, "x") for c in checks], 4.0) == 0.0
