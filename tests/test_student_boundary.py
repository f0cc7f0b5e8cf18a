"""The boundary between the student side (``autograder/student/``, the only code the grading sandbox holds) and the
judge side (``autograder/checks/``, the references, the grader).

* static: no module under ``autograder/student/`` imports anything but the standard library, numpy, torch, IPython
  and ``autograder.student`` itself; the one name of a judge module it mentions is local mode's ``JUDGE_MODULE``;
* runtime: the files :func:`autograder.student.sandbox_tree` lists, alone on ``sys.path`` in a fresh ``python -S``
  (no site-packages processing, so no editable install), probe every group of every assignment against the solution
  notebooks in grading mode; the payload :func:`~autograder.student.grading.emit` publishes decodes and judges full
  marks here; the answer key and the judges cannot be imported there and nothing tried to;
* the judge takes its seed from its caller only: probe data made with another seed fails every hidden group, and
  forged records change nothing;
* probe and judge registries list the same checks; the two modes of ``run_checks`` and ``check``; the payload
  decoder refuses garbage.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from test_assignments import ASSIGNMENTS, REFERENCE_NAMESPACE, solution_namespace, solution_path

from autograder.checks import core
from autograder.student import check, grading, registry, run_checks, sandbox_tree, transport

ROOT = Path(__file__).resolve().parents[1]
STUDENT = ROOT / "autograder" / "student"
ALLOWED_TOP = {"numpy", "torch", "IPython"}
FORBIDDEN = ("autograder.reference", "autograder.checks", "autograder.grading", "autograder.book")


# ------------------------------------------------------------------------------------------------ static
def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``path`` (relative ones resolved), functions included."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found.append((node.lineno, name))
    return found


def _student_modules() -> list[Path]:
    return sorted(p for p in STUDENT.rglob("*.py") if "__pycache__" not in p.parts)


def test_student_modules_import_only_the_stdlib_numpy_torch_and_themselves():
    bad = []
    for path in [ROOT / "autograder" / "__init__.py", *_student_modules()]:
        for line, name in _imports(path):
            top = name.split(".")[0]
            ok = (
                top in sys.stdlib_module_names
                or top in ALLOWED_TOP
                or name == "autograder.student"
                or name.startswith("autograder.student.")
                or name == "__future__"
            )
            if not ok:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert bad == []
    assert _imports(ROOT / "autograder" / "__init__.py") == [], "autograder/__init__.py must import nothing"


def test_the_only_judge_module_named_on_the_student_side_is_local_modes():
    """Dynamic imports need a module name: the only one naming the judge side is ``local.JUDGE_MODULE``."""
    named = []
    for path in _student_modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(FORBIDDEN):
                named.append((path.name, node.value))
    assert named == [("local.py", "autograder.checks.core")]
    from autograder.student import local

    assert local.JUDGE_MODULE == "autograder.checks.core"


def test_sandbox_tree_lists_every_student_and_data_file():
    tree = sandbox_tree(ROOT)
    expected = (
        {"autograder/__init__.py"}
        | {p.relative_to(ROOT).as_posix() for p in _student_modules()}
        | {p.relative_to(ROOT).as_posix() for p in (ROOT / "autograder" / "data").rglob("*") if p.is_file()}
        | {"autograder/measure/__init__.py", "autograder/measure/timing.py"}
    )
    assert set(tree) == expected and tree == sorted(tree)
    assert not any(path.startswith(("autograder/reference", "autograder/checks")) for path in tree)
    assert sandbox_tree() == tree  # the default root is this checkout
    with pytest.raises(ValueError, match="pass the folder above it"):
        sandbox_tree(ROOT / "autograder")


def test_the_timing_helpers_in_the_sandbox_import_nothing_else_of_the_package():
    """The measurement cells import ``autograder.measure.timing`` inside the sandbox, which holds only
    :func:`sandbox_tree`'s files: the timing helpers (and their package's ``__init__``) may import the standard
    library, numpy and torch, never another module of the package (which would not be there)."""
    allowed = set(sys.stdlib_module_names) | {"numpy", "torch"}
    for rel in ("autograder/measure/__init__.py", "autograder/measure/timing.py"):
        tree = ast.parse((ROOT / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{rel}: relative import of {node.module}"
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{rel} imports {name}, which the grading sandbox does not hold"


# ------------------------------------------------------------------------------------------------ registries
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_probe_and_judge_registries_list_the_same_checks(assignment):
    probes = {(g, p.name) for g, ps in registry.groups(assignment).items() for p in ps}
    assert probes and probes == core.judges(assignment)
    for group_name, checks in core.groups(assignment).items():
        assert [(c.name, c.function, c.hidden) for c in checks] == [
            (p.name, p.function, p.hidden) for p in registry.group(assignment, group_name)
        ]


# ------------------------------------------------------------------------------------------------ the judge's seed
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_probe_data_made_with_another_seed_fails_every_hidden_group(assignment):
    """The judge rebuilds the inputs from the seed it is given: data probed with seed 1 passes when judged with
    seed 1 and fails when judged with seed 2 (a kernel that picks its own seed gains nothing)."""
    ns = REFERENCE_NAMESPACE
    for group_name, probes in registry.groups(assignment).items():
        if not probes[0].hidden:
            continue
        data = transport.decode(transport.encode(registry.probe_group(assignment, group_name, ns, seed=1)))
        assert all(ok for _, ok, _ in core.judge_group(assignment, group_name, data, seed=1)), group_name
        assert not all(ok for _, ok, _ in core.judge_group(assignment, group_name, data, seed=2)), group_name


def test_visible_checks_judge_visible_inputs_whatever_seed_is_passed():
    ns = REFERENCE_NAMESPACE
    data = registry.probe_group("token-embeddings", "embedding_forward", ns, seed=12345)
    at_zero = registry.probe_group("token-embeddings", "embedding_forward", ns, 0)
    assert transport.encode(data) == transport.encode(at_zero)
    assert all(ok for _, ok, _ in core.judge_group("token-embeddings", "embedding_forward", data, seed=999))


def test_a_reported_seed_is_not_read():
    """The old protocol's probe reported its seed; a forged one in the data is ignored like any other extra key."""
    ns = REFERENCE_NAMESPACE
    data = registry.probe_group("memory-scaling", "tensor_bytes_hidden", ns, seed=7)
    forged = {name: {**record, "seed": 7} for name, record in data.items()}
    verdicts = core.judge_group("memory-scaling", "tensor_bytes_hidden", forged, seed=8)
    assert not all(ok for _, ok, _ in verdicts)
    assert all(ok for _, ok, _ in core.judge_group("memory-scaling", "tensor_bytes_hidden", forged, seed=7))


