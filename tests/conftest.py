"""Shared fixtures, and how the suite runs in parallel.

``built_site`` builds the book once per test session (strict, with the execution cache).

``make test`` runs pytest-xdist workers (``-n auto --maxprocesses 4 --dist loadgroup`` in ``pytest.ini``). A worker
is a separate process, so a module- or session-scoped fixture would run once *per worker* that gets one of its
tests: :func:`pytest_collection_modifyitems` therefore puts every test that uses such a fixture (a graded class, a
Dask cluster, the built site) in one ``xdist_group``, named after the module (or ``site`` for the tests that use
``built_site``), unless the test names its own group. Tests without shared fixtures spread over the workers.

pytest-xdist 3.8's own ``loadgroup`` ignores every ``xdist_group`` under pytest 9.2 (it renames the test ids, which
pytest 9.2 no longer lets a plugin do: pytest-dev/pytest-xdist#1386), so :func:`pytest_xdist_make_scheduler`
supplies the scheduler: each worker writes the groups of the tests it collected to a file, and the scheduler sends
each group to one worker as a unit.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: session-scoped fixtures of this file -> the xdist group of every test that uses one
SESSION_GROUPS = {"built_site": "site"}


def _shared_fixtures(item) -> list:
    """The module- or session-scoped fixtures defined in ``tests/`` that ``item`` uses (directly or not)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    shared = []
    for name in info.names_closure:
        for fixturedef in info.name2fixturedefs.get(name, ()):
            code = getattr(fixturedef.func, "__code__", None)
            ours = code is not None and Path(code.co_filename).parent == ROOT / "tests"
            if ours and fixturedef.scope in ("module", "package", "session"):
                shared.append((name, fixturedef.scope))
    return shared


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items) -> None:
    """One xdist group per set of tests that share an expensive fixture, so that it runs once (see the docstring)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        shared = _shared_fixtures(item)
        if not shared:
            continue
        named = sorted({SESSION_GROUPS[name] for name, _ in shared if name in SESSION_GROUPS})
        group = named[0] if named else Path(str(item.fspath)).stem
        item.add_marker(pytest.mark.xdist_group(group))
    folder = os.environ.get(_GROUPS_ENV)
    worker = getattr(config, "workerinput", {}).get("workerid")
    if folder and worker:  # for the controller's scheduler (pytest_xdist_make_scheduler)
        groups = {}
        for item in items:
            marks = [m.args[0] if m.args else m.kwargs.get("name", "default") for m in item.iter_markers("xdist_group")]
            if marks:
                groups[item.nodeid] = "_".join(sorted(set(map(str, marks))))
        tmp = Path(folder) / f".{worker}.part"
        tmp.write_text(json.dumps(groups))
        os.replace(tmp, Path(folder) / f"{worker}.json")


_GROUPS_ENV = "AUTOGRADER_TEST_XDIST_GROUPS"  # the folder where the workers write their tests' groups


def pytest_configure(config) -> None:
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        folder = tempfile.mkdtemp(prefix="xdist-groups-")
        os.environ[_GROUPS_ENV] = folder  # the workers start after this and inherit it
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def pytest_xdist_make_scheduler(config, log):
    """For ``--dist loadgroup``: xdist's load-scope scheduler whose units are the ``xdist_group`` groups the workers
    wrote (one unit per group) and single tests (every other test is a unit of its own)."""
    if config.getvalue("dist") != "loadgroup" or not os.environ.get(_GROUPS_ENV):
        return None
    from xdist.scheduler import LoadScopeScheduling

    folder = Path(os.environ[_GROUPS_ENV])

    class GroupScheduling(LoadScopeScheduling):
        _groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._groups is None:  # read once, after every worker has collected
                self._groups = {}
                for path in folder.glob("*.json"):
                    self._groups.update(json.loads(path.read_text()))
            group = self._groups.get(nodeid)
            return f"group:{group}" if group else nodeid

    return GroupScheduling(config, log)


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

    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book", "build", ".", "-W", "-n", "--keep-going"]
    (ROOT / "_build").mkdir(exist_ok=True)
    with open(ROOT / "_build" / ".build.lock", "w") as lock:  # one build of _build/ at a time (workers, sessions)
        fcntl.flock(lock, fcntl.LOCK_EX)
        embedding_bench.sync_book_cache(ROOT / "_build")  # re-run the Measurements page when the results changed
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    return BuiltSite(proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start, html)
