"""One submission's grading as plain, picklable data: :class:`GradeTask` in, :class:`GradeResult` out.

:func:`grade_submission` is the whole job for one student and runs in any process where the course's Python
environment is installed (a local worker process, a Dask worker): it builds a private temporary nbgrader course
directory with its own SQLite gradebook, runs ``nbgrader autograde`` there in a child process under limits (its
own process group, a wall-clock deadline, ``RLIMIT_AS`` inherited by the kernel, truncated output) whose kernel runs
in the sandbox of :mod:`autograder.grading.sandbox` -- the student's code runs once --, judges the probe data that
kernel published here with the trusted reference code, and returns a :class:`GradeResult`. It writes nothing outside
its temporary directory and never raises because of a
submission: every failure becomes a status and a reason.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time

from .filenames import safe_filename
from .records import STATUSES, TEST_KINDS, GradeResult, GradeTask, TestRecord

__all__ = [
    "STATUSES",
    "TEST_KINDS",
    "GradeTask",
    "GradeResult",
    "TestRecord",
    "grade_submission",
    "content_hash",
    "code_fingerprint",
]


def content_hash(task: GradeTask) -> str:
    """Hash of everything that determines a result: a rerun with the same hash can reuse the stored result."""
    h = hashlib.sha256()
    for part in (
        task.submission or b"<missing>",
        task.source_notebook,
        json.dumps(
            [
                task.assignment,
                task.notebook_name,
                task.timeout_s,
                task.memory_bytes,
                task.output_chars,
                task.hidden_seed,
                task.secret_id,
                list(task.check_modules),
                task.sandbox,
                task.scratch_bytes,
                task.nproc,
                task.grader_fingerprint,
            ]
        ).encode(),
    ):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


#: grading modules that run after every result is in (the parent's outputs), not part of a result's cache key
AFTER_GRADING = frozenset(
    {
        "lateness.py",
        "picking.py",
        "scores.py",
        "similarity.py",
        "report.py",
        "roster.py",
        "lms_export.py",
        "nbgrader_feedback.py",
        "policy.py",
        "store.py",
        "publish.py",
        "resubmission.py",
        "cli.py",  # options reach a result only through the task's fields, which content_hash covers
    }
)
#: grading folders no result depends on: the throughput benchmarks and their synthetic classes
NOT_GRADING = ("benchmarks",)


def code_fingerprint(*extra_modules: str) -> str:
    """Hash of the code that decides a grade: ``autograder/{grading,checks,reference,student}/**.py`` and the files of
    ``extra_modules``. A changed check or reference makes a rerun regrade everyone. The modules that only work
    on stored results (:data:`AFTER_GRADING`: the CLI, lateness, scores, reports, exports) and the benchmarks
    (:data:`NOT_GRADING`) are left out: changing them rewrites the outputs without regrading anyone."""
    import importlib
    from pathlib import Path

    package = Path(__file__).resolve().parents[1]
    files = sorted(
        p
        for sub in ("grading", "checks", "reference", "student")
        for p in (package / sub).rglob("*.py")
        if not (sub == "grading" and (p.name in AFTER_GRADING or p.relative_to(package / sub).parts[0] in NOT_GRADING))
    )
    for name in extra_modules:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            files.append(Path(spec.origin))
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def grade_submission(task: GradeTask) -> GradeResult:
    """Grade one submission; never raises for anything the student did (see the module docstring)."""
    from . import course, feedback

    started = time.perf_counter()
    course.warm_up()
    digest = content_hash(task)
    max_score = course.max_score(task.source_notebook)
    result = GradeResult(task.student, task.assignment, "crashed", None, max_score, submission_hash=digest)
    if task.submission is None:
        result.status, result.reason = "missing", f"no notebook submitted for {task.assignment}"
    else:
        problem = course.notebook_problem(task.submission)
        if problem:
            result.status, result.reason = "invalid-notebook", problem
        else:
            workdir = tempfile.mkdtemp(prefix=f"grade-{safe_filename(task.student)[:40]}-")
            result.isolation = course.isolation_of(task)
            try:
                course.grade_in(workdir, task, result)
            except Exception as exc:  # a grader bug must not take the whole class down
                import traceback

                result.status, result.score = "crashed", None
                result.reason = f"grader error: {type(exc).__name__}: {exc}"[:300]
                result.tests = []
                _log_grader_error(traceback.format_exc())
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
    result.timings["total_s"] = time.perf_counter() - started
    result.feedback_html = feedback.render(result)
    return result


def _log_grader_error(text: str) -> None:
    import sys

    print(text, file=sys.stderr)
