"""The grading tests' one way to run ``python -m autograder grade`` on the fixture assignment.

The fixture (``tests/fixtures/grading/``: a five-point notebook and its probe and judge modules) is importable only
through ``PYTHONPATH``, so every run needs the same environment and the same ``--source``/``--checks-module``
options; each test adds its own limits and options.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "grading"
SOURCE = FIXTURES / "grading-fixture.ipynb"
ASSIGNMENT = "grading-fixture"


def fixture_env(**extra: str) -> dict[str, str]:
    """This process's environment with the fixture modules first on ``PYTHONPATH`` (plus ``extra`` variables)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")]), **extra}


def grade_command(submissions: Path, out: Path, *extra: str, assignment: str = ASSIGNMENT) -> list[str]:
    """``python -m autograder grade SUBMISSIONS --assignment A --out OUT`` on the fixture source, no progress bar,
    then ``extra`` (limits, ``--jobs``, ``--db-url``...)."""
    return [
        sys.executable,
        "-m",
        "autograder",
        "grade",
        str(submissions),
        "--assignment",
        assignment,
        "--out",
        str(out),
        "--source",
        str(SOURCE),
        "--checks-module",
        "grading_fixture_checks",
        "--no-progress",
        *extra,
    ]


def grade(
    submissions: Path,
    out: Path,
    *extra: str,
    assignment: str = ASSIGNMENT,
    env: dict | None = None,
    timeout_s: float = 600,
) -> subprocess.CompletedProcess:
    """Run :func:`grade_command` and return the finished process (text output captured)."""
    return subprocess.run(
        grade_command(submissions, out, *extra, assignment=assignment),
        capture_output=True,
        text=True,
        env=env or fixture_env(),
        timeout=timeout_s,
    )
