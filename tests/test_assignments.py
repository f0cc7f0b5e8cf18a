"""The four assignments' checks, notebooks and self-check, tested in-process (fast).

* the reference implementations and the solution notebooks pass every check group, at several grading seeds;
* every mistake of ``test_assignments_mistakes.MISTAKES`` fails a visible group, or -- for those marked
  ``"hidden"`` -- passes every visible group and fails a hidden one, at several grading seeds;
* the notebooks' structure: one locked test cell per check group, named by its ``grade_id``; stated totals equal
  the cells' points; no outputs; the released exercises hold no solution code and no hidden tests.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
from test_assignments_mistakes import MISTAKES, Mistake

from autograder.checks import core
from autograder.reference import numpy_ref, torch_ref
from autograder.student import check, registry, run_checks
from autograder.student import measured as measured_mod

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = core.ASSIGNMENTS
SEEDS = (0, 1, 20260917)  # 0 is what students see; the others stand for grading-time seeds


def solution_path(assignment: str) -> Path:
    return ROOT / "solutions" / assignment / f"{assignment}.ipynb"


def exercise_path(assignment: str) -> Path:
    return ROOT / "exercises" / assignment / f"{assignment}.ipynb"


def nb_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def execute_solution(assignment: str, extra: dict[str, str] | None = None, *, measure: bool = True) -> dict:
    """Execute the solution notebook's setup and answer cells, and (``measure``) its measurement cell, into a fresh
    namespace -- what a student who solved everything has. ``extra`` maps a cell's grade_id to code appended to it
    (a mistaken redefinition), so later cells that call the function see the mistake, exactly as in a notebook."""
    nb = nbformat.read(solution_path(assignment), as_version=4)
    namespace: dict = {}
    for cell in nb.cells:
        meta = nb_meta(cell)
        measured = meta.get("grade_id") == measured_mod.GRADE_ID and (measure or measured_mod.GRADE_ID in (extra or {}))
        if cell.cell_type == "code" and (meta.get("solution") or meta.get("grade_id") == "setup" or measured):
            source = cell.source + ("\n\n\n" + extra[meta["grade_id"]] if extra and meta["grade_id"] in extra else "")
            exec(compile(source, f"<{assignment}:{meta['grade_id']}>", "exec"), namespace)
    return namespace


@functools.cache
def solution_namespace(assignment: str) -> dict:
    return execute_solution(assignment)


REFERENCE_NAMESPACE = {
    **vars(numpy_ref),
    "TokenPositionEmbedding": torch_ref.TokenPositionEmbedding,
    "EmbeddingFunction": torch_ref.EmbeddingFunction,
}


def failures(
    assignment: str,
    namespace: dict,
    *,
    function: str | None = None,
    hidden: bool | None = None,
    seed: int = core.LOCAL_HIDDEN_SEED,
):
    """``[(group, check name, message)]`` of the failing checks, hidden ones probed and judged with ``seed``."""
    out = []
    for group_name, checks in core.groups(assignment).items():
        if function is not None and checks[0].function != function:
            continue
        if hidden is not None and checks[0].hidden != hidden:
            continue
        out += [
            (group_name, name, message)
            for name, ok, message in core.verdicts(assignment, group_name, namespace, seed)
            if not ok
        ]
    return out


# ------------------------------------------------------------------------------------------------ groups
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_groups_are_consistent(assignment):
    groups = core.groups(assignment)
    assert groups, f"no check groups registered for {assignment}"
    for group_name, checks in groups.items():
        # a group tests one function, and is hidden exactly when its name says so
        assert len({c.function for c in checks}) == 1, group_name
        assert {c.hidden for c in checks} == {group_name.endswith("_hidden")}, group_name
    visible = {g for g in groups if not g.endswith("_hidden") and not measured_mod.is_record(g)}
    assert {g + "_hidden" for g in visible} == set(groups) - visible - {g for g in groups if measured_mod.is_record(g)}
    # one measurement record per assignment, visible, one check, named like the variable it reads
    records = [g for g in groups if measured_mod.is_record(g)]
    assert (
        len(records) == 1 and [c.function for c in groups[records[0]]] == records and not groups[records[0]][0].hidden
    )


def test_a_group_without_checks_fails_loudly():
    with pytest.raises(KeyError, match="no checks registered"):
        run_checks("backprop", "no_such_group", {})


# ---------------------------------------------------------------------------------------- references and solutions pass
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_implementations_pass_every_group(assignment, seed):
    assert failures(assignment, reference_namespace(assignment), seed=seed) == []


@functools.cache
def reference_namespace(assignment: str) -> dict:
    """The references, and the record the assignment's measurement cell leaves when it times them."""
    namespace = dict(REFERENCE_NAMESPACE)
    nb = nbformat.read(solution_path(assignment), as_version=4)
    (cell,) = [c for c in nb.cells if nb_meta(c).get("grade_id") == measured_mod.GRADE_ID]
    exec(compile(cell.source, f"<{assignment}:measure>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebooks_pass_every_group(assignment, seed):
    assert failures(assignment, solution_namespace(assignment), seed=seed) == []


def test_hidden_inputs_change_with_the_grading_seed():
    """Hidden groups draw new inputs at grading time; visible ones never change."""
    ns = REFERENCE_NAMESPACE

    def probed(group, seed):
        return core.encode(registry.probe_group("token-embeddings", group, ns, seed))

    assert probed("embedding_forward_hidden", 2) != probed("embedding_forward_hidden", 1)
    assert probed("embedding_forward", 2) == probed("embedding_forward", 1)


# ------------------------------------------------------------------------------------------------ mistakes are caught
def _with_mistake(mistake: Mistake, *, measure: bool = False) -> dict:
    """The solution with ``mistake``; its measurement cell runs for a mistaken record, or when ``measure``."""
    if measured_mod.is_record(mistake.function):  # a mistaken record: appended to the measurement cell
        return execute_solution(mistake.assignment, {measured_mod.GRADE_ID: mistake.code})
    return execute_solution(mistake.assignment, {f"answer_{mistake.function}": mistake.code}, measure=measure)


def test_mistake_table_covers_every_graded_function():
    graded = {(a, cs[0].function) for a in ASSIGNMENTS for cs in core.groups(a).values()}
    assert {(m.assignment, m.function) for m in MISTAKES} == graded
    assert len({m.id for m in MISTAKES}) == len(MISTAKES)
    assert sum(m.caught_by == "hidden" for m in MISTAKES) >= 15


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflowing mistakes warn, as they would for a student
@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.id for m in MISTAKES])
def test_mistake_is_caught(mistake):
    namespace = _with_mistake(mistake)
    visible = failures(mistake.assignment, namespace, function=mistake.function, hidden=False)
    if mistake.caught_by == "visible":
        assert visible, f"no visible check catches {mistake.id}"
        caught = visible
    else:
        assert visible == [], f"{mistake.id} should pass the visible checks (it is the hidden ones' job): {visible}"
        caught = []
        for seed in SEEDS:
            hidden = failures(mistake.assignment, namespace, function=mistake.function, hidden=True, seed=seed)
            assert hidden, f"the hidden checks miss {mistake.id} at grading seed {seed}"
            caught += hidden
    for _group_name, _name, message in caught:
        # one line a student can act on, starting with the call that went wrong
        assert "\n" not in message and len(message) < 700, message
        assert message.startswith(mistake.function) or "raised" in message, message


