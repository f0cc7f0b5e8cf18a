"""The measured part of each assignment: the record its measurement cell leaves in the notebook.

Every assignment has one locked *measurement cell* (grade id ``measure``) that times the student's own functions
with the course's timing helpers (:mod:`autograder.measure.timing`: CUDA events on a GPU, ``perf_counter`` on a
CPU) and leaves a list of records in a variable named ``<what>_measurements``. Each record is a timing helper's own
``to_dict()`` -- a :class:`~autograder.measure.timing.Timing` (``device``, ``method``, ``n``, ``median_s``,
``p10_s``, ``p90_s``, ``samples_s``) or a :class:`~autograder.measure.timing.Bandwidth` (``name``, ``bytes_moved``,
``op`` and ``copy`` timings...) -- plus a ``name`` and the cell's own counts.

What is graded is only that the measurement ran and produced such records (a named device, finite and positive
times, as many records as the cell makes): never the times themselves, which depend on the machine. The probe here
passes the record on as plain data; its judge is :mod:`autograder.checks.records`.
"""

from __future__ import annotations

from .registry import register

__all__ = ["RECORD_SUFFIX", "GRADE_ID", "is_record", "register_record"]

#: the variable a measurement cell leaves ends with this; a check of such a variable is a record check
RECORD_SUFFIX = "_measurements"
#: the nbgrader grade id of every assignment's measurement cell (a locked, ungraded code cell)
GRADE_ID = "measure"
#: the name of the one check of a record group
CHECK_NAME = "the measurement ran: every record names its device, times finite and positive"


def is_record(name: str) -> bool:
    """Whether the graded name ``name`` is a measurement record rather than a function."""
    return name.endswith(RECORD_SUFFIX)


def _pass_on(record, seed):
    """The record as it is: lists, dicts, strings and numbers cross to the judge as plain data."""
    return record


def register_record(assignment: str, variable: str) -> None:
    """Register the record check of ``assignment``: group and graded name ``variable`` (visible, no hidden twin:
    a record has no inputs to vary)."""
    if not is_record(variable):
        raise ValueError(f"a measurement record's name ends with {RECORD_SUFFIX!r}, got {variable!r}")
    register(assignment, variable, CHECK_NAME, variable)(_pass_on)
