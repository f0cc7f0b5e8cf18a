"""Instructor grading: ``python -m autograder grade SUBMISSIONS --assignment ID --out DIR``.

* :mod:`.records` -- :class:`GradeTask` / :class:`GradeResult` / :class:`TestRecord`: plain data, no grading steps
* :mod:`.tasks` -- :func:`grade_submission` (one student, anywhere) and the result cache's hash
* :mod:`.executors` -- where tasks run: :class:`LocalExecutor` (a process pool); the parent alone writes
* :mod:`.dask_executor` -- :class:`DaskExecutor` (a Dask cluster); :mod:`.package_shipping` -- the package shipped
  to its workers; :mod:`.worker_pool` -- a Dask worker's grading process pool (its one owner)
* :mod:`.limits` -- child processes under a deadline, ``RLIMIT_AS`` and output caps, killed as a whole tree
* :mod:`.course` -- the private nbgrader course directory, ``nbgrader autograde``, judging the probe payload
* :mod:`.sandbox` -- the bubblewrap sandbox (and the check that it works here); :mod:`.kernel` -- the kernel manager
  that starts the kernel in it; :mod:`.execute` -- the output cap and the probe payload in the kernel client
* :mod:`.filenames` -- :func:`safe_filename`, the one rule for file names built from student/assignment ids
* :mod:`.secret` -- the course secret and the hidden seeds drawn from it
* :mod:`.feedback` -- the student's feedback page (no test sources); :mod:`.store` -- gradebook, results, grades.csv
* :mod:`.cli` -- the command; :mod:`.cache` -- on-disk memos of a run's fixed costs (the sandbox check, the checks
  summary, the starting gradebook, the report's figures)
* :mod:`.benchmarks` -- the grading benchmarks and the synthetic class of the tests (never imported by the grader)
"""

from .records import STATUSES, GradeResult, GradeTask, TestRecord
from .tasks import grade_submission

__all__ = ["STATUSES", "GradeResult", "GradeTask", "TestRecord", "grade_submission"]
