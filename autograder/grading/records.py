"""The grading records, as plain picklable data: :class:`GradeTask` in, :class:`GradeResult` (with one
:class:`TestRecord` per test cell) out. This module imports nothing of the grading steps: workers, the store, the
feedback page and the CLI all share it without import cycles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["STATUSES", "TEST_KINDS", "GradeTask", "GradeResult", "TestRecord"]

#: Every status a result can carry. Only ``graded`` has a score.
STATUSES = ("graded", "timeout", "crashed", "invalid-notebook", "missing")


@dataclass(frozen=True)
class GradeTask:
    """Everything needed to grade one student's notebook for one assignment, as bytes and numbers.

    ``source_notebook`` is the nbgrader *source* notebook (``solutions/<id>/<id>.ipynb``: solutions, visible and
    hidden tests). ``gradebook_blob``, when given, is a SQLite gradebook file already holding the assignment's
    cells (see :func:`autograder.grading.course.prepare_gradebook_blob`); without it the worker builds one from
    ``source_notebook`` itself. ``submission`` is ``None`` when the student has no notebook (status ``missing``).
    """

    student: str
    assignment: str
    notebook_name: str  # the source notebook's file stem, e.g. "token-embeddings"
    submission: bytes | None  # the submitted .ipynb file's bytes
    source_notebook: bytes
    gradebook_blob: bytes | None = None
    timeout_s: float = 120.0  # wall-clock limit for the whole notebook
    memory_bytes: int = 4 << 30  # RLIMIT_AS of the autograde process, inherited by the kernel
    output_chars: int = 200_000  # printed output kept per notebook; the rest is dropped
    hidden_seed: int = 0  # inputs of the hidden checks: from the course secret (see secret.py)
    secret_id: str = ""  # a public fingerprint of that secret (changes the cache key with it)
    check_modules: tuple[str, ...] = ()  # extra modules that register this assignment's judges (grader side)
    sandbox: bool = True  # False only with --unsafe-no-sandbox
    scratch_bytes: int = 256 << 20  # the sandbox's writable tmpfs
    nproc: int = 256  # RLIMIT_NPROC of the sandboxed uid (a fork bomb stops there)
    grader_fingerprint: str = ""  # hash of the grader, checks and references (see code_fingerprint)


#: What decided a test cell (``TestRecord.kind``):
#: ``passed``; ``wrong`` (a judged check failed); ``kernel-error`` (the judged checks passed but the cell itself
#: raised in the kernel, e.g. a plain hidden ``assert``); ``no-results`` (no probe data came back for the cell: the
#: kernel died before the end, or the payload was missing or forged); ``kernel-only`` (no judge is registered for
#: the cell: the kernel's verdict alone, as plain nbgrader).
TEST_KINDS = ("passed", "wrong", "kernel-error", "no-results", "kernel-only")


@dataclass(frozen=True)
class TestRecord:
    """One test cell's outcome. ``points`` is what the student gets: the judge's verdict for a checked cell."""

    __test__ = False  # not a pytest class, despite the name
    grade_id: str
    points: float
    max_points: float
    passed: bool
    message: str
    hidden: bool  # the cell holds hidden tests (its source is never shown)
    checks: tuple[tuple[str, bool, str], ...] = ()  # judged verdicts: (check name, passed, message)
    kind: str = "passed"  # one of TEST_KINDS


@dataclass
class GradeResult:
    """What a worker sends back: plain data only (no nbgrader or student objects)."""

    student: str
    assignment: str
    status: str
    score: float | None
    max_score: float
    reason: str = ""
    tests: list[TestRecord] = field(default_factory=list)
    feedback_html: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    submission_hash: str = ""
    isolation: str = ""  # what the kernel ran in: "bwrap", "none (--unsafe-no-sandbox)", ""
    log: str = ""  # nbgrader's and the kernel's output: for the instructor, never the student
    autograded: str = ""  # the autograded notebook (JSON text), for nbgrader's formgrader

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tests"] = [asdict(t) for t in self.tests]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GradeResult:
        data = dict(data)
        tests = [
            TestRecord(**{**t, "checks": tuple(tuple(c) for c in t.get("checks", ()))}) for t in data.pop("tests", [])
        ]
        return cls(tests=tests, **data)