def test_malformed_probe_data_fails_its_checks_with_a_message():
    verdicts = core.judge_group(
        "backprop",
        "embedding_function_hidden",
        {"1-d, 3-d, scalar and empty ids; negative ids rejected": [{"out": 1}]},
        seed=3,
    )
    [(name, ok, message)] = verdicts
    assert not ok and "\n" not in message
    assert not any(ok for _, ok, _ in core.judge_group("backprop", "embedding_backward", "not a dict", seed=0))


# ------------------------------------------------------------------------------------------------ modes
@pytest.fixture()
def grading_mode(tmp_path, monkeypatch):
    """A grading spec for token-embeddings in the environment, and grading mode's in-memory state reset."""

    def make(groups, seed=5, assignment="token-embeddings", probe_modules=()):
        path = tmp_path / f"spec-{len(list(tmp_path.iterdir()))}.json"
        path.write_text(
            json.dumps(
                {
                    "assignment": assignment,
                    "groups": list(groups),
                    "hidden_seed": seed,
                    "probe_modules": list(probe_modules),
                }
            )
        )
        monkeypatch.setenv(grading.SPEC_ENV, str(path))
        return path

    saved = dict(grading._PROBED)
    grading._PROBED.clear()
    yield make
    grading._PROBED.clear()
    grading._PROBED.update(saved)


