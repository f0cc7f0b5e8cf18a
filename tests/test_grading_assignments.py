"""The grader on the course's real assignments (``solutions/<id>/<id>.ipynb``), where they exist.

For every assignment present, its solved notebook (hidden tests removed) gets full marks; for the first, a notebook
that leaves the first answer unsolved but patches numpy and the checkers in its kernel loses points, with the
trusted re-run named in a test's message. All notebooks of all assignments are graded in one pool of two workers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder.checks import core
from autograder.grading import course
from autograder.grading.benchmarks import synthetic
from autograder.grading.executors import LocalExecutor
from autograder.grading.tasks import GradeTask

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = core.ASSIGNMENTS
PRESENT = [a for a in ASSIGNMENTS if (ROOT / "solutions" / a / f"{a}.ipynb").is_file()]


def grade_solved_and_patched(sources: dict[str, Path], check_modules: tuple[str, ...] = ()) -> dict:
    """``{(assignment, variant): GradeResult}`` for the solved and monkeypatch variants of each source."""
    tasks = []
    for i, (assignment, path) in enumerate(sources.items()):
        source = path.read_bytes()
        blob = course.prepare_gradebook_blob(assignment, path.stem, source)
        for kind in ("solved", "monkeypatch") if i == 0 else ("solved",):
            tasks.append(
                GradeTask(
                    f"{assignment}--{kind}",
                    assignment,
                    path.stem,
                    synthetic.variant(json.loads(source), kind),
                    source,
                    blob,
                    timeout_s=180,
                    check_modules=check_modules,
                )
            )
    results = {}
    LocalExecutor(2).run(tasks, lambda r: results.__setitem__(tuple(r.student.split("--")), r))
    return results


def manual_points(source: bytes) -> float:
    """Points of the manually graded answer cells (the written answers): autograding leaves them at 0."""
    info = course.source_info(source)
    tests = {c.grade_id for c in info.test_cells}
    return sum(points for gid, points in info.grade_cells if gid not in tests)


def check(results: dict, sources: dict[str, Path] | None = None) -> None:
    for (assignment, kind), result in results.items():
        assert result.status == "graded", f"{assignment} {kind}: {result.status}: {result.reason}"
        manual = manual_points(sources[assignment].read_bytes()) if sources else 0.0
        if kind == "solved":
            assert result.score == result.max_score - manual > 0, (
                f"{assignment}: the solution scores {result.score}: "
                + "; ".join(f"{t.grade_id}: {t.message}" for t in result.tests if not t.passed)
            )
        else:
            assert result.score < result.max_score, f"{assignment}: patching the checks kept full marks"
            assert any(t.kind == "wrong" for t in result.tests), (
                f"{assignment}: no test was failed by the judge: {[t.message for t in result.tests]}"
            )


@pytest.mark.slow
@pytest.mark.skipif(not PRESENT, reason="no solutions/<id>/<id>.ipynb in this checkout yet")
def test_real_assignments_grade_their_solutions_fully_and_resist_patching():
    sources = {a: ROOT / "solutions" / a / f"{a}.ipynb" for a in PRESENT}
    assert all(manual_points(p.read_bytes()) == 2 for p in sources.values()), "one written answer of 2 points each"
    check(grade_solved_and_patched(sources), sources)
