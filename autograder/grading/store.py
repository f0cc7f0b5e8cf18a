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
    DIR/.autograder/<assignment>/archive/<student>/<hash>.{json,ipynb,log}   every submission graded, with its
                                                     time, autograded notebook and log (resubmission policies)
    DIR/.autograder/<assignment>/state/policy.json   the grading policy every rerun applies (policy.py)
    DIR/.autograder/<assignment>/state/recorded.json which result each student's gradebook entry holds

The published outputs (grades.csv, feedback/, the report, the exports, autograded/, logs/) are written under the
run's staging folder (:attr:`Store.stage`, see :mod:`autograder.grading.publish`) and swapped in at the end. The
gradebook is written only at the end of a run too (:meth:`Store.record`), from the results the run kept: an
interrupted run changes neither. A ``crashed`` or ``timeout`` result is reused like any other (a rerun does not
run it again) unless ``--retry-failed`` asks for it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
from pathlib import Path

from . import inputs, outputs
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
    "resubmission",
]
#: results that --retry-failed grades again (a plain rerun reuses them, as any other result)
RETRIED_STATUSES = ("crashed", "timeout")


_COURSE_CONFIG = '''\
"""The nbgrader course of these grading results (written once by python -m autograder grade; edit freely).

The formgrader: run `jupyter lab` (or `jupyter server`) from this folder and open its Formgrader tab
(http://localhost:8888/formgrader): it lists the notebooks in autograded/ and takes manual scores, extra credit
and comments into the gradebook; `python -m autograder grade ... --refresh` then carries them into grades.csv, the
feedback pages and every export without running a notebook. `nbgrader export` and
`nbgrader generate_feedback ASSIGNMENT` (nbgrader's own pages, to nbgrader-feedback/, hidden tests cleared) run
from this folder too.
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
c.ExportPlugin.to = "nbgrader-grades.csv"  # nbgrader export never writes over the grader's grades.csv
c.GenerateFeedback.preprocessors = [ClearHiddenTestOutputs, ClearHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]
# the formgrader and generate_feedback render student notebooks: strip HTML and scripts from markdown and outputs
c.HTMLExporter.sanitize_html = True
'''


