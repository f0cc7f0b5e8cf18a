"""Where :func:`~autograder.grading.tasks.grade_submission` runs: the executor interface and a local process pool.

An executor takes :class:`~autograder.grading.tasks.GradeTask` objects and calls ``on_result(result)`` **in the
calling (parent) process** once per task, in completion order. Workers only compute; the parent alone writes the
gradebook, ``grades.csv`` and the feedback files. A task whose worker dies still yields a ``crashed`` result, so
``on_result`` is called exactly once per task.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from .tasks import GradeResult, GradeTask, content_hash, grade_submission

__all__ = ["Executor", "LocalExecutor", "SerialExecutor", "failed_result", "init_worker"]


class Executor(Protocol):
    def run(self, tasks: Iterable[GradeTask], on_result: Callable[[GradeResult], None]) -> None:
        """Grade every task; call ``on_result`` in this process once per task as results arrive."""


def failed_result(task: GradeTask, reason: str) -> GradeResult:
    """The result for a task whose worker itself failed (not the student's notebook)."""
    from .course import max_score
    from .feedback import render

    result = GradeResult(
        task.student,
        task.assignment,
        "crashed",
        None,
        max_score(task.source_notebook),
        reason=reason[:300],
        submission_hash=content_hash(task),
    )
    result.feedback_html = render(result)
    return result


class SerialExecutor:
    """Grades in this process, one task after the other (debugging; the student code still runs in children)."""

    def run(self, tasks: Iterable[GradeTask], on_result: Callable[[GradeResult], None]) -> None:
        for task in tasks:
            try:
                result = grade_submission(task)
            except Exception as exc:
                result = failed_result(task, f"grader error: {type(exc).__name__}: {exc}")
            on_result(result)


def init_worker() -> None:
    import signal

    from .course import warm_up
    from .limits import become_subreaper, enable_warm_fork

    # Ctrl-C reaches every process of the terminal's group: the parent alone stops the run (it kills the workers),
    # so a worker prints no traceback. A Python handler, not SIG_IGN: an exec'd kernel gets the default back.
    signal.signal(signal.SIGINT, _ignore)

    enable_warm_fork()  # before anything runs PyTorch: each submission's children are forked from this process
    become_subreaper()  # orphaned kernels re-parent to this worker, which kills them
    warm_up()  # import nbgrader once per worker


def _ignore(signum, frame) -> None:
    """SIGINT in a worker: nothing (see :func:`init_worker`)."""


def _start_method() -> str:
    """``fork`` from a single-threaded Linux process: workers start at once with everything the parent imported
    (call :func:`autograder.grading.course.warm_up` first); else ``forkserver`` (``spawn`` off POSIX)."""
    import sys
    import threading

    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return "fork"
    return "forkserver" if os.name == "posix" else "spawn"


def _ready() -> bool:
    return True


class LocalExecutor:
    """A pool of ``jobs`` worker processes on this machine (default: one per core); one kernel per submission.

    At most ``2 * jobs`` tasks are in flight at once (``jobs`` running), so memory stays bounded for classes of any
    size. :meth:`start`
    (optional) launches and warms the workers early, so that their imports overlap the caller's preparations.
    """

    def __init__(self, jobs: int | None = None):
        self.jobs = max(1, int(jobs or os.cpu_count() or 1))
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> LocalExecutor:
        if self._pool is None:
            context = multiprocessing.get_context(_start_method())
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=context, initializer=init_worker)
            for _ in range(self.jobs):
                self._pool.submit(_ready)
        return self

    def run(self, tasks: Iterable[GradeTask], on_result: Callable[[GradeResult], None]) -> None:
        pending_tasks = iter(tasks)
        pool = self.start()._pool
        self._pool = None
        with pool:
            in_flight = {}

            def refill() -> None:  # one task queued behind each running one: no worker waits for the parent
                while len(in_flight) < 2 * self.jobs:
                    task = next(pending_tasks, None)
                    if task is None:
                        return
                    in_flight[pool.submit(grade_submission, task)] = task

            try:
                refill()
            except BrokenProcessPool as exc:  # workers cannot start here: grade in this process instead
                import sys

                print(f"warning: worker processes failed to start ({exc}); grading serially", file=sys.stderr)
                SerialExecutor().run(list(in_flight.values()) + list(pending_tasks), on_result)
                return
            while in_flight:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    task = in_flight.pop(future)
                    try:
                        result = future.result()
                    except Exception as exc:  # a dead worker: this task alone is marked
                        result = failed_result(task, f"grader worker failed: {type(exc).__name__}: {exc}")
                    on_result(result)
                try:
                    refill()
                except Exception:  # a broken pool: grade the rest in a fresh one
                    rest = list(in_flight.values()) + list(pending_tasks)
                    in_flight.clear()
                    LocalExecutor(self.jobs).run(rest, on_result)
                    return
