"""The class report, ``--out/report.html``, and the regrade history beside it, ``--out/history.csv``.

One self-contained page (no external file, script or font: the plots are PNGs made with matplotlib and embedded
as ``data:`` URIs), regenerated on every run from the same :class:`~autograder.grading.scores.Row` objects as
``grades.csv``: score histogram, statuses, pass rate per test cell and per check (the checks the class fails
most, with their most frequent message), lateness, similarity flags and the regrade history.

``history.csv`` gains one line per student whose status or score changed since that student's last line
(``run_at,student,old_status,old_score,status,score,reason``: the old and the new score and why it changed), so the
report can show previous scores after a regrade, a resubmission, a policy change or a manual score.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import os
from collections import Counter, defaultdict
from html import escape
from pathlib import Path

from .cache import plot
from .outputs import csv_dict_writer, csv_value
from .records import STATUSES
from .scores import Row, class_stats

__all__ = ["write_report", "update_history", "read_history", "check_stats", "cell_stats", "HISTORY_COLUMNS"]

HISTORY_COLUMNS = ["run_at", "student", "old_status", "old_score", "status", "score", "reason"]
_REQUIRED = {"run_at", "student", "status", "score"}  # a history written before old_score and reason existed

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; } th, td { border-bottom: 1px solid #ddd;
padding: .3rem .6rem; text-align: left; vertical-align: top; } td.n { text-align: right; }
img { max-width: 100%; } .note { color: #555; } h2 { margin-top: 2rem; }
"""


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


# ------------------------------------------------------------------------------------------------ history
def read_history(out: Path) -> list[dict[str, str]]:
    path = Path(out) / "history.csv"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.DictReader(fh) if _REQUIRED <= set(row)]
    except (OSError, csv.Error):
        return []
    return [{name: csv_value(row.get(name) or "") for name in HISTORY_COLUMNS} for row in rows]


def update_history(
    out: Path,
    rows: list[Row],
    now: dt.datetime | None = None,
    reasons: dict[str, str] | None = None,
    previous: Path | None = None,
) -> list[dict[str, str]]:
    """Append the rows whose status or score changed since each student's last history line, with the old
    status and score and ``reasons[student]`` (why it changed); returns the whole history (oldest first).

    The history is read from ``previous`` (default ``out``: the published folder when ``out`` is a staging one)
    and the whole file is written to ``out``."""
    history = read_history(previous or out)
    last = {h["student"]: (h["status"], h["score"]) for h in history}
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    new = []
    for r in sorted(rows, key=lambda r: r.student):
        old = last.get(r.student)
        if old == (r.status, _fmt(r.score)):
            continue
        reason = (reasons or {}).get(r.student) or ("first run" if old is None else "")
        new.append(
            {
                "run_at": stamp,
                "student": r.student,
                "old_status": old[0] if old else "",
                "old_score": old[1] if old else "",
                "status": r.status,
                "score": _fmt(r.score),
                "reason": reason,
            }
        )
    path = Path(out) / "history.csv"
    tmp = path.with_suffix(".part")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv_dict_writer(fh, HISTORY_COLUMNS)  # formula-safe cells (outputs.py)
        writer.writeheader()
        writer.writerows(history + new)
    os.replace(tmp, path)
    return history + new


# ------------------------------------------------------------------------------------------------ statistics
def cell_stats(rows: list[Row]) -> list[tuple[str, int, int, float]]:
    """``[(grade_id, passed, graded notebooks, mean points)]`` per test cell, in notebook order."""
    order: list[str] = []
    passed: Counter = Counter()
    seen: Counter = Counter()
    points: defaultdict = defaultdict(float)
    for r in rows:
        if r.status != "graded":
            continue
        for t in r.result.tests:
            if t.grade_id not in seen:
                order.append(t.grade_id)
            seen[t.grade_id] += 1
            passed[t.grade_id] += bool(t.passed)
            points[t.grade_id] += t.points
    return [(g, passed[g], seen[g], points[g] / seen[g]) for g in order]