#: in ``OUT/.autograder/<assignment>/state/``: the source and the gradebook's cells as the last population left them
CELLS_FILE = "gradebook-cells.json"


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
        self._lock = open(self.out / ".autograder" / "lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise StoreLocked(f"another grading run is writing to {self.out}; wait for it to finish") from None
        from .publish import recover

        recover(self.out)  # a swap a killed run had started is finished first
        #: where the published outputs are written: OUT itself, or the run's staging folder (publish.Staging)
        self.stage = self.out
        self._gradebook = None
        self._order: list[str] = []  # grade ids in the source's order (set by prepare_assignment)
        self._recorded = self._read_recorded()

    def close(self) -> None:
        if self._gradebook is not None:
            self._gradebook.close()
            self._gradebook = None
        self._lock.close()

    # ---------------------------------------------------------------------------------------- private state
    def read_state(self, name: str) -> dict | None:
        """The JSON object in ``OUT/.autograder/<assignment>/state/<name>``, or ``None`` when there is none or it
        is unreadable (the run then recomputes what it held)."""
        try:
            data = json.loads((self.results_dir / "state" / name).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_state(self, name: str, data: dict) -> None:
        """Write ``data`` as ``OUT/.autograder/<assignment>/state/<name>``, atomically."""
        path = self.results_dir / "state" / name
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, path)

    def _read_recorded(self) -> dict[str, str]:
        """``{student: submission hash}`` of the result each student's gradebook entry holds now."""
        data = self.read_state("recorded.json") or {}
        return {str(k): str(v) for k, v in data.items()}

    def _write_recorded(self) -> None:
        self.write_state("recorded.json", self._recorded)

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
        """The stored result for ``student`` if it was computed from exactly the same inputs (``crashed`` and
        ``timeout`` included: only ``--retry-failed`` grades those again)."""
        result = self.stored(student)
        if result is None or result.submission_hash != submission_hash:
            return None
        return result

    def save(
        self,
        result: GradeResult,
        record: bool = True,
        submitted_at: dt.datetime | None = None,
    ) -> None:
        """Store the result (reruns reuse it) and archive it under its hash with its submission time, autograded
        notebook and log (the resubmission policies choose among the archive). ``record``: also write it into the
        gradebook now (the CLI records at the end of the run instead, so an interrupted run changes nothing)."""
        self._archive(result, submitted_at)
        data = result.to_json()
        data["log"] = data["autograded"] = ""  # kept as files, not in the stored result
        tmp = self._result_path(result.student).with_suffix(".part")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self._result_path(result.student))
        if self.stage == self.out and result.feedback_html:  # no staging: the page as the worker wrote it
            page = self.feedback_path(result.student)
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(result.feedback_html, encoding="utf-8")
        if record:
            self.record(result)

    # ------------------------------------------------------------------------------------ the archive
    def _archive_dir(self, student: str) -> Path:
        return self.results_dir / "archive" / _safe_name(student)

    def _archive(self, result: GradeResult, submitted_at: dt.datetime | None) -> None:
        folder = self._archive_dir(result.student)
        folder.mkdir(parents=True, exist_ok=True)
        stem = (result.submission_hash or "unhashed")[:24]
        for suffix, text in ((".ipynb", result.autograded), (".log", result.log)):
            if text:
                tmp = folder / f"{stem}{suffix}.part"
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, folder / f"{stem}{suffix}")
        data = result.to_json()
        data["log"] = data["autograded"] = ""
        entry = {"result": data, "submitted_at": submitted_at.isoformat() if submitted_at else None}
        tmp = folder / f"{stem}.json.part"
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, folder / f"{stem}.json")

    def archived(self, student: str) -> list[tuple[GradeResult, dt.datetime | None]]:
        """Every result archived for ``student`` with its submission time (naive UTC), oldest file first."""
        found = []
        folder = self._archive_dir(student)
        for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else ():
            try:
                entry = json.loads(path.read_text())
                result = GradeResult.from_json(entry["result"])
                when = dt.datetime.fromisoformat(entry["submitted_at"]) if entry.get("submitted_at") else None
            except (OSError, ValueError, TypeError, KeyError):
                continue
            if result.student == student:
                found.append((result, when))
        return found

    def _archived_file(self, result: GradeResult, suffix: str) -> Path:
        return self._archive_dir(result.student) / f"{(result.submission_hash or 'unhashed')[:24]}{suffix}"

    def autograded_path(self, student: str) -> Path:
        """Where nbgrader looks for the autograded notebook (``CourseDirectory.directory_structure``), staged."""
        return self.stage / "autograded" / student / self.assignment / f"{self.notebook_name}.ipynb"

    def log_path(self, student: str) -> Path:
        return self.stage / "logs" / _safe_name(self.assignment) / f"{_safe_name(student)}.log"

    def publish_files(self, result: GradeResult) -> None:
        """Stage the autograded notebook of ``result`` (graded, crashed or timed out: what ran, so the formgrader
        lists it) and, for a crashed or timed-out run, its log."""
        notebook = self.autograded_path(result.student)
        source = self._archived_file(result, ".ipynb")
        if source.exists() and notebook.resolve().is_relative_to((self.stage / "autograded").resolve()):
            notebook.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(source, notebook)
        log = self._archived_file(result, ".log")
        if result.status in RETRIED_STATUSES and log.exists():
            self.log_path(result.student).parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(log, self.log_path(result.student))

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
        return self.stage / "feedback" / _safe_name(student) / self.assignment / f"{self.notebook_name}.html"

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
        recorded = {"source": hashlib.sha256(source).hexdigest(), "db_url": self.db_url}
        default = self.out / "gradebook.db"
        if blob and self._gradebook is None and self.db_url == f"sqlite:///{default}" and not default.exists():
            tmp = default.with_suffix(".part")
            tmp.write_bytes(blob)
            os.replace(tmp, default)
            self.gradebook()
            self.write_state(CELLS_FILE, {**recorded, "cells": self._cells_digest()})  # this source's gradebook
            return
        gb = self.gradebook()
        stored = self.read_state(CELLS_FILE)
        if stored is not None and {k: stored.get(k) for k in recorded} == recorded:
            if stored.get("cells") == self._cells_digest():
                return  # the gradebook holds exactly what populating it from this source wrote last time
        try:
            populate_gradebook(self.db_url, self.assignment, self.notebook_name, source)
        except RuntimeError as exc:  # SaveCells: cells added or removed while submissions exist
            raise GradebookMismatch(
                f"the gradebook {self.db_url} holds graded submissions of a different version of "
                f"{self.assignment} ({exc}); grade into a new --out folder or --db-url"
            ) from None
        gb.db.expire_all()
        self.write_state(CELLS_FILE, {**recorded, "cells": self._cells_digest()})

    def _cells_digest(self) -> str | None:
        """A digest of every cell the gradebook records for this assignment's notebook (what
        :func:`~.course.populate_gradebook` writes: grade, solution and task cells, source cells with their
        checksums, the kernelspec), or ``None`` when it records no such notebook. Read through ``nbgrader.api``."""
        from nbgrader.api import MissingEntry

        gb = self.gradebook()
        try:
            notebook = gb.find_notebook(self.notebook_name, self.assignment)
        except MissingEntry:
            return None
        rows = sorted(
            [type(c).__name__, c.name, getattr(c, "cell_type", None), getattr(c, "max_score", None)]
            for c in notebook._base_cells
        )
        sources = sorted([c.name, c.cell_type, c.locked, c.source, c.checksum] for c in notebook.source_cells)
        text = json.dumps([rows, sources, notebook.kernelspec], default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def record(self, result: GradeResult, fresh: bool | None = None) -> None:
        """Scores into the gradebook. A notebook that did not run gets no score and is flagged for manual
        grading (``needs_manual_grade``), so nbgrader's own views never show it as a silent 0.

        Manual scores and comments entered with nbgrader's tools are never overwritten. ``fresh`` (default: the
        gradebook holds another submission's result than this one): nbgrader's own rule for a regraded submission
        applies -- a cell with a manual score is flagged for review, as ``nbgrader autograde`` flags it."""
        from nbgrader.api import MissingEntry

        if inputs.student_id_problem(result.student):  # the formgrader shows ids unescaped: never in the gradebook
            return
        if fresh is None:
            fresh = self._recorded.get(result.student) not in (None, result.submission_hash)
        gb = self.gradebook()
        gb.update_or_create_student(result.student)
        if result.status == "missing":
            try:
                gb.remove_submission(self.assignment, result.student)
            except MissingEntry:
                pass
            self._recorded.pop(result.student, None)
            self._write_recorded()
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
        if self._recorded.get(result.student) != result.submission_hash:
            self._recorded[result.student] = result.submission_hash
            self._write_recorded()

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
        path = self.stage / "grades.csv"
        tmp = path.with_suffix(".part")
        with open(tmp, "w", newline="") as fh:
            writer = outputs.csv_writer(fh)  # formula-safe cells
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
                        row.resubmission,
                    ]
                )
        os.replace(tmp, path)
        return path


def _link_or_copy(source: Path, dest: Path) -> None:
    """``dest`` as a hard link to ``source`` (the archive's file; no copy of every notebook per run), or a copy."""
    dest.unlink(missing_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


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
