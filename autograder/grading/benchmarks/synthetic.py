"""A synthetic class for the grader's tests and benchmark: solved notebooks and every kind of hostile one.

Built from any nbgrader source notebook: the *solved* submission is the source with its hidden tests removed (what
a student who solved everything hands in); each hostile variant changes it the way a broken or malicious
submission would. :data:`EXPECTED` says which status each variant must get and whether it may keep full marks.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

__all__ = ["VARIANTS", "EXPECTED", "solved", "variant", "write_class"]

_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)
_SOLUTION = re.compile(r"( *)### BEGIN SOLUTION.*?### END SOLUTION", re.S)

#: variant -> (expected status, what it does)
EXPECTED = {
    "solved": ("graded", "the reference solution"),
    "loop": ("timeout", "an infinite loop"),
    "swallow": ("timeout", "an infinite loop that swallows KeyboardInterrupt"),
    "exit": ("crashed", "os._exit(1) in a cell"),
    "segfault": ("crashed", "ctypes.string_at(0): a segfault"),
    "membomb": ("graded", "allocates 3 GiB (grade with --memory 2 or less) before the first answer is defined"),
    "flood": ("graded", "prints flood_mb megabytes (default 1000)"),
    "truncated": ("invalid-notebook", "the notebook's JSON cut in half"),
    "deleted-tests": ("graded", "every test cell deleted (nbgrader restores them)"),
    "edited-tests": ("graded", "first answer left unsolved and every test cell replaced by `pass`"),
    "renamed": ("graded", "the first answer's function renamed"),
    "monkeypatch": ("graded", "first answer unsolved; np.allclose, numpy.testing and the checkers patched to pass"),
}
VARIANTS = tuple(EXPECTED)

_MONKEYPATCH = """\
import numpy as np, numpy.testing
np.allclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
numpy.testing.assert_array_equal = lambda *a, **k: None
import autograder.checks.core as _core
_core.judge_group = lambda assignment, group, results, seed=0: [(n, True, "ok") for n in results]
import autograder.student, autograder.student.local
autograder.student.run_checks = autograder.student.local.run_checks = lambda *a, **k: None
"""

_INSERTED = {
    "loop": "while True:\n    pass",
    "swallow": (
        "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass"
    ),
    "exit": "import os\nos._exit(1)",
    "segfault": "import ctypes\nctypes.string_at(0)",
    "flood": "for _ in range({flood_mb}):\n    print('x' * 1_000_000)",
}


def _source(cell) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _is_test(cell) -> bool:
    return cell.get("cell_type") == "code" and _meta(cell).get("grade") and not _meta(cell).get("solution")


def _is_answer(cell) -> bool:
    return cell.get("cell_type") == "code" and bool(_meta(cell).get("solution"))


def solved(source: dict) -> dict:
    """The source notebook as a student who solved everything submits it: no hidden tests, no outputs."""
    nb = copy.deepcopy(source)
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            cell["source"] = _HIDDEN.sub("", _source(cell))
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def _code_cell(text: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": text}


def _first_answer(nb: dict) -> int:
    return next(i for i, c in enumerate(nb["cells"]) if _is_answer(c))


def variant(source: dict, kind: str, flood_mb: int = 1000) -> bytes:
    """The submitted file (bytes) of one variant of ``source`` (an nbgrader source notebook as a dict)."""
    nb = solved(source)
    first = _first_answer(nb)
    cells = nb["cells"]
    if kind in _INSERTED:
        cells.insert(first, _code_cell(_INSERTED[kind].format(flood_mb=flood_mb)))
    elif kind == "membomb":
        cells[first]["source"] = "_hog = bytearray(3 << 30)  # 3 GiB, zero-filled: really used\n" + _source(
            cells[first]
        )
    elif kind == "deleted-tests":
        nb["cells"] = [c for c in cells if not _is_test(c)]
    elif kind in ("edited-tests", "monkeypatch"):
        text = _source(cells[first])
        if _SOLUTION.search(text):
            cells[first]["source"] = _SOLUTION.sub(lambda m: f"{m.group(1)}raise NotImplementedError()", text)
        else:  # no solution delimiters: the answer's functions go missing instead
            cells[first]["source"] = re.sub(r"^def (\w+)\(", r"def \1_unsolved(", text, flags=re.M)
        if kind == "edited-tests":
            for cell in cells:
                if _is_test(cell):
                    cell["source"] = "pass"
        else:
            cells.insert(first + 1, _code_cell(_MONKEYPATCH))
    elif kind == "renamed":
        cells[first]["source"] = re.sub(r"^def (\w+)\(", r"def \1_renamed(", _source(cells[first]), flags=re.M)
    elif kind not in ("solved", "truncated"):
        raise ValueError(f"unknown variant {kind!r}; choose from {', '.join(VARIANTS)}")
    data = json.dumps(nb, indent=1).encode()
    return data[: len(data) // 2] if kind == "truncated" else data


def write_class(
    source_path: str | Path, submissions: str | Path, assignment: str, kinds: dict[str, str], flood_mb: int = 1000
) -> dict[str, str]:
    """Write ``SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb`` for ``kinds = {student: variant}``
    (variant ``"missing"``: an empty student folder). Returns ``kinds``."""
    source_path = Path(source_path)
    source = json.loads(source_path.read_text())
    for student, kind in kinds.items():
        folder = Path(submissions) / student / assignment
        if kind == "missing":
            (Path(submissions) / student).mkdir(parents=True, exist_ok=True)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        (folder / source_path.name).write_bytes(variant(source, kind, flood_mb))
    return kinds