# ------------------------------------------------------------------------------------------------ messages
def _message(assignment, group_name, namespace, check_name):
    return next(m for n, ok, m in core.verdicts(assignment, group_name, namespace) if n == check_name and not ok)


def test_messages_say_what_was_expected_and_what_came_back():
    ns = dict(solution_namespace("token-embeddings"))
    exec("def embedding_forward(weight, ids):\n    return weight[ids]\n", ns)
    msg = _message("token-embeddings", "embedding_forward", ns, "ids < 0 or >= vocab_size raise IndexError")
    assert "ids [ 0 -1]" in msg and "expected IndexError" in msg and "got an array of shape (2, 4) float32" in msg
    exec("def embedding_forward(weight, ids):\n    return weight[ids][..., :2]\n", ns)
    msg = _message("token-embeddings", "embedding_forward", ns, "rows, shape and dtype of the lookup")
    assert "expected shape (2, 3, 4), got (2, 3, 2)" in msg
    ns = dict(solution_namespace("backprop"))
    exec("def embedding_backward(g, ids, V):\n    G = np.zeros((V, g.shape[-1])); G[ids] += g\n    return G\n", ns)
    msg = _message("backprop", "embedding_backward", ns, "dense (V, D) gradient, repeated ids accumulate")
    assert re.search(
        r"values differ at index \(\d+, \d+\): expected -?[\d.]+, got -?[\d.]+ \(\d+ of 10 entries differ\)", msg
    )
    assert "np.add.at" in msg
    ns = dict(solution_namespace("memory-scaling"))
    exec("def tensor_bytes(n, dtype):\n    return n * {'int4': 0.5}.get(dtype, 4)\n", ns)
    msg = _message("memory-scaling", "tensor_bytes", ns, "bytes per dtype, int4 rounded up")
    assert "expected" in msg and "got" in msg


