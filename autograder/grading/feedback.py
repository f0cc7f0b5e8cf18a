"""The feedback page a student receives: each test cell's name, points and message -- never a test's source.

nbgrader's own feedback is the executed notebook, hidden tests included (upstream issue #917), so it is not used.
This page is built from a :class:`~autograder.grading.tasks.GradeResult` alone: grade ids, points, the trusted
checks' names and one-line messages. Every string is HTML-escaped.
"""
from __future__ import annotations

from html import escape

from .records import GradeResult

__all__ = ["render"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; } th, td { border-bottom: 1px solid #ddd; padding: .4rem; text-align: left;
vertical-align: top; } .pass { color: #17633a; } .fail { color: #a4161a; } .status { font-weight: 600; }
ul { margin: .2rem 0; padding-left: 1.2rem; } code { font-size: 90%; }
"""

_STATUS_TEXT = {
    "graded": "graded",
    "timeout": "not graded: the notebook ran past the time limit",
    "crashed": "not graded: the notebook crashed while running",
    "invalid-notebook": "not graded: the file is not a readable notebook",
    "missing": "not graded: no notebook was submitted",
}


def _points(x: float | None) -> str:
    return "&ndash;" if x is None else f"{x:g}"


def render(result: GradeResult) -> str:
    """A self-contained HTML page for one student's result."""
    rows = []
    for test in result.tests:
        css = "pass" if test.passed else "fail"
        checks, message = "", test.message
        if test.checks:   # the checks' own lines say what failed; the summary only says how the cell ended
            message = "passed" if test.passed else {
                "kernel-error": "failed: the checks passed, but the cell itself raised an error",
                "no-results": "failed: the grader received no results for this cell (did the notebook end early?)",
            }.get(test.kind, "failed")
            items = "".join(
                f'<li class="{"pass" if ok else "fail"}">{"&#10003;" if ok else "&#10007;"} {escape(name)}'
                + ("" if ok else f": {escape(message)}") + "</li>"
                for name, ok, message in test.checks)
            checks = f"<ul>{items}</ul>"
        rows.append(f'<tr><td><code>{escape(test.grade_id)}</code>{" (hidden tests)" if test.hidden else ""}</td>'
                    f'<td>{_points(test.points)} / {_points(test.max_points)}</td>'
                    f'<td class="{css}">{escape(message)}{checks}</td></tr>')
    table = ("<table><tr><th>test</th><th>points</th><th>result</th></tr>" + "".join(rows) + "</table>"
             if rows else "")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(result.assignment)}: feedback for {escape(result.student)}</title>"
            f"<style>{_STYLE}</style></head><body>"
            f"<h1>{escape(result.assignment)}</h1>"
            f"<p>Student: <strong>{escape(result.student)}</strong></p>"
            f"<p class=\"status\">Score: {_points(result.score)} / {_points(result.max_score)} "
            f"({escape(_STATUS_TEXT.get(result.status, result.status))})</p>"
            f"<p>{escape(result.reason)}</p>{table}</body></html>\n")
