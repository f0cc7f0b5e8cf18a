"""One student's final numbers, from one place: :class:`Row`.

``grades.csv``, the summary printed by ``grade``, the feedback pages, the class report and every LMS export are
all written from the rows :func:`build_row` returns, so they cannot disagree. A row combines

* the grader's result (:class:`~autograder.grading.tasks.GradeResult`: status, test cells, reason),
* the nbgrader gradebook as it stands after this run: a **manual score** entered with the formgrader (or
  nbgrader's API) replaces the autograded score of its cell, exactly as nbgrader's ``Grade.score`` does, and
  its comments are kept,
* the lateness of the submission and its penalty (:mod:`autograder.grading.lateness`),
* the notebook that was graded (:mod:`autograder.grading.picking`) and the similarity flags.

What an ungraded notebook counts as: a row whose status is not ``graded`` has no score (empty in ``grades.csv``,
blank in exports, left out of every mean and histogram and counted by status instead), unless an instructor gave
every one of its graded cells a manual score in the gradebook; then that sum is its score and the reason says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .lateness import Lateness
from .records import GradeResult

__all__ = ["CellScore", "GradebookView", "Row", "build_row", "class_stats", "ClassStats"]


@dataclass(frozen=True)
class CellScore:
    """One graded cell as the gradebook has it. ``score`` is nbgrader's rule (``Grade.score``): the manual score
    when there is one, else the autograded one, plus the extra credit entered with the formgrader (which may take a
    cell, and the total, past its maximum); ``None`` when the cell has neither score."""

    grade_id: str
    max_points: float
    auto: float | None
    manual: float | None
    needs_manual: bool
    extra: float | None = None  # extra credit (nbgrader's ``Grade.extra_credit``)

    @property
    def score(self) -> float | None:
        base = self.manual if self.manual is not None else self.auto
        return None if base is None else base + (self.extra or 0.0)


@dataclass(frozen=True)
class GradebookView:
    """What the gradebook holds for one student's submission (``cells`` empty: no submission there).
    ``comments``: ``(cell name, text)`` for every non-empty comment (nbgrader keeps them on answer cells)."""

    cells: tuple[CellScore, ...] = ()
    extension: dt.timedelta | None = None
    comments: tuple[tuple[str, str], ...] = ()


@dataclass
class Row:
    """A student's line in ``grades.csv`` and everything written from it."""

    result: GradeResult
    notebook: str = ""  # the file graded, e.g. "token-embeddings (1).ipynb"
    raw_score: float | None = None  # before the late penalty (manual scores included)
    score: float | None = None  # the final score: raw_score - late penalty, never below 0
    lateness: Lateness = field(default_factory=lambda: Lateness(None, None, None))
    cells: tuple[CellScore, ...] = ()
    comments: tuple[tuple[str, str], ...] = ()  # the instructor's comments: (cell name, text)
    manual_pending: tuple[str, ...] = ()  # grade ids nbgrader flags ``needs_manual_grade``, in notebook order
    extra_credit: float = 0.0  # the extra credit of every cell, included in raw_score and score
    hand_scored: bool = False  # a manual score changed the result
    resubmission: str = "latest"  # the resubmission policy and what it decided (resubmission.Choice.note)
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    @property
    def student(self) -> str:
        return self.result.student

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def max_score(self) -> float:
        return self.result.max_score

    @property
    def reason(self) -> str:
        return "; ".join(x for x in [self.result.reason, *self.notes] if x)


def build_row(result: GradeResult, view: GradebookView, lateness_of, notebook: str = "", pick_note: str = "") -> Row:
    """The final row of one student. ``lateness_of(raw_score)`` returns the :class:`Lateness` for that score
    (see :func:`autograder.grading.lateness.assess`)."""
    row = Row(result, notebook=notebook, cells=view.cells, comments=view.comments)
    if pick_note:
        row.notes.append(pick_note)
    cells = {c.grade_id: c for c in view.cells}
    raw = None
    # nbgrader's flag is the one truth: a regraded cell with a manual score, a crashed notebook's cells, an answer
    # to grade by hand are all pending until the instructor clears the flag in the formgrader
    row.manual_pending = tuple(c.grade_id for c in view.cells if c.needs_manual)
    row.extra_credit = float(sum(c.extra or 0.0 for c in view.cells))
    if result.status == "graded":
        raw = result.score
        if cells:
            raw = float(sum(c.score or 0.0 for c in cells.values()))
            changed = [c.grade_id for c in view.cells if c.manual is not None and c.manual != c.auto]
            if changed:
                row.hand_scored = True
                row.notes.append(f"scored by hand in the gradebook: {', '.join(changed)}")
    elif cells and all(c.manual is not None for c in cells.values()):
        raw = float(sum(c.score for c in cells.values()))
        row.hand_scored = True
        row.notes.append(f"scored by hand in the gradebook (the grader could not run it: {result.status})")
    if row.extra_credit and raw is not None:
        row.notes.append(f"extra credit {row.extra_credit:g} included")
    if row.manual_pending:
        row.notes.append(f"awaiting manual grading: {', '.join(row.manual_pending)}")
    row.raw_score = raw
    row.lateness = lateness_of(raw)
    if row.lateness.note:
        row.notes.append(row.lateness.note)
    if raw is not None:
        row.score = max(0.0, raw - (row.lateness.penalty or 0.0))
    return row


@dataclass(frozen=True)
class ClassStats:
    """Class statistics over rows with a score (see the module docstring for what ungraded rows count as)."""

    students: int
    scored: int
    mean: float | None
    minimum: float | None
    maximum: float | None
    by_status: dict[str, int]


def class_stats(rows: list[Row]) -> ClassStats:
    from collections import Counter

    scores = [r.score for r in rows if r.score is not None]
    return ClassStats(
        len(rows),
        len(scores),
        sum(scores) / len(scores) if scores else None,
        min(scores) if scores else None,
        max(scores) if scores else None,
        dict(Counter(r.status for r in rows)),
    )
