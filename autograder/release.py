"""``python -m autograder release [--check] [--assignment ID]``: regenerate ``exercises/`` from ``solutions/``.

For each assignment, ``solutions/<id>/<id>.ipynb`` (the nbgrader source) is copied into a temporary course
directory and run through ``nbgrader generate_assignment`` there, so no gradebook or other nbgrader files land in
the repository. The student version it produces -- solutions replaced by ``raise NotImplementedError()``, hidden
tests removed, test cells locked with checksums -- is then normalised so that it diffs cleanly: no outputs, no
execution counts, no per-run cell metadata, keys sorted. It is written to ``exercises/<id>/<id>.ipynb``.

Before that, the course setup cell (:mod:`autograder.setup_cell`: installs the package on Colab and Binder) is
stamped into each ``solutions/<id>/<id>.ipynb`` as its first code cell, a locked nbgrader cell; a solution whose
setup cell is already current is not rewritten.

``--check`` writes nothing: it regenerates into memory and exits 1, with a one-line message, when ``exercises/``
differs from what ``solutions/`` produces, or a solution's setup cell is out of date (a test runs it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from . import setup_cell
from .student.registry import ASSIGNMENTS

__all__ = ["ASSIGNMENTS", "main", "release_notebooks", "normalise", "stamped_solution"]

ROOT = Path(__file__).resolve().parents[1]
#: cell metadata that survives normalisation; everything else (execution timings, collapsed, scrolled...) is dropped
KEEP_CELL_METADATA = ("nbgrader", "tags")


def normalise(nb: nbformat.NotebookNode) -> str:
    """The notebook as stable JSON text: outputs, execution counts and volatile metadata removed."""
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEEP_CELL_METADATA}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nbformat.writes(nb) + "\n"


def stamped_solution(assignment: str, root: Path = ROOT) -> tuple[Path, str, str]:
    """``(path, current text, text with the current setup cell)`` of ``solutions/<id>/<id>.ipynb``."""
    path = root / "solutions" / assignment / f"{assignment}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"{path.relative_to(root)} is missing")
    current = path.read_text()
    nb = nbformat.reads(current, as_version=4)
    setup_cell.stamp_notebook(nb, setup_cell.setup_source(root), nbgrader=True)
    return path, current, nbformat.writes(nb) + "\n"


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader: it runs ``alembic`` (and kernels) from ``PATH``, so the directory of this
    interpreter (the virtualenv's ``bin``) comes first even when the venv is not activated."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def release_notebooks(assignments: tuple[str, ...] = ASSIGNMENTS, root: Path = ROOT) -> dict[str, str]:
    """Run ``nbgrader generate_assignment`` on each ``solutions/<id>`` in a temporary course directory (one
    in-process nbgrader, configured by the repository's ``nbgrader_config.py``) and return ``{id: normalised
    student notebook text}``. Raises ``RuntimeError`` with nbgrader's error for an assignment that fails."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    for assignment in assignments:
        source = root / "solutions" / assignment / f"{assignment}.ipynb"
        if not source.is_file():
            raise FileNotFoundError(f"{source.relative_to(root)} is missing")
    saved_env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        course = Path(tmp)
        for assignment in assignments:
            shutil.copytree(root / "solutions" / assignment, course / "solutions" / assignment)
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
        config.CourseDirectory.root = str(course)
        config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
        os.environ.update(nbgrader_env())
        try:
            api = NbGraderAPI(config=config)
            texts = {}
            for assignment in assignments:
                result = api.generate_assignment(assignment, force=True)
                released = course / "exercises" / assignment / f"{assignment}.ipynb"
                if not result["success"] or not released.is_file():
                    lines = [
                        ln for ln in (result.get("error") or result.get("log") or "no log").splitlines() if ln.strip()
                    ]
                    raise RuntimeError(f"nbgrader generate_assignment {assignment} failed: {lines[-1].strip()}")
                texts[assignment] = normalise(nbformat.read(released, as_version=4))
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder release",
        description="Regenerate exercises/<id>/<id>.ipynb from solutions/ with nbgrader.",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if exercises/ is out of date with solutions/"
    )
    parser.add_argument(
        "--assignment",
        choices=ASSIGNMENTS,
        action="append",
        help="only this assignment (repeatable); default: all four",
    )
    args = parser.parse_args(argv)
    assignments = tuple(dict.fromkeys(args.assignment or ASSIGNMENTS))
    stale = []
    try:
        for assignment in assignments:
            path, current, stamped = stamped_solution(assignment)
            if current != stamped:
                if args.check:
                    stale.append(str(path.relative_to(ROOT)))
                else:
                    path.write_text(stamped)
                    print(f"wrote the setup cell into {path.relative_to(ROOT)}")
        texts = release_notebooks(assignments)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for assignment, text in texts.items():
        target = ROOT / "exercises" / assignment / f"{assignment}.ipynb"
        current = target.read_text() if target.is_file() else None
        if args.check:
            if current != text:
                stale.append(str(target.relative_to(ROOT)))
            continue
        if current != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)}")
        else:
            print(f"unchanged {target.relative_to(ROOT)}")
    if stale:
        print(f"error: out of date: {', '.join(stale)}: run `python -m autograder release`", file=sys.stderr)
        return 1
    if args.check:
        print("exercises/ is up to date with solutions/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
