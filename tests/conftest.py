"""Shared fixtures. ``built_site`` builds the book once per test session (strict, with the execution cache)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BuiltSite:
    """The result of ``jupyter-book build . -W -n --keep-going``: exit code, log, seconds, and the HTML folder."""

    returncode: int
    log: str
    seconds: float
    html: Path


@pytest.fixture(scope="session")
def built_site() -> BuiltSite:
    """Build the book into ``_build/html`` exactly as ``make book`` does (the execution cache under
    ``_build/.jupyter_cache`` makes a rebuild of unchanged chapters quick). Set ``SITE_PREBUILT=1`` to test an
    existing ``_build/html`` without rebuilding."""
    html = ROOT / "_build" / "html"
    if os.environ.get("SITE_PREBUILT") == "1" and (html / "index.html").exists():
        return BuiltSite(0, "(prebuilt: SITE_PREBUILT=1)", 0.0, html)
    from autograder.measure import embedding_bench

    embedding_bench.sync_book_cache(ROOT / "_build")  # re-run the Measurements page when the committed results changed
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book", "build", ".", "-W", "-n", "--keep-going"]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    return BuiltSite(proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start, html)
