"""Instructor grading: ``python -m autograder grade SUBMISSIONS --assignment ID --out DIR``.

* :mod:`.tasks` -- :class:`GradeTask` / :class:`GradeResult` and :func:`grade_submission` (one student, anywhere)
* :mod:`.executors` -- where tasks run: :class:`LocalExecutor` (a process pool); the parent alone writes
* :mod:`.limits` -- child processes under a deadline, ``RLIMIT_AS`` and output caps, killed as a whole tree
* :mod:`.course` -- the private nbgrader course directory, ``nbgrader autograde`` and the trusted re-run
* :mod:`.sandbox` -- the probe process of the trusted re-run; :mod:`.execute` -- the output cap in the kernel client
* :mod:`.feedback` -- the student's feedback page (no test sources); :mod:`.store` -- gradebook, results, grades.csv
* :mod:`.cli` -- the command; :mod:`.bench` -- the grading benchmark
"""
from .tasks import STATUSES, GradeResult, GradeTask, TestRecord, grade_submission  # noqa: F401
