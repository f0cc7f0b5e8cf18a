"""Late submissions: the due time (``--due``), each submission's ``timestamp.txt`` and the penalty.

``nbgrader collect`` and ``nbgrader zip_collect`` write ``timestamp.txt`` beside each submitted notebook
(``SUBMISSIONS/<student>/<assignment>/timestamp.txt``). It is read exactly as nbgrader reads it
(``CourseDirectory.get_existing_timestamp``: stripped text parsed by :func:`nbgrader.utils.parse_utc`, so every
format nbgrader accepts is accepted here: ``2026-12-01 22:00:00.000000 UTC``, ISO 8601 with an offset, a
trailing time-zone name or numeric offset; a time without a zone is UTC, as in nbgrader).

The penalty is ``--late-penalty-per-hour`` percent of the maximum score for every *started* hour past the due
time (one second late costs one hour), never more than the score itself: a score never drops below 0. A missing,
empty, unreadable or future timestamp is a stated reason and no penalty, never a silent "on time".

``timestamp.txt`` is the student's file like the notebook: it is read under :mod:`autograder.grading.inputs`' rule
(never through a link -- a link to ``/dev/zero`` is refused without reading a byte --, a regular file of at most
:data:`~autograder.grading.inputs.MAX_TIMESTAMP_BYTES`), and only its first line, cut to 100 characters, is parsed.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from dataclasses import dataclass
from pathlib import Path

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

from . import inputs

__all__ = [
    "parse_due",
    "read_timestamp",
    "Timestamp",
    "Lateness",
    "assess",
    "PerStartedHourPenalty",
    "hours_started",
    "penalty_points",
    "TIMESTAMP_FILE",
]

TIMESTAMP_FILE = "timestamp.txt"
#: a timestamp this far past the grading run's clock is not believed (clock skew between machines is allowed)
FUTURE_SLACK = dt.timedelta(minutes=5)


def _utc_naive(moment: dt.datetime) -> dt.datetime:
    """``moment`` in UTC without tzinfo: the form nbgrader's gradebook stores (``parse_utc``'s result)."""
    if moment.tzinfo is not None:
        moment = (moment - moment.utcoffset()).replace(tzinfo=None)
    return moment


def parse_due(text: str) -> dt.datetime:
    """The ``--due`` time as naive UTC. ``text`` is ISO 8601 with a time zone (``2026-12-05T23:59+01:00``,
    ``2026-12-05T23:59:00Z``). Raises ``ValueError`` with a one-line message for anything else, a time without a
    zone included: a deadline read in the wrong zone is silently hours off."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--due {text!r} is not an ISO 8601 time (e.g. 2026-12-05T23:59+01:00)") from None
    if moment.tzinfo is None:
        raise ValueError(
            f"--due {text!r} has no time zone: add one, e.g. {text.strip()}Z for UTC or {text.strip()}+01:00"
        ) from None
    return _utc_naive(moment)


@dataclass(frozen=True)
class Timestamp:
    """A submission's time as naive UTC, or ``None`` with ``problem`` saying why it is unknown."""

    time: dt.datetime | None
    problem: str = ""


def read_timestamp(
    folder: str | os.PathLike, now: dt.datetime | None = None, root: str | os.PathLike | None = None
) -> Timestamp:
    """``folder/timestamp.txt`` parsed as ``nbgrader`` parses it (``CourseDirectory.get_existing_timestamp``).

    ``now`` (naive UTC, default the current time) rejects a timestamp more than :data:`FUTURE_SLACK` ahead.
    ``root`` (``SUBMISSIONS``; default ``folder``'s parent) is where the input rule starts: no folder between it
    and the file, nor the file, may be a link."""
    from nbgrader.utils import parse_utc

    path = Path(folder) / TIMESTAMP_FILE
    try:
        data = inputs.read_bytes(Path(folder).parent if root is None else root, path, inputs.MAX_TIMESTAMP_BYTES)
        text = data.decode("utf-8", errors="strict").strip()
    except FileNotFoundError:
        return Timestamp(None, f"no {TIMESTAMP_FILE} beside the notebook (written by nbgrader collect)")
    except inputs.Rejected as exc:
        return Timestamp(None, str(exc))
    except (OSError, UnicodeDecodeError) as exc:
        return Timestamp(None, f"{TIMESTAMP_FILE} is unreadable ({type(exc).__name__})")
    if not text:
        return Timestamp(None, f"{TIMESTAMP_FILE} is empty")
    text = text.splitlines()[0].strip()[:100]
    try:
        moment = parse_utc(text)
    except (ValueError, OverflowError):
        return Timestamp(None, f"{TIMESTAMP_FILE} holds {text[:60]!r}, which is not a time nbgrader can read")
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if moment > now + FUTURE_SLACK:
        return Timestamp(None, f"{TIMESTAMP_FILE} says {moment:%Y-%m-%d %H:%M} UTC, which is in the future")
    return Timestamp(moment)


