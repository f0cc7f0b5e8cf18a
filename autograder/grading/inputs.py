"""The one rule for every file the grader reads from ``SUBMISSIONS``: everything a student sends is hostile.

Links reach ``SUBMISSIONS`` through ``unzip``, ``rsync -a`` or a shared disk, so a student's notebook, assignment
folder or ``timestamp.txt`` may be a symbolic link to the course's ``solutions/``, to a classmate's folder or to
``/dev/zero``. Every read goes through :func:`read_bytes`:

* **no link is ever followed**: the path is opened one component at a time from ``SUBMISSIONS`` with ``O_NOFOLLOW``
  (``openat`` on each folder's descriptor), so a student folder, an assignment folder or a file that is a link is
  rejected, and the file read is inside ``SUBMISSIONS`` by construction (no ``..``, no race between a check and
  the open);
* **regular files only** (``fstat`` of the open descriptor: no device, FIFO or socket; opened non-blocking, so a
  FIFO cannot hang the grader);
* **a size cap before reading**: :data:`MAX_NOTEBOOK_BYTES` for a notebook, :data:`MAX_TIMESTAMP_BYTES` for
  ``timestamp.txt``; a file that grows while it is read is cut at the cap and rejected;
* **JSON parsed with a depth limit** (:func:`load_json`, :data:`MAX_JSON_DEPTH`), so that nothing that walks a
  notebook recursively (picking, similarity, nbformat's validation) can raise ``RecursionError``.

A rejected input raises :class:`Rejected`, whose message is the one-line reason stated for that student alone (the
student's status is then ``invalid-notebook``, or ``lateness unknown`` for a timestamp); it never stops the class.
Student ids (the folder names) must also be safe to show in nbgrader's formgrader, which does not escape them
(:func:`student_id_problem`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autograder.student.transport import MAX_JSON_DEPTH, json_depth, loads_limited

__all__ = [
    "Rejected",
    "MAX_NOTEBOOK_BYTES",
    "MAX_TIMESTAMP_BYTES",
    "MAX_JSON_DEPTH",
    "read_bytes",
    "read_notebook",
    "load_json",
    "json_depth",
    "Entry",
    "list_folder",
    "student_id_problem",
]

MAX_NOTEBOOK_BYTES = 64 << 20
MAX_TIMESTAMP_BYTES = 4096  # nbgrader writes about 30 bytes
#: characters a student id (a folder name) may not hold: nbgrader's formgrader shows ids without escaping them
UNSAFE_ID_CHARS = frozenset("<>&\"'`\\")


class Rejected(ValueError):
    """An input from ``SUBMISSIONS`` the grader refuses; the message is one line for ``grades.csv``."""


def _shown(parts: tuple[str, ...]) -> str:
    return "/".join(parts)


def _why(dir_fd: int, name: str, parts: tuple[str, ...], exc: OSError) -> Rejected:
    """The reason an ``openat(name, O_NOFOLLOW)`` failed, from an ``lstat`` of the same entry."""
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        mode = None
    if mode is not None and stat.S_ISLNK(mode):
        return Rejected(f"{_shown(parts)} is a symbolic link: links are never followed (submit the files themselves)")
    if exc.errno == errno.ENOENT:
        return Rejected(f"{_shown(parts)} does not exist")
    if exc.errno == errno.ENOTDIR or (mode is not None and not stat.S_ISDIR(mode)):
        return Rejected(f"{_shown(parts)} is not a folder")
    return Rejected(f"{_shown(parts)} cannot be opened ({errno.errorcode.get(exc.errno, exc.errno)})")


def _relative(root: Path, path: Path) -> tuple[str, ...]:
    try:
        parts = Path(os.path.normpath(path)).relative_to(os.path.normpath(root)).parts
    except ValueError:
        raise Rejected(f"{path} is not inside {root}") from None
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise Rejected(f"{path} is not a file inside {root}")
    return parts


def _open_folder(root: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of ``root/parts...``, every component opened without following links."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, name in enumerate(parts):
            try:
                nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as exc:
                raise _why(fd, name, parts[: i + 1], exc) from None
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(root: str | os.PathLike, path: str | os.PathLike, limit: int, what: str = "") -> bytes:
    """The bytes of the regular file ``path`` inside the folder ``root`` (``SUBMISSIONS``), at most ``limit``.

    Raises :class:`Rejected` (one line naming the file relative to ``root``) when ``path`` or any folder between
    ``root`` and it is a symbolic link, when it is not a regular file, when it is larger than ``limit`` bytes, or
    when it cannot be opened; ``FileNotFoundError`` when it does not exist (a missing file is often not an error:
    no ``timestamp.txt``). ``root`` itself is trusted (the instructor named it)."""
    root, path = Path(root), Path(path)
    parts = _relative(root, path)
    label = what or _shown(parts)
    folder = _open_folder(root, parts[:-1])
    try:
        try:
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise FileNotFoundError(errno.ENOENT, f"{_shown(parts)} does not exist") from None
            raise _why(folder, parts[-1], parts, exc) from None
    finally:
        os.close(folder)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Rejected(f"{label} is not a regular file (a device, a pipe or a socket)")
        if info.st_size > limit:
            raise Rejected(f"{label} is larger than {_size(limit)} ({_size(info.st_size)})")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise Rejected(f"{label} is larger than {_size(limit)} (it grew while it was read)")
        return data
    finally:
        os.close(fd)


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 1 << 20 else f"{n} bytes"


def load_json(data: bytes | str, what: str = "the notebook") -> Any:
    """``json.loads`` with the depth limit :data:`MAX_JSON_DEPTH`; :class:`Rejected` with one line otherwise (not
    UTF-8, not JSON, too deep)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise Rejected(f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return loads_limited(text)
    except RecursionError:
        raise Rejected(f"{what} nests too deeply") from None
    except ValueError as exc:
        raise Rejected(f"{what} is not valid JSON: {str(exc).splitlines()[0][:200]}") from None


def read_notebook(root: str | os.PathLike, path: str | os.PathLike) -> bytes:
    """A submitted notebook's bytes under the rule (:func:`read_bytes` with :data:`MAX_NOTEBOOK_BYTES`), checked
    to nest at most :data:`MAX_JSON_DEPTH` deep (the rest of its validity is the grading worker's question)."""
    data = read_bytes(root, path, MAX_NOTEBOOK_BYTES)
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise Rejected(
            f"{Path(path).name} nests {depth} levels deep (a notebook nests about 8; at most {MAX_JSON_DEPTH} "
            "accepted): it is not a notebook Jupyter wrote"
        )
    return data


class Entry:
    """One entry of a folder, as ``lstat`` sees it (links are not followed): its name and kind."""

    __slots__ = ("name", "kind")

    def __init__(self, name: str, kind: str):
        self.name, self.kind = name, kind  # kind: "file", "folder", "link" or "other"

    def __repr__(self) -> str:
        return f"Entry({self.name!r}, {self.kind!r})"


def list_folder(root: str | os.PathLike, folder: str | os.PathLike) -> list[Entry]:
    """The entries of ``folder`` inside ``root``, sorted by name, each with its kind as ``lstat`` gives it.
    :class:`Rejected` when ``folder`` or a folder above it (below ``root``) is a link; ``FileNotFoundError`` when
    it does not exist. ``folder == root`` lists ``root`` itself."""
    root, folder = Path(root), Path(folder)
    parts = () if os.path.normpath(folder) == os.path.normpath(root) else _relative(root, folder)
    try:
        fd = _open_folder(root, parts)
    except Rejected as exc:
        if str(exc).endswith("does not exist"):
            raise FileNotFoundError(errno.ENOENT, str(exc)) from None
        raise
    try:
        return sorted(_entries(fd), key=lambda e: e.name)
    finally:
        os.close(fd)


def _entries(fd: int) -> Iterator[Entry]:
    with os.scandir(fd) as it:
        for entry in it:
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISLNK(mode):
                kind = "link"
            elif stat.S_ISREG(mode):
                kind = "file"
            elif stat.S_ISDIR(mode):
                kind = "folder"
            else:
                kind = "other"
            yield Entry(entry.name, kind)


def student_id_problem(student: str) -> str | None:
    """``None`` for a student id (a folder name) that is safe everywhere the grader writes it, else the reason.

    The grader escapes ids in its own pages and neutralises them in CSV files, but nbgrader's formgrader (which shows
    ``--out``'s gradebook and ``autograded/``) does not escape them: an id holding markup characters or control
    characters never reaches the gradebook and is not graded."""
    bad = sorted({ch for ch in student if ch in UNSAFE_ID_CHARS or not ch.isprintable()})
    if bad:
        shown = " ".join(repr(ch)[1:-1] for ch in bad)
        return (
            f"the student folder's name holds characters that nbgrader's formgrader would show as markup ({shown}): "
            "rename the folder to the student's id"
        )
    return None