def check_stats(rows: list[Row]) -> list[tuple[str, str, int, int, str]]:
    """``[(test cell, check, failed, judged, most frequent failure message)]``, most failed first."""
    failed: Counter = Counter()
    judged: Counter = Counter()
    messages: defaultdict = defaultdict(Counter)
    for r in rows:
        if r.status != "graded":
            continue
        for t in r.result.tests:
            for name, ok, message in t.checks:
                key = (t.grade_id, name)
                judged[key] += 1
                if not ok:
                    failed[key] += 1
                    messages[key][message] += 1
    stats = [
        (g, n, failed[(g, n)], judged[(g, n)], messages[(g, n)].most_common(1)[0][0] if messages[(g, n)] else "")
        for g, n in judged
    ]
    return sorted(stats, key=lambda s: (-s[2] / s[3], s[0], s[1]))


# ------------------------------------------------------------------------------------------------ plots
def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _histogram(scores: list[float], max_score: float) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    top = max(max_score, max(scores), 1.0)
    edges = np.linspace(0.0, top, min(20, max(5, int(np.ceil(top)))) + 1)
    counts, _, _ = ax.hist(scores, bins=edges, color="#3b6ea8", edgecolor="white")
    ax.set_xlabel(f"score (of {max_score:g})")
    ax.set_ylabel("students")
    ax.set_xlim(0, top)
    ax.yaxis.get_major_locator().set_params(integer=True)
    alt = (
        f"Histogram of {len(scores)} scores between {min(scores):g} and {max(scores):g} of {max_score:g}; "
        f"the fullest bin holds {int(max(counts))} student{'s' if max(counts) != 1 else ''}."
    )
    return _png(fig), alt


def _pass_rates(cells: list[tuple[str, int, int, float]]) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(cells) + 0.9))
    names = [c[0] for c in cells][::-1]
    rates = [100.0 * c[1] / c[2] for c in cells][::-1]
    ax.barh(names, rates, color="#4a8f5c")
    ax.set_xlim(0, 100)
    ax.set_xlabel("graded notebooks passing the test cell (%)")
    worst = min(cells, key=lambda c: c[1] / c[2])
    alt = (
        f"Pass rate of {len(cells)} test cells; the lowest is {worst[0]} with {worst[1]} of {worst[2]} "
        f"graded notebooks passing."
    )
    return _png(fig), alt


