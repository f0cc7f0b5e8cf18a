"""Which of a student's graded submissions counts: the resubmission policy (``--resubmission``).

Every submission a run grades is archived with its submission time (``Store.archived``). When a student has more
than one, the policy picks the one that becomes the grade (and the gradebook's entry, the feedback page and the
autograded notebook):

* ``latest`` (the default): the notebook in SUBMISSIONS now, whatever its score;
* ``best``: the highest final score (late penalty included) among the graded ones; ties go to the latest;
* ``latest-on-time``: the latest submission made before the due time (extension included); the latest one when
  none was on time.

Scores compared here are the autograded ones (manual scores belong to the submission the gradebook holds).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from .records import GradeResult

__all__ = ["Choice", "choose"]


@dataclass(frozen=True)
class Choice:
    """The result that counts, its submission time, and the row's statement of the policy."""

    result: GradeResult
    submitted: dt.datetime | None
    note: str  # e.g. "latest" or "best of 2: kept the submission of 2026-11-05 11:30 UTC (5) over ..."
    replaced_latest: bool = False  # an earlier submission counts instead of the one in SUBMISSIONS now


def _when(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "an unknown time"


def _score(x: float | None) -> str:
    return "no score" if x is None else f"{x:g}"


def choose(
    policy: str,
    current: GradeResult,
    current_time: dt.datetime | None,
    archived: list[tuple[GradeResult, dt.datetime | None]],
    final_score: Callable[[GradeResult, dt.datetime | None], float | None],
    on_time: Callable[[dt.datetime | None], bool],
) -> Choice:
    """The submission that counts under ``policy``. ``final_score(result, time)``: its score after the late
    penalty; ``on_time(time)``: submitted before the due time (with the student's extension)."""
    others = [(r, t) for r, t in archived if r.submission_hash != current.submission_hash and r.status == "graded"]
    if policy == "latest" or not others or current.status == "missing":
        count = len(others) + 1
        return Choice(current, current_time, "latest" if count == 1 else f"latest of {count} submissions graded")
    candidates = [(current, current_time), *others]
    if policy == "best":
        scored = [(final_score(r, t), i, r, t) for i, (r, t) in enumerate(candidates) if r.status == "graded"]
        if not scored:
            return Choice(current, current_time, f"best of {len(candidates)}: none graded, the latest counts")
        # the latest wins ties: the current submission is index 0, archived ones are oldest first after it
        best = max(scored, key=lambda s: (s[0] if s[0] is not None else -1.0, s[1] == 0, s[1]))
        chosen, when = best[2], best[3]
        label = "best"
    elif policy == "latest-on-time":
        timely = [(r, t) for r, t in candidates if t is not None and on_time(t)]
        if not timely:
            return Choice(
                current, current_time, f"latest-on-time of {len(candidates)}: none on time, the latest counts"
            )
        chosen, when = max(timely, key=lambda c: (c[1], c[0] is current))
        label = "latest-on-time"
    else:
        raise ValueError(f"unknown resubmission policy {policy!r}")
    if chosen is current:
        return Choice(current, current_time, f"{label} of {len(candidates)}: the latest submission counts")
    note = (
        f"{label} of {len(candidates)}: kept the submission of {_when(when)} ({_score(final_score(chosen, when))}) "
        f"over the latest, of {_when(current_time)} ({_score(final_score(current, current_time))})"
    )
    return Choice(chosen, when, note, replaced_latest=True)
