"""On-disk memos of a grading run's fixed costs, so that a rerun (or a small class) does not pay them every time.

* :func:`require_sandbox` -- :func:`autograder.grading.sandbox.require`, whose real sandboxed probe (~0.4 s) runs
  again only when ``bwrap``, the kernel, the user-namespace settings, the interpreter or the check's code changed;
* :func:`checks_summary` -- which test cells have registered checks and which probe modules lie outside the
  package: importing the judges imports PyTorch (~1 s), which a rerun with nothing to grade does not otherwise need;
* :func:`gradebook_blob` -- the assignment's starting gradebook (:func:`~.course.prepare_gradebook_blob`);
* :func:`start_peaks` -- the start-up address space of a grading process and of a kernel, which ``--memory`` is
  checked against (two interpreters importing nbgrader, the course and the kernel's modules: seconds of CPU), again
  only when the interpreter, the installed distributions or the grading code changed;
* :func:`plot` -- the class report's figures (matplotlib), keyed on the figure's data.

Entries live in ``$AUTOGRADER_CACHE_DIR``, else ``$XDG_CACHE_HOME/autograder``, else ``~/.cache/autograder``. Each
is named by a hash of everything its value depends on, is written atomically, and holds only what the grader
computed (no student data: the plots hold the class's score histogram, as ``report.html`` does). An unreadable
cache or an unwritable folder only means the work is done again. A cached sandbox check never turns the sandbox
off: every kernel still starts inside ``bwrap``, and one that cannot start makes its notebook ``crashed``.
Delete the folder to drop every entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["cache_dir", "require_sandbox", "checks_summary", "gradebook_blob", "start_peaks", "plot"]

#: files whose contents decide whether user namespaces (hence the sandbox) work here
_USERNS_SETTINGS = (
    "/proc/sys/kernel/unprivileged_userns_clone",
    "/proc/sys/user/max_user_namespaces",
    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
)
_MAX_PLOTS = 64  # plot entries kept (the oldest go first)


def cache_dir() -> Path | None:
    """The cache folder (created), or ``None`` where it cannot be created."""
    root = os.environ.get("AUTOGRADER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "autograder"
    )
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return Path(root)


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]


def _read(name: str) -> bytes | None:
    folder = cache_dir()
    if folder is None:
        return None
    try:
        return (folder / name).read_bytes()
    except OSError:
        return None


def _read_json(name: str) -> dict | None:
    """The JSON object stored under ``name``, or ``None`` when there is none or it is not a JSON object."""
    stored = _read(name)
    if not stored:
        return None
    try:
        data = json.loads(stored)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _write(name: str, data: bytes) -> None:
    folder = cache_dir()
    if folder is None:
        return
    tmp = folder / f".{name}.{os.getpid()}.part"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
    except OSError:
        tmp.unlink(missing_ok=True)


def _file_hash(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------ sandbox check
def _sandbox_key() -> str | None:
    """What the sandbox check's verdict depends on; ``None`` (never cached) when ``bwrap`` is not on ``PATH``."""
    from . import sandbox

    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    real = os.path.realpath(bwrap)
    st = os.stat(real)
    settings = []
    for path in _USERNS_SETTINGS:
        try:
            settings.append(Path(path).read_text().strip())
        except OSError:
            settings.append(None)
    return _key(
        "sandbox",
        real,
        st.st_size,
        st.st_mtime_ns,
        st.st_ino,
        shutil.which("unshare"),
        os.uname().release,
        os.uname().version,
        os.geteuid(),
        sys.executable,
        sys.prefix,
        settings,
        _file_hash(sandbox.__file__),
    )


def require_sandbox():
    """:func:`autograder.grading.sandbox.require`, remembered per :func:`_sandbox_key`: a passed check is reused,
    a failed one is never stored (it is tried again, and raises :class:`~.sandbox.SandboxUnavailable`)."""
    from . import sandbox

    key = _sandbox_key()
    name = f"sandbox-ok-{key}.json" if key else None
    data = _read_json(name) if name else None
    if data is not None:
        try:
            return sandbox.Availability(True, data["isolation"], data["detail"])
        except KeyError:
            pass
    found = sandbox.require()
    if name:
        _write(name, json.dumps({"isolation": found.isolation, "detail": found.detail}).encode())
    return found


# ------------------------------------------------------------------------------------------------ checks
def load_checks(assignment: str, check_modules: Iterable[str], grade_ids: Iterable[str]) -> tuple[list, list]:
    """Import ``check_modules`` and the assignment's judges; ``(grade_ids with registered checks, probe modules
    outside the package)``. Raises ``ImportError`` for a check module that does not import."""
    import importlib

    from autograder.checks import core

    from .course import checked_groups

    for module in check_modules:
        importlib.import_module(module)
    cells = [_Cell(g) for g in grade_ids]
    return checked_groups(assignment, cells), core.probe_modules(assignment)


