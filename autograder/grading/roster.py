"""The class roster (``--roster FILE``): student ids mapped to names, emails, sections and LMS ids.

A CSV file with a header row. ``id`` (the nbgrader student id, the folder name in SUBMISSIONS) is required; every
other column is optional: ``name`` (or nbgrader's ``first_name`` and ``last_name``, as ``nbgrader db student
import`` reads them), ``email``, ``section``, and Canvas' own ids ``canvas_id``, ``sis_user_id``,
``sis_login_id``. Column names are matched without regard to case, spaces or underscores.

Canvas' own gradebook export (Grades > Export, ``Student, ID, SIS User ID, SIS Login ID, Section, ...``) is accepted
as it comes: its ``Points Possible`` line and Canvas' test student are skipped, and the student id is whichever of
``SIS Login ID``, ``SIS User ID`` and ``ID`` matches the most student folder names.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Person", "Roster", "RosterError", "read_roster"]

#: Canvas' gradebook export: the columns that may hold the nbgrader student id, in order of preference
CANVAS_ID_COLUMNS = ("sis_login_id", "sis_user_id", "id", "integration_id")
_CANVAS_SKIP = ("points possible", "student, test")
_FIELDS = ("id", "name", "first_name", "last_name", "email", "section", "canvas_id", "sis_user_id", "sis_login_id")


class RosterError(ValueError):
    """The roster file cannot be used; the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class Person:
    id: str
    name: str = ""
    email: str = ""
    section: str = ""
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""


class Roster(dict):
    """``{student id: Person}`` in the file's order; :attr:`path` is the file read (``None`` for no roster)."""

    path: Path | None = None

    def person(self, student: str) -> Person:
        """The roster entry of ``student``, or a bare :class:`Person` holding only the id."""
        return self.get(student) or Person(student)

    def missing(self, students) -> list[str]:
        """Those of ``students`` the roster lacks (empty when there is no roster file)."""
        return [] if self.path is None else sorted(s for s in students if s not in self)


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _decode(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RosterError(f"--roster {path}: no such file") from None
    except OSError as exc:
        raise RosterError(f"--roster {path}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RosterError(
            f"--roster {path}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}): save it as UTF-8 "
            "(Excel: Save As > CSV UTF-8; LibreOffice: character set Unicode (UTF-8)) and rerun"
        ) from None


def read_roster(path: str | Path | None, students=()) -> Roster:
    """Read ``path`` (``None``: an empty roster). ``students`` (the student folder names) picks the id column of a
    Canvas gradebook export. Raises :class:`RosterError` with one line saying what to do for a missing or
    unreadable file, a file that is not UTF-8, a header without ``id``, an empty or duplicated id."""
    roster = Roster()
    if path is None:
        return roster
    path = Path(path)
    roster.path = path
    text = _decode(path)
    reader = csv.reader(text.splitlines())
    try:
        header = next(reader, None)
        body = list(enumerate(reader, start=2))
    except csv.Error as exc:
        raise RosterError(f"--roster {path}: not a readable CSV file ({exc})") from None
    if not header:
        raise RosterError(f"--roster {path}: the file is empty (expected a header row with an id column)")
    keys = [_key(h) for h in header]
    canvas = "student" in keys and ("sis_user_id" in keys or "sis_login_id" in keys)
    if canvas:
        keys, body = _canvas_columns(path, keys, body, set(students))
    if "id" not in keys:
        raise RosterError(
            f"--roster {path}: the header {','.join(header)} has no id column (columns: {', '.join(_FIELDS)}; "
            "or give Canvas' gradebook export as it is)"
        )
    for line, row in body:
        if not any(cell.strip() for cell in row):
            continue
        values = {k: cell.strip() for k, cell in zip(keys, row, strict=False) if k in _FIELDS}
        sid = values.get("id", "")
        if not sid:
            raise RosterError(f"--roster {path}: line {line} has an empty id")
        if sid in roster:
            raise RosterError(f"--roster {path}: line {line} repeats the id {sid!r}")
        name = values.get("name") or ", ".join(x for x in (values.get("last_name"), values.get("first_name")) if x)
        roster[sid] = Person(
            sid,
            name,
            values.get("email", ""),
            values.get("section", ""),
            values.get("canvas_id", ""),
            values.get("sis_user_id", ""),
            values.get("sis_login_id", ""),
        )
    return roster


def _canvas_columns(path: Path, keys: list[str], body, students: set[str]):
    """Canvas' gradebook export read as a roster: ``Student`` is the name, ``ID`` the Canvas id, and the id column
    is the one of :data:`CANVAS_ID_COLUMNS` matching the most ``students``. Drops the ``Points Possible`` line,
    Canvas' test student and rows without that id."""
    rows = [(line, row) for line, row in body if row and not row[0].strip().lower().startswith(_CANVAS_SKIP)]
    best, matched = None, 0
    for name in CANVAS_ID_COLUMNS:
        if name not in keys:
            continue
        i = keys.index(name)
        hits = sum(1 for _, row in rows if i < len(row) and row[i].strip() in students)
        if hits > matched:
            best, matched = name, hits
    if best is None:
        shown = ", ".join(n for n in CANVAS_ID_COLUMNS if n in keys)
        raise RosterError(
            f"--roster {path}: a Canvas gradebook export, but none of its id columns ({shown}) holds a student "
            "folder name: add an id column with the folder names"
        )
    i = keys.index(best)  # the id becomes a column of its own; Canvas' ID is canvas_id, Student the name
    new_keys = ["name" if k == "student" else "canvas_id" if k == "id" else k for k in keys] + ["id"]
    rows = [
        (line, [*row[: len(keys)], *[""] * (len(keys) - len(row)), row[i] if i < len(row) else ""])
        for line, row in rows
    ]
    kept = [(line, row) for line, row in rows if row[-1].strip()]
    return new_keys, kept
