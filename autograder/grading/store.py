"""What the parent process writes: stored results (for idempotent reruns), the nbgrader gradebook, feedback pages
and ``grades.csv``. Workers never write here; :class:`Store` is used from the executor's ``on_result`` callback.

Layout of the output folder ``DIR``::

    DIR/grades.csv                                   one row per student found in SUBMISSIONS
    DIR/gradebook.db                                 nbgrader gradebook (unless --db-url points elsewhere)
    DIR/feedback/<student>/<assignment>/<notebook>.html
    DIR/report.html, DIR/history.csv                 the class report and the regrade history (report.py)
    DIR/autograded/<student>/<assignment>/<notebook>.ipynb   the autograded notebooks, in nbgrader's course layout
    DIR/nbgrader_config.py                           makes DIR an nbgrader course: formgrader, generate_feedback
    DIR/logs/<assignment>/<student>.log              nbgrader's and the kernel's log of a crashed or timed-out run
    DIR/.autograder/<assignment>/<student>.json      the full result and its content hash (reruns reuse it)

A ``crashed`` or ``timeout`` result is stored (the report and ``--retry-failed`` read it) but never reused as a
cached result: a rerun grades it again.
"""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import json
import os
from pathlib import Path

from .filenames import safe_filename as _safe_name
from .records import GradeResult
from .scores import CellScore, GradebookView, Row

__all__ = ["Store", "CSV_COLUMNS", "StoreLocked", "GradebookMismatch", "normalize_db_url"]

CSV_COLUMNS = [
    "student",
    "assignment",
    "score",
    "max_score",
    "status",
    "reason",
    "tests_passed",
    "tests_total",
    "seconds",
    "notebook",
    "submitted_at",
    "minutes_late",
    "late_penalty",
    "raw_score",
    "manual_pending",
    "comments",
    "flags",
    "isolation",
]
#: results that are stored but never reused: a rerun (or --retry-failed) grades them again
RETRIED_STATUSES = ("crashed", "timeout")


_COURSE_CONFIG = '''\
"""The nbgrader course of these grading results (written once by python -m autograder grade; edit freely).

Run nbgrader from this folder: `nbgrader formgrader` shows the autograded notebooks in autograded/ and takes manual
scores and comments into the gradebook (the next `grade` run carries them into grades.csv and every export);
`nbgrader generate_feedback ASSIGNMENT` writes nbgrader's own pages to nbgrader-feedback/, hidden tests cleared.
"""
import os

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

from autograder.grading.nbgrader_feedback import ClearHiddenTestOutputs

root = os.path.dirname(os.path.abspath(__file__))
c = get_config()
c.CourseDirectory.root = root
c.CourseDirectory.db_url = {db_expr}
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "nbgrader-feedback"
c.GenerateFeedback.preprocessors = [ClearHiddenTestOutputs, ClearHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]
'''


class StoreLocked(RuntimeError):
    """Another grading run holds the output folder."""


class GradebookMismatch(RuntimeError):
    """The gradebook holds submissions for a different version of the assignment's test cells."""


def normalize_db_url(url: str) -> str:
    """``postgres://`` (Heroku's spelling, which SQLAlchemy refuses) as ``postgresql://``; any other URL as given.

    SQLAlchemy 2.1 reads ``postgresql://`` as psycopg 3, which the course pins (``psycopg[binary]``), so the URL
    the instructor gives works unchanged with nbgrader's own tools (``nbgrader export --db URL``, the formgrader)."""
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    return url


