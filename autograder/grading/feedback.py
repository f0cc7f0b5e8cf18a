"""The feedback page a student receives: each test cell's name, points and message -- never a test's source.

nbgrader's own feedback is the executed notebook, hidden tests included (upstream issue #917), so it is not used.
This page is built from a :class:`~autograder.grading.tasks.GradeResult` (grade ids, points, the trusted checks'
names and one-line messages) and, in the parent process, the student's final
:class:`~autograder.grading.scores.Row` (the file graded, manual scores and comments from the gradebook, the
late penalty). Never the grader's or the kernel's log. Every string is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from .records import GradeResult

if TYPE_CHECKING:
    from .scores import Row

__all__ = ["render"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; } th, td { border-bottom: 1px solid #ddd; padding: .4rem; text-align:
left;
vertical-align: top; } .pass { color: #17633a; } .fail { color: #a4161a; } .manual { color: #333; }
.status { font-weight: 600; }
ul { margin: .2rem 0; padding-left: 1.2rem; } code { font-size: 90%; } .comment { margin: .3rem 0 0; color: #333; }
.todo { background: #fff6e0; padding: .5rem; }
"""

_STATUS_TEXT = {
    "graded": "graded",
    "timeout": "not graded: the notebook ran past the time limit",
    "crashed": "not graded: the notebook crashed while running",
    "invalid-notebook": "not graded: the file is not a readable notebook",
    "missing": "not graded: no notebook was submitted",
}


#: what a student whose notebook could not be graded should do, by status
_WHAT_TO_DO = {
    "timeout": (
        "Your notebook did not finish within the time limit. Look for a loop that never ends or a very slow "
        "cell: restart the kernel, run all cells, and make sure the notebook finishes in a few minutes; "
        "then submit it again or ask your instructor to regrade it."
    ),
    "crashed": (
        "The Python kernel stopped while running your notebook (for example os._exit, sys.exit, a crash in "
        "compiled code or running out of memory). Restart the kernel and run all cells to find the cell "
        "that stops it, fix it, and submit again; if the notebook runs cleanly for you, tell your "
        "instructor: it will be retried."
    ),
    "invalid-notebook": (
        "The file could not be read as a Jupyter notebook (it may be truncated or edited outside "
        "Jupyter). Open it in Jupyter, save it, check that it opens again, and submit that file."
    ),
    "missing": (
        "No notebook was found for this assignment. Submit the notebook you received (keep its name) "
        "with nbgrader or your course's submission system."
    ),
}


def _points(x: float | None) -> str:
    return "&ndash;" if x is None else f"{x:g}"


def render(result: GradeResult, row: Row | None = None) -> str:
    """A self-contained HTML page for one student's result; with ``row``, the final score (manual scores and
    late penalty included), the file graded and the instructor's comments."""
    rows = []
    cells = {c.grade_id: c for c in row.cells} if row is not None else {}
    for test in result.tests:
        css = "pass" if test.passed else "fail"
        checks, message = "", test.message
        if test.checks:  # the checks' own lines say what failed; the summary only says how the cell ended
            message = (
                "passed"
                if test.passed
                else {
                    "kernel-error": "failed: the checks passed, but the cell itself raised an error",
                    "no-results": "failed: the grader received no results for this cell (did the notebook end early?)",
                }.get(test.kind, "failed")
            )
            items = "".join(
                f'<li class="{"pass" if ok else "fail"}">{"&#10003;" if ok else "&#10007;"} {escape(name)}'
                + ("" if ok else f": {escape(message)}")
                + "</li>"
                for name, ok, message in test.checks
            )
            checks = f"<ul>{items}</ul>"
        points = _points(test.points)
        cell = cells.get(test.grade_id)
        if cell is not None and cell.manual is not None:  # the instructor's score decides: not shown as failed
            if cell.manual != test.points:
                points = f"{_points(cell.manual)} (set by your instructor; autograded {_points(test.points)})"
            if not test.passed:
                css = "manual"
                message = "scored by your instructor (the automatic checks did not pass)"
        if cell is not None and cell.extra:
            points += f" + {_points(cell.extra)} extra credit"
        rows.append(
            f"<tr><td><code>{escape(test.grade_id)}</code>{' (hidden tests)' if test.hidden else ''}</td>"
            f"<td>{points} / {_points(test.max_points)}</td>"
            f'<td class="{css}">{escape(message)}{checks}</td></tr>'
        )
    tested = {t.grade_id for t in result.tests}
    for cell in (c for c in (row.cells if row is not None else ()) if c.grade_id not in tested):
        if cell.score is None:
            continue
        extra = f" (including {_points(cell.extra)} extra credit)" if cell.extra else ""
        rows.append(
            f"<tr><td><code>{escape(cell.grade_id)}</code> (graded by your instructor)</td>"
            f"<td>{_points(cell.score)} / {_points(cell.max_points)}{extra}</td><td></td></tr>"
        )
    table = "<table><tr><th>test</th><th>points</th><th>result</th></tr>" + "".join(rows) + "</table>" if rows else ""
    score, reason, extra = result.score, result.reason, ""
    if row is not None:
        score, reason = row.score, row.reason
        if row.notebook:
            extra += f"<p>Notebook graded: <code>{escape(row.notebook)}</code></p>"
        if row.lateness.penalty:
            extra += (
                f"<p>Late penalty: &minus;{_points(row.lateness.penalty)} "
                f"(before the penalty: {_points(row.raw_score)})</p>"
            )
        if row.comments:
            items = "".join(f"<li><code>{escape(name)}</code>: {escape(text)}</li>" for name, text in row.comments)
            extra += f'<div class="comment"><p>Comments from your instructor:</p><ul>{items}</ul></div>'
        if row.manual_pending:
            extra += "<p>Some cells are still to be graded by your instructor; this score may change.</p>"
    todo = _WHAT_TO_DO.get(result.status, "") if score is None else ""
    todo_html = f'<p class="todo"><strong>What to do:</strong> {escape(todo)}</p>' if todo else ""
    by_instructor = score is not None and result.status != "graded"
    status_text = "scored by your instructor" if by_instructor else _STATUS_TEXT.get(result.status, result.status)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(result.assignment)}: feedback for {escape(result.student)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{escape(result.assignment)}</h1>"
        f"<p>Student: <strong>{escape(result.student)}</strong></p>"
        f'<p class="status">Score: {_points(score)} / {_points(result.max_score)} ({escape(status_text)})</p>'
        f"{extra}<p>{escape(reason)}</p>{todo_html}{table}</body></html>\n"
    )
