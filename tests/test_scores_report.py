"""One source of truth: final rows from the gradebook (manual scores, comments, lateness) and the class report."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from autograder.grading import feedback
from autograder.grading.lateness import Lateness, Timestamp, assess
from autograder.grading.report import check_stats, read_history, write_report
from autograder.grading.scores import GradebookView, build_row, class_stats
from autograder.grading.store import Store
from autograder.grading.tasks import GradeResult, TestRecord

SOURCE = Path(__file__).parent / "fixtures" / "grading" / "grading-fixture.ipynb"
A = "grading-fixture"
DUE = dt.datetime(2026, 12, 5, 12, 0)


def _graded(student: str, scale: float, unit: float, checks=()) -> GradeResult:
    return GradeResult(
        student,
        A,
        "graded",
        scale + unit,
        5.0,
        "",
        [
            TestRecord("test_scale", scale, 2.0, scale == 2.0, "m", False, checks),
            TestRecord("test_unit", unit, 3.0, unit == 3.0, "m", True),
        ],
        submission_hash=student,
    )


@pytest.fixture()
def store(tmp_path):
    s = Store(tmp_path / "out", A, A)
    s.prepare_assignment(SOURCE.read_bytes())
    yield s
    s.close()


def _late(timestamp, percent=10.0):
    return lambda raw: assess(Timestamp(timestamp), DUE, raw, 5.0, percent)


def test_manual_scores_and_comments_reach_the_row_and_survive_reruns(store):
    result = _graded("ann", 0.0, 3.0)
    store.save(result)
    gb = store.gradebook()
    grade = gb.find_grade("test_scale", A, A, "ann")
    grade.manual_score = 1.5  # what the formgrader writes
    gb.db.commit()
    row = build_row(result, store.view("ann"), lambda raw: Lateness(None, None, None))
    assert row.raw_score == 4.5 and row.score == 4.5 and row.hand_scored
    assert "scored by hand in the gradebook: test_scale" in row.reason
    store.record(result)  # a rerun with the same notebook
    again = store.view("ann")
    assert {c.grade_id: c.manual for c in again.cells}["test_scale"] == 1.5
    assert not {c.grade_id: c.needs_manual for c in again.cells}["test_scale"]
    store.record(result, fresh=True)  # a changed notebook: nbgrader flags it for review
    cells = {c.grade_id: c for c in store.view("ann").cells}
    assert cells["test_scale"].manual == 1.5 and cells["test_scale"].needs_manual
    page = feedback.render(result, build_row(result, store.view("ann"), lambda raw: Lateness(None, None, None)))
    assert "set by your instructor" in page and "Score: 4.5 / 5" in page


def test_comments_from_the_gradebook(store):
    result = _graded("bob", 2.0, 3.0)
    store.save(result)
    gb = store.gradebook()
    gb.find_comment("scale_answer", A, A, "bob").manual_comment = "good work <3"  # what the formgrader writes
    gb.db.commit()
    row = build_row(result, store.view("bob"), lambda raw: Lateness(None, None, None))
    assert row.comments == (("scale_answer", "good work <3"),)
    assert "good work &lt;3" in feedback.render(result, row)


def test_a_crashed_notebook_scored_by_hand_counts(store):
    result = GradeResult("cy", A, "crashed", None, 5.0, "the kernel died", submission_hash="cy")
    store.save(result)
    row = build_row(result, store.view("cy"), lambda raw: Lateness(None, None, None))
    assert row.score is None and all(c.needs_manual for c in row.cells)
    gb = store.gradebook()
    for name, points in (("test_scale", 2.0), ("test_unit", 1.0)):
        gb.find_grade(name, A, A, "cy").manual_score = points
    gb.db.commit()
    row = build_row(result, store.view("cy"), lambda raw: Lateness(None, None, None))
    assert row.score == 3.0 and "scored by hand in the gradebook (the grader could not run it: crashed)" in row.reason


def test_lateness_is_written_where_nbgrader_keeps_it(store):
    result = _graded("dee", 2.0, 3.0)
    store.save(result)
    submitted = DUE + dt.timedelta(hours=2, minutes=1)
    row = build_row(result, store.view("dee"), _late(submitted))
    assert row.raw_score == 5.0 and row.lateness.penalty == 1.5 and row.score == 3.5
    store.record_lateness("dee", submitted, DUE, row.lateness.penalty)
    gb = store.gradebook()
    submission = gb.find_submission(A, "dee")
    assert gb.find_assignment(A).duedate == DUE and submission.timestamp == submitted
    assert submission.total_seconds_late == pytest.approx(row.lateness.minutes_late * 60)
    assert gb.find_submission_notebook(A, A, "dee").late_submission_penalty == 1.5
    assert submission.late_submission_penalty == 1.5  # what nbgrader export subtracts: the same final score
    assert max(0.0, submission.score - submission.late_submission_penalty) == row.score


def _rows(results):
    return [build_row(r, GradebookView(), lambda raw: Lateness(None, None, None)) for r in results]


def test_report_is_self_contained_with_plots_checks_and_history(tmp_path):
    checks_a = (("scales a vector", False, "expected 2, got 1"), ("keeps dtype", True, "ok"))
    checks_b = (("scales a vector", False, "expected 2, got 1"), ("keeps dtype", False, "float64"))
    rows = _rows(
        [
            _graded("ann", 0.0, 3.0, checks_a),
            _graded("bob", 0.0, 0.0, checks_b),
            _graded("cy", 2.0, 3.0, (("scales a vector", True, "ok"), ("keeps dtype", True, "ok"))),
            GradeResult("dan", A, "timeout", None, 5.0, "too slow"),
        ]
    )
    rows[0].flags = ["bob 91%"]
    first = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
    write_report(tmp_path, rows, A, now=first)
    page = (tmp_path / "report.html").read_text()
    assert "No cell awaits a manual grade." in page
    rows[1].manual_pending = ("reflection",)  # a written answer not scored by hand yet
    write_report(tmp_path, rows, A, now=first)
    page = (tmp_path / "report.html").read_text()
    assert "<h2>Awaiting a manual grade</h2>" in page and "<td>bob</td><td>reflection</td>" in page.replace("\n", "")
    assert page.count('src="data:image/png;base64,') == 2  # histogram and pass rates, embedded
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    assert "Histogram of 3 scores between 0 and 5 of 5" in page and "too slow" in page and "bob 91%" in page
    stats = check_stats(rows)
    assert stats[0][:4] == ("test_scale", "scales a vector", 3 - 1, 3) and stats[0][4] == "expected 2, got 1"
    assert class_stats(rows).mean == pytest.approx((3 + 0 + 5) / 3)  # the timeout is not a 0
    rows2 = _rows(
        [
            _graded("ann", 2.0, 3.0),
            _graded("bob", 0.0, 0.0),
            _graded("cy", 2.0, 3.0),
            GradeResult("dan", A, "timeout", None, 5.0, "too slow"),
        ]
    )
    write_report(tmp_path, rows2, A, now=first + dt.timedelta(hours=1), reasons={"ann": "resubmitted"})
    history = read_history(tmp_path)
    assert [(h["student"], h["old_score"], h["score"], h["reason"]) for h in history] == [
        ("ann", "", "3", "first run"),
        ("bob", "", "0", "first run"),
        ("cy", "", "5", "first run"),
        ("dan", "", "", "first run"),
        ("ann", "3", "5", "resubmitted"),  # the old score, the new one, and why
    ]
    page = (tmp_path / "report.html").read_text()
    assert "3 (2026-12-06 09:00, first run)" in page and "5 (2026-12-06 10:00, resubmitted)" in page


def test_report_for_a_class_where_every_notebook_crashed(tmp_path):
    rows = _rows([GradeResult(s, A, "crashed", None, 5.0, "the kernel died") for s in ("ann", "bob")])
    path = write_report(tmp_path, rows, A)
    page = path.read_text()
    assert "No notebook of the 2 students could be scored" in page and "<img" not in page
    assert page.count("the kernel died") == 2


def test_extra_credit_counts_as_nbgrader_counts_it(store):
    from autograder.grading.lms_export import canvas_rows
    from autograder.grading.roster import read_roster

    result = _graded("eve", 2.0, 3.0)
    store.save(result)
    gb = store.gradebook()
    gb.find_grade("test_unit", A, A, "eve").extra_credit = 1.0  # what the formgrader's extra-credit box writes
    gb.db.commit()
    nbgrader_total = gb.find_submission(A, "eve").score  # what nbgrader export and its feedback print
    row = build_row(result, store.view("eve"), lambda raw: Lateness(None, None, None))
    assert nbgrader_total == 6.0 and row.score == nbgrader_total and row.raw_score == 6.0
    assert "extra credit 1 included" in row.reason
    page = feedback.render(result, row)
    assert "Score: 6 / 5" in page and "+ 1 extra credit" in page
    assert canvas_rows([row], read_roster(None), A)[1][-1] == "6"


def test_manual_pending_lists_every_cell_nbgrader_flags(store):
    result = _graded("fay", 0.0, 3.0)
    store.save(result)
    gb = store.gradebook()
    gb.find_grade("test_scale", A, A, "fay").manual_score = 2.0
    gb.db.commit()
    store.record(result, fresh=True)  # a resubmission: nbgrader flags the hand-scored cell for review
    row = build_row(result, store.view("fay"), lambda raw: Lateness(None, None, None))
    assert row.manual_pending == ("test_scale",) and "awaiting manual grading: test_scale" in row.reason
    crashed = GradeResult("gil", A, "crashed", None, 5.0, "the kernel died", submission_hash="gil")
    store.save(crashed)
    gb.find_grade("test_scale", A, A, "gil").manual_score = 2.0  # one cell scored by hand, flag left on
    gb.db.commit()
    row = build_row(crashed, store.view("gil"), lambda raw: Lateness(None, None, None))
    assert row.manual_pending == ("test_scale", "test_unit") and row.score is None


def test_a_hand_scored_cell_is_not_shown_as_failed(store):
    checks = (("scales a vector", False, "expected 2, got 1"),)
    result = _graded("hal", 0.0, 3.0, checks)
    store.save(result)
    gb = store.gradebook()
    grade = gb.find_grade("test_scale", A, A, "hal")
    grade.manual_score, grade.needs_manual_grade = 2.0, False  # as the formgrader saves a score
    gb.db.commit()
    page = feedback.render(result, build_row(result, store.view("hal"), lambda raw: Lateness(None, None, None)))
    cell = page[page.index("<code>test_scale</code>") : page.index("<code>test_unit</code>")]
    assert '<td class="fail">' not in cell and "scored by your instructor" in cell and "Score: 5 / 5" in page
