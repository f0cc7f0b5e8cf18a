"""The assignments through nbgrader itself (slow: kernels start, notebooks run).

One temporary course directory holds all four assignments, generated from ``solutions/``. For each assignment
students submit the solved notebook and the released exercise untouched; four more submit a solution with one
mistake from ``test_assignments_mistakes.MISTAKES`` (two caught by visible tests, two only by hidden ones).
``nbgrader autograde`` (the command line,
as an instructor runs it) grades each assignment's batch; the gradebook must then hold full marks, zero, and
exactly the points of the cells whose check groups the mistake fails in-process.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from test_assignments import ASSIGNMENTS, ROOT, _with_mistake, exercise_path, failures, solution_path
from test_assignments_mistakes import MISTAKES

pytestmark = pytest.mark.slow

#: (assignment, student) -> mistake id: two mistakes the visible tests catch (one of them also breaks `one_hot`,
#: which calls the lookup) and two that only the hidden tests catch (their points come back at autograde time)
MISTAKE_STUDENTS = {
    ("token-embeddings", "visible-mistake"): "forward-negative-ids-wrap",
    ("positional-encodings", "hidden-mistake"): "add-positions-trusts-broadcasting",
    ("memory-scaling", "visible-mistake"): "int4-rounded-down",
    ("backprop", "hidden-mistake"): "softmax-log-of-underflowed-probability",
}
BY_ID = {m.id: m for m in MISTAKES}


def nbgrader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    from autograder.release import nbgrader_env

    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=nbgrader_env(),
        timeout=600,
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def with_mistake(assignment: str, mistake_id: str) -> nbformat.NotebookNode:
    """The solved notebook with a mistaken definition appended to the function's answer cell (the mistake
    replaces the function; helpers defined in the cell stay, as in the in-process tests)."""
    mistake = BY_ID[mistake_id]
    nb = nbformat.read(solution_path(assignment), as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"answer_{mistake.function}")
    cell.source = cell.source + "\n\n\n" + mistake.code
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Generate, submit and autograde every assignment; returns the per-cell scores and timings."""
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    from autograder.release import nbgrader_env

    course = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions", course / "solutions")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    saved_path = nbgrader_env()["PATH"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", saved_path)
        api = NbGraderAPI(config=config)
        for assignment in ASSIGNMENTS:
            assert api.generate_assignment(assignment, force=True)["success"], assignment

    students = {}
    for assignment in ASSIGNMENTS:
        submissions = {
            "solved": nbformat.read(solution_path(assignment), as_version=4),
            "released": nbformat.read(exercise_path(assignment), as_version=4),
        }
        for (a, student), mistake_id in MISTAKE_STUDENTS.items():
            if a == assignment:
                submissions[student] = with_mistake(assignment, mistake_id)
        for student, nb in submissions.items():
            folder = course / "submitted" / student / assignment
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{assignment}.ipynb")
        students[assignment] = list(submissions)

    # one nbgrader process grades every assignment ("*" globs assignment folders), as an instructor would batch it
    start, cpu_start = time.perf_counter(), _children_cpu()
    proc = nbgrader("autograde", "*", "--force", cwd=course)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu_start
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for assignment in ASSIGNMENTS:
            for student in students[assignment]:
                submission = gb.find_submission(assignment, student)
                cells = {g.name: (g.score, g.max_score) for nb in submission.notebooks for g in nb.grades}
                results[assignment, student] = (submission.score, submission.max_score, cells)
    n = sum(map(len, students.values()))
    print(
        f"\nnbgrader autograde (one process, this machine's CPU): {n} notebooks in {seconds:.1f} s wall, "
        f"{seconds / n:.1f} s per notebook; {cpu / n:.1f} s of CPU time per notebook (kernels included)"
    )
    return results


#: the written answer of every assignment: a manually graded answer cell, which nbgrader autograde scores 0 and
#: flags for manual grading
MANUAL = "reflection"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solved_notebook_scores_full_marks(graded, assignment):
    score, max_score, cells = graded[assignment, "solved"]
    manual = cells[MANUAL][1]
    assert manual > 0 and cells[MANUAL][0] == 0, "the written answer waits for a person"
    assert max_score > 0 and score == max_score - manual, {k: v for k, v in cells.items() if v[0] != v[1]}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebook_scores_zero_without_crashing(graded, assignment):
    score, max_score, cells = graded[assignment, "released"]
    assert score == 0 and max_score == graded[assignment, "solved"][1]
    assert len(cells) == len(graded[assignment, "solved"][2]), "every test cell, hidden ones included, was graded"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("key", sorted(MISTAKE_STUDENTS), ids=[f"{a}-{s}" for a, s in sorted(MISTAKE_STUDENTS)])
def test_mistake_notebook_loses_exactly_the_failing_cells(graded, key, monkeypatch):
    assignment, student = key
    mistake = BY_ID[MISTAKE_STUDENTS[key]]
    score, max_score, cells = graded[key]
    lost = {name for name, (got, most) in cells.items() if got < most} - {MANUAL}
    # nbgrader ran the test cells in local mode: hidden groups with the fixed LOCAL_HIDDEN_SEED, failures()'s default
    expected = {group for group, _, _ in failures(assignment, _with_mistake(mistake, measure=True))}
    assert lost == expected and lost, (lost, expected)
    assert 0 < score == max_score - cells[MANUAL][1] - sum(cells[g][1] for g in expected)
    if student == "hidden-mistake":
        assert all(g.endswith("_hidden") for g in lost), "a hidden-only mistake loses hidden points only"


def test_nbgrader_validate_passes_a_solved_notebook():
    """What a student runs before submitting (one notebook: autograde above already runs all four solved ones)."""
    proc = nbgrader("validate", str(solution_path("positional-encodings")), cwd=ROOT)
    assert proc.returncode == 0 and "Success! Your notebook passes all the tests." in proc.stdout, (
        proc.stdout[-3000:] + proc.stderr[-2000:]
    )


def test_nbgrader_validate_reports_the_failing_tests_of_a_released_notebook():
    proc = nbgrader("validate", str(exercise_path("memory-scaling")), cwd=ROOT)
    # the six visible test cells and the measurement record's fail, and the written answer is still empty; the
    # hidden cells are empty in the student version
    assert "VALIDATION FAILED ON 8 CELL(S)" in proc.stdout and "CheckFailed" in proc.stdout, proc.stdout[-3000:]


def test_exercises_are_in_sync_with_solutions(capsys):
    from autograder.release import main

    assert main(["--check"]) == 0, capsys.readouterr().err