class _Cell:
    def __init__(self, grade_id: str):
        self.grade_id = grade_id


def checks_summary(assignment: str, check_modules: Iterable[str], grade_ids: Iterable[str]) -> tuple[list, list]:
    """:func:`load_checks`, remembered per the code that decides it (:func:`~.tasks.code_fingerprint` of the
    package's grading code, the check modules and the probe modules found last time): a rerun with nothing to
    grade then imports neither the judges nor PyTorch. A check module that is not importable is never cached."""
    import importlib.util

    from .tasks import code_fingerprint

    check_modules, grade_ids = list(check_modules), list(grade_ids)
    try:
        found = all(importlib.util.find_spec(m) is not None for m in check_modules)
    except (ImportError, ValueError):
        found = False
    name = f"checks-{_key('checks', assignment, check_modules, grade_ids, sys.path)}.json" if found else None
    data = _read_json(name) if name else None
    if data is not None:
        try:
            if data["fingerprint"] == code_fingerprint(*check_modules, *data["probe_modules"]):
                return list(data["checked"]), list(data["probe_modules"])
        except (KeyError, TypeError):
            pass
    checked, probes = load_checks(assignment, check_modules, grade_ids)
    if name:
        data = {"fingerprint": code_fingerprint(*check_modules, *probes), "checked": checked, "probe_modules": probes}
        _write(name, json.dumps(data).encode())
    return checked, probes


# ------------------------------------------------------------------------------------------------ gradebook
def gradebook_blob(assignment: str, notebook_name: str, source: bytes) -> bytes:
    """:func:`~.course.prepare_gradebook_blob`, remembered per assignment, notebook, source, nbgrader version and
    the code that writes it."""
    import nbgrader

    from . import course

    digest = hashlib.sha256(source).hexdigest()
    key = _key("gradebook", assignment, notebook_name, digest, nbgrader.__version__, _file_hash(course.__file__))
    name = f"gradebook-{key}.db"
    stored = _read(name)
    if stored:
        return stored
    blob = course.prepare_gradebook_blob(assignment, notebook_name, source)
    _write(name, blob)
    return blob


# ------------------------------------------------------------------------------------------------ memory
def _installed() -> list[str]:
    """The installed distributions with their versions (the ``*.dist-info`` / ``*.egg-info`` names on
    ``sys.path``): what a fresh interpreter's imports load."""
    names = []
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                names.extend(e.name for e in it if e.name.endswith((".dist-info", ".egg-info")))
        except OSError:
            continue
    return sorted(names)


def start_peaks(programs: list[str], measure: Callable[[list[str]], list[int]]) -> list[int]:
    """``measure(programs)`` (one peak address space in bytes per program), remembered per the programs' text, the
    interpreter, the installed distributions, the core count (thread pools reserve stacks) and the package's
    grading code (:func:`~.tasks.code_fingerprint`). A measurement with a zero (a program that failed) is never
    stored."""
    from .tasks import code_fingerprint

    key = _key(
        "peaks", programs, sys.executable, sys.prefix, sys.version, os.cpu_count(), _installed(), code_fingerprint()
    )
    name = f"peaks-{key}.json"
    data = _read_json(name)
    if data is not None and isinstance(data.get("peaks"), list) and len(data["peaks"]) == len(programs):
        if all(isinstance(p, int) and p > 0 for p in data["peaks"]):
            return list(data["peaks"])
    peaks = measure(programs)
    if peaks and all(p > 0 for p in peaks):
        _write(name, json.dumps({"peaks": peaks}).encode())
    return peaks


# ------------------------------------------------------------------------------------------------ report figures
def plot(make: Callable[..., tuple[str, str]], *args) -> tuple[str, str]:
    """``make(*args)`` (a figure as ``(data URL, alt text)``), remembered per ``make`` and its arguments' values;
    the cache keeps the :data:`_MAX_PLOTS` most recent figures."""
    module_file = sys.modules[make.__module__].__file__
    name = f"plot-{_key('plot', make.__module__, make.__qualname__, _file_hash(module_file), args)}.json"
    stored = _read(name)
    if stored:
        try:
            src, alt = json.loads(stored)
            return src, alt
        except (ValueError, TypeError):
            pass
    src, alt = make(*args)
    _write(name, json.dumps([src, alt]).encode())
    _prune("plot-", _MAX_PLOTS)
    return src, alt


def _prune(prefix: str, keep: int) -> None:
    folder = cache_dir()
    if folder is None:
        return
    try:
        entries = sorted(folder.glob(prefix + "*"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in entries[keep:]:
        old.unlink(missing_ok=True)
