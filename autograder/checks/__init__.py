"""The judges of the assignment checks (trusted side; never copied into the grading sandbox).

:mod:`autograder.checks.core` joins each judge to its probe (:mod:`autograder.student.registry`);
``autograder.checks.<assignment>`` hold the judges; :mod:`autograder.checks.compare` the verdict helpers. What a
student's notebook calls is :mod:`autograder.student` (``run_checks``, ``check``).
"""
