"""Static checks of chapters 3 and 4: every glued number the prose uses is glued by a code cell, and every
literalinclude points at an object that exists. Cheap (no execution); the book build executes the chapters."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["book/03-memory-scaling.md", "book/04-backprop.md"]
ROLE = re.compile(r"\{glue(?::text)?\}`([A-Za-z0-9_]+)(?::[^`]*)?`")
DEFINED = re.compile(r"""glue(?:_num)?\(\s*(f?)["']([^"']+)["']""")
INCLUDE = re.compile(r"```\{literalinclude\} (\S+)\n(?::[a-z]+: .*\n)*?:pyobject: (\S+)")


def _glued_names(text: str) -> list[re.Pattern]:
    """Names glued by code cells; f-string names like f"fd_best_eps_{name}" become patterns."""
    patterns = []
    for is_f, name in DEFINED.findall(text):
        pattern = re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(name)) if is_f else re.escape(name)
        patterns.append(re.compile(pattern + r"\Z"))
    return patterns


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_glue_role_has_a_glued_value(chapter):
    text = (ROOT / chapter).read_text()
    used = set(ROLE.findall(text))
    assert len(used) >= 15, "the chapter states its numbers through glue"
    defined = _glued_names(text)
    missing = sorted(name for name in used if not any(p.match(name) for p in defined))
    assert not missing, f"{chapter}: glue roles without a glue(...) call: {missing}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_literalincludes_name_existing_objects(chapter):
    text = (ROOT / chapter).read_text()
    includes = INCLUDE.findall(text)
    assert includes, "the chapter shows reference code from the package"
    for path, obj in includes:
        module_path = (ROOT / "book" / path).resolve().relative_to(ROOT).with_suffix("")
        module = importlib.import_module(".".join(module_path.parts))
        assert hasattr(module, obj), f"{chapter}: {path} has no {obj}"


@pytest.mark.parametrize("chapter,assignment", [(CHAPTERS[0], "memory-scaling"), (CHAPTERS[1], "backprop")])
def test_exercises_section_links_the_assignment(chapter, assignment):
    text = (ROOT / chapter).read_text()
    assert "## Exercises" in text and f"(../exercises/{assignment}/{assignment}.ipynb)" in text
