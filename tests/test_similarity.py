"""Similarity flags: what is normalised away, what is discounted, and the measured false-positive rate.

The measurement: six independently written right answers to ``token-embeddings`` (tests/fixtures/similarity/),
each checked against the assignment's own checks, compared pairwise and with the course's solution and
reference code; then a disguised copy of each (identifiers renamed, comments reworded, layout changed) against
its original. The figures are printed (``pytest -s``) and asserted: the README states them.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from autograder.checks import core
from autograder.grading import similarity as sim
from autograder.student import measured

ROOT = Path(__file__).resolve().parents[1]
AUTHORS = sorted((Path(__file__).parent / "fixtures" / "similarity").glob("author_*.py"))
SOURCE = (ROOT / "solutions" / "token-embeddings" / "token-embeddings.ipynb").read_bytes()
RELEASED = (ROOT / "exercises" / "token-embeddings" / "token-embeddings.ipynb").read_bytes()
FUNCTIONS = ("xavier_uniform", "embedding_forward", "one_hot", "nearest_neighbors", "lookup_cost")


def _cells_of(code: str) -> dict[str, str]:
    """The author's file cut into the assignment's answer cells: each graded function (with the helpers and
    imports written before it) in ``answer_<function>``."""
    tree = ast.parse(code)
    lines = code.splitlines()
    cells, pending = {}, []
    for node in tree.body:
        start = node.lineno - 1 - len(getattr(node, "decorator_list", []))
        text = "\n".join(lines[start : node.end_lineno])
        pending.append(text)
        if isinstance(node, ast.FunctionDef) and node.name in FUNCTIONS:
            cells[f"answer_{node.name}"] = "\n\n".join(pending)
            pending = []
    assert set(cells) == {f"answer_{f}" for f in FUNCTIONS}
    return cells


def _notebook(cells: dict[str, str]) -> bytes:
    nb = json.loads(RELEASED)
    for cell in nb["cells"]:
        gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if gid in cells:
            cell["source"] = cells[gid]
    return json.dumps(nb).encode()


def _disguise(code: str) -> str:
    """What a student hiding a copy does: rename every variable, parameter and helper they chose, reword every
    comment, change the layout (blank lines, spacing) -- the graded function names stay, or the tests would not
    find them."""
    tree = ast.parse(code)
    chosen = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    chosen |= {
        a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.posonlyargs + n.args + n.kwonlyargs
    }
    chosen |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    chosen -= set(FUNCTIONS)
    out, previous = [], None
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        kind, text = tok.type, tok.string
        if kind == tokenize.NAME and text in chosen and previous != ".":
            text = f"my_{text[::-1]}_"
        elif kind == tokenize.STRING and text[:1] in "fF":  # names inside an f-string's braces too
            text = re.sub(
                r"\{([^{}]*)\}",
                lambda m: (
                    "{"
                    + re.sub(r"\b[A-Za-z_]\w*\b", lambda w: f"my_{w[0][::-1]}_" if w[0] in chosen else w[0], m[1])
                    + "}"
                ),
                text,
            )
        elif kind == tokenize.COMMENT:
            text = "# note to self: this part works, do not touch"
        out.append((kind, text))
        previous = tok.string
    disguised = tokenize.untokenize(out)
    return disguised.replace("\n\n\n", "\n\n\n\n").replace(" = ", "  =  ")


def _passes_every_check(cells: dict[str, str]) -> list[str]:
    namespace = {"np": np}
    for text in cells.values():
        exec(compile(text, "<answer>", "exec"), namespace)
    return [
        f"{g}: {n}: {m}"
        for g in core.groups("token-embeddings")
        if not measured.is_record(g)  # the answer cells alone: no measurement cell ran
        for n, ok, m in core.verdicts("token-embeddings", g, namespace)
        if not ok
    ]


@pytest.fixture(scope="module")
def corpus():
    template, solution, reference = sim.course_fingerprints(SOURCE)
    ids = sim.answer_ids(SOURCE)
    cells = {a.stem: _cells_of(a.read_text()) for a in AUTHORS}
    disguised = {a.stem: _cells_of(_disguise(a.read_text())) for a in AUTHORS}
    prints = {a: sim.fingerprint(sim.answer_cells(_notebook(c), ids), template) for a, c in cells.items()}
    copies = {a: sim.fingerprint(sim.answer_cells(_notebook(c), ids), template) for a, c in disguised.items()}
    return dict(
        template=template,
        solution=solution,
        reference=reference,
        cells=cells,
        disguised=disguised,
        prints=prints,
        copies=copies,
    )


def test_every_independent_answer_and_every_disguised_copy_is_right(corpus):
    assert len(AUTHORS) >= 6
    for author in corpus["cells"]:
        assert _passes_every_check(corpus["cells"][author]) == [], author
        assert _passes_every_check(corpus["disguised"][author]) == [], author


def test_normalising_removes_comments_layout_docstrings_and_names():
    a = 'def f(x, y):\n    """Add."""\n    total = x + y  # sum\n    return np.sqrt(total)\n'
    b = "def g(first,second):\n\n    s=first+second\n    # the root\n    return np.sqrt( s )\n"
    assert sim.normalise(a) == sim.normalise(b)
    assert "sqrt" in sim.normalise(a) and "return" in sim.normalise(a)  # attribute names and keywords stay
    assert sim.normalise('x = "a"') == sim.normalise("y = 'something else'")
    assert sim.normalise("def f(:\n  ???") != []  # a syntax error still normalises


def test_the_released_template_is_discounted(corpus):
    template = corpus["template"]
    untouched = sim.fingerprint(sim.answer_cells(RELEASED, sim.answer_ids(SOURCE)), template)
    assert len(untouched) == 0  # two students who hand in the template unchanged share nothing
    assert sim.compare_class({"ann": untouched, "bob": untouched}, corpus["solution"], corpus["reference"]) == []


def test_only_answer_cells_are_compared():
    nb = json.loads(RELEASED)
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("solution"):
            cell["source"] = "SHOULD_BE_SEEN = 1"
        else:
            cell["source"] = "IGNORED = 2"
    cells = sim.answer_cells(json.dumps(nb).encode(), sim.answer_ids(SOURCE))
    assert set(cells) == {f"answer_{f}" for f in FUNCTIONS}
    assert set(cells.values()) == {"SHOULD_BE_SEEN = 1"}
    assert sim.answer_cells(b"{truncated", ["answer_one_hot"]) == {}


def test_false_positive_rate_on_independent_right_answers(corpus):
    prints, copies = corpus["prints"], corpus["copies"]
    pairs = list(combinations(sorted(prints), 2))
    independent = [sim.jaccard(prints[a], prints[b])[0] for a, b in pairs]
    flagged = [p for p in sim.compare_class(prints, corpus["solution"], corpus["reference"])]
    copied = [sim.flagged(prints[a], copies[a]) for a in prints]
    n_flagged = sum(p.b != sim.SOLUTION_FLAG for p in flagged)
    print(
        f"\nsimilarity: {len(pairs)} pairs of independent right answers, {n_flagged} "
        f"flagged (max Jaccard {max(independent):.2f}); {len(prints)} answers vs solution and reference, "
        f"{sum(p.b == sim.SOLUTION_FLAG for p in flagged)} flagged; disguised copies flagged "
        f"{sum(hit for hit, _ in copied)}/{len(copied)} (min Jaccard {min(s for _, s in copied):.2f})"
    )
    assert flagged == []
    assert all(hit for hit, _ in copied)


def test_a_disguised_copy_of_the_solution_matches_the_solution(corpus):
    solution = sim.solution_cells(SOURCE)
    copy = sim.fingerprint({g: _disguise(t) for g, t in solution.items()}, corpus["template"])
    pairs = sim.compare_class({"cy": copy, **corpus["prints"]}, corpus["solution"], corpus["reference"])
    assert [(p.a, p.b) for p in pairs] == [("cy", sim.SOLUTION_FLAG)]
    reference = sim.reference_sources(list(FUNCTIONS))
    assert set(reference) == set(FUNCTIONS) and "_check_ids" in reference["embedding_forward"]


def test_flags_name_both_classmates():
    pairs = [sim.Pair("ann", "bob", 0.931), sim.Pair("cy", sim.SOLUTION_FLAG, 0.97)]
    assert sim.flags_by_student(pairs) == {"ann": ["bob 93%"], "bob": ["ann 93%"], "cy": ["matches-solution 97%"]}


def test_the_readme_states_these_settings_and_figures():
    text = " ".join((ROOT / "README.md").read_text().split())
    n = len(AUTHORS)
    words = {6: "six"}
    assert f"{sim.K}-token shingles" in text and f"at least {sim.THRESHOLD:g}" in text
    assert f"at least {sim.MIN_SHARED} shared" in text
    assert f"{words[n]} independently written right answers" in text and f"none of the {n * (n - 1) // 2} pairs" in text
