"""What the parent process writes: stored results (for idempotent reruns), the nbgrader gradebook, feedback pages
and ``grades.csv``. Workers never write here; :class:`Store` is used from the executor's ``on_result`` callback.

Layout of the output folder ``DIR``::

    DIR/grades.csv                                   one row per student found in SUBMISSIONS
    DIR/gradebook.db                                 nbgrader gradebook (unless --db-url points elsewhere)
    DIR/feedback/<student>/<assignment>/<notebook>.html
    DIR/.autograder/<assignment>/<student>.json      the full result and its content hash (reruns reuse it)
"""
from __future__ import annotations

import csv
import fcntl
import json
import os
from pathlib import Path

from .filenames import safe_filename as _safe_name
from .records import GradeResult

__all__ = ["Store", "CSV_COLUMNS", "StoreLocked", "GradebookMismatch", "normalize_db_url"]

CSV_COLUMNS = ["student", "assignment", "score", "max_score", "status", "reason", "tests_passed", "tests_total",
               "seconds", "isolation"]


class StoreLocked(RuntimeError):
    """Another grading run holds the output folder."""


class GradebookMismatch(RuntimeError):
    """The gradebook holds submissions for a different version of the assignment's test cells."""


def normalize_db_url(url: str) -> str:
    """Pin PostgreSQL URLs to the installed driver: SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3,
    which is not installed (the course pins ``psycopg2-binary``); ``postgres://`` is not accepted at all."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
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

    def close(self) -> None:
        if self._gradebook is not None:
            self._gradebook.close()
            self._gradebook = None
        self._lock.close()

    # ---------------------------------------------------------------------------------------- stored results
    def _result_path(self, student: str) -> Path:
        return self.results_dir / f"{_safe_name(student)}.json"

    def cached(self, student: str, submission_hash: str) -> GradeResult | None:
        """The stored result for ``student`` if it was computed from exactly the same inputs."""
        path = self._result_path(student)
        try:
            data = json.loads(path.read_text())
            result = GradeResult.from_json(data)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return result if result.submission_hash == submission_hash and result.student == student else None

    def save(self, result: GradeResult) -> None:
        """Store the result, write the feedback page and record the grades in the gradebook."""
        tmp = self._result_path(result.student).with_suffix(".part")
        tmp.write_text(json.dumps(result.to_json()))
        os.replace(tmp, self._result_path(result.student))
        page = self.feedback_path(result.student)
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(result.feedback_html, encoding="utf-8")
        self.record(result)

    def feedback_path(self, student: str) -> Path:
        return self.out / "feedback" / _safe_name(student) / self.assignment / f"{self.notebook_name}.html"

    # ---------------------------------------------------------------------------------------- gradebook
    def gradebook(self):
        if self._gradebook is None:
            import warnings
            warnings.filterwarnings("ignore", message=".*not in session.*")   # nbgrader's own SQLAlchemy noise
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
        except RuntimeError as exc:   # SaveCells: cells added or removed while submissions exist
            raise GradebookMismatch(
                f"the gradebook {self.db_url} holds graded submissions of a different version of "
                f"{self.assignment} ({exc}); grade into a new --out folder or --db-url") from None
        gb.db.expire_all()

    def record(self, result: GradeResult) -> None:
        """Scores into the gradebook. A notebook that did not run gets no score and is flagged for manual
        grading (``needs_manual_grade``), so nbgrader's own views never show it as a silent 0."""
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
            if result.status == "graded" and grade.name in points:
                grade.auto_score = points[grade.name]
                grade.needs_manual_grade = False
            else:
                grade.auto_score = None
                grade.needs_manual_grade = True
        gb.db.commit()

    # ---------------------------------------------------------------------------------------- grades.csv
    def write_csv(self, results: list[GradeResult]) -> Path:
        path = self.out / "grades.csv"
        tmp = path.with_suffix(".part")
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            for r in sorted(results, key=lambda r: r.student):
                writer.writerow([r.student, r.assignment, "" if r.score is None else f"{r.score:g}",
                                 f"{r.max_score:g}", r.status, r.reason,
                                 sum(t.passed for t in r.tests) if r.status == "graded" else "",
                                 len(r.tests) if r.status == "graded" else "",
                                 f"{r.timings.get('total_s', 0.0):.1f}", r.isolation])
        os.replace(tmp, path)
        return path
