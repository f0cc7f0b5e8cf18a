"""Checks that assignment test cells call and that the grader re-runs in a trusted process.

Student-facing entry points: :func:`run_checks` (what a test cell calls) and :func:`check` (a one-line self-check
of one function, e.g. ``check(embedding_forward)``). See :mod:`autograder.checks.core` for the design.
"""
from .core import (Check, CheckFailed, Raised, call, decode, encode, group, groups, judge_group, probe_group,  # noqa: F401
                   run_checks, grading_seed)
