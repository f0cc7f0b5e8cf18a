"""Exports of the final scores for a learning-management system (``grade --export canvas``).

Canvas' gradebook import reads a CSV whose header starts with the columns of its own gradebook export --
``Student, ID, SIS User ID, SIS Login ID, Section`` -- followed by one column per assignment; it matches each row
to a student by ``ID`` (Canvas' user id), ``SIS User ID`` or ``SIS Login ID``. The ids come from the roster
(:mod:`autograder.grading.roster`); without one, the nbgrader student id is written as ``SIS User ID``. Missing and
ungraded work is a blank cell, never 0 (Canvas leaves a blank cell ungraded); scores are the final ones of
:class:`~autograder.grading.scores.Row` (manual scores and late penalties included). Every cell is formula-safe
(:func:`autograder.grading.outputs.csv_cell`: a name or id beginning with ``= + - @`` is written as text).
"""

from __future__ import annotations

import os
from pathlib import Path

from .outputs import csv_writer
from .roster import Roster
from .scores import Row

__all__ = ["EXPORTS", "CANVAS_HEADER", "canvas_rows", "write_canvas"]

#: export name -> file written in --out
EXPORTS = {"canvas": "canvas.csv"}
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def canvas_rows(rows: list[Row], roster: Roster, column: str) -> list[list[str]]:
    """Header and one line per student: every graded row, then roster students with no folder (blank)."""
    lines = [CANVAS_HEADER + [column]]
    by_student = {r.student: r for r in rows}
    order = list(roster) + sorted(s for s in by_student if s not in roster)
    for student in order:
        person = roster.person(student)
        row = by_student.get(student)
        score = "" if row is None or row.score is None else f"{row.score:g}"
        lines.append(
            [
                person.name or student,
                person.canvas_id,
                person.sis_user_id or student,
                person.sis_login_id or person.email,
                person.section,
                score,
            ]
        )
    return lines


def write_canvas(out: Path, rows: list[Row], roster: Roster, column: str) -> Path:
    path = Path(out) / EXPORTS["canvas"]
    tmp = path.with_suffix(".part")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        csv_writer(fh).writerows(canvas_rows(rows, roster, column))  # formula-safe cells (outputs.py)
    os.replace(tmp, path)
    return path