def test_an_overflowing_softmax_gets_one_hint_and_no_minus_zero():
    ns = dict(solution_namespace("backprop"))
    exec(next(m for m in MISTAKES if m.id == "softmax-overflows").code, ns)
    msg = _message("backprop", "softmax_cross_entropy", ns, "mean loss and its gradient; stable at 1e4")
    assert "loss: expected a finite number close to 0, got nan (" in msg, msg
    assert msg.count("maximum") == 1, msg


def test_a_backward_that_returns_none_for_the_weight_is_told_so():
    ns = dict(solution_namespace("backprop"))
    exec(
        "class EmbeddingFunction(torch.autograd.Function):\n"
        "    @staticmethod\n    def forward(ctx, weight, ids):\n        return weight[ids]\n"
        "    @staticmethod\n    def backward(ctx, grad_out):\n        return None, None\n",
        ns,
    )
    msg = _message("backprop", "embedding_function", ns, "backward: scatter-add gradient for weight, None for ids")
    assert "backward returned None for weight" in msg and "forget `return`" not in msg, msg


def test_a_monkeypatched_comparison_in_the_student_namespace_changes_nothing(monkeypatch):
    """Judging uses the trusted references; a student who rebinds np.allclose only fools their own kernel's code."""
    ns = dict(solution_namespace("token-embeddings"))
    exec(
        "np.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
        "def embedding_forward(weight, ids):\n    return weight[ids] * 0\n",
        ns,
    )
    try:
        assert failures("token-embeddings", ns, function="embedding_forward", hidden=False)
    finally:
        ns["np"].allclose, ns["np"].array_equal = _ALLCLOSE, _ARRAY_EQUAL


_ALLCLOSE, _ARRAY_EQUAL = np.allclose, np.array_equal


# --------------------------------------------------------------------------------------------- the student's self-check
def test_student_check_prints_one_line_per_visible_check(capsys):
    check(numpy_ref.embedding_forward)
    lines = capsys.readouterr().out.strip().splitlines()
    checks = core.group("token-embeddings", "embedding_forward")
    assert [ln.split(" ", 1)[0] for ln in lines[:-1]] == ["PASS"] * len(checks)
    assert lines[-1].startswith("embedding_forward: 3/3 visible checks pass")

    def embedding_forward(weight, ids):
        return weight[ids]

    check(embedding_forward)
    out = capsys.readouterr().out
    assert out.count("FAIL ") == 2 and "expected IndexError" in out and "1/3 visible checks pass" in out


def test_student_check_covers_classes_and_rejects_other_functions(capsys):
    check(torch_ref.EmbeddingFunction)
    assert "PASS" in capsys.readouterr().out
    with pytest.raises(ValueError, match="not a graded function"):
        check(print)


# ------------------------------------------------------------------------------------------------ notebooks
def _points(nb) -> int:
    return sum(nb_meta(c).get("points", 0) for c in nb.cells if nb_meta(c).get("grade"))


def _stated_total(nb) -> int:
    match = re.search(r"\*\*Total: (\d+) points\*\*", nb.cells[0].source)
    assert match, "the first cell states the total points"
    return int(match.group(1))


