"""Fast tests of the grader's pieces (no nbgrader kernels): limits, notebook checks, feedback, store, CLI errors."""

from __future__ import annotations

import importlib
import json
import os
import pickle
import sys
import time
from pathlib import Path

import pytest
from grading_cli import grade_command

from autograder.grading import cli, course, feedback, limits, sandbox
from autograder.grading.benchmarks import synthetic
from autograder.grading.lateness import Lateness
from autograder.grading.scores import build_row
from autograder.grading.store import Store
from autograder.grading.tasks import GradeResult, GradeTask, TestRecord, content_hash

FIXTURES = Path(__file__).parent / "fixtures" / "grading"
SOURCE = FIXTURES / "grading-fixture.ipynb"
HIDDEN_SENTINEL = "HIDDEN-FIXTURE-SENTINEL"


def _task(**kw) -> GradeTask:
    base = dict(
        student="ann",
        assignment="grading-fixture",
        notebook_name="grading-fixture",
        submission=SOURCE.read_bytes(),
        source_notebook=SOURCE.read_bytes(),
    )
    return GradeTask(**{**base, **kw})


# ------------------------------------------------------------------------------------------------ limits
def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_deadline_kills_the_child_and_a_grandchild_in_its_own_session(tmp_path):
    pidfile = tmp_path / "grandchild.pid"

    def target():  # like nbgrader starting a kernel (new session), then hanging
        import subprocess

        p = subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(1)"], start_new_session=True)
        pidfile.write_text(str(p.pid))
        while True:
            time.sleep(1)

    t0 = time.monotonic()
    out = limits.run_children([limits.Child("hang", str(tmp_path), target=target)], limits.Limits(), timeout_s=2.0)
    assert out["hang"].timed_out and out["hang"].returncode is None
    assert time.monotonic() - t0 < 10
    grandchild = int(pidfile.read_text())
    for _ in range(50):
        if not _alive(grandchild):
            break
        time.sleep(0.1)
    assert not _alive(grandchild), "the grandchild outlived the deadline"


def test_memory_limit_applies_in_the_child(tmp_path):
    def target():
        try:
            bytearray(2 << 30)
        except MemoryError:
            return 42
        return 0

    out = limits.run_children(
        [limits.Child("bomb", str(tmp_path), target=target)], limits.Limits(memory_bytes=1 << 30), timeout_s=30
    )
    assert out["bomb"].returncode == 42


def test_output_is_bounded_and_exit_codes_and_signals_are_reported(tmp_path):
    def noisy():
        for _ in range(2000):
            os.write(1, b"y" * 10_000)
        return 3

    def segfault():
        import ctypes

        ctypes.string_at(0)

    out = limits.run_children(
        [limits.Child("noisy", str(tmp_path), target=noisy), limits.Child("segv", str(tmp_path), target=segfault)],
        limits.Limits(),
        timeout_s=30,
    )
    assert out["noisy"].returncode == 3 and not out["noisy"].timed_out
    assert len(out["noisy"].output) < 3 * limits.KEEP_BYTES and "bytes of output dropped" in out["noisy"].output
    assert out["segv"].signal_name == "SIGSEGV"


