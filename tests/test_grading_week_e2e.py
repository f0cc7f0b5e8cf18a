"""End to end, the instructor's week after grading: one small class graded through nbgrader once, then the manual
grading (in the formgrader, over its REST API), reruns that run no notebook (``--refresh``), policy changes, a
resubmission, ``--retry-failed``, an interrupted run, the report and the Canvas export, all on the same output folder.

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

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("week")]


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
    crashed = json.loads((out / "autograded" / "dee" / A / f"{A}.ipynb").read_text())  # what ran, for the formgrader
    assert "Not scored by the autograder (crashed)" in "".join(crashed["cells"][0]["source"])
    assert any(c["metadata"].get("nbgrader", {}).get("grade_id") == "test_unit" for c in crashed["cells"])
    assert not (out / "autograded" / "gus").exists()
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
    crashed_in = "it crashed in code cell 1 of 5, which starts `import os`"  # the cell the student wrote
    assert crashed_in in dee["reason"] and crashed_in in week["first"].stdout  # the instructor's log too
    log = (week["out"] / "logs" / A / "dee.log").read_text()
    assert "=== first run ===" in log and "=== retry ===" in log and "autograde" in log and crashed_in in log
    page = (week["out"] / "feedback" / "dee" / A / f"{A}.html").read_text()
    assert "What to do:" in page and "Restart the kernel and run all cells" in page
    assert "it crashed in code cell 1 of 5, which starts `import os`" in page.replace("&#x27;", "'")
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


def _refresh(week, *extra: str) -> subprocess.CompletedProcess:
    proc = _grade(week["sub"], week["out"], "--refresh", *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0 run now" in proc.stdout
    return proc


def _canvas(out: Path) -> dict[str, str]:
    with open(out / "canvas.csv", newline="") as fh:
        return {line[2]: line[-1] for line in csv.reader(fh)}


def test_a_rerun_without_options_keeps_the_grading_policy(week):
    out = week["out"]
    proc = _refresh(week)  # no --due, no penalty, no export: the stored policy applies
    rows = _rows(out)
    assert rows["bob"]["score"] == "1.5" and rows["bob"]["late_penalty"] == "1.5"
    assert _canvas(out)["bob"] == "1.5"  # still exported, from the same rows
    assert "grading policy changed" not in proc.stderr
    other = _grade(week["sub"], out, "--refresh", "--due", "2026-11-06T12:00:00Z")
    assert other.returncode == 2 and other.stderr.count("\n") == 1
    assert other.stderr.startswith("error: --due 2026-11-06T12:00:00Z differs from this output folder's grading policy")
    assert "--change-policy" in other.stderr


def test_formgrader_lists_every_student_and_its_scores_reach_every_output(week):
    """The README's formgrader instructions as written: a Jupyter server started in --out, its Formgrader API."""
    import socket
    import time
    import urllib.request

    out = week["out"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    jupyter = Path(sys.executable).with_name("jupyter")
    server = subprocess.Popen(
        [str(jupyter), "server", "--no-browser", "--allow-root", f"--port={port}", "--IdentityProvider.token=t0k"],
        cwd=out,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def api(path: str, body: dict | None = None):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/formgrader/api/{path}",
            data=None if body is None else json.dumps(body).encode(),
            method="GET" if body is None else "PUT",
            headers={"Authorization": "token t0k"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                submissions = api(f"submissions/{A}")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)
        listed = {s["student"]: s for s in submissions}
        with_notebook = {s for s, r in week["rows"].items() if r["status"] != "missing"}
        assert set(listed) == with_notebook and all(s["autograded"] for s in listed.values())  # dee (crashed) too
        notebooks = {n["student"]: n["id"] for n in api(f"submitted_notebooks/{A}/{A}")}
        grades = {g["name"]: g for g in api(f"grades?submission_id={notebooks['ann']}")}
        api(f"grade/{grades['test_unit']['id']}", {"manual_score": None, "extra_credit": 1.0})  # extra credit box
        dee = {g["name"]: g for g in api(f"grades?submission_id={notebooks['dee']}")}
        api(f"grade/{dee['test_scale']['id']}", {"manual_score": 2.0, "extra_credit": None})  # one cell by hand
    finally:
        server.terminate()
        server.wait(timeout=30)
    proc = _refresh(week)
    rows = _rows(out)
    assert rows["ann"]["score"] == "6" and "extra credit 1 included" in rows["ann"]["reason"]  # 18/17 as nbgrader
    assert _canvas(out)["ann"] == "6"
    assert "Score: 6 / 5" in (out / "feedback" / "ann" / A / f"{A}.html").read_text()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        assert gb.find_submission(A, "ann").score == 6.0  # what nbgrader export says
    assert rows["dee"]["manual_pending"] == "test_unit" and rows["dee"]["score"] == ""
    assert "awaiting manual grading (dee: test_unit)" in proc.stdout


def test_manual_grades_flow_into_every_output_and_policy_changes_are_reported(week):
    from nbgrader.api import Gradebook

    out = week["out"]
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:  # what the formgrader writes
        gb.find_grade("test_scale", A, A, "bob").manual_score = 1.0
        gb.find_comment("scale_answer", A, A, "bob").manual_comment = "the function must keep its name"
        gb.db.commit()
    proc = _refresh(week)
    rows = _rows(out)
    bob = rows["bob"]
    assert (
        bob["raw_score"] == "4"
        and bob["score"] == "2.5"
        and "scored by hand in the gradebook: test_scale" in bob["reason"]
    )
    assert bob["comments"] == "scale_answer: the function must keep its name"
    assert "1 with manual scores from the gradebook" in proc.stdout
    scored = [float(r["score"]) for r in rows.values() if r["score"]]
    assert f"mean {sum(scored) / len(scored):.2f} / 5" in proc.stdout
    assert _canvas(out)["bob"] == "2.5"
    page = (out / "feedback" / "bob" / A / f"{A}.html").read_text()
    assert "the function must keep its name" in page and "Score: 2.5 / 5" in page
    changed = _refresh(week, "--change-policy", "--late-penalty-per-hour", "20", "--export", "none")
    assert [line for line in changed.stderr.splitlines() if "policy" in line] == [
        "grading policy changed: --late-penalty-per-hour 10 -> 20; --export canvas -> none"
    ]
    assert _rows(out)["bob"]["score"] == "1" and not (out / "canvas.csv").exists()  # not asked for: removed
    history = [h for h in csv.DictReader(open(out / "history.csv", newline="")) if h["student"] == "bob"]
    assert [(h["old_score"], h["score"]) for h in history] == [("", "1.5"), ("1.5", "2.5"), ("2.5", "1")]
    assert "manual scores" in history[1]["reason"] and "late penalty 3" in history[2]["reason"]
    report = (out / "report.html").read_text()
    assert "1.5 (" in report and "2.5 (" in report  # bob's regrade history


def test_a_resubmission_under_the_best_policy_and_retry_failed(week):
    out, sub = week["out"], week["sub"]
    source = json.loads(SOURCE.read_text())
    _put(sub / "hal" / A, f"{A}.ipynb", synthetic.variant(source, "renamed"), "2026-11-05 11:50:00 UTC")  # 3 < 3.5
    proc = _grade(sub, out, "--change-policy", "--resubmission", "best")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 run now" in proc.stdout  # hal alone: dee's crash is not rerun without --retry-failed
    assert "1 crashed or timed out last time and kept as they were: --retry-failed runs them again" in proc.stdout
    hal = _rows(out)["hal"]
    assert hal["score"] == "3.5" and hal["resubmission"].startswith("best of 2: kept the submission of 2026-11-05")
    assert "(3.5) over the latest, of 2026-11-05 11:50 UTC (3)" in hal["resubmission"]
    retry = _grade(sub, out, "--retry-failed")
    assert retry.returncode == 0 and "1 run now" in retry.stdout and _rows(out)["hal"]["score"] == "3.5"


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_run_stops_within_seconds_and_leaves_the_published_state(week, how):
    import signal
    import time

    import psutil

    out = week["out"]
    before = {p: p.read_bytes() for p in [out / "grades.csv", *sorted((out / "feedback").rglob("*.html"))]}
    cmd = grade_command(str(week["sub"]), str(out), "--jobs", "2", "--force")
    proc = subprocess.Popen(
        cmd, env=fixture_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until kernels run
        kids = psutil.Process(proc.pid).children(recursive=True)
        if any("ipykernel" in " ".join(k.cmdline()) for k in kids if k.is_running()):
            break
        time.sleep(0.2)
    started = time.monotonic()
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
    else:
        proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - started
    print(f"{how}: exited {took:.1f} s after the signal")
    # 0.0-0.3 s on a quiet machine; up to 21 s measured with another xdist worker grading beside it on 2 cores. The
    # old behaviour (25 s, a traceback) fails the one-line and no-traceback assertions below whatever the bound.
    assert proc.returncode == 130 and took < 40
    assert stderr.strip().startswith("interrupted:") and stderr.strip().count("\n") == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    assert {p: p.read_bytes() for p in before} == before  # the previous complete state
    assert not (out / ".autograder" / "staging").exists()
    time.sleep(1)
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(out) in " ".join(p.info["cmdline"] or [])]


def test_a_wrong_assignment_id_warns_in_one_line(week, tmp_path):
    proc = _grade(week["sub"], tmp_path / "other", assignment="grading-fixtur")
    assert proc.returncode == 0
    warning = [line for line in proc.stderr.splitlines() if line.startswith("warning: every")]
    assert warning == [
        "warning: every one of the 8 students is missing: no notebook in "
        "SUBMISSIONS/<student>/grading-fixtur/; their folders hold grading-fixture/: "
        "is --assignment right?"
    ]
