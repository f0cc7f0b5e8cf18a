"""Everything that runs in a student's kernel: the probes of the checks, their inputs, the transport of their
results, and the student-facing API.

>>> from autograder.student import check, run_checks
>>> run_checks("token-embeddings", "embedding_forward")      # doctest: +SKIP   (what a test cell calls)
>>> check(embedding_forward)                                 # doctest: +SKIP   (a one-line self-check)

This subpackage is the part of the course package that the grading sandbox holds (with ``autograder/__init__.py``,
``autograder/data/`` and the timing helpers ``autograder/measure/timing.py`` that the measurement cells import;
:func:`sandbox_tree` lists the files). It imports only the standard library, numpy,
torch and itself: never :mod:`autograder.reference` (the answer key), :mod:`autograder.checks` (the judges),
:mod:`autograder.grading` or :mod:`autograder.book`. The one way it reaches the judges is local mode's
:func:`run_checks`/:func:`check`, which load :mod:`autograder.checks.core` by name; grading mode never does
(``tests/test_student_boundary.py`` checks both).
"""

from __future__ import annotations

from pathlib import Path

from .local import LOCAL_HIDDEN_SEED, VISIBLE_SEED, CheckFailed, check, run_checks

__all__ = [
    "run_checks",
    "check",
    "CheckFailed",
    "VISIBLE_SEED",
    "LOCAL_HIDDEN_SEED",
    "SANDBOX_DIRS",
    "SANDBOX_FILES",
    "sandbox_tree",
]

#: what the sandbox needs of the package, relative to the folder holding ``autograder/``: these folders' files
SANDBOX_DIRS = ("autograder/student", "autograder/data")
#: and these files: the course's timing helpers, which every assignment's measurement cell imports (they import
#: only the standard library, numpy and torch, and hold no answer key; ``tests/test_student_boundary.py`` checks both)
SANDBOX_FILES = ("autograder/measure/__init__.py", "autograder/measure/timing.py")


def sandbox_tree(package_root: str | Path | None = None) -> list[str]:
    """The files of the course package the grading sandbox needs, as sorted POSIX paths relative to
    ``package_root``: ``autograder/__init__.py``, every file under ``autograder/student/`` and
    ``autograder/data/`` (``__pycache__`` left out) and the timing helpers (:data:`SANDBOX_FILES`).

    ``package_root`` is the folder that *holds* the ``autograder`` package (a ``sys.path`` entry; default: the one
    this package was imported from). ``ValueError`` if it holds no ``autograder/__init__.py``.
    """
    root = Path(package_root) if package_root is not None else Path(__file__).resolve().parents[2]
    if not (root / "autograder" / "__init__.py").is_file():
        hint = " (pass the folder above it)" if (root / "__init__.py").is_file() and root.name == "autograder" else ""
        raise ValueError(f"{root} holds no autograder/__init__.py{hint}")
    files = ["autograder/__init__.py", *SANDBOX_FILES]
    for folder in SANDBOX_DIRS:
        for path in sorted((root / folder).rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
                files.append(rel.as_posix())
    return sorted(files)
