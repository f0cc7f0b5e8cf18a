"""Where :func:`~autograder.grading.tasks.grade_submission` runs: the executor interface and a local process pool.

An executor takes :class:`~autograder.grading.tasks.GradeTask` objects and calls ``on_result(result)`` **in the
calling (parent) process** once per task, in completion order. Workers only compute; the parent alone writes the
gradebook, ``grades.csv`` and the feedback files. A task whose worker dies still yields a ``crashed`` result, so
``on_result`` is called exactly once per task.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Iterable, Protocol

from .tasks import GradeResult, GradeTask, content_hash, grade_submission

__all__ = ["Executor", "LocalExecutor", "SerialExecutor", "failed_result"]


class Executor(Protocol):
    def run(self, tasks: Iterable[GradeTask], on_result: Callable[[GradeResult], None]) -> None:
        """Grade every task; call ``on_result`` in this process once per task as results arrive."""


def failed_result(task: GradeTask, reason: str) -> GradeResult:
    """The result for a task whose worker itself failed (not the student's notebook)."""
    from .course import max_score
    from .feedback import render
    result = GradeResult(task.student, task.assignment, "crashed", None, max_score(task.source_notebook),
                         reason=reason[:300], submission_hash=content_hash(task))
    result.feedback_html = render(result)
    return result


class SerialExecutor:
    """Grades in this process, one task after the other (debugging; the student code still runs in children)."""

    def run(self, tasks: Iterable[GradeTask], on_result: Callable[[GradeResult], None]) -> None:
        for task in tasks:
            try:
                result = grade_submission(task)
            except Exception as exc:  # noqa: BLE001
                result = failed_result(task, f"grader error: {type(exc).__name__}: {exc}")
            on_result(result)


def _init_worker() -> None:
    from .limits import become_subreaper
    from .course import warm_up
    become_subreaper()   # orphaned kernels re-parent to this worker, which kills them
    warm_up()            # import nbgrader once per worker: each submission's child is forked warm


class LocalExecutor:
    """A pool of ``jobs`` worker processes on this machine (default: one per core); one kernel per submission.

    At most ``jobs`` tasks are in flight at once, so memory stays bounded for classes of any size.
    """

    def __init__(self, jobs: int | None = None):
        self.jobs = max(1, int(jobs or os.cpu_count() or 1))

    def run(self, tasks: Iterable[GradeTask], on_result: Callable[[GradeResult], None]) -> None:
        pending_tasks = iter(tasks)
        context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=context, initializer=_init_worker) as pool:
            in_flight = {}

            def refill() -> None:
                while len(in_flight) < self.jobs:
                    task = next(pending_tasks, None)
                    if task is None:
                        return
                    in_flight[pool.submit(grade_submission, task)] = task

            refill()
            while in_flight:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    task = in_flight.pop(future)
                    try:
                        result = future.result()
                    except Exception as exc:  # noqa: BLE001 - a dead worker: this task alone is marked
                        result = failed_result(task, f"grader worker failed: {type(exc).__name__}: {exc}")
                    on_result(result)
                try:
                    refill()
                except Exception:  # noqa: BLE001 - a broken pool: grade the rest in a fresh one
                    rest = [t for t in in_flight.values()] + list(pending_tasks)
                    in_flight.clear()
                    LocalExecutor(self.jobs).run(rest, on_result)
                    return
