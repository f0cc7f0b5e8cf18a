"""Late penalties: --due parsing, timestamp.txt in nbgrader's formats, the per-started-hour rule."""

from __future__ import annotations

import datetime as dt

import pytest
from grading_cli import ASSIGNMENT, SOURCE

from autograder.grading import lateness
from autograder.grading.lateness import Timestamp, assess, parse_due, penalty_points, read_timestamp

NOW = dt.datetime(2026, 12, 10, 12, 0, 0)
DUE = dt.datetime(2026, 12, 5, 22, 59, 0)  # 23:59 at +01:00


def test_due_needs_iso_8601_with_a_time_zone():
    assert parse_due("2026-12-05T23:59+01:00") == DUE
    assert parse_due("2026-12-05T22:59:00Z") == DUE
    for bad, words in (
        ("next friday", "not an ISO 8601 time"),
        ("2026-13-05T23:59Z", "not an ISO 8601 time"),
        ("2026-12-05T23:59", "has no time zone"),
    ):
        with pytest.raises(ValueError, match=words) as info:
            parse_due(bad)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-05 22:59:00.000000 UTC",  # nbgrader's own timestamp_format (%Y-%m-%d %H:%M:%S.%f %Z)
        "2026-12-05 23:59:00.000000 CET",  # the same format with a local zone name (nbgrader's timezone)
        "2026-12-05 23:59:00+0100",  # an attached numeric offset
        "2026-12-05 17:59:00 America/New_York",  # a tz database name as the third part
        "2026-12-05T22:59:00Z",  # ISO 8601
        "2026-12-05T23:59:00+01:00",
        "2026-12-05 22:59:00",  # no zone: UTC, as in nbgrader
        "  2026-12-05 22:59:00.000000 UTC\n",  # nbgrader strips the file
    ],
)
def test_timestamps_in_every_format_nbgrader_reads(tmp_path, text):
    (tmp_path / "timestamp.txt").write_text(text)
    assert read_timestamp(tmp_path, now=NOW) == Timestamp(DUE)


def test_the_parser_is_nbgraders_own(tmp_path, monkeypatch):
    import nbgrader.utils

    seen = []
    monkeypatch.setattr(nbgrader.utils, "parse_utc", lambda text: seen.append(text) or DUE)
    (tmp_path / "timestamp.txt").write_text(" x ")
    assert read_timestamp(tmp_path, now=NOW).time == DUE and seen == ["x"]


def test_missing_empty_unreadable_and_future_timestamps_are_reasons(tmp_path):
    assert "no timestamp.txt" in read_timestamp(tmp_path, now=NOW).problem
    (tmp_path / "timestamp.txt").write_text("  \n")
    assert read_timestamp(tmp_path, now=NOW).problem == "timestamp.txt is empty"
    (tmp_path / "timestamp.txt").write_text("yesterday-ish")
    assert "not a time nbgrader can read" in read_timestamp(tmp_path, now=NOW).problem
    (tmp_path / "timestamp.txt").write_bytes(b"\xff\xfe2026")
    assert "unreadable" in read_timestamp(tmp_path, now=NOW).problem
    (tmp_path / "timestamp.txt").write_text("2031-01-01 00:00:00 UTC")
    future = read_timestamp(tmp_path, now=NOW)
    assert future.time is None and "in the future" in future.problem
    (tmp_path / "timestamp.txt").write_text((NOW + dt.timedelta(minutes=2)).isoformat())  # clock skew
    assert read_timestamp(tmp_path, now=NOW).time is not None
    unknown = assess(future, DUE, 8.0, 10.0, 10.0)
    assert unknown.minutes_late is None and unknown.penalty is None
    assert (
        unknown.note.startswith("lateness unknown: timestamp.txt says 2031-01-01") and "no late penalty" in unknown.note
    )


def test_penalty_per_started_hour_never_below_zero():
    assert [lateness.hours_started(s) for s in (0, 1, 3600, 3601, 7200)] == [0, 1, 1, 2, 2]
    assert penalty_points(9.0, 10.0, 1, 10.0) == 1.0  # one second late = one started hour
    assert penalty_points(9.0, 10.0, 3 * 3600 + 5, 10.0) == 4.0  # 4 started hours x 10% of 10
    assert penalty_points(2.0, 10.0, 50 * 3600, 10.0) == 2.0  # capped at the score: never below 0
    assert penalty_points(0.0, 10.0, 50 * 3600, 10.0) == 0.0
    on_time = assess(Timestamp(DUE - dt.timedelta(hours=1)), DUE, 8.0, 10.0, 10.0)
    assert on_time.minutes_late == 0.0 and on_time.penalty == 0.0 and not on_time.late and on_time.note == ""
    late = assess(Timestamp(DUE + dt.timedelta(minutes=61)), DUE, 8.0, 10.0, 10.0)
    assert late.minutes_late == pytest.approx(61.0) and late.penalty == 2.0
    assert late.note == "submitted 1 h 01 min late: -2 points (2 started hours x 10% of 10)"
    extended = assess(Timestamp(DUE + dt.timedelta(minutes=61)), DUE, 8.0, 10.0, 10.0, extension=dt.timedelta(hours=2))
    assert extended.penalty == 0.0 and not extended.late
    assert assess(Timestamp(DUE + dt.timedelta(hours=1)), DUE, None, 10.0, 10.0).penalty is None
    assert assess(Timestamp(DUE), None, 8.0, 10.0, 10.0).minutes_late is None


def test_the_nbgrader_plugin_applies_the_same_rule():
    plugin = lateness.PerStartedHourPenalty(percent_per_hour=10.0, max_score=10.0)
    assert plugin.late_submission_penalty("ann", 9.0, 3601) == 2.0
    assert plugin.late_submission_penalty("ann", 9.0, 0) is None


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--due", "friday"], "--due 'friday' is not an ISO 8601 time"),
        (["--due", "2026-11-05T12:00"], "has no time zone"),
        (["--late-penalty-per-hour", "5"], "--late-penalty-per-hour needs --due"),
        (["--due", "2026-11-05T12:00Z", "--late-penalty-per-hour", "-1"], "between 0 and 100"),
        (["--retry-failed", "--force"], "not allowed with"),
        (["--refresh", "--force"], "not allowed with"),
        (["--export", "canvas", "--roster", "no-such-roster.csv"], "no-such-roster.csv: no such file"),
        (["--canvas-column", "X"], "--canvas-column is for --export canvas"),
    ],
)
def test_bad_grading_options_are_one_line_errors(tmp_path, capsys, extra, words):
    from autograder.grading import cli

    (tmp_path / "sub" / "ann").mkdir(parents=True)
    argv = [str(tmp_path / "sub"), "--assignment", ASSIGNMENT, "--source", str(SOURCE), "--out", str(tmp_path / "out")]
    try:
        code = cli.main([*argv, *extra])
    except SystemExit as exc:  # argparse's own errors (one line too, see cli._Parser)
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and "\n" not in err
    assert not (tmp_path / "out" / "grades.csv").exists()