class Store:
    def __init__(self, out_dir: str | os.PathLike, assignment: str, notebook_name: str, db_url: str | None = None):
        self.out = Path(out_dir).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.assignment = assignment
        self.notebook_name = notebook_name
        self.default_db = db_url is None
        self.db_url = normalize_db_url(db_url) if db_url else f"sqlite:///{self.out / 'gradebook.db'}"
        self.results_dir = self.out / ".autograder" / _safe_name(assignment)
        self.results_dir.mkdir(parents=True, exist_ok=True)
        (self.out / "feedback").mkdir(exist_ok=True)
        self._lock = open(self.out / ".autograder" / "lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StoreLocked(f"another grading run is writing to {self.out}; wait for it to finish") from None
        self._gradebook = None
        self._order: list[str] = []  # grade ids in the source's order (set by prepare_assignment)

    def close(self) -> None:
        if self._gradebook is not None:
            self._gradebook.close()
            self._gradebook = None
        self._lock.close()

    # ---------------------------------------------------------------------------------------- stored results
    def _result_path(self, student: str) -> Path:
        return self.results_dir / f"{_safe_name(student)}.json"

    def stored(self, student: str) -> GradeResult | None:
        """The last stored result for ``student``, whatever it was computed from (``None``: none readable)."""
        path = self._result_path(student)
        try:
            data = json.loads(path.read_text())
            result = GradeResult.from_json(data)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return result if result.student == student else None

    def cached(self, student: str, submission_hash: str) -> GradeResult | None:
        """The stored result for ``student`` if it was computed from exactly the same inputs and is final (a
        ``crashed`` or ``timeout`` result is not: it is graded again)."""
        result = self.stored(student)
        if result is None or result.submission_hash != submission_hash or result.status in RETRIED_STATUSES:
            return None
        return result

    def save(self, result: GradeResult) -> None:
        """Store the result, write the feedback page and record the grades in the gradebook (the final page,
        with manual scores and lateness, is written by :meth:`write_feedback` at the end of the run); keep the
        autograded notebook for nbgrader's tools and, for a failed run, the log."""
        self._keep_files(result)
        data = result.to_json()
        data["log"] = data["autograded"] = ""  # kept as files, not in the stored result
        tmp = self._result_path(result.student).with_suffix(".part")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self._result_path(result.student))
        page = self.feedback_path(result.student)
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(result.feedback_html, encoding="utf-8")
        self.record(result, fresh=True)

    def autograded_path(self, student: str) -> Path:
        """Where nbgrader looks for the autograded notebook (``CourseDirectory.directory_structure``)."""
        return self.out / "autograded" / student / self.assignment / f"{self.notebook_name}.ipynb"

    def log_path(self, student: str) -> Path:
        return self.out / "logs" / _safe_name(self.assignment) / f"{_safe_name(student)}.log"

    def _keep_files(self, result: GradeResult) -> None:
        """The autograded notebook of a graded result (a stale one goes when the new result has none, so the
        formgrader never shows an older notebook) and the log of a crashed or timed-out run."""
        notebook = self.autograded_path(result.student)
        if result.autograded and notebook.parent.resolve().is_relative_to(self.out / "autograded"):
            notebook.parent.mkdir(parents=True, exist_ok=True)
            tmp = notebook.with_suffix(".part")
            tmp.write_text(result.autograded, encoding="utf-8")
            os.replace(tmp, notebook)
        elif notebook.exists() and notebook.resolve().is_relative_to(self.out / "autograded"):
            notebook.unlink()
        log = self.log_path(result.student)
        if result.status in RETRIED_STATUSES and result.log:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(result.log, encoding="utf-8")
        elif log.exists():
            log.unlink()

    def write_course_config(self) -> Path:
        """``DIR/nbgrader_config.py`` (unless one exists): DIR becomes the nbgrader course of these results, so
        ``nbgrader formgrader`` and ``nbgrader generate_feedback`` run from DIR. nbgrader's feedback pages go to
        ``nbgrader-feedback/`` (never over the grader's own), with hidden tests and their outputs cleared (nbgrader
        #917; see :mod:`autograder.grading.nbgrader_feedback`)."""
        path = self.out / "nbgrader_config.py"
        if not path.exists():
            db = "sqlite:///" + "{root}/gradebook.db" if self.default_db else self.db_url
            path.write_text(
                _COURSE_CONFIG.format(db_expr=(f'f"{db}"' if self.default_db else repr(db))), encoding="utf-8"
            )
        return path

    def write_feedback(self, row: Row) -> Path:
        from .feedback import render

        page = self.feedback_path(row.student)
        page.parent.mkdir(parents=True, exist_ok=True)
        tmp = page.with_suffix(".part")
        tmp.write_text(render(row.result, row), encoding="utf-8")
        os.replace(tmp, page)
        return page

    def feedback_path(self, student: str) -> Path:
        return self.out / "feedback" / _safe_name(student) / self.assignment / f"{self.notebook_name}.html"

    # ---------------------------------------------------------------------------------------- gradebook
    def gradebook(self):
        if self._gradebook is None:
            import warnings

            warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's own SQLAlchemy noise
            from nbgrader.api import Gradebook

            from .course import tools_on_path

            tools_on_path()
            self._gradebook = Gradebook(self.db_url)
        return self._gradebook

    def prepare_assignment(self, source: bytes, blob: bytes | None = None) -> None:
        """Make sure the gradebook knows the assignment's cells (as ``generate_assignment`` records them).

        ``blob`` (a prepared SQLite gradebook of the assignment) becomes the gradebook when the default SQLite
        file does not exist yet."""
        from .course import populate_gradebook

        self._order = _cell_order(source)
        default = self.out / "gradebook.db"
        if blob and self._gradebook is None and self.db_url == f"sqlite:///{default}" and not default.exists():
            tmp = default.with_suffix(".part")
            tmp.write_bytes(blob)
            os.replace(tmp, default)
            self.gradebook()
            return
        gb = self.gradebook()
        try:
            populate_gradebook(self.db_url, self.assignment, self.notebook_name, source)
        except RuntimeError as exc:  # SaveCells: cells added or removed while submissions exist
            raise GradebookMismatch(
                f"the gradebook {self.db_url} holds graded submissions of a different version of "
                f"{self.assignment} ({exc}); grade into a new --out folder or --db-url"
            ) from None
        gb.db.expire_all()

    def record(self, result: GradeResult, fresh: bool = False) -> None:
        """Scores into the gradebook. A notebook that did not run gets no score and is flagged for manual
        grading (``needs_manual_grade``), so nbgrader's own views never show it as a silent 0.

        Manual scores and comments entered with nbgrader's tools are never overwritten. ``fresh`` (the result was
        computed in this run, not reused): nbgrader's own rule for a regraded submission applies -- a cell with
        a manual score is flagged for review, as ``nbgrader autograde`` flags it."""
        from nbgrader.api import MissingEntry

        gb = self.gradebook()
        gb.update_or_create_student(result.student)
        if result.status == "missing":
            try:
                gb.remove_submission(self.assignment, result.student)
            except MissingEntry:
                pass
            return
        gb.update_or_create_submission(self.assignment, result.student)
        points = {t.grade_id: t.points for t in result.tests}
        submission = gb.find_submission_notebook(self.notebook_name, self.assignment, result.student)
        for grade in submission.grades:
            auto = points.get(grade.name) if result.status == "graded" else None
            if (
                not fresh
                and grade.auto_score == auto
                and (auto is not None or grade.needs_manual_grade or grade.manual_score is not None)
            ):
                continue  # unchanged: leave the instructor's flags and scores alone
            grade.auto_score = auto
            grade.needs_manual_grade = auto is None or grade.manual_score is not None
        gb.db.commit()

    def record_lateness(
        self, student: str, submitted: dt.datetime | None, due: dt.datetime | None, penalty: float | None
    ) -> None:
        """The due time, the submission time and the penalty, where nbgrader keeps them (``Assignment.duedate``,
        ``SubmittedAssignment.timestamp``, ``SubmittedNotebook.late_submission_penalty``), as nbgrader's
        ``AssignLatePenalties`` writes them."""
        from nbgrader.api import MissingEntry

        gb = self.gradebook()
        assignment = gb.find_assignment(self.assignment)
        if due is not None and assignment.duedate != due:  # without --due, nbgrader's own due date stays
            assignment.duedate = due
        try:
            submission = gb.find_submission(self.assignment, student)
            notebook = gb.find_submission_notebook(self.notebook_name, self.assignment, student)
        except MissingEntry:
            gb.db.commit()
            return
        submission.timestamp = submitted
        notebook.late_submission_penalty = penalty if penalty else None
        gb.db.commit()

    def extension(self, student: str) -> dt.timedelta | None:
        """The student's extension recorded in the gradebook (``nbgrader``'s ``SubmittedAssignment.extension``)."""
        from nbgrader.api import MissingEntry

        try:
            return self.gradebook().find_submission(self.assignment, student).extension
        except MissingEntry:
            return None

    def view(self, student: str) -> GradebookView:
        """What the gradebook holds for ``student`` now: every graded cell's autograded and manual score, its
        flag and comment, and any extension."""
        from nbgrader.api import MissingEntry

        gb = self.gradebook()
        gb.db.expire_all()
        try:
            submission = gb.find_submission(self.assignment, student)
            notebook = gb.find_submission_notebook(self.notebook_name, self.assignment, student)
        except MissingEntry:
            return GradebookView()
        order = {name: i for i, name in enumerate(self._order)}
        cells = tuple(
            CellScore(
                g.name, float(g.max_score), g.auto_score, g.manual_score, bool(g.needs_manual_grade), g.extra_credit
            )
            for g in sorted(notebook.grades, key=lambda g: (order.get(g.name, len(order)), g.name))
        )
        comments = tuple(
            (c.name, c.manual_comment.strip())
            for c in sorted(notebook.comments, key=lambda c: (order.get(c.name, len(order)), c.name))
            if c.manual_comment and c.manual_comment.strip()
        )
        return GradebookView(cells, submission.extension, comments)

    # ---------------------------------------------------------------------------------------- grades.csv
    def write_csv(self, rows: list[Row]) -> Path:
        """``grades.csv`` from the final rows (:mod:`autograder.grading.scores`)."""
        path = self.out / "grades.csv"
        tmp = path.with_suffix(".part")
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            for row in sorted(rows, key=lambda r: r.student):
                r, late = row.result, row.lateness
                graded = r.status == "graded"
                writer.writerow(
                    [
                        r.student,
                        r.assignment,
                        _num(row.score),
                        f"{r.max_score:g}",
                        r.status,
                        row.reason,
                        sum(t.passed for t in r.tests) if graded else "",
                        len(r.tests) if graded else "",
                        f"{r.timings.get('total_s', 0.0):.1f}",
                        row.notebook,
                        late.submitted.strftime("%Y-%m-%dT%H:%M:%SZ") if late.submitted else "",
                        "" if late.minutes_late is None else f"{late.minutes_late:.1f}",
                        _num(late.penalty),
                        _num(row.raw_score),
                        " ".join(row.manual_pending),
                        " | ".join(f"{gid}: {' '.join(text.split())}" for gid, text in row.comments),
                        "; ".join(row.flags),
                        r.isolation,
                    ]
                )
        os.replace(tmp, path)
        return path


def _cell_order(source: bytes) -> list[str]:
    """Every nbgrader cell name (grade_id) of the source, in notebook order."""
    nb = json.loads(source.decode("utf-8"))
    return [
        c["metadata"]["nbgrader"]["grade_id"]
        for c in nb.get("cells", [])
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    ]


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:g}"
