"""``--db-url postgresql://...``: grading into a PostgreSQL gradebook (a private server started for the test).

The server test needs PostgreSQL's server programs (``initdb``, ``pg_ctl``): ``make test`` installs Debian's
``postgresql`` package when it runs as root with apt, as CI does. Without them the test skips, and fails under
``CI=true``, so CI can never pass without it. The unreachable-database test needs no server and always runs.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from grading_cli import fixture_env, grade_command

from autograder.grading.benchmarks import synthetic

FIXTURES = Path(__file__).parent / "fixtures" / "grading"
SOURCE = FIXTURES / "grading-fixture.ipynb"
PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [p for p in [shutil.which("initdb")] if p]


def _server_bindir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``; skips the test where they are missing, fails it under ``CI=true``."""
    if PG_BIN:
        return Path(PG_BIN[-1]).parent
    message = (
        "PostgreSQL server programs (initdb, pg_ctl) not found: `make test` installs Debian's postgresql "
        "package when run as root with apt-get"
    )
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message}; CI must run the PostgreSQL test")
    pytest.skip(message)


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the ``postgres`` user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture
def postgres():
    import tempfile

    bindir = _server_bindir()
    root = Path(tempfile.mkdtemp(prefix="pg-grading-"))  # not under pytest's tmp: the server user must reach it
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    subprocess.run(
        _as_server_user([str(bindir / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", "grader"]),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _as_server_user(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(root / "data"),
                "-l",
                str(root / "log"),
                "-w",
                "-o",
                f"-k {root} -p 55439 -c listen_addresses=''",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            _as_server_user([str(bindir / "createdb"), "-h", str(root), "-p", "55439", "-U", "grader", "course"]),
            check=True,
            capture_output=True,
        )
        yield f"postgresql://grader@/course?host={root}&port=55439"
    finally:
        subprocess.run(
            _as_server_user([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


pytestmark = pytest.mark.xdist_group("postgres")


@pytest.mark.slow
def test_grading_into_postgresql(tmp_path, postgres):
    source = json.loads(SOURCE.read_text())
    for student, kind in {"ann": "solved", "bob": "exit", "cy": "monkeypatch"}.items():
        folder = tmp_path / "submitted" / student / "grading-fixture"
        folder.mkdir(parents=True)
        (folder / SOURCE.name).write_bytes(synthetic.variant(source, kind))
    env = fixture_env()
    proc = subprocess.run(
        grade_command(
            str(tmp_path / "submitted"), str(tmp_path / "out"), "--jobs", "2", "--timeout", "60", "--db-url", postgres
        ),
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "out" / "gradebook.db").exists()
    # the instructor's own nbgrader tools, with the URL as the README writes it (psycopg 3 reads postgresql://)
    nbgrader = Path(sys.executable).with_name("nbgrader")
    export = subprocess.run(
        [str(nbgrader), "export", "--db", postgres], cwd=tmp_path / "out", capture_output=True, text=True, timeout=300
    )
    assert export.returncode == 0, export.stdout[-2000:] + export.stderr[-2000:]
    assert "grading-fixture" in (tmp_path / "out" / "nbgrader-grades.csv").read_text()  # never over grades.csv
    assert (tmp_path / "out" / "grades.csv").read_text().startswith("student,assignment,score")
    from nbgrader.api import Gradebook

    from autograder.grading.course import tools_on_path

    tools_on_path()
    with Gradebook(postgres) as gb:
        assert gb.find_submission("grading-fixture", "ann").score == 5.0
        assert gb.find_submission("grading-fixture", "cy").score == 3.0
        crashed = gb.find_grade("test_scale", "grading-fixture", "grading-fixture", "bob")
        assert crashed.auto_score is None and crashed.needs_manual_grade


@pytest.mark.slow
def test_an_unreachable_database_is_a_one_line_usage_error(tmp_path):
    (tmp_path / "submitted" / "ann" / "grading-fixture").mkdir(parents=True)
    proc = subprocess.run(
        grade_command(
            str(tmp_path / "submitted"),
            str(tmp_path / "out"),
            "--db-url",
            f"postgresql://nobody@/none?host={tmp_path}&port=1",
        ),
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")])},
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot use the gradebook") and proc.stderr.count("\n") == 1


@pytest.mark.parametrize("ci,outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_server_programs_fail_under_ci_and_skip_elsewhere(monkeypatch, ci, outcome):
    monkeypatch.setattr(sys.modules[__name__], "PG_BIN", [])
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="initdb"):
        _server_bindir()
