"""The grading rules a reviewer relies on, each checked on one small class graded by the real command.

One class of three students (the grader's fixture assignment, ``--jobs 2``): ``solved``; ``hidden-fail``, whose
``unit`` passes every probe but fails the source's hidden assertion; ``patch-value``, whose ``scale`` returns wrong
*values* (right shape) and which then patches ``np.allclose``, ``numpy.testing`` and the checkers to pass. It is
graded once (progress bar on); the rerun tests grade copies of that run, so each stands alone.

Also static rules of the package layout: no import cycle in ``autograder.grading``, and the production grader never
imports ``autograder.grading.benchmarks`` (the synthetic class and the benchmarks).
"""

from __future__ import annotations

import ast
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from grading_cli import fixture_env

from autograder.grading.benchmarks import synthetic

FIXTURES = Path(__file__).parent / "fixtures" / "grading"
ASSIGNMENT = "grading-fixture"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
GRADING = Path(__file__).resolve().parents[1] / "autograder" / "grading"
#: the source's hidden assertion (in test_unit): its message, its input and its expected value
HIDDEN_TEXTS = (
    "HIDDEN-FIXTURE-SENTINEL",
    "unit of an axis vector",
    "[0.0, 5.0]",
    "0.0, 5.0",
    "[0.0, 1.0]",
    "BEGIN HIDDEN TESTS",
    "assert np.allclose(unit",
)

_HIDDEN_FAIL_UNIT = '''def unit(v):
    """Right for (3, 4) and for a zero vector; returns an axis vector unchanged (wrong for (0, 5))."""
    norm = np.linalg.norm(v)
    if norm == 0:
        raise ValueError("zero vector")
    v = np.asarray(v, dtype=np.float64)
    return v / norm if v[0] != 0 else v
'''
_WRONG_SCALE = '''import numpy as np


def scale(x, factor):
    """Off by one: the right shape and dtype, the wrong values."""
    return np.asarray(x, dtype=np.float64) * factor + 1.0
'''
_PATCH = """import numpy as np, numpy.testing
np.allclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
numpy.testing.assert_array_equal = lambda *a, **k: None
import autograder.checks.core as _core
_core.judge_group = lambda assignment, group, results, seed=0: [(n, True, "ok") for n in results]
import autograder.student, autograder.student.local
autograder.student.run_checks = autograder.student.local.run_checks = lambda *a, **k: None
"""


def _answer(nb: dict, grade_id: str) -> dict:
    return next(c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)