def test_grading_mode_prints_one_line_never_raises_and_emits_one_payload(grading_mode, capsys, monkeypatch):
    grading_mode(["embedding_forward", "embedding_forward_hidden", "one_hot"], seed=5)
    ns = dict(solution_namespace("token-embeddings"))
    capsys.readouterr()  # what the solution's measurement cell printed
    exec("def embedding_forward(weight, ids):\n    return weight[ids]\n", ns)  # wrong: negative ids wrap
    run_checks("token-embeddings", "embedding_forward", ns)  # no CheckFailed while grading
    run_checks("token-embeddings", "no_such_group", ns)  # not in the spec: nothing kept
    check(ns["embedding_forward"])
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3 and "judged by the grader" in out[0] and "not part of this grading run" in out[1]
    assert "self-checks do not run while grading" in out[2] and "PASS" not in " ".join(out)
    published = []
    monkeypatch.setattr("IPython.display.publish_display_data", lambda data, *a, **k: published.append(data))
    monkeypatch.setattr(grading, "_kernel_namespace", lambda: ns)
    grading.emit()
    [data] = published
    assert list(data) == [grading.MIME]
    results = grading.decode_emitted(data[grading.MIME])
    assert set(results) == {"embedding_forward", "embedding_forward_hidden", "one_hot"}
    assert not all(
        ok
        for _, ok, _ in core.judge_group("token-embeddings", "embedding_forward", results["embedding_forward"], seed=5)
    )
    assert all(ok for _, ok, _ in core.judge_group("token-embeddings", "one_hot", results["one_hot"], seed=5))


def test_grading_mode_keeps_the_data_of_the_time_the_cell_ran(grading_mode, monkeypatch):
    """Encoded when the test cell runs: a later cell that changes the returned arrays changes nothing."""
    grading_mode(["one_hot"])
    kept = []

    def one_hot(ids, vocab_size):
        out = np.eye(vocab_size, dtype=np.float32)[ids]
        if np.any(np.asarray(ids) < 0):
            raise IndexError("negative id")
        kept.append(out)
        return out

    run_checks("token-embeddings", "one_hot", {"one_hot": one_hot})
    for array in kept:
        array[...] = 7
    published = []
    monkeypatch.setattr("IPython.display.publish_display_data", lambda data, *a, **k: published.append(data))
    grading.emit()
    results = grading.decode_emitted(published[0][grading.MIME])
    assert all(ok for _, ok, _ in core.judge_group("token-embeddings", "one_hot", results["one_hot"], seed=0))


def test_local_mode_raises_on_failure_and_the_fixed_local_seed_drives_hidden_groups(capsys, monkeypatch):
    monkeypatch.delenv(grading.SPEC_ENV, raising=False)
    with pytest.raises(AssertionError, match="expected IndexError"):
        run_checks("token-embeddings", "embedding_forward", {"embedding_forward": lambda w, ids: w[ids]})
    capsys.readouterr()
    seeds = []
    probe_group = registry.probe_group
    monkeypatch.setattr(registry, "probe_group", lambda *a: seeds.append(a[-1]) or probe_group(*a))
    run_checks("token-embeddings", "embedding_forward_hidden", dict(REFERENCE_NAMESPACE))
    assert capsys.readouterr().out.count("PASS ") == len(registry.group("token-embeddings", "embedding_forward_hidden"))
    assert seeds == [core.LOCAL_HIDDEN_SEED] and core.LOCAL_HIDDEN_SEED == 0 and core.VISIBLE_SEED == 0