# ------------------------------------------------------------------------------------------------ notebooks
def test_notebook_problem_names_what_is_wrong():
    good = SOURCE.read_bytes()
    assert course.notebook_problem(good) is None
    assert "not valid JSON" in course.notebook_problem(good[: len(good) // 2])
    assert course.notebook_problem(b'{"cells": "abc').endswith(": Unterminated string starting at: line 1 column 11")
    assert "empty" in course.notebook_problem(b"  ")
    assert "not a Jupyter notebook" in course.notebook_problem(b'{"a": 1}')
    assert "UTF-8" in course.notebook_problem(b"\xff\xfe{")
    assert "notebook format" in course.notebook_problem(
        b'{"cells": 3, "nbformat": 4, "nbformat_minor": 5, "metadata": {}}'
    )


def test_source_info_reads_test_cells_points_and_hidden_tests():
    info = course.source_info(SOURCE.read_bytes())
    assert [(c.grade_id, c.points, c.hidden) for c in info.test_cells] == [
        ("test_scale", 2.0, False),
        ("test_unit", 3.0, True),
    ]
    assert info.max_score == 5.0


def test_the_sandbox_package_copy_holds_no_judge_and_no_reference(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))
    lib = Path(sandbox.build_libdir(str(tmp_path / "lib"), ("grading_fixture_probes",)))
    files = sorted(str(p.relative_to(lib)) for p in lib.rglob("*") if p.is_file())
    assert "autograder/__init__.py" in files and "grading_fixture_probes.py" in files
    assert any(f.startswith("autograder/student/") for f in files)
    assert not any(
        f.startswith(("autograder/checks", "autograder/reference", "autograder/grading"))
        or "grading_fixture_checks" in f
        for f in files
    )
    assert all(oct(p.stat().st_mode & 0o777) == "0o644" for p in lib.rglob("*") if p.is_file())


def test_synthetic_variants_change_what_they_say():
    source = json.loads(SOURCE.read_text())
    solved = synthetic.variant(source, "solved").decode()
    assert HIDDEN_SENTINEL not in solved and "BEGIN SOLUTION" in solved
    assert course.notebook_problem(synthetic.variant(source, "truncated")) is not None
    deleted = json.loads(synthetic.variant(source, "deleted-tests"))
    assert not any(c["metadata"].get("nbgrader", {}).get("grade") for c in deleted["cells"])
    assert "def scale_renamed(" in synthetic.variant(source, "renamed").decode()
    patched = synthetic.variant(source, "monkeypatch").decode()
    assert "np.allclose = lambda" in patched and "raise NotImplementedError()" in patched
    with pytest.raises(ValueError, match="unknown variant"):
        synthetic.variant(source, "nonsense")


# ------------------------------------------------------------------------------------------------ data
def test_tasks_and_results_are_plain_picklable_data():
    task = _task()
    assert pickle.loads(pickle.dumps(task)) == task
    assert content_hash(task) == content_hash(_task())
    assert content_hash(task) != content_hash(_task(submission=b"{}"))
    assert content_hash(task) != content_hash(_task(timeout_s=5.0))
    result = GradeResult(
        "ann",
        "grading-fixture",
        "graded",
        3.0,
        5.0,
        "1/2",
        [TestRecord("test_scale", 0.0, 2.0, False, "wrong", False, (("c", False, "m"),))],
    )
    again = GradeResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again == result and pickle.loads(pickle.dumps(result)) == result


def test_feedback_escapes_and_shows_names_points_and_messages_only():
    result = GradeResult(
        "<ann>",
        "grading-fixture",
        "graded",
        2.0,
        5.0,
        "1/2 test cells passed",
        [
            TestRecord("test_scale", 2.0, 2.0, True, "passed", False, (("scales a vector", True, "ok"),)),
            TestRecord(
                "test_unit",
                0.0,
                3.0,
                False,
                "failed <b>x</b>",
                True,
                (("zero vector raises ValueError", False, "must raise"),),
            ),
        ],
    )
    page = feedback.render(result)
    assert "&lt;ann&gt;" in page and "<ann>" not in page
    plain = feedback.render(
        GradeResult("ann", "a", "graded", 0.0, 1.0, "", [TestRecord("t", 0.0, 1.0, False, "failed <b>x</b>", False)])
    )
    assert "failed &lt;b&gt;x&lt;/b&gt;" in plain
    assert "test_unit" in page and "0 / 3" in page and "zero vector raises ValueError" in page
    assert "run_checks" not in page and HIDDEN_SENTINEL not in page
    crashed = feedback.render(GradeResult("ann", "a", "crashed", None, 5.0, "the kernel died"))
    assert "not graded" in crashed and "the kernel died" in crashed


def test_store_caches_by_hash_flags_failures_in_the_gradebook_and_writes_csv(tmp_path):
    source = SOURCE.read_bytes()
    store = Store(tmp_path / "out", "grading-fixture", "grading-fixture")
    try:
        store.prepare_assignment(source)
        good = GradeResult(
            "ann",
            "grading-fixture",
            "graded",
            3.0,
            5.0,
            "1/2",
            [
                TestRecord("test_scale", 0.0, 2.0, False, "no", False),
                TestRecord("test_unit", 3.0, 3.0, True, "passed", True),
            ],
            submission_hash="h1",
        )
        bad = GradeResult("bob", "grading-fixture", "crashed", None, 5.0, "the kernel died", submission_hash="h2")
        for r in (good, bad):
            r.feedback_html = feedback.render(r)
            store.save(r)
        assert store.cached("ann", "h1") == good and store.cached("ann", "other") is None
        gb = store.gradebook()
        assert gb.find_grade("test_unit", "grading-fixture", "grading-fixture", "ann").auto_score == 3.0
        flagged = gb.find_grade("test_unit", "grading-fixture", "grading-fixture", "bob")
        assert flagged.auto_score is None and flagged.needs_manual_grade
        path = store.write_csv(
            [build_row(r, store.view(r.student), lambda raw: Lateness(None, None, None)) for r in (good, bad)]
        )
    finally:
        store.close()
    rows = path.read_text().splitlines()
    assert rows[0].startswith("student,assignment,score,max_score,status,reason")
    assert rows[1].startswith("ann,grading-fixture,3,5,graded") and rows[2].startswith("bob,grading-fixture,,5,crashed")
    assert store.feedback_path("ann").read_text().startswith("<!DOCTYPE html>")


# ------------------------------------------------------------------------------------------------ CLI errors
def _run_cli(capsys, *argv) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err.strip()


def test_usage_errors_are_one_line_and_nonzero(tmp_path, capsys):
    sub = tmp_path / "submitted"
    code, err = _run_cli(
        capsys,
        str(tmp_path / "nope"),
        "--assignment",
        "grading-fixture",
        "--out",
        str(tmp_path / "o"),
        "--source",
        str(SOURCE),
    )
    assert code == 2 and err.startswith("error: submissions folder") and "\n" not in err
    sub.mkdir()
    code, err = _run_cli(
        capsys, str(sub), "--assignment", "grading-fixture", "--out", str(tmp_path / "o"), "--source", str(SOURCE)
    )
    assert code == 2 and err.startswith("error: no student folders") and "\n" not in err
    code, err = _run_cli(capsys, str(sub), "--assignment", "no-such-assignment", "--out", str(tmp_path / "o"))
    assert code == 2 and err.startswith("error: unknown assignment 'no-such-assignment'") and "\n" not in err
    code, err = _run_cli(capsys, str(sub), "--assignment", "x", "--out", str(tmp_path / "o"), "--jobs", "0")
    assert code == 2 and "--jobs" in err
    (tmp_path / "file").write_text("")
    code, err = _run_cli(capsys, str(sub), "--assignment", "x", "--out", str(tmp_path / "file"))
    assert code == 2 and err.startswith(f"error: --out {tmp_path / 'file'} is a file") and "\n" not in err
    code, err = _run_cli(capsys, str(sub), "--assignment", "x", "--out", str(sub / "grades"))
    assert code == 2 and "would be taken for a student folder" in err and "\n" not in err
    (sub / "ann" / "grading-fixture").mkdir(parents=True)
    code, err = _run_cli(
        capsys,
        str(sub / "ann"),
        "--assignment",
        "grading-fixture",
        "--out",
        str(tmp_path / "o"),
        "--source",
        str(SOURCE),
    )
    assert code == 2 and "looks like one student's folder" in err and "\n" not in err
    with pytest.raises(SystemExit) as exit_:
        cli.main([str(sub), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.startswith("error: the following arguments are required: --assignment")
    assert "\n" not in err
    assert not (tmp_path / "o" / "grades.csv").exists()


def test_top_level_help_and_an_unknown_command(capsys):
    from autograder.__main__ import main as autograder_main

    assert autograder_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "grade" in out and "release" in out and "python -m autograder <command> --help" in out
    assert autograder_main(["grades"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: unknown command 'grades': use one of grade, release, twins (see python -m autograder --help)"
    assert autograder_main([]) == 2 and "usage:" in capsys.readouterr().err


def test_help_shows_only_defaults_worth_showing(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    assert "(default: None)" not in out and "(default: False)" not in out and "``" not in out
    assert "first run: 120)" in out and "first run: 200000)" in out and "--unsafe-no-sandbox" in out


def test_students_are_found_with_renamed_and_missing_notebooks(tmp_path):
    (tmp_path / "ann" / "a1").mkdir(parents=True)
    (tmp_path / "ann" / "a1" / "a1.ipynb").write_text("{}")
    (tmp_path / "bob" / "a1").mkdir(parents=True)
    (tmp_path / "bob" / "a1" / "a1 (1).ipynb").write_text("{}")
    (tmp_path / "cy").mkdir()
    (tmp_path / ".ipynb_checkpoints").mkdir()
    found = cli.find_submissions(tmp_path, "a1", "a1")
    assert {s: p.path for s, p in found.items()} == {
        "ann": tmp_path / "ann" / "a1" / "a1.ipynb",
        "bob": tmp_path / "bob" / "a1" / "a1 (1).ipynb",
        "cy": None,
    }
    assert found["ann"].note == "" and "a1 (1).ipynb" in found["bob"].note


def _payload(groups: dict) -> str:
    import base64

    from autograder.student import transport

    return base64.b64encode(transport.encode(groups)).decode()


def test_the_payload_is_judged_here_with_the_graders_seed(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(FIXTURES))
    importlib.import_module("grading_fixture_checks")  # registers the fixture assignment's probes and judges
    from autograder.student import registry

    ns: dict = {}
    exec("import numpy as np\ndef scale(x, f):\n    return np.ones_like(x)\n", ns)
    task = _task(check_modules=("grading_fixture_checks",), hidden_seed=7)
    emitted = tmp_path / "probes.b64"
    emitted.write_text(_payload({"test_scale": registry.probe_group("grading-fixture", "test_scale", ns, seed=7)}))
    verdicts, _ = course._judge(task, ["test_scale"], str(emitted))
    [(name, ok, message)] = verdicts["test_scale"]
    assert name == "scales a vector" and not ok and "differ" in message
    for forged in ("not base64 !", _payload({"test_scale": "every check passed"}), ""):
        emitted.write_text(forged)
        verdicts, problem = course._judge(task, ["test_scale"], str(emitted))
        assert "test_scale" not in verdicts or not all(ok for _, ok, _ in verdicts["test_scale"]), forged
    verdicts, problem = course._judge(task, ["test_scale"], str(tmp_path / "absent"))
    assert verdicts == {} and "no probe payload" in problem


def test_hidden_seeds_come_from_the_secret_and_the_student(tmp_path):
    from autograder.grading import secret

    path = tmp_path / "out" / secret.SECRET_NAME
    key = secret.load_or_create(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600" and secret.load_or_create(path) == key
    a, b = secret.hidden_seed(key, "a1", "ann"), secret.hidden_seed(key, "a1", "bob")
    assert a != b and a == secret.hidden_seed(key, "a1", "ann") and 0 <= a < 2**32
    other = secret.load_or_create(tmp_path / "other")
    assert secret.hidden_seed(other, "a1", "ann") != a and secret.fingerprint(other) != secret.fingerprint(key)
    assert key.decode() not in secret.fingerprint(key)
    task = _task(hidden_seed=a, secret_id=secret.fingerprint(key))
    from dataclasses import replace

    assert content_hash(task) != content_hash(replace(task, secret_id=secret.fingerprint(other)))
    path.chmod(0o644)
    with pytest.raises(secret.SecretError, match="chmod 600"):
        secret.load_or_create(path)
    with pytest.raises(secret.SecretError, match="no such file"):
        secret.load_or_create(tmp_path / "nope", create=False)


def test_grading_fails_closed_without_the_sandbox(tmp_path, monkeypatch):
    """No bwrap on PATH: one line that says why and how to fix it, exit status 2, nothing graded."""
    import subprocess

    (tmp_path / "subs" / "ann" / "grading-fixture").mkdir(parents=True)
    (tmp_path / "subs" / "ann" / "grading-fixture" / "grading-fixture.ipynb").write_bytes(SOURCE.read_bytes())
    env = {
        **os.environ,
        "PATH": os.path.dirname(sys.executable),
        "PYTHONPATH": os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = grade_command(str(tmp_path / "subs"), str(tmp_path / "out"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert "bwrap" in line and "apt-get install bubblewrap" in line
    assert not (tmp_path / "out" / "grades.csv").exists()


def test_sandbox_availability_says_why_and_how_to_fix(monkeypatch):
    monkeypatch.setattr(sandbox, "_bwrap", lambda: None)
    sandbox.availability.cache_clear()
    try:
        found = sandbox.availability()
        assert (
            not found.ok and found.isolation == sandbox.ISOLATION_NONE and "apt-get install bubblewrap" in found.detail
        )
        with pytest.raises(sandbox.SandboxUnavailable, match="bubblewrap"):
            sandbox.require()
    finally:
        sandbox.availability.cache_clear()


def test_children_do_not_see_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "hunter2")
    monkeypatch.setenv("GRADER_API_TOKEN", "abc")

    def target():
        return (
            10 + ("PGPASSWORD" in os.environ) + 2 * ("GRADER_API_TOKEN" in os.environ) + 4 * ("PATH" not in os.environ)
        )

    out = limits.run_children([limits.Child("env", str(tmp_path), target=target)], limits.Limits(), timeout_s=30)
    assert out["env"].returncode == 10


def test_warm_forked_children_can_use_torch_after_the_worker_did(tmp_path):
    """A judge running PyTorch in the worker must not make the next forked probe process hang (OpenMP + fork)."""
    code = """
import sys, torch
from autograder.grading import limits
limits.enable_warm_fork()
(torch.randn(600, 600) @ torch.randn(600, 600)).sum()          # what a judge may do in the worker
def target():
    x = torch.randn(600, 600, requires_grad=True)
    (x @ x).relu().sum().backward()
    return 7
out = limits.run_children([limits.Child("torch", sys.argv[1], target=target, argv=["false"])], limits.Limits(), 60)
print(out["torch"].returncode, out["torch"].timed_out)
"""
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["7", "False"], proc.stderr[-2000:]