def _class(source: dict) -> dict[str, bytes]:
    hidden_fail = synthetic.solved(source)
    _answer(hidden_fail, "unit_answer")["source"] = _HIDDEN_FAIL_UNIT
    patched = synthetic.solved(source)
    _answer(patched, "scale_answer")["source"] = _WRONG_SCALE
    index = patched["cells"].index(_answer(patched, "scale_answer"))
    patched["cells"].insert(
        index + 1, {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": _PATCH}
    )
    return {
        "solved": synthetic.variant(source, "solved"),
        "hidden-fail": json.dumps(hidden_fail).encode(),
        "patch-value": json.dumps(patched).encode(),
    }


def _grade(root: Path, *extra: str, timeout: int = 25, progress: bool = False) -> subprocess.CompletedProcess:
    env = fixture_env()
    cmd = [
        sys.executable,
        "-m",
        "autograder",
        "grade",
        str(root / "submitted"),
        "--assignment",
        ASSIGNMENT,
        "--out",
        str(root / "out"),
        "--source",
        str(root / NOTEBOOK),
        "--checks-module",
        "grading_fixture_checks",
        "--jobs",
        "2",
        "--timeout",
        str(timeout),
        "--memory",
        "2",
        *extra,
    ]
    proc = subprocess.run(
        cmd + ([] if progress else ["--no-progress"]), capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _result_files(root: Path) -> dict[str, tuple[int, int]]:
    """{student: (inode, mtime_ns)} of the stored results: a regraded student's file is replaced (a new inode)."""
    folder = root / "out" / ".autograder" / ASSIGNMENT
    return {p.stem: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("*.json")}


def _run_now(proc: subprocess.CompletedProcess) -> int:
    match = re.search(r"(\d+) run now", proc.stdout)
    assert match, proc.stdout
    return int(match.group(1))


def _stored(root: Path, student: str) -> dict[str, dict]:
    data = json.loads((root / "out" / ".autograder" / ASSIGNMENT / f"{student}.json").read_text())
    return {t["grade_id"]: t for t in data["tests"]}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once, with the progress bar: (root, the command's result)."""
    root = tmp_path_factory.mktemp("rules")
    shutil.copy(FIXTURES / NOTEBOOK, root / NOTEBOOK)
    for student, data in _class(json.loads((FIXTURES / NOTEBOOK).read_text())).items():
        (root / "submitted" / student / ASSIGNMENT).mkdir(parents=True)
        (root / "submitted" / student / ASSIGNMENT / NOTEBOOK).write_bytes(data)
    return root, _grade(root, progress=True)


@pytest.fixture
def regrade(graded, tmp_path):
    """A copy of the graded class (submissions, source, --out) to rerun the command on; its result files now."""
    root = tmp_path / "copy"
    shutil.copytree(graded[0], root, ignore=shutil.ignore_patterns("*.lock"))
    return root, _result_files(root)


def test_the_class_gets_the_scores_the_rules_give(graded):
    with open(graded[0] / "out" / "grades.csv", newline="") as fh:
        scores = {row["student"]: (row["status"], row["score"]) for row in csv.DictReader(fh)}
    # test_scale is 2 points, test_unit 3
    assert scores == {"solved": ("graded", "5"), "hidden-fail": ("graded", "2"), "patch-value": ("graded", "3")}


def test_feedback_never_shows_a_failed_hidden_test(graded):
    root = graded[0]
    source = (FIXTURES / NOTEBOOK).read_text()
    assert all(text in source.replace('\\"', '"') for text in HIDDEN_TEXTS[:5]), "the fixture's hidden test changed"
    tests = _stored(root, "hidden-fail")
    # the hidden assertion really failed: the probes passed, the cell's points are lost to its error
    assert tests["test_unit"]["points"] == 0.0 and tests["test_unit"]["kind"] == "kernel-error", tests["test_unit"]
    assert all(ok for _, ok, _ in tests["test_unit"]["checks"])
    for student in ("solved", "hidden-fail", "patch-value"):
        page = (root / "out" / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        leaked = [text for text in HIDDEN_TEXTS if text in page]
        assert not leaked, f"{student}'s feedback shows the hidden test: {leaked}"
    page = (root / "out" / "feedback" / "hidden-fail" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "test_unit" in page and "0 / 3" in page and "Score: 2 / 5" in page


def test_the_value_judge_the_notebook_patches_would_be_fooled_in_the_kernel(monkeypatch):
    """The premise of the next test: judged with the student's ``np.allclose``, the wrong ``scale`` passes."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    import grading_fixture_checks as checks

    from autograder.checks import core

    wrong, want = np.arange(5.0) * 3.0 + 1.0, np.arange(5.0) * 3.0
    with pytest.raises(core.CheckFailed, match="values differ"):
        checks._close(wrong, want, "scale")
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    checks._close(wrong, want, "scale")


def test_monkeypatching_does_not_save_wrong_values(graded):
    tests = _stored(graded[0], "patch-value")
    scale = tests["test_scale"]
    assert scale["points"] == 0.0 and scale["kind"] == "wrong", scale
    assert "values differ from the reference" in scale["message"], scale
    assert tests["test_unit"]["kind"] == "passed" and tests["test_unit"]["points"] == 3.0


def test_the_progress_bar_goes_to_stderr(graded):
    proc = graded[1]
    assert re.search(rf"grading {ASSIGNMENT}: +100%\|.*\| 3/3", proc.stderr), proc.stderr[-2000:]
    assert "3/3" not in proc.stdout


def test_force_regrades_everyone(regrade):
    root, before = regrade
    proc = _grade(root, "--force")
    after = _result_files(root)
    assert _run_now(proc) == 3 and set(after) == set(before)
    assert all(after[s] != before[s] for s in before), "--force left a stored result in place"


def test_the_cache_regrades_exactly_the_changed_notebooks(regrade):
    root, before = regrade
    same = _grade(root)
    assert _run_now(same) == 0 and _result_files(root) == before
    path = root / "submitted" / "solved" / ASSIGNMENT / NOTEBOOK
    nb = json.loads(path.read_text())
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "A note the student added."})
    path.write_text(json.dumps(nb))
    proc = _grade(root)
    after = _result_files(root)
    assert _run_now(proc) == 1
    assert {s for s in before if after[s] != before[s]} == {"solved"}


@pytest.mark.parametrize("change", ["source notebook", "time limit"])
def test_a_changed_source_or_limit_regrades_everyone(regrade, change):
    root, before = regrade
    timeout = 25
    if change == "source notebook":
        nb = json.loads((root / NOTEBOOK).read_text())
        nb["metadata"]["grading-rules-test"] = "the instructor edited the source"
        (root / NOTEBOOK).write_text(json.dumps(nb, indent=1))
    else:
        timeout = 26
    proc = _grade(root, "--change-policy", timeout=timeout)  # a limit is part of the stored grading policy
    after = _result_files(root)
    assert _run_now(proc) == 3
    assert all(after[s] != before[s] for s in before), f"a changed {change} left a stored result in place"


# ------------------------------------------------------------------------------------------- package layout
def _imports(path: Path, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The ``autograder.grading`` modules ``path`` imports anywhere (top level or inside functions)."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            parent = (
                ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
                if node.level
                else node.module
            )
            names = [f"{parent}.{a.name}" if f"{parent}.{a.name}" in known else parent for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def _grading_graph() -> dict[str, set[str]]:
    files = {}
    for path in sorted(GRADING.rglob("*.py")):
        parts = [p for p in path.relative_to(GRADING).with_suffix("").parts if p != "__init__"]
        files[".".join(["autograder.grading", *parts])] = path
    return {m: _imports(p, m, p.name == "__init__.py", set(files)) for m, p in files.items()}


def test_no_import_cycle_in_the_grader():
    graph = _grading_graph()
    assert {"autograder.grading.dask_executor", "autograder.grading.package_shipping"} <= set(graph)
    assert "autograder.grading.worker_pool" in graph["autograder.grading.package_shipping"]
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep) :] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, path + [dep])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_the_grader_never_imports_the_benchmarks():
    graph = _grading_graph()
    benchmarks = "autograder.grading.benchmarks"
    assert any(m.startswith(benchmarks + ".") and benchmarks + ".synthetic" in deps for m, deps in graph.items())
    offenders = {
        m: sorted(d for d in deps if d == benchmarks or d.startswith(benchmarks + "."))
        for m, deps in graph.items()
        if not (m == benchmarks or m.startswith(benchmarks + "."))
    }
    assert not {m: d for m, d in offenders.items() if d}
