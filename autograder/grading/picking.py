"""Which notebook in a student's folder is graded.

``SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb`` is graded when it exists. Otherwise (a notebook renamed by
the student or the LMS, a stray ``Untitled.ipynb`` beside it) the notebook graded is the one that carries the
assignment's cells: the most of the source's nbgrader ``grade_id`` s in its cell metadata (nbgrader keeps them in
every copy of the released notebook). The file's age decides nothing but a tie between equally good candidates,
and then the newest is graded and the tie is a stated reason. The choice is always named (:attr:`Pick.note`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Pick", "pick_notebook", "grade_ids_in"]

#: notebooks larger than this are not opened to look for grade ids (the grader reports them as too large)
READ_LIMIT = 64 << 20


@dataclass(frozen=True)
class Pick:
    """The notebook to grade (``None``: nothing to grade) and a note for ``grades.csv`` when it was a choice."""

    path: Path | None
    note: str = ""
    candidates: tuple[str, ...] = ()  # every .ipynb file name in the folder

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else ""


def grade_ids_in(path: Path) -> set[str]:
    """The nbgrader ``grade_id`` s in a notebook's cell metadata; empty for an unreadable or oversized file."""
    try:
        if path.stat().st_size > READ_LIMIT:
            return set()
        nb = json.loads(path.read_bytes().decode("utf-8"))
        cells = nb.get("cells", []) if isinstance(nb, dict) else []
        ids = set()
        for cell in cells:
            meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
            if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
                ids.add(meta["grade_id"])
        return ids
    except (OSError, ValueError, AttributeError):
        return set()


def pick_notebook(folder: Path, notebook_name: str, grade_ids: set[str]) -> Pick:
    """The notebook of ``folder`` to grade for the assignment whose source notebook is ``notebook_name`` and
    whose cells carry ``grade_ids``. Never raises for what the folder holds."""
    if not folder.is_dir():
        return Pick(None)
    notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    names = tuple(p.name for p in notebooks)
    expected = folder / f"{notebook_name}.ipynb"
    if expected in notebooks:
        return Pick(expected, "", names)
    if not notebooks:
        return Pick(None, "", names)
    if len(notebooks) == 1:
        only = notebooks[0]
        note = f"graded {only.name} (no {expected.name})"
        if grade_ids and not (grade_ids_in(only) & grade_ids):
            note += ": it carries none of the assignment's cells"
        return Pick(only, note, names)
    overlap = {p: len(grade_ids_in(p) & grade_ids) for p in notebooks}
    best = max(overlap.values())
    top = [p for p in notebooks if overlap[p] == best]
    chosen = max(top, key=lambda p: (p.stat().st_mtime, p.name))
    listed = ", ".join(p.name for p in notebooks)
    if best == 0:
        return Pick(
            chosen,
            f"several candidate notebooks ({listed}), none carries the assignment's cells: "
            f"graded the newest, {chosen.name}",
            names,
        )
    if len(top) > 1:
        return Pick(
            chosen,
            f"several candidate notebooks carry the assignment's cells ({', '.join(p.name for p in top)}): "
            f"graded the newest, {chosen.name}",
            names,
        )
    others = ", ".join(p.name for p in notebooks if p != chosen)
    return Pick(
        chosen,
        f"graded {chosen.name}, the notebook with the assignment's cells (no {expected.name}; "
        f"also in the folder: {others})",
        names,
    )
