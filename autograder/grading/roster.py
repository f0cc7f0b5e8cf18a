"""The class roster (``--roster FILE``): student ids mapped to names, emails, sections and LMS ids.

A CSV file with a header row. ``id`` (the nbgrader student id, the folder name in SUBMISSIONS) is required; every
other column is optional: ``name`` (or nbgrader's ``first_name`` and ``last_name``, as ``nbgrader db student
import`` reads them), ``email``, ``section``, and Canvas' own ids ``canvas_id``, ``sis_user_id``,
``sis_login_id``. Column names are matched without regard to case, spaces or underscores.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Person", "Roster", "RosterError", "read_roster"]

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


def read_roster(path: str | Path | None) -> Roster:
    """Read ``path`` (``None``: an empty roster). Raises :class:`RosterError` for a missing or unreadable file,
    a header without ``id``, an empty or duplicated id."""
    roster = Roster()
    if path is None:
        return roster
    path = Path(path)
    roster.path = path
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RosterError(f"--roster {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"--roster {path}: cannot read it ({type(exc).__name__})") from None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if not header:
        raise RosterError(f"--roster {path}: the file is empty (expected a header row with an id column)")
    keys = [_key(h) for h in header]
    if "id" not in keys:
        raise RosterError(
            f"--roster {path}: the header {','.join(header)} has no id column (columns: {', '.join(_FIELDS)})"
        )
    for line, row in enumerate(reader, start=2):
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
