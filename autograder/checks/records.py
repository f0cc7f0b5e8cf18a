"""The judge of the measured part: the record a measurement cell left is in the timing helpers' format.

A record (see :mod:`autograder.student.measured`) is a list of dicts, each a
:meth:`autograder.measure.timing.Timing.to_dict` or :meth:`autograder.measure.timing.Bandwidth.to_dict` with a
``name`` (a Bandwidth has one) and any counts of the cell's own. The judge checks what does not depend on the
machine: that there are as many records as the cell makes, that each names its device and timing method, and
that every time is finite and positive and consistent with the samples it summarises. It never compares a time
with anything: times are the student's to explain, not to be graded.
"""

from __future__ import annotations

import math
from typing import Any

from autograder.student import measured
from autograder.student.verdict import CheckFailed

from .core import add_judge

__all__ = ["judge_record", "record_judge"]

TIMING_KEYS = ("device", "method", "n", "median_s", "p10_s", "p90_s", "samples_s")
RERUN = "run the measurement cell again (restart the kernel and run all cells) and keep its variable"


def _positive_time(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckFailed(f"{where}: expected a number of seconds, got {type(value).__name__}; {RERUN}")
    if not math.isfinite(value) or value <= 0:
        raise CheckFailed(f"{where}: expected a finite, positive number of seconds, got {value!r}; {RERUN}")
    return float(value)


def _timing(entry: Any, where: str) -> None:
    if not isinstance(entry, dict) or any(key not in entry for key in TIMING_KEYS):
        missing = [k for k in TIMING_KEYS if not isinstance(entry, dict) or k not in entry]
        raise CheckFailed(f"{where}: not a timing helper's record (missing {', '.join(missing)}); {RERUN}")
    for key in ("device", "method"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise CheckFailed(f"{where}: the record must name its {key}, got {entry[key]!r}; {RERUN}")
    samples = entry["samples_s"]
    if not isinstance(samples, list) or not samples:
        raise CheckFailed(f"{where}: expected a non-empty list of samples; {RERUN}")
    values = [_positive_time(s, f"{where}, a sample") for s in samples]
    n = entry["n"]
    if isinstance(n, bool) or not isinstance(n, int) or n != len(values):
        raise CheckFailed(f"{where}: n = {n!r} but the record holds {len(values)} samples; {RERUN}")
    p10, median, p90 = (_positive_time(entry[k], f"{where}, {k}") for k in ("p10_s", "median_s", "p90_s"))
    low, high = min(values), max(values)
    slack = 1e-9 * high
    if not (low - slack <= p10 <= median + slack and median <= p90 + slack and p90 <= high + slack):
        raise CheckFailed(f"{where}: p10, median and p90 do not summarise the samples; {RERUN}")


def judge_record(record: Any, variable: str, count: int) -> None:
    """Raise :class:`CheckFailed` unless ``record`` is a list of ``count`` timing records (Timing or Bandwidth
    dicts, each with a ``name``)."""
    if not isinstance(record, list):
        raise CheckFailed(f"{variable}: expected the list of records the measurement cell builds; {RERUN}")
    if len(record) != count:
        raise CheckFailed(f"{variable}: expected {count} records, one per measurement of the cell, got {len(record)}")
    for i, entry in enumerate(record):
        where = f"{variable}[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise CheckFailed(f"{where}: expected a dict with a 'name'; {RERUN}")
        where = f"{variable}[{i}] ({entry['name']})"
        if "op" in entry:  # a Bandwidth: the operation and the copy of the same bytes
            moved = entry.get("bytes_moved")
            if isinstance(moved, bool) or not isinstance(moved, int) or moved <= 0:
                raise CheckFailed(f"{where}: bytes_moved must be a positive int, got {moved!r}")
            _timing(entry["op"], where + ", op")
            _timing(entry.get("copy"), where + ", copy")
        else:
            _timing(entry, where)


def record_judge(assignment: str, variable: str, count: int) -> None:
    """Register the judge of ``assignment``'s record check (see :func:`autograder.student.measured.register_record`)."""

    def decide(data, seed):
        judge_record(data, variable, count)

    add_judge(assignment, variable, measured.CHECK_NAME, decide)
