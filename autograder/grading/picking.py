"""Which notebook in a student's folder is graded.

``SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb`` is graded when it exists. Otherwise (a notebook renamed by
the student or the LMS, a stray ``Untitled.ipynb`` beside it) the notebook graded is the one that carries the
assignment's cells: the most of the source's nbgrader ``grade_id`` s in its cell metadata (nbgrader keeps them in
every copy of the released notebook). The file's age decides nothing but a tie between equally good candidates,
and then the newest is graded and the tie is a stated reason. The choice is always named (:attr:`Pick.note`).

Everything in the folder is read under :mod:`autograder.grading.inputs`' rule: the assignment folder and the
notebooks are never followed when they are symbolic links (a link to ``solutions/`` or to a classmate's folder is a
rejection with its reason, :attr:`Pick.problem`, never a graded notebook), only regular files are candidates, each is
read up to a size cap, and its JSON is parsed with a depth limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import inputs

__all__ = ["Pick", "pick_notebook", "grade_ids_in"]

#: notebooks larger than this are not opened to look for grade ids (the grader reports them as too large)
READ_LIMIT = inputs.MAX_NOTEBOOK_BYTES
#: a folder without the expected notebook and with more candidates than this is refused (each would be read)
MAX_CANDIDATES = 32


@dataclass(frozen=True)
class Pick:
    """The notebook to grade (``None``: nothing to grade) and a note for ``grades.csv`` when it was a choice;
    ``problem``: the folder or its notebook breaks the input rule (a link, not a regular file), the one-line reason
    of an ``invalid-notebook`` result."""

    path: Path | None
    note: str = ""
    candidates: tuple[str, ...] = ()  # every .ipynb file name in the folder
    problem: str = ""

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else ""


def grade_ids_of(data: bytes) -> set[str]:
    """The nbgrader ``grade_id`` s in a notebook's cell metadata; empty for bytes that are not such a notebook
    (not UTF-8, not JSON, nested deeper than :data:`inputs.MAX_JSON_DEPTH`)."""
    try:
        nb = inputs.load_json(data)
    except inputs.Rejected:
        return set()
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    ids = set()
    for cell in cells if isinstance(cells, list) else ():
        meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
        meta = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
        if isinstance(meta, dict) and isinstance(meta.get("grade_id"), str):
            ids.add(meta["grade_id"])
    return ids


def grade_ids_in(path: Path) -> set[str]:
    """The ``grade_id`` s of the notebook at ``path`` (a file the instructor names, e.g. the assignment's source,
    or a student's under the input rule); empty for an unreadable, linked or oversized file."""
    path = Path(path)
    try:
        return grade_ids_of(inputs.read_bytes(path.parent, path, READ_LIMIT))
    except (OSError, inputs.Rejected):
        return set()


def pick_notebook(folder: Path, notebook_name: str, grade_ids: set[str], root: Path | None = None) -> Pick:
    """The notebook of ``folder`` to grade for the assignment whose source notebook is ``notebook_name`` and
    whose cells carry ``grade_ids``. ``root`` (default: ``folder``'s parent) is the trusted folder the rule starts
    from, ``SUBMISSIONS``: no folder between it and the notebook may be a link. Never raises for what the folder
    holds."""
    folder = Path(folder)
    root = Path(root) if root is not None else folder.parent
    try:
        entries = inputs.list_folder(root, folder)
    except FileNotFoundError:
        return Pick(None)
    except inputs.Rejected as exc:
        return Pick(None, problem=str(exc))
    except OSError:
        return Pick(None)
    expected_name = f"{notebook_name}.ipynb"
    ipynb = [e for e in entries if e.name.endswith(".ipynb")]
    refused = [e for e in ipynb if e.kind != "file"]
    notebooks = [folder / e.name for e in ipynb if e.kind == "file"]
    names = tuple(e.name for e in ipynb)
    for entry in refused:
        if entry.name == expected_name or not notebooks:
            what = "a symbolic link: links are never followed" if entry.kind == "link" else "not a regular file"
            return Pick(None, "", names, f"{entry.name} is {what} (submit the notebook file itself)")
    expected = folder / expected_name
    if expected in notebooks:
        return Pick(expected, "", names)
    if not notebooks:
        return Pick(None, "", names)
    if len(notebooks) > MAX_CANDIDATES:
        return Pick(
            None,
            "",
            names,
            f"no {expected_name} and {len(notebooks)} other notebooks in the folder (at most {MAX_CANDIDATES} are "
            f"considered): submit {expected_name}",
        )

    cache: dict[Path, set[str]] = {}

    def ids_of(p: Path) -> set[str]:
        if p not in cache:
            try:
                cache[p] = grade_ids_of(inputs.read_bytes(root, p, READ_LIMIT))
            except (OSError, inputs.Rejected):
                cache[p] = set()
        return cache[p]

    def mtime(p: Path) -> float:
        try:
            return p.lstat().st_mtime
        except OSError:
            return 0.0

    if len(notebooks) == 1:
        only = notebooks[0]
        note = f"graded {only.name} (no {expected.name})"
        if grade_ids and not (ids_of(only) & grade_ids):
            note += ": it carries none of the assignment's cells"
        return Pick(only, note, names)
    overlap = {p: len(ids_of(p) & grade_ids) for p in notebooks}
    best = max(overlap.values())
    top = [p for p in notebooks if overlap[p] == best]
    chosen = max(top, key=lambda p: (mtime(p), p.name))
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
