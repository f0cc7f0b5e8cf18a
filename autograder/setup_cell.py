"""The first code cell of every chapter and assignment: installs the course package where it is missing.

Colab and Binder open a notebook in an environment without the ``autograder`` package. The setup cell does nothing
where ``import autograder`` works (the local ``.venv``, a course JupyterHub, the book build, the grading sandbox);
elsewhere it runs ``pip install`` of :func:`install_source` -- the repository of ``_config.yml`` at the tag of the
package version, ``git+<url>@v<version>`` -- with the installed numpy and torch pinned to their own versions, so
pip either keeps them or stops with an error, and never replaces the runtime's builds. The environment variable
``AUTOGRADER_SOURCE`` overrides what it installs (a checkout's path, a wheel, another URL), which is how the tests
run it offline. It prints one line, or raises ``RuntimeError`` with pip's first error line (or its last line).

**Why a version tag and not a commit.** A commit cannot name itself: a notebook that carried the hash of the commit
that contains it is impossible, and stamping the parent commit would make every regeneration differ (``--check``
would fail after each commit). The version in ``pyproject.toml`` is written by hand, changes only when a release is
made, and regenerating with an unchanged version is a no-op. Publishing a release therefore means: bump the
version, run ``make notebooks``, commit, and push the tag ``v<version>`` (the README says so).

The cell's text is made here and nowhere else: ``python -m autograder twins`` stamps it into the chapters and
``python -m autograder release`` into ``solutions/`` (and so into ``exercises/``); both ``--check`` modes fail when
a notebook carries another text, e.g. after the repository URL in ``_config.yml`` or the version changed.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

__all__ = [
    "MARKER",
    "CELL_ID",
    "TAGS",
    "repository",
    "version",
    "install_source",
    "setup_source",
    "is_setup_source",
    "stamp_markdown",
    "stamp_notebook",
]

ROOT = Path(__file__).resolve().parents[1]
#: the first line of the cell: how the stamping commands recognise an older version of it
MARKER = "# Course setup: does nothing where the course package imports; elsewhere (Colab, Binder) installs it."
#: the cell's id in the assignment notebooks (nbgrader keeps it in exercises/)
CELL_ID = "course-setup"
#: hidden in the HTML book (the cell is for Colab/Binder/Jupyter, where tags are not applied)
TAGS = ["remove-cell"]

_TEMPLATE = """\
{marker}
try:
    import autograder
except ModuleNotFoundError:
    import importlib
    import os
    import subprocess
    import sys
    from importlib.metadata import PackageNotFoundError, version

    source = os.environ.get("AUTOGRADER_SOURCE", "{source}")
    keep = []  # the installed numpy and torch, pinned so that pip never replaces them
    for name in ("numpy", "torch"):
        try:
            keep.append(f"{{name}}=={{version(name)}}")
        except PackageNotFoundError:
            pass
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", source, *keep], capture_output=True, text=True)
    if pip.returncode:
        lines = pip.stderr.strip().splitlines() or ["no message"]
        error = next((line for line in lines if line.startswith("ERROR:")), lines[-1])  # pip's first error
        raise RuntimeError(f"pip could not install the course package from {{source}}: {{error}}") from None
    importlib.invalidate_caches()
    import autograder
    kept = ", ".join(keep) or "no numpy, no torch"
    print(f"installed autograder {{version('autograder')}} from {{source}}; kept {{kept}}")"""


def repository(root: Path = ROOT) -> str:
    """The repository URL: ``repository.url`` of ``_config.yml``, the one place it is written (no trailing slash).

    Raises ``ValueError`` when it is missing or not an ``https://github.com/<owner>/<name>`` URL (the Colab and
    Binder buttons only work for GitHub repositories)."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text())
    url = str((config.get("repository") or {}).get("url") or "").rstrip("/")
    parts = url.split("/")
    if not url.startswith("https://github.com/") or len(parts) != 5 or not all(parts[3:]):
        raise ValueError(f"_config.yml: repository.url must be https://github.com/<owner>/<name>, got {url!r}")
    return url


def version(root: Path = ROOT) -> str:
    """The package version of ``pyproject.toml`` (``[project] version``)."""
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def install_source(root: Path = ROOT) -> str:
    """What the setup cell installs by default: ``git+<repository>@v<version>``."""
    return f"git+{repository(root)}@v{version(root)}"


def setup_source(root: Path = ROOT) -> str:
    """The setup cell's source text (no trailing newline)."""
    return _TEMPLATE.format(marker=MARKER, source=install_source(root))


def is_setup_source(source: str) -> bool:
    """Whether a cell's source is a setup cell, of this version or an older one (its first line is :data:`MARKER`)."""
    return source.split("\n", 1)[0].strip() == MARKER


_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)


def _markdown_cell(source: str) -> str:
    return f"```{{code-cell}} ipython3\n:tags: [{', '.join(TAGS)}]\n\n{source}\n```"


def stamp_markdown(text: str, source: str) -> str:
    """A MyST notebook's text with ``source`` as its first code cell: an older setup cell is replaced, and where the
    first code cell is something else the setup cell is inserted before it. Raises ``ValueError`` for a text with
    no code cell (not a notebook)."""
    first = _CODE_CELL.search(text)
    if first is None:
        raise ValueError("no {code-cell} in this MyST file: it is not a notebook")
    body = first.group("body")
    code = body.split("\n\n", 1)[1] if body.startswith(":") and "\n\n" in body else body  # skip the :options:
    cell = _markdown_cell(source)
    if is_setup_source(code):
        return text[: first.start()] + cell + text[first.end() :]
    return text[: first.start()] + cell + "\n\n" + text[first.start() :]


def stamp_notebook(nb, source: str, nbgrader: bool = False) -> None:
    """Make ``source`` the first code cell of the nbformat notebook ``nb`` (in place), replacing an older setup cell
    or inserting one before the first code cell. ``nbgrader=True`` (assignment sources) makes it a locked nbgrader
    cell, so that ``nbgrader autograde`` restores it if a student edits it."""
    import nbformat

    metadata = {"tags": list(TAGS)}
    if nbgrader:
        metadata["nbgrader"] = {
            "grade": False,
            "grade_id": CELL_ID,
            "locked": True,
            "schema_version": 3,
            "solution": False,
            "task": False,
        }
    index = next((i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"), len(nb.cells))
    if index < len(nb.cells) and is_setup_source(nb.cells[index].source):
        cell = nb.cells[index]
        cell.source, cell.metadata = source, nbformat.from_dict(metadata)
    else:
        cell = nbformat.v4.new_code_cell(source, metadata=metadata)
        nb.cells.insert(index, cell)
    cell["id"] = CELL_ID