@pytest.mark.parametrize("kind", ["solutions", "exercises"])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebook_structure_and_totals(assignment, kind):
    path = solution_path(assignment) if kind == "solutions" else exercise_path(assignment)
    nb = nbformat.read(path, as_version=4)
    assert _stated_total(nb) == _points(nb) > 0
    tests = [c for c in nb.cells if nb_meta(c).get("grade") and not nb_meta(c).get("solution")]
    assert {nb_meta(c)["grade_id"] for c in tests} == set(core.groups(assignment)), "one test cell per check group"
    # one written answer, graded by hand: a markdown answer cell with points
    manual = [c for c in nb.cells if nb_meta(c).get("grade") and nb_meta(c).get("solution")]
    assert [(c.cell_type, nb_meta(c)["grade_id"]) for c in manual] == [("markdown", "reflection")]
    assert nb_meta(manual[0])["points"] > 0 and not nb_meta(manual[0])["locked"]
    # the header restates the balance: hidden points of the autograded ones, computed from the cells' metadata
    auto = sum(nb_meta(c)["points"] for c in tests)
    hidden = sum(nb_meta(c)["points"] for c in tests if nb_meta(c)["grade_id"].endswith("_hidden"))
    assert f"hidden tests carry {hidden} of the {auto} autograded points (about {round(100 * hidden / auto)}%" in (
        nb.cells[0].source
    )
    assert 0.35 <= hidden / auto <= 0.45, "about 40% of the autograded points are hidden"
    # the measurement cell is locked and leaves the record its test cell checks
    (measure,) = [c for c in nb.cells if nb_meta(c).get("grade_id") == measured_mod.GRADE_ID]
    record = next(g for g in core.groups(assignment) if measured_mod.is_record(g))
    assert (
        nb_meta(measure)["locked"]
        and not nb_meta(measure)["grade"]
        and re.search(rf"^{record} = \[\]", measure.source, re.M)
    )
    assert "autograder.measure.timing import" in measure.source
    for cell in tests:
        meta = nb_meta(cell)
        assert meta["locked"] and meta["points"] > 0 and not meta["solution"]
        if kind == "solutions":  # the cell runs exactly its own group
            assert re.findall(r'run_checks\("([\w-]+)", "(\w+)"\)', cell.source) == [(assignment, meta["grade_id"])]
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path} has outputs: strip them"
    # the chapter it links to exists
    for link in re.findall(r"\]\((\.\./\.\./book/[\w.-]+\.md)\)", nb.cells[0].source):
        assert (path.parent / link).resolve().is_file(), link
    # every graded function has an answer cell, a self-check cell and the import of `check`
    functions = {cs[0].function for cs in core.groups(assignment).values()} - {record}
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any("from autograder.student import check, run_checks" in s for s in sources)
    for function in functions:
        assert f"check({function})" in sources
        assert any(
            re.search(rf"^(def|class) {function}\b", s, re.M) and nb_meta(c).get("solution")
            for c, s in zip([c for c in nb.cells if c.cell_type == "code"], sources, strict=False)
        )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_hold_no_solutions_and_no_hidden_tests(assignment):
    solution = nbformat.read(solution_path(assignment), as_version=4)
    exercise = nbformat.read(exercise_path(assignment), as_version=4)
    text = exercise_path(assignment).read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", '_hidden\\")'):
        assert marker not in text, marker
    answers = {nb_meta(c)["grade_id"]: c.source for c in exercise.cells if nb_meta(c).get("solution")}
    for cell in solution.cells:
        if not nb_meta(cell).get("solution") or cell.cell_type == "markdown":
            continue
        released = answers[nb_meta(cell)["grade_id"]]
        assert "raise NotImplementedError()" in released
        for block in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S):
            for line in block.splitlines():
                if line.strip():
                    assert line not in released.splitlines(), f"solution line released: {line!r}"
    hidden_cells = [c for c in exercise.cells if nb_meta(c).get("grade_id", "").endswith("_hidden")]
    assert hidden_cells and all("run_checks" not in c.source for c in hidden_cells)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercise_notebooks_are_normalised(assignment):
    """What `python -m autograder release` writes: sorted keys, no volatile metadata, a trailing newline."""
    from autograder.release import normalise

    text = exercise_path(assignment).read_text()
    assert normalise(nbformat.reads(text, as_version=4)) == text
    data = json.loads(text)
    assert data["metadata"] == {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }


def test_release_check_reports_stale_exercises_in_one_line(monkeypatch, capsys):
    from autograder import release

    monkeypatch.setattr(
        release, "release_notebooks", lambda assignments: {a: exercise_path(a).read_text() + " " for a in assignments}
    )
    assert release.main(["--check", "--assignment", "backprop"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "exercises/backprop/backprop.ipynb" in err and "python -m autograder release" in err


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_written_answer_and_its_rubric_are_not_released(assignment):
    """The solution's written answer holds a model answer and the grader's rubric; `python -m autograder release`
    (nbgrader's ClearSolutions) replaces both with an empty answer for the student."""
    solution = nbformat.read(solution_path(assignment), as_version=4)
    exercise = nbformat.read(exercise_path(assignment), as_version=4)
    (source,) = [c.source for c in solution.cells if nb_meta(c).get("grade_id") == "reflection"]
    (released,) = [c.source for c in exercise.cells if nb_meta(c).get("grade_id") == "reflection"]
    assert "**Rubric (for the grader; never released).**" in source and "*Model answer.*" in source
    assert released.strip() == "YOUR ANSWER HERE"
    text = exercise_path(assignment).read_text()
    assert "Rubric" not in text and "Model answer" not in text


@pytest.mark.parametrize("mistake_id", ["chunked-full-logits", "chunked-full-logits-in-torch"])
def test_full_logits_fail_the_memory_check_in_numpy_and_in_torch(mistake_id):
    """The contract forbids holding the (N, V) logits at once in any library: NumPy's buffers are traced with
    tracemalloc, PyTorch's (which tracemalloc does not see) by the probe's dispatch mode. The values are right, so the
    memory check is what fails."""
    mistake = next(m for m in MISTAKES if m.id == mistake_id)
    failed = failures("backprop", _with_mistake(mistake), function="chunked_cross_entropy", hidden=False)
    from autograder.student.probes.backprop import CHUNK_MEMORY

    assert [name for _, name, _ in failed] == [CHUNK_MEMORY], failed
    assert "at once" in failed[0][2]