# ------------------------------------------------------------------------------------------------ the page
def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in numeric else ''}>{escape(str(c))}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_report(
    rows: list[Row], assignment: str, history: list[dict[str, str]], now: dt.datetime | None = None
) -> str:
    stats = class_stats(rows)
    max_score = rows[0].max_score if rows else 0.0
    now = now or dt.datetime.now(dt.UTC)
    parts = [
        f"<h1>{escape(assignment)}: class report</h1>",
        f"<p class=note>Generated {now:%Y-%m-%d %H:%M} UTC from the same rows as grades.csv. Scores are "
        "final: manual scores from the gradebook and late penalties included. A notebook that could not be "
        "graded has no score: it is counted by status below and left out of the mean and the histogram.</p>",
    ]
    if stats.scored:
        parts.append(
            f"<p>{stats.scored} of {stats.students} students scored: mean {stats.mean:.2f}, "
            f"min {stats.minimum:g}, max {stats.maximum:g} (of {max_score:g}).</p>"
        )
        src, alt = plot(_histogram, [r.score for r in rows if r.score is not None], max_score)
        parts.append(f'<figure><img src="{src}" alt="{escape(alt)}"><figcaption>{escape(alt)}</figcaption></figure>')
    else:
        parts.append(
            f"<p><strong>No notebook of the {stats.students} students could be scored.</strong> "
            "See the statuses and reasons below; a crash or timeout is retried on the next run.</p>"
        )
    parts.append("<h2>Statuses</h2>")
    parts.append(_table(["status", "students"], [[s, str(stats.by_status.get(s, 0))] for s in STATUSES], {1}))
    failed = [r for r in rows if r.status != "graded"]
    if failed:
        parts.append(_table(["student", "status", "reason"], [[r.student, r.status, r.reason] for r in failed]))
    pending = [r for r in rows if r.manual_pending]
    parts.append("<h2>Awaiting a manual grade</h2>")
    parts.append(
        "<p class=note>Cells graded by hand (written answers) that have no manual score yet: score them in "
        "nbgrader's formgrader, then rerun <code>grade</code>.</p>"
        + _table(
            ["student", "cells awaiting a manual grade"], [[r.student, ", ".join(r.manual_pending)] for r in pending]
        )
        if pending
        else "<p>No cell awaits a manual grade.</p>"
    )
    cells = cell_stats(rows)
    parts.append("<h2>Test cells</h2>")
    if cells:
        src, alt = plot(_pass_rates, cells)
        parts.append(f'<figure><img src="{src}" alt="{escape(alt)}"><figcaption>{escape(alt)}</figcaption></figure>')
        parts.append(
            _table(
                ["test cell", "passed", "graded", "mean points"],
                [[g, str(p), str(n), f"{m:.2f}"] for g, p, n, m in cells],
                {1, 2, 3},
            )
        )
    else:
        parts.append("<p>No graded notebook: no test cell results.</p>")
    checks = check_stats(rows)
    if checks:
        parts.append("<h2>Checks, most failed first</h2>")
        parts.append(
            _table(
                ["test cell", "check", "failed", "judged", "most frequent message"],
                [[g, n, str(f), str(j), m] for g, n, f, j, m in checks],
                {2, 3},
            )
        )
    late = [r for r in rows if r.lateness.late or r.lateness.note.startswith("lateness unknown")]
    parts.append("<h2>Lateness</h2>")
    if late:
        parts.append(
            _table(
                ["student", "submitted (UTC)", "minutes late", "penalty", "note"],
                [
                    [
                        r.student,
                        f"{r.lateness.submitted:%Y-%m-%d %H:%M}" if r.lateness.submitted else "",
                        f"{r.lateness.minutes_late:.0f}" if r.lateness.minutes_late is not None else "",
                        _fmt(r.lateness.penalty),
                        r.lateness.note,
                    ]
                    for r in late
                ],
                {2, 3},
            )
        )
    else:
        parts.append("<p>No late or undated submission.</p>")
    flagged = [r for r in rows if r.flags]
    parts.append(
        "<h2>Similarity flags</h2><p class=note>Leads for a person to check, never evidence by "
        "themselves; they change no score.</p>"
    )
    parts.append(
        _table(["student", "flags"], [[r.student, "; ".join(r.flags)] for r in flagged])
        if flagged
        else "<p>No flags.</p>"
    )
    changes = _regrades(history)
    parts.append("<h2>Regrade history</h2>")
    parts.append(
        _table(
            ["student", "previous (oldest first)", "now"], [[s, " \u2192 ".join(prev), cur] for s, prev, cur in changes]
        )
        if changes
        else "<p>No score changed since the first run.</p>"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(assignment)}: class '
        f"report</title><style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def _regrades(history: list[dict[str, str]]) -> list[tuple[str, list[str], str]]:
    by_student: defaultdict = defaultdict(list)
    for h in history:
        why = f", {h['reason']}" if h.get("reason") else ""
        by_student[h["student"]].append(f"{h['score'] or h['status']} ({h['run_at'][:16].replace('T', ' ')}{why})")
    return [(s, entries[:-1], entries[-1]) for s, entries in sorted(by_student.items()) if len(entries) > 1]


def write_report(
    out: Path,
    rows: list[Row],
    assignment: str,
    now: dt.datetime | None = None,
    reasons: dict[str, str] | None = None,
    previous: Path | None = None,
) -> Path:
    """Update ``history.csv`` (read from ``previous``, default ``out``; see :func:`update_history`) and write
    ``report.html`` in ``out``; returns the report's path."""
    history = update_history(out, rows, now, reasons, previous)
    path = Path(out) / "report.html"
    tmp = path.with_suffix(".part")
    tmp.write_text(render_report(rows, assignment, history, now), encoding="utf-8")
    os.replace(tmp, path)
    return path
