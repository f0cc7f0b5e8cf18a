"""On-disk memos of a grading run's fixed costs, so that a rerun (or a small class) does not pay them every time.

* :func:`require_sandbox` -- :func:`autograder.grading.sandbox.require`, whose real sandboxed probe (~0.4 s) runs
  again only when ``bwrap``, the kernel, the user-namespace settings, the interpreter or the check's code changed;
* :func:`checks_summary` -- which test cells have registered checks and which probe modules lie outside the
  package: importing the judges imports PyTorch (~1 s), which a rerun with nothing to grade does not otherwise need;
* :func:`gradebook_blob` -- the assignment's starting gradebook (:func:`~.course.prepare_gradebook_blob`);
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
from pathlib import Path

__all__ = ["cache_dir", "require_sandbox"]

#: files whose contents decide whether user namespaces (hence the sandbox) work here
_USERNS_SETTINGS = (
    "/proc/sys/kernel/unprivileged_userns_clone",
    "/proc/sys/user/max_user_namespaces",
    "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
)


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
    if name:
        stored = _read(name)
        if stored:
            try:
                data = json.loads(stored)
                return sandbox.Availability(True, data["isolation"], data["detail"])
            except (ValueError, KeyError, TypeError):
                pass
    found = sandbox.require()
    if name:
        _write(name, json.dumps({"isolation": found.isolation, "detail": found.detail}).encode())
    return found