def test_a_malformed_spec_is_reported_by_the_cell_and_refused_by_emit(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "spec.json"
    bad.write_text(json.dumps({"assignment": "token-embeddings", "groups": "one_hot"}))
    monkeypatch.setenv(grading.SPEC_ENV, str(bad))
    run_checks("token-embeddings", "one_hot", {})
    assert "not probed" in capsys.readouterr().out
    with pytest.raises(ValueError, match="needs 'groups'"):
        grading.emit()


@pytest.mark.parametrize(
    "text",
    [
        "not base64 at all!",
        base64.b64encode(b"\x00" * 40).decode(),
        base64.b64encode(b"garbage").decode(),
        "",
        base64.b64encode(transport.encode([1, 2])).decode(),
        base64.b64encode(transport.encode({"g": 3})).decode(),
    ],
)
def test_decode_emitted_refuses_garbage_with_value_error(text):
    with pytest.raises(ValueError):
        grading.decode_emitted(text)


def test_decode_refuses_compressed_and_cut_blobs():
    import io

    blob = transport.encode({"x": np.arange(1000.0)})
    assert np.array_equal(transport.decode(blob)["x"], np.arange(1000.0))
    header = int.from_bytes(blob[:8], "little")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, a0=np.zeros(10**6))
    with pytest.raises(ValueError, match="compressed"):
        transport.decode(blob[: 8 + header] + buffer.getvalue())
    for cut in (3, 8 + header // 2, len(blob) - 5):
        with pytest.raises(ValueError):
            transport.decode(blob[:cut])


# ------------------------------------------------------------------------------------------------ in a bare interpreter
_CHILD = r'''
import importlib.abc, json, os, sys
sys.path[:0] = [sys.argv[1]] + json.loads(sys.argv[2])
tried = []


class Watch(importlib.abc.MetaPathFinder):
    """Records (does not block) every attempt to import a judge-side module."""
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("autograder.reference", "autograder.checks", "autograder.grading", "autograder.book")):
            tried.append(name)
        return None


sys.meta_path.insert(0, Watch())
from IPython.core.interactiveshell import InteractiveShell
import autograder
from autograder.student import grading
job = json.loads(open(sys.argv[3]).read())
shell = InteractiveShell.instance()
published = []
shell.display_pub.publish = lambda data, metadata=None, **kw: published.append(data)
payloads = {}
for assignment, spec in job["specs"].items():
    os.environ[grading.SPEC_ENV] = spec
    grading._PROBED.clear()                   # each assignment stands for a fresh kernel
    for source in job["cells"][assignment]:
        result = shell.run_cell(source, store_history=False)
        if not result.success:
            raise SystemExit(f"cell failed in the sandbox copy: {result.error_in_exec!r}")
    shell.run_cell("from autograder.student import grading as _g\n_g.emit()", store_history=False)
    payloads[assignment] = published.pop()[grading.MIME]
tried_while_grading = list(tried)
blocked = {}
for name in ("autograder.reference", "autograder.reference.numpy_ref", "autograder.checks", "autograder.checks.core"):
    try:
        importlib.import_module(name)
        blocked[name] = "imported"
    except ModuleNotFoundError:
        blocked[name] = "missing"
print(json.dumps({"payloads": payloads, "blocked": blocked, "tried": tried_while_grading, "file": autograder.__file__,
                  "modules": sorted(m for m in sys.modules if m.startswith("autograder"))}))
'''


def _solution_cells(assignment: str, run_groups: set[str]) -> list[str]:
    """The setup and answer cells of the solution notebook, then ``run_checks`` for ``run_groups`` (the test cells
    the kernel runs; emit() probes the others)."""
    nb = nbformat.read(solution_path(assignment), as_version=4)
    meta = [(c, c.metadata.get("nbgrader", {})) for c in nb.cells if c.cell_type == "code"]
    cells = [c.source for c, m in meta if m.get("solution") or m.get("grade_id") in ("setup", "measure")]
    return cells + [f"run_checks({assignment!r}, {g!r})" for g in sorted(run_groups)]


@pytest.mark.slow
def test_the_sandbox_files_alone_probe_every_group_and_the_payload_judges_full_marks(tmp_path):
    sandbox = tmp_path / "sandbox"
    for rel in sandbox_tree(ROOT):
        (sandbox / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, sandbox / rel)
    import IPython
    import torch

    sites = sorted({str(Path(m.__file__).resolve().parents[1]) for m in (np, torch, IPython)})
    job = {"specs": {}, "cells": {}}
    seeds = {a: 1000 + i for i, a in enumerate(ASSIGNMENTS)}
    for assignment in ASSIGNMENTS:
        groups = sorted(registry.groups(assignment))
        spec = tmp_path / f"{assignment}.json"
        spec.write_text(
            json.dumps(
                {"assignment": assignment, "groups": groups, "hidden_seed": seeds[assignment], "probe_modules": []}
            )
        )
        job["specs"][assignment] = str(spec)
        job["cells"][assignment] = _solution_cells(assignment, set(groups[::2]))
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", grading.SPEC_ENV)}
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run(
        [sys.executable, "-S", "-c", _CHILD, str(sandbox), json.dumps(sites), str(tmp_path / "job.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(report["file"]).resolve().is_relative_to(sandbox.resolve())
    assert report["blocked"] == dict.fromkeys(report["blocked"], "missing")
    assert report["tried"] == [], f"grading mode tried to import the judge side: {report['tried']}"
    assert not any(m.startswith(("autograder.reference", "autograder.checks")) for m in report["modules"])
    for assignment in ASSIGNMENTS:
        results = grading.decode_emitted(report["payloads"][assignment])
        assert set(results) == set(registry.groups(assignment))
        for group_name, data in results.items():
            verdicts = core.judge_group(assignment, group_name, data, seed=seeds[assignment])
            assert all(ok for _, ok, _ in verdicts), (assignment, group_name, verdicts)
