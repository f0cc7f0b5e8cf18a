"""End to end: ``python -m autograder grade`` on a class holding every kind of hostile notebook and good ones.

Uses the grader's own fixture assignment (tests/fixtures/grading), graded in parallel (--jobs 2).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from grading_cli import fixture_env, grade_command

from autograder.grading.benchmarks import synthetic

FIXTURES = Path(__file__).parent / "fixtures" / "grading"
SOURCE = FIXTURES / "grading-fixture.ipynb"
ASSIGNMENT = "grading-fixture"
HIDDEN_SENTINEL = "HIDDEN-FIXTURE-SENTINEL"
TIMEOUT_S = 25  # the time-limit variants cost this twice (retried once) in each of the three runs; 15 s timed out
# a good notebook on a loaded 2-core machine

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]


def _grade(submissions: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = fixture_env()
    cmd = grade_command(str(submissions), str(out), "--jobs", "2", "--timeout", str(TIMEOUT_S), "--memory", "2", *extra)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def _stored(out: Path, student: str) -> dict:
    return json.loads((out / ".autograder" / ASSIGNMENT / f"{student}.json").read_text())


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    kinds = {v: v for v in synthetic.VARIANTS} | {"O Neil [2]": "solved", "nobody": "missing"}
    source = json.loads(SOURCE.read_text())
    for student, kind in kinds.items():
        folder = root / "submitted" / student / ASSIGNMENT
        if kind == "missing":
            (root / "submitted" / student).mkdir(parents=True)
            continue
        folder.mkdir(parents=True)
        (folder / SOURCE.name).write_bytes(synthetic.variant(source, kind, flood_mb=150))
    hangs = synthetic.variant(source, "solved").replace(b"norm = np.linalg.norm(v)", b"while True: pass")
    assert b"while True" in hangs
    (root / "submitted" / "hangs-in-a-test" / ASSIGNMENT).mkdir(parents=True)  # hangs inside the hidden-test cell
    (root / "submitted" / "hangs-in-a-test" / ASSIGNMENT / SOURCE.name).write_bytes(hangs)
    kinds["hangs-in-a-test"] = "loop"
    proc = _grade(root / "submitted", root / "out")
    return root, kinds, proc


def test_grading_runs_and_exits_zero(graded):
    _, _, proc = graded
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "run now" in proc.stdout


def test_every_student_gets_the_expected_status(graded):
    root, kinds, _ = graded
    rows = _rows(root / "out")
    assert set(rows) == set(kinds)
    expected = {s: ("missing" if k == "missing" else synthetic.EXPECTED[k][0]) for s, k in kinds.items()}
    assert {s: r["status"] for s, r in rows.items()} == expected
    for row in rows.values():
        assert row["max_score"] == "5"
        assert row["reason"], row
        if row["status"] != "graded":
            assert row["score"] == "", f"{row['student']}: a notebook that did not run must not get a score"


def test_good_students_keep_full_marks(graded):
    rows = _rows(graded[0] / "out")
    for student in ("solved", "O Neil [2]", "deleted-tests", "flood"):  # odd ids (glob brackets) too
        assert rows[student]["score"] == "5", rows[student]
    assert "truncated" in rows["flood"]["reason"]


def test_broken_answers_cost_exactly_their_tests(graded):
    root = graded[0]
    rows = _rows(root / "out")
    # test_scale (2 points) is lost, test_unit (3 points) kept
    for student in ("renamed", "edited-tests", "monkeypatch"):
        assert rows[student]["score"] == "3", rows[student]
    renamed = {t["grade_id"]: t for t in _stored(root / "out", "renamed")["tests"]}
    assert "not defined" in renamed["test_scale"]["message"]
    assert rows["membomb"]["score"] == "0" and "MemoryError" in rows["membomb"]["reason"]


def test_monkeypatching_the_checks_earns_nothing(graded):
    root = graded[0]
    tests = {t["grade_id"]: t for t in _stored(root / "out", "monkeypatch")["tests"]}
    assert tests["test_scale"]["points"] == 0.0 and tests["test_scale"]["kind"] == "wrong"
    assert "raised NotImplementedError" in tests["test_scale"]["message"]
    assert tests["test_unit"]["kind"] == "passed"


def test_every_row_says_which_isolation_it_had(graded):
    root, kinds, proc = graded
    rows = _rows(root / "out")
    from autograder.grading.sandbox import ISOLATION_BWRAP

    ran = {s for s, r in rows.items() if r["status"] not in ("missing", "invalid-notebook")}
    assert ran and all(rows[s]["isolation"] == ISOLATION_BWRAP for s in ran)
    assert all(rows[s]["isolation"] == "" for s in set(rows) - ran)
    assert f"{ISOLATION_BWRAP}: {len(ran)}" in proc.stdout


def test_statuses_carry_reasons(graded):
    rows = _rows(graded[0] / "out")
    assert "time limit" in rows["loop"]["reason"] and "time limit" in rows["swallow"]["reason"]
    assert "kernel died" in rows["exit"]["reason"] and "kernel died" in rows["segfault"]["reason"]
    assert "JSON" in rows["truncated"]["reason"]


def test_the_cell_that_crashed_or_hung_is_named_never_a_hidden_tests_source(graded):
    root, _, proc = graded
    rows = _rows(root / "out")
    assert "it hung in code cell 1 of 5, which starts `while True:`" in rows["loop"]["reason"]
    assert "it crashed in code cell 1 of 5, which starts `import ctypes`" in rows["segfault"]["reason"]
    hidden = rows["hangs-in-a-test"]["reason"]
    assert "it hung in code cell 4 of 4, a test cell (test_unit)" in hidden, hidden
    assert HIDDEN_SENTINEL not in hidden and "assert" not in hidden and "it hung in code cell 4" in proc.stdout
    page = (root / "out" / "feedback" / "hangs-in-a-test" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "a test cell (test_unit)" in page and HIDDEN_SENTINEL not in page
    for student in ("loop", "segfault", "hangs-in-a-test"):  # kept for the formgrader: what ran
        assert (root / "out" / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").exists()


def test_feedback_never_shows_hidden_tests(graded):
    root, kinds, _ = graded
    source_text = SOURCE.read_text()
    assert HIDDEN_SENTINEL in source_text
    pages = sorted((root / "out" / "feedback").glob(f"*/{ASSIGNMENT}/{ASSIGNMENT}.html"))
    assert len(pages) == len(kinds)
    for path in pages:
        page = path.read_text()
        assert HIDDEN_SENTINEL not in page and "BEGIN HIDDEN TESTS" not in page and "run_checks(" not in page
    page = (root / "out" / "feedback" / "solved" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "test_unit" in page and "3 / 3" in page and "zero vector raises ValueError" in page


def test_gradebook_flags_notebooks_that_did_not_run(graded):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded[0] / 'out' / 'gradebook.db'}") as gb:
        assert gb.find_submission(ASSIGNMENT, "solved").score == 5.0
        crashed = gb.find_grade("test_unit", ASSIGNMENT, ASSIGNMENT, "segfault")
        assert crashed.auto_score is None and crashed.needs_manual_grade
        assert gb.find_submission(ASSIGNMENT, "monkeypatch").score == 3.0


def test_rerun_is_idempotent_and_a_late_submission_alone_is_graded(graded):
    root, _, _ = graded
    before = _rows(root / "out")
    failed = sorted(s for s, r in before.items() if r["status"] in ("crashed", "timeout"))
    again = _grade(root / "submitted", root / "out")
    assert again.returncode == 0, again.stderr[-2000:]
    assert " 0 run now" in again.stdout  # a crash or timeout costs 2 x --timeout: rerun only with --retry-failed
    assert f"{len(failed)} crashed or timed out last time and kept as they were: --retry-failed" in again.stdout
    assert _rows(root / "out") == before
    late = root / "submitted" / "late" / ASSIGNMENT
    late.mkdir(parents=True)
    shutil.copy(root / "submitted" / "solved" / ASSIGNMENT / SOURCE.name, late / SOURCE.name)
    third = _grade(root / "submitted", root / "out")
    assert " 1 run now" in third.stdout, third.stdout
    rows = _rows(root / "out")
    assert rows["late"]["score"] == "5" and rows["late"]["status"] == "graded"


def test_grade_submission_from_a_threaded_worker_process(monkeypatch):
    """What a Dask worker does: call grade_submission from a thread of a multi-threaded process (children are
    exec'd then, not forked warm), with the source notebook only (no prepared gradebook)."""
    from concurrent.futures import ThreadPoolExecutor

    from autograder.grading.tasks import GradeTask, grade_submission

    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")]))
    source = json.loads(SOURCE.read_text())
    tasks = [
        GradeTask(
            student,
            ASSIGNMENT,
            ASSIGNMENT,
            synthetic.variant(source, kind),
            SOURCE.read_bytes(),
            timeout_s=60,
            check_modules=("grading_fixture_checks",),
        )
        for student, kind in (("ann", "solved"), ("bob", "monkeypatch"))
    ]
    with ThreadPoolExecutor(2) as pool:
        ann, bob = pool.map(grade_submission, tasks)
    assert (ann.status, ann.score) == ("graded", 5.0), ann.reason
    assert (bob.status, bob.score) == ("graded", 3.0), bob.reason
    assert bob.tests[0].kind == "wrong" and "raised NotImplementedError" in bob.tests[0].message
