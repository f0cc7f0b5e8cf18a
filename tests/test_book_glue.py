"""Static checks of the chapters: every glued value the prose uses is glued by a code cell through
``autograder.book.notebook`` (no chapter defines its own glue helper), every literalinclude points at an object that
exists and never at a graded reference function, and every chapter links its assignment. Cheap (no execution); the
book build executes the chapters."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from test_site import GRADED_NUMPY, GRADED_TORCH  # tests/ is on sys.path (pytest rootdir-relative import)

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [
    "book/01-token-embeddings.md",
    "book/02-positional-encodings.md",
    "book/03-memory-scaling.md",
    "book/04-backprop.md",
    "book/05-measurements.md",
]
ASSIGNMENTS = {
    "book/01-token-embeddings.md": "token-embeddings",
    "book/02-positional-encodings.md": "positional-encodings",
    "book/03-memory-scaling.md": "memory-scaling",
    "book/04-backprop.md": "backprop",
}
ROLE = re.compile(r"\{glue(?::text|:md)?\}`([A-Za-z0-9_]+)(?::[^`]*)?`|```\{glue:figure\} ([A-Za-z0-9_]+)")
DEFINED = re.compile(r"""\bglue_(?:number|text|markdown|figure)\(\s*(f?)["']([^"']+)["']""")
INCLUDE = re.compile(r"```\{literalinclude\} (\S+)\n(?::[a-z]+: .*\n)*?:pyobject: (\S+)")
REFERENCE = {
    "../autograder/reference/numpy_ref.py": set(GRADED_NUMPY),
    "../autograder/reference/torch_ref.py": set(GRADED_TORCH),
}


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
    used = {role or figure for role, figure in ROLE.findall(text)}
    assert len(used) >= 15, "the chapter states its numbers through glue"
    defined = _glued_names(text)
    missing = sorted(name for name in used if not any(p.match(name) for p in defined))
    assert not missing, (
        f"{chapter}: glue roles without a glue_number/glue_text/glue_markdown/glue_figure call: {missing}"
    )


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapters_glue_through_the_notebook_module(chapter):
    text = (ROOT / chapter).read_text()
    assert "from autograder.book.notebook import" in text
    inline = re.findall(r"^def glue\w*\(|^from myst_nb import glue|\bglue\(", text, flags=re.M)
    assert not inline, f"{chapter} glues without autograder.book.notebook: {inline}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_literalincludes_name_existing_objects_and_no_graded_reference(chapter):
    text = (ROOT / chapter).read_text()
    for path, obj in INCLUDE.findall(text):
        module_path = (ROOT / "book" / path).resolve().relative_to(ROOT).with_suffix("")
        module = importlib.import_module(".".join(module_path.parts))
        assert hasattr(module, obj), f"{chapter}: {path} has no {obj}"
        assert obj not in REFERENCE.get(path, set()), f"{chapter} publishes the graded reference {obj} (answer key)"


@pytest.mark.parametrize("chapter,assignment", ASSIGNMENTS.items())
def test_exercises_section_links_the_assignment(chapter, assignment):
    text = (ROOT / chapter).read_text()
    assert "## Exercises" in text and f"(../exercises/{assignment}/{assignment}.ipynb)" in text
