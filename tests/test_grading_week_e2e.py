"""End to end, the instructor's week after grading: one small class graded through nbgrader, then the manual
grading, the rerun, ``--retry-failed``, the report and the Canvas export, all on the same output folder.

The class (grading-fixture, 5 points): ann and cy solved it (identical notebooks: flagged, never re-scored; the
other notebooks are variants of the same solution, so they are flagged too), bob
renamed his notebook and left a newer ``Untitled.ipynb`` beside it and is two hours late, dee's kernel dies
(retried once, never cached), eve has two candidate notebooks, fay's timestamp is in the future, gus submitted
nothing, hal's unit() passes one of its two checks (partial credit).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from grading_cli import fixture_env, grade_command

from autograder.grading.benchmarks import synthetic

FIXTURES = Path(__file__).parent / "fixtures" / "grading"
SOURCE = FIXTURES / "grading-fixture.ipynb"
A = "grading-fixture"
DUE = "2026-11-05T12:00:00Z"

pytestmark = pytest.mark.slow


def _grade(submissions: Path, out: Path, *extra: str, assignment: str = A) -> subprocess.CompletedProcess:
    env = fixture_env()
    cmd = grade_command(
        str(submissions), str(out), "--jobs", "2", "--timeout", "25", "--memory", "2", *extra, assignment=assignment
    )
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as fh:
        return {row["student"]: row for row in csv.DictReader(fh)}


def _put(folder: Path, name: str, data: bytes, stamp: str | None, age_s: float = 0.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    t = 1_800_000_000 - age_s
    os.utime(folder / name, (t, t))
    if stamp is not None:
        (folder / "timestamp.txt").write_text(stamp)


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    root = tmp_path_factory.mktemp("week")
    sub = root / "submitted"
    source = json.loads(SOURCE.read_text())
    solved = synthetic.variant(source, "solved")
    on_time = "2026-11-05 11:30:00.000000 UTC"
    _put(sub / "ann" / A, f"{A}.ipynb", solved, on_time)
    _put(sub / "cy" / A, f"{A}.ipynb", solved, "2026-11-05T12:30:00+01:00")  # 11:30 UTC: on time
    _put(sub / "bob" / A, f"{A} (1).ipynb", synthetic.variant(source, "renamed"), "2026-11-05 14:00:01 UTC", age_s=3600)
    untitled = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    _put(sub / "bob" / A, "Untitled.ipynb", json.dumps(untitled).encode(), None)
    _put(sub / "dee" / A, f"{A}.ipynb", synthetic.variant(source, "exit"), on_time)
    _put(sub / "eve" / A, "copy-1.ipynb", solved, None, age_s=60)
    _put(sub / "eve" / A, "copy-2.ipynb", synthetic.variant(source, "renamed"), None)
    _put(sub / "fay" / A, f"{A}.ipynb", solved, "2099-01-01 00:00:00 UTC")
    (sub / "gus").mkdir()
    half = solved.replace(b'raise ValueError(\\"zero vector\\")', b"return np.zeros_like(np.asarray(v, dtype=float))")
    assert half != solved
    _put(sub / "hal" / A, f"{A}.ipynb", half, on_time)
    roster = root / "roster.csv"
    roster.write_text("id,name,email,section\nann,Ann Lee,ann@uni.edu,S1\nbob,Bob Ray,bob@uni.edu,S2\n")
    out = root / "out"
    first = _grade(
        sub, out, "--due", DUE, "--late-penalty-per-hour", "10", "--export", "canvas", "--roster", str(roster)
    )
    return dict(root=root, sub=sub, out=out, first=first, roster=roster, rows=_rows(out))


def test_the_first_run(week):
    proc, rows = week["first"], week["rows"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {s: r["status"] for s, r in rows.items()} == {
        "ann": "graded",
        "bob": "graded",
        "cy": "graded",
        "dee": "crashed",
        "eve": "graded",
        "fay": "graded",
        "gus": "missing",
        "hal": "graded",
    }
    assert "1 retried once after a crash or timeout" in proc.stdout


def test_lateness_columns_and_penalty(week):
    rows = week["rows"]
    assert rows["ann"]["submitted_at"] == "2026-11-05T11:30:00Z" and rows["ann"]["minutes_late"] == "0.0"
    assert rows["cy"]["submitted_at"] == "2026-11-05T11:30:00Z"
    bob = rows["bob"]  # renamed: test_scale lost -> 3 points; 2 h 00 min 01 s late = 3 started hours
    assert bob["raw_score"] == "3" and bob["late_penalty"] == "1.5" and bob["score"] == "1.5"
    assert bob["minutes_late"] == "120.0" and "3 started hours x 10% of 5" in bob["reason"]
    fay = rows["fay"]
    assert fay["score"] == "5" and fay["minutes_late"] == "" and fay["late_penalty"] == ""
    assert "lateness unknown: timestamp.txt says 2099-01-01 00:00 UTC, which is in the future" in fay["reason"]
    assert "lateness unknown: no timestamp.txt" in rows["eve"]["reason"]


def test_the_gradebook_holds_the_lateness_as_nbgrader_does(week):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{week['out'] / 'gradebook.db'}") as gb:
        assert gb.find_assignment(A).duedate == dt.datetime(2026, 11, 5, 12, 0)
        bob = gb.find_submission(A, "bob")
        assert bob.timestamp == dt.datetime(2026, 11, 5, 14, 0, 1) and bob.late_submission_penalty == 1.5
        assert max(0.0, bob.score - bob.late_submission_penalty) == float(week["rows"]["bob"]["score"])


def test_picking_names_the_file_graded(week):
    rows = week["rows"]
    assert rows["bob"]["notebook"] == f"{A} (1).ipynb" and "Untitled.ipynb" in rows["bob"]["reason"]
    assert rows["ann"]["notebook"] == f"{A}.ipynb"
    assert rows["eve"]["notebook"] == "copy-2.ipynb"
    assert (
        "several candidate notebooks carry the assignment's cells (copy-1.ipynb, copy-2.ipynb)" in rows["eve"]["reason"]
    )
    page = (week["out"] / "feedback" / "bob" / A / f"{A}.html").read_text()
    assert f"Notebook graded: <code>{A} (1).ipynb</code>" in page


def test_partial_credit_inside_a_test_cell(week):
    from nbgrader.api import Gradebook

    hal = week["rows"]["hal"]
    assert hal["score"] == "3.5" and hal["tests_passed"] == "1"  # test_scale 2 + half of test_unit's 3
    stored = json.loads((week["out"] / ".autograder" / A / "hal.json").read_text())
    unit = next(t for t in stored["tests"] if t["grade_id"] == "test_unit")
    assert unit["points"] == 1.5 and [c[1] for c in unit["checks"]] == [True, False]
    with Gradebook(f"sqlite:///{week['out'] / 'gradebook.db'}") as gb:
        assert gb.find_grade("test_unit", A, A, "hal").auto_score == 1.5
        assert gb.find_submission(A, "hal").score == 3.5


def test_autograded_notebooks_in_nbgraders_layout_and_generate_feedback(week):
    out = week["out"]
    for student in ("ann", "bob", "hal"):
        nb = json.loads((out / "autograded" / student / A / f"{A}.ipynb").read_text())
        assert any(c.get("outputs") for c in nb["cells"])  # executed
    assert not (out / "autograded" / "dee").exists() and not (out / "autograded" / "gus").exists()
    nbgrader = Path(sys.executable).with_name("nbgrader")
    proc = subprocess.run(
        [str(nbgrader), "generate_feedback", A, "--force"], cwd=out, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    page = (out / "nbgrader-feedback" / "hal" / A / f"{A}.html").read_text()
    assert "HIDDEN-FIXTURE-SENTINEL" not in page and "3.5" in page
    ours = (out / "feedback" / "hal" / A / f"{A}.html").read_text()
    assert "HIDDEN-FIXTURE-SENTINEL" not in ours and "Score: 3.5 / 5" in ours


def test_crashes_are_retried_logged_and_explained(week):
    dee = week["rows"]["dee"]
    assert dee["score"] == "" and "retried once, failed again (first run: crashed" in dee["reason"]
    log = (week["out"] / "logs" / A / "dee.log").read_text()
    assert "=== first run ===" in log and "=== retry ===" in log and "autograde" in log
    page = (week["out"] / "feedback" / "dee" / A / f"{A}.html").read_text()
    assert "What to do:" in page and "Restart the kernel and run all cells" in page
    assert "Traceback" not in page and "[AutogradeApp" not in page
    gus = (week["out"] / "feedback" / "gus" / A / f"{A}.html").read_text()
    assert "No notebook was found" in gus


def test_similarity_flags_never_change_a_score(week):
    rows = week["rows"]
    assert "cy 100%" in rows["ann"]["flags"] and "ann 100%" in rows["cy"]["flags"]
    assert "matches-solution" in rows["ann"]["flags"]
    assert rows["ann"]["score"] == rows["cy"]["score"] == rows["fay"]["score"] == "5"
    assert "ann 100%" in rows["bob"]["flags"] and rows["bob"]["score"] == "1.5"  # same code, a renamed function
    assert rows["gus"]["flags"] == ""


def test_report_and_canvas_export(week):
    out, rows = week["out"], week["rows"]
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "Regrade history" in page and "fay" in page
    with open(out / "canvas.csv", newline="") as fh:
        lines = list(csv.reader(fh))
    assert lines[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", A]
    by_id = {line[2]: line for line in lines[1:]}
    assert by_id["ann"] == ["Ann Lee", "", "ann", "ann@uni.edu", "S1", rows["ann"]["score"]]
    assert by_id["bob"][-1] == "1.5" and by_id["dee"][-1] == "" and by_id["gus"][-1] == ""
    assert (
        "the roster" in week["first"].stderr
        and "lacks 6 students (cy, dee, eve, fay, gus and 1 more)" in week["first"].stderr
    )


def test_manual_grades_flow_into_every_output_and_reruns_retry_failures(week):
    from nbgrader.api import Gradebook

    out = week["out"]
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:  # what the formgrader writes
        gb.find_grade("test_scale", A, A, "bob").manual_score = 1.0
        gb.find_comment("scale_answer", A, A, "bob").manual_comment = "the function must keep its name"
        gb.db.commit()
    proc = _grade(
        week["sub"],
        out,
        "--due",
        DUE,
        "--late-penalty-per-hour",
        "10",
        "--export",
        "canvas",
        "--roster",
        str(week["roster"]),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(out)
    bob = rows["bob"]
    assert (
        bob["raw_score"] == "4"
        and bob["score"] == "2.5"
        and "scored by hand in the gradebook: test_scale" in bob["reason"]
    )
    assert bob["comments"] == "scale_answer: the function must keep its name"
    assert "1 run now" in proc.stdout  # only dee: failures are never cached
    assert "1 with manual scores from the gradebook" in proc.stdout
    scored = [float(r["score"]) for r in rows.values() if r["score"]]
    assert f"mean {sum(scored) / len(scored):.2f} / 5" in proc.stdout
    with open(out / "canvas.csv", newline="") as fh:
        assert {line[2]: line[-1] for line in csv.reader(fh)}["bob"] == "2.5"
    page = (out / "feedback" / "bob" / A / f"{A}.html").read_text()
    assert "the function must keep its name" in page and "Score: 2.5 / 5" in page
    report = (out / "report.html").read_text()
    assert "1.5 (" in report and "2.5 (" in report  # bob's regrade history
    retry = _grade(week["sub"], out, "--retry-failed", "--due", DUE, "--late-penalty-per-hour", "10")
    assert retry.returncode == 0 and "1 run now" in retry.stdout and _rows(out)["bob"]["score"] == "2.5"


def test_a_wrong_assignment_id_warns_in_one_line(week, tmp_path):
    proc = _grade(week["sub"], tmp_path / "other", assignment="grading-fixtur")
    assert proc.returncode == 0
    warning = [line for line in proc.stderr.splitlines() if line.startswith("warning: every")]
    assert warning == [
        "warning: every one of the 8 students is missing: no notebook in "
        "SUBMISSIONS/<student>/grading-fixtur/; their folders hold grading-fixture/: "
        "is --assignment right?"
    ]
