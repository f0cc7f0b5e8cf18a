"""Every command a chapter shows exists: ``python -m MODULE`` names an importable module with a ``__main__`` entry
(a package's ``__main__`` or a module that runs as a script), and ``make TARGET`` names a target of the Makefile.
The committed benchmark results name the command that produced them, so they are checked too."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book").glob("*.md"))
PYTHON_M = re.compile(r"python3? -m ([A-Za-z_][\w.]*)")
MAKE = re.compile(r"`make ([a-z][\w-]*)[^`]*`")


def _makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.MULTILINE))


def _shown(pattern: re.Pattern) -> list[tuple[str, str]]:
    found = [(path.name, m.group(1)) for path in CHAPTERS for m in pattern.finditer(path.read_text())]
    for path in sorted((ROOT / "autograder" / "data" / "bench").glob("*.json")):
        found += [(path.name, m.group(1)) for m in pattern.finditer(json.loads(path.read_text())["command"])]
    return found


def _runnable(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    if spec.submodule_search_locations:  # a package runs its __main__
        return importlib.util.find_spec(f"{module}.__main__") is not None
    return "__main__" in Path(spec.origin).read_text()


@pytest.mark.parametrize("where, module", sorted(set(_shown(PYTHON_M))))
def test_every_python_m_command_shown_runs(where, module):
    assert _runnable(module), f"{where} shows `python -m {module}`, which does not exist or cannot run"


@pytest.mark.parametrize("where, target", sorted(set(_shown(MAKE))))
def test_every_make_command_shown_is_a_target(where, target):
    assert target in _makefile_targets(), f"{where} shows `make {target}`, which the Makefile does not define"


def test_the_scan_finds_the_commands_and_would_catch_a_missing_one():
    modules = {m for _, m in _shown(PYTHON_M)}
    assert "autograder.measure.embedding_bench" in modules and {"bench"} <= {t for _, t in _shown(MAKE)}
    assert not _runnable("autograder.bench") and _runnable("autograder")
