"""The on-disk memos of a grading run's fixed costs (``autograder/grading/cache.py``): each is reused while what it
depends on is unchanged, and recomputed as soon as any of it changes; failures are never stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.grading import cache, course, sandbox


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_bwrap(folder) -> str:
    folder.mkdir(exist_ok=True)
    path = folder / "bwrap"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return str(path)


def test_a_passed_sandbox_check_is_reused_until_bwrap_changes(tmp_path, monkeypatch):
    calls = []

    def require():
        calls.append(1)
        return sandbox.Availability(True, sandbox.ISOLATION_BWRAP, f"checked {len(calls)}")

    monkeypatch.setattr(sandbox, "require", require)
    bwrap = _fake_bwrap(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    first = cache.require_sandbox()
    again = cache.require_sandbox()
    assert len(calls) == 1 and again == first and again.ok and again.detail == "checked 1"
    with open(bwrap, "a") as fh:  # another bwrap binary: checked again
        fh.write("# upgraded\n")
    assert cache.require_sandbox().detail == "checked 2" and len(calls) == 2


def test_a_failed_sandbox_check_is_never_stored(tmp_path, monkeypatch):
    calls = []

    def require():
        calls.append(1)
        raise sandbox.SandboxUnavailable("bwrap cannot create namespaces here")

    monkeypatch.setattr(sandbox, "require", require)
    _fake_bwrap(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    for expected in (1, 2):
        with pytest.raises(sandbox.SandboxUnavailable):
            cache.require_sandbox()
        assert len(calls) == expected
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no bwrap at all: never cached either
    monkeypatch.setattr(sandbox, "require", lambda: calls.append(1) or sandbox.Availability(True, "bwrap", "x"))
    cache.require_sandbox()
    cache.require_sandbox()
    assert len(calls) == 4


def test_the_checks_summary_is_reused_until_a_check_or_probe_module_changes(tmp_path, monkeypatch):
    (tmp_path / "cachetest_checks.py").write_text("X = 1\n")
    (tmp_path / "cachetest_probes.py").write_text("Y = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    calls = []

    def load_checks(assignment, modules, grade_ids):
        calls.append(list(modules))
        return ["cell_a"], ["cachetest_probes"]

    monkeypatch.setattr(cache, "load_checks", load_checks)
    summary = cache.checks_summary("grading-fixture", ["cachetest_checks"], ["cell_a", "cell_b"])
    assert summary == (["cell_a"], ["cachetest_probes"]) and len(calls) == 1
    assert cache.checks_summary("grading-fixture", ["cachetest_checks"], ["cell_a", "cell_b"]) == summary
    assert len(calls) == 1  # nothing imported the second time
    (tmp_path / "cachetest_probes.py").write_text("Y = 2\n")  # a probe module changed
    cache.checks_summary("grading-fixture", ["cachetest_checks"], ["cell_a", "cell_b"])
    assert len(calls) == 2
    (tmp_path / "cachetest_checks.py").write_text("X = 2\n")  # a check module changed
    cache.checks_summary("grading-fixture", ["cachetest_checks"], ["cell_a", "cell_b"])
    assert len(calls) == 3
    cache.checks_summary("grading-fixture", ["cachetest_checks"], ["cell_a"])  # other test cells
    assert len(calls) == 4


def test_a_check_module_that_does_not_import_is_never_cached(monkeypatch):
    def load_checks(assignment, modules, grade_ids):
        raise ModuleNotFoundError("No module named 'no_such_checks'", name="no_such_checks")

    monkeypatch.setattr(cache, "load_checks", load_checks)
    for _ in range(2):
        with pytest.raises(ImportError):
            cache.checks_summary("grading-fixture", ["no_such_checks"], ["cell_a"])


def test_the_real_checks_summary_matches_the_imported_checks():
    """The cached answer for a course assignment is what importing its judges says, before and after caching."""
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "solutions" / "token-embeddings" / "token-embeddings.ipynb"
    cells = [c.grade_id for c in course.source_info(source.read_bytes()).test_cells]
    direct = cache.load_checks("token-embeddings", [], cells)
    assert direct[0] == cells and direct[1] == []  # every test cell of the assignment has checks
    assert cache.checks_summary("token-embeddings", [], cells) == direct
    assert cache.checks_summary("token-embeddings", [], cells) == direct


def test_the_gradebook_blob_is_reused_per_source(monkeypatch):
    calls = []

    def prepare(assignment, notebook_name, source):
        calls.append(source)
        return b"gradebook of " + source

    monkeypatch.setattr(course, "prepare_gradebook_blob", prepare)
    assert cache.gradebook_blob("a1", "a1", b"one") == b"gradebook of one"
    assert cache.gradebook_blob("a1", "a1", b"one") == b"gradebook of one" and len(calls) == 1
    assert cache.gradebook_blob("a1", "a1", b"two") == b"gradebook of two" and len(calls) == 2
    assert cache.gradebook_blob("a2", "a1", b"two") == b"gradebook of two" and len(calls) == 3


def _figure(scores, top):
    _figure.calls += 1
    return f"data:image/png;base64,{sum(scores)}-{top}", f"{len(scores)} scores"


_figure.calls = 0


def test_start_up_peaks_are_reused_until_the_installed_distributions_change(tmp_path, monkeypatch):
    calls = []

    def measure(programs):
        calls.append(list(programs))
        return [1000 * len(calls), 2000]

    programs = ["import numpy", "import nbgrader"]
    assert cache.start_peaks(programs, measure) == [1000, 2000]
    assert cache.start_peaks(programs, measure) == [1000, 2000] and len(calls) == 1
    assert cache.start_peaks(["import torch", "import nbgrader"], measure) == [2000, 2000]  # other programs
    site = tmp_path / "site"
    (site / "numpy-9.9.dist-info").mkdir(parents=True)  # a package installed or upgraded: measured again
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    assert cache.start_peaks(programs, measure) == [3000, 2000] and len(calls) == 3


def test_a_failed_peak_measurement_is_never_stored():
    calls = []

    def measure(programs):
        calls.append(1)
        return [0, 2000]  # a program that failed to print its peak

    for expected in (1, 2):
        assert cache.start_peaks(["import nothing_here"], measure) == [0, 2000]
        assert len(calls) == expected


def test_report_figures_are_reused_per_data(private_cache):
    _figure.calls = 0
    assert cache.plot(_figure, [1.0, 2.0], 5.0) == ("data:image/png;base64,3.0-5.0", "2 scores")
    assert cache.plot(_figure, [1.0, 2.0], 5.0) == ("data:image/png;base64,3.0-5.0", "2 scores")
    assert _figure.calls == 1
    assert cache.plot(_figure, [1.0, 2.5], 5.0)[0] == "data:image/png;base64,3.5-5.0" and _figure.calls == 2
    for i in range(cache._MAX_PLOTS + 5):  # the folder keeps the newest figures only
        cache.plot(_figure, [float(i)], 1.0)
    assert len(list(private_cache.glob("plot-*"))) == cache._MAX_PLOTS


def test_an_unwritable_cache_folder_only_means_no_cache(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("AUTOGRADER_CACHE_DIR", str(tmp_path / "file" / "cache"))
    _figure.calls = 0
    cache.plot(_figure, [1.0], 1.0)
    cache.plot(_figure, [1.0], 1.0)
    assert _figure.calls == 2


@pytest.mark.parametrize("skip", [False, True])
def test_skip_unused_imports_keeps_rfc3987_syntax_out_and_notebooks_still_validate(skip):
    code = (
        "import sys\n"
        "from autograder.grading.course import skip_unused_imports\n"
        + ("skip_unused_imports()\n" if skip else "")
        + "import nbformat\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1')])\n"
        "nbformat.validate(nb)\n"
        "bad = nbformat.v4.new_notebook(); bad.cells = [{'cell_type': 'nonsense'}]\n"
        "try:\n    nbformat.validate(bad)\nexcept nbformat.ValidationError:\n    print('invalid caught')\n"
        "print('rfc3987_syntax' in sys.modules and sys.modules['rfc3987_syntax'] is not None)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    lines = proc.stdout.split()
    assert "caught" in lines
    try:
        import importlib.util

        installed = importlib.util.find_spec("rfc3987_syntax") is not None
    except ValueError:
        installed = True
    assert lines[-1] == str(installed and not skip)


# ------------------------------------------------------------------------------------------------ an unchanged rerun
FIXTURE_SOURCE = Path(__file__).parent / "fixtures" / "grading" / "grading-fixture.ipynb"


def test_the_gradebook_is_populated_again_only_when_the_source_or_its_recorded_cells_changed(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    from autograder.grading.store import Store

    source = FIXTURE_SOURCE.read_bytes()
    blob = course.prepare_gradebook_blob("grading-fixture", "grading-fixture", source)
    calls = []
    real = course.populate_gradebook
    monkeypatch.setattr(course, "populate_gradebook", lambda *a: calls.append(1) or real(*a))

    def prepare(data: bytes, out: str = "out", with_blob: bytes | None = None) -> None:
        store = Store(tmp_path / out, "grading-fixture", "grading-fixture")
        try:
            store.prepare_assignment(data, with_blob)
        finally:
            store.close()

    prepare(source)
    prepare(source)
    assert len(calls) == 1  # unchanged: the gradebook already holds what populating would write
    db = f"sqlite:///{tmp_path / 'out' / 'gradebook.db'}"
    with Gradebook(db) as gb:  # someone changed a recorded cell by hand: populated again, which restores it
        cell = gb.find_grade_cell("test_unit", "grading-fixture", "grading-fixture")
        cell.max_score = 99.0
        gb.db.commit()
    prepare(source)
    assert len(calls) == 2
    with Gradebook(db) as gb:
        assert gb.find_grade_cell("test_unit", "grading-fixture", "grading-fixture").max_score == 3.0
    edited = source.replace(b'"points": 3', b'"points": 4')
    assert edited != source
    prepare(edited)  # another version of the source (no submissions yet): populated again
    assert len(calls) == 3
    with Gradebook(db) as gb:
        assert gb.find_grade_cell("test_unit", "grading-fixture", "grading-fixture").max_score == 4.0
    prepare(source, "fresh", blob)  # a new --out starts from the prepared gradebook, noted as populated
    prepare(source, "fresh", blob)
    assert len(calls) == 3


def test_similarity_flags_are_remembered_per_class_and_recomputed_when_a_notebook_changes(
    tmp_path, monkeypatch, capsys
):
    from autograder.grading import cli, similarity
    from autograder.grading.store import Store

    calls = []

    def class_flags(source, answers, warn=None):
        calls.append(sorted(answers))
        warn(f"warning {len(calls)}")
        return {student: [f"flag {len(calls)}"] for student in answers}

    monkeypatch.setattr(similarity, "class_flags", class_flags)
    store = Store(tmp_path / "out", "a", "a")
    try:
        answers = {"ann": b"one", "bob": b"two"}
        first = cli._similarity_flags(b"source", answers, store)
        again = cli._similarity_flags(b"source", dict(answers), store)
        assert first == again == {"ann": ["flag 1"], "bob": ["flag 1"]} and len(calls) == 1
        # a remembered run repeats its warnings
        assert capsys.readouterr().err.splitlines() == ["warning: warning 1", "warning: warning 1"]
        changed = cli._similarity_flags(b"source", {**answers, "bob": b"three"}, store)
        assert changed == {"ann": ["flag 2"], "bob": ["flag 2"]} and len(calls) == 2
        assert cli._similarity_flags(b"other source", answers, store)["ann"] == ["flag 3"]
        (store.results_dir / "state" / cli.SIMILARITY_FILE).write_text("{not json")
        assert cli._similarity_flags(b"other source", answers, store)["ann"] == ["flag 4"]
        record = store.read_state(cli.SIMILARITY_FILE)  # the right key, malformed flags: computed again
        store.write_state(cli.SIMILARITY_FILE, {**record, "flags": "not a mapping"})
        assert cli._similarity_flags(b"other source", answers, store)["ann"] == ["flag 5"]
    finally:
        store.close()


def test_nbgrader_is_imported_without_its_server_extensions_until_one_is_used():
    code = (
        "import sys\n"
        "from autograder.grading.course import skip_unused_imports\n"
        "skip_unused_imports()\n"
        "import nbgrader.api, nbgrader.plugins, nbgrader.utils\n"
        "from nbgrader.preprocessors import ClearSolutions\n"
        "from nbgrader._version import __version__\n"
        "loaded = any(m.startswith('nbgrader.server_extensions') for m in sys.modules)\n"
        "print(loaded, nbgrader.__version__ == __version__)\n"
        "print(nbgrader._jupyter_server_extension_points(), callable(nbgrader.load_formgrader))\n"
        "print('nbgrader.server_extensions.formgrader' in sys.modules)\n"
        "try:\n    nbgrader.no_such_thing\nexcept AttributeError:\n    print('AttributeError')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.splitlines() == ["False True", "[{'module': 'nbgrader'}] True", "True", "AttributeError"]