def hours_started(seconds_late: float) -> int:
    """Started hours in ``seconds_late``: 0 for on time, 1 for one second to one hour, and so on."""
    return math.ceil(seconds_late / 3600.0) if seconds_late > 0 else 0


def penalty_points(score: float, max_score: float, seconds_late: float, percent_per_hour: float) -> float:
    """``percent_per_hour`` % of ``max_score`` per started hour late, capped at ``score`` (never below 0)."""
    raw = hours_started(seconds_late) * percent_per_hour / 100.0 * max_score
    return float(min(max(score, 0.0), raw))


class PerStartedHourPenalty(LateSubmissionPlugin):
    """nbgrader late-submission plugin with this module's rule, so that the gradebook holds what nbgrader's own
    ``AssignLatePenalties`` would write with it (``c.AssignLatePenalties.plugin_class`` in a course config)."""

    percent_per_hour = Float(0.0, help="percent of the maximum score per started hour late").tag(config=True)
    max_score = Float(0.0, help="the assignment's maximum score").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        if total_seconds_late <= 0:
            return None
        return penalty_points(score, self.max_score, total_seconds_late, self.percent_per_hour)


@dataclass(frozen=True)
class Lateness:
    """One student's lateness: ``submitted`` (naive UTC) or ``None``; ``minutes_late`` ``None`` when unknown or
    when no due time was given; ``penalty`` in points (``None`` when not assessed); ``note`` a reason to state."""

    submitted: dt.datetime | None
    minutes_late: float | None
    penalty: float | None
    note: str = ""

    @property
    def late(self) -> bool:
        return bool(self.minutes_late)


def assess(
    timestamp: Timestamp,
    due: dt.datetime | None,
    score: float | None,
    max_score: float,
    percent_per_hour: float,
    extension: dt.timedelta | None = None,
) -> Lateness:
    """Lateness and penalty of one submission. ``due`` ``None``: no deadline, nothing assessed (the time is still
    reported). ``score`` ``None`` (the notebook was not graded): minutes late are known, the penalty is not.
    ``extension`` (nbgrader's per-student extension from the gradebook) moves the due time."""
    if due is None:
        return Lateness(timestamp.time, None, None)
    if timestamp.time is None:
        return Lateness(None, None, None, f"lateness unknown: {timestamp.problem}; no late penalty applied")
    deadline = due + (extension or dt.timedelta(0))
    seconds = max(0.0, (timestamp.time - deadline).total_seconds())
    if score is None:
        return Lateness(timestamp.time, seconds / 60.0, None)
    penalty = penalty_points(score, max_score, seconds, percent_per_hour)
    note = ""
    if seconds > 0:
        note = (
            f"submitted {_duration(seconds)} late: -{penalty:g} point{'s' if penalty != 1 else ''}"
            f" ({hours_started(seconds)} started hour{'s' if hours_started(seconds) != 1 else ''}"
            f" x {percent_per_hour:g}% of {max_score:g})"
        )
    return Lateness(timestamp.time, seconds / 60.0, penalty, note)


def _duration(seconds: float) -> str:
    minutes = int(round(seconds / 60.0))
    if minutes < 60:
        return f"{max(minutes, 1)} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours / 24:.1f} days"
