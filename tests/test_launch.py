"""Every way of opening a notebook runs it: the setup cell, the chapters' ``.ipynb`` twins, Binder's environment,
one repository URL, nbgrader's own release/fetch/submit flow, and a bare environment like Colab's.

The launch links of the built site are checked in ``tests/test_site.py`` (they need the book build).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from autograder import setup_cell, twins
from autograder.student.registry import ASSIGNMENTS

ROOT = Path(__file__).resolve().parents[1]
#: distributions of a bare Colab-like environment (with what they require): no course package, no Jupyter Book,
#: no nbgrader. pip and setuptools are there too, as on Colab (the setup cell runs pip, pip builds the package).
COLAB_LIKE = ("numpy", "torch", "matplotlib", "ipykernel", "tqdm", "pip", "setuptools")
#: packages only the tests, the book build or the instructor need: never in Binder's environment
TEST_ONLY = (
    "pytest",
    "pytest-xdist",
    "hypothesis",
    "psycopg",
    "psycopg-binary",
    "jupyter-book",
    "nbgrader",
    "dask",
    "distributed",
    "sphinx-mathjax-offline",
)


def first_code_source(nb) -> str:
    return next(cell.source for cell in nb.cells if cell.cell_type == "code")


def tracked_files() -> list[Path]:
    """The files a clone of the repository would have: tracked and untracked-but-not-ignored ones that exist."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted({ROOT / rel for rel in out.split("\0") if rel and (ROOT / rel).is_file()})


# --------------------------------------------------------------------------------------------------------------
# the setup cell: one text, derived from _config.yml and pyproject.toml, first in every notebook
# --------------------------------------------------------------------------------------------------------------
def test_setup_cell_derives_from_the_repository_url_and_version(tmp_path):
    for name in ("_config.yml", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    config = (tmp_path / "_config.yml").read_text()
    (tmp_path / "_config.yml").write_text(config.replace(setup_cell.repository(), "https://github.com/someone/course/"))
    (tmp_path / "pyproject.toml").write_text(
        re.sub(r'(?m)^version = ".*"$', 'version = "2.3.4"', (tmp_path / "pyproject.toml").read_text())
    )
    assert setup_cell.install_source(tmp_path) == "git+https://github.com/someone/course@v2.3.4"
    source = setup_cell.setup_source(tmp_path)
    assert setup_cell.is_setup_source(source) and '"git+https://github.com/someone/course@v2.3.4"' in source
    compile(source, "<setup cell>", "exec")
    (tmp_path / "_config.yml").write_text(config.replace(setup_cell.repository(), "https://gitlab.com/a/b"))
    with pytest.raises(ValueError, match="repository.url must be https://github.com/<owner>/<name>"):
        setup_cell.repository(tmp_path)


def test_every_chapter_and_assignment_notebook_starts_with_the_current_setup_cell():
    import jupytext

    wanted = setup_cell.setup_source()
    notebooks = {path: jupytext.read(path) for path in twins.chapters()}
    notebooks |= {
        path: nbformat.read(path, as_version=4) for path in twins.chapters() for path in [path.with_suffix(".ipynb")]
    }
    for assignment in ASSIGNMENTS:
        for folder in ("solutions", "exercises"):
            path = ROOT / folder / assignment / f"{assignment}.ipynb"
            notebooks[path] = nbformat.read(path, as_version=4)
    assert len(notebooks) == 2 * len(twins.chapters()) + 2 * len(ASSIGNMENTS) >= 2 * 4 + 2 * 4
    stale = [str(path.relative_to(ROOT)) for path, nb in notebooks.items() if first_code_source(nb) != wanted]
    assert not stale, f"first code cell is not the current setup cell: {stale}"
    for assignment in ASSIGNMENTS:  # a locked nbgrader cell: autograde restores it if a student edits it
        nb = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
        cell = next(cell for cell in nb.cells if cell.cell_type == "code")
        assert cell.metadata.nbgrader.locked and cell.metadata.nbgrader.grade_id == setup_cell.CELL_ID


def test_stamping_inserts_replaces_and_is_idempotent():
    source = setup_cell.setup_source()
    chapter = (
        "---\nkernelspec:\n  name: python3\n---\n\n# T\n\n```{code-cell} ipython3\n:tags: [hide-input]\n\nx = 1\n```\n"
    )
    once = setup_cell.stamp_markdown(chapter, source)
    assert once.index(setup_cell.MARKER) < once.index("x = 1") and once.count("{code-cell}") == 2
    assert setup_cell.stamp_markdown(once, source) == once
    older = once.replace("import autograder\nexcept", "import autograder  # an older cell\nexcept")
    assert older != once and setup_cell.stamp_markdown(older, source) == once
    with pytest.raises(ValueError, match="not a notebook"):
        setup_cell.stamp_markdown("# prose only\n", source)

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A"), nbformat.v4.new_code_cell("y = 2")])
    setup_cell.stamp_notebook(nb, source, nbgrader=True)
    assert [c.source for c in nb.cells] == ["# A", source, "y = 2"]
    assert nb.cells[1].metadata.nbgrader.locked and nb.cells[1].id == setup_cell.CELL_ID
    nb.cells[1].source = source.replace("pass", "pass  # edited")
    setup_cell.stamp_notebook(nb, source, nbgrader=True)
    assert [c.source for c in nb.cells] == ["# A", source, "y = 2"]


def test_twins_are_up_to_date():
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "twins", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_twins_are_deterministic_and_check_names_a_stale_one(tmp_path, capsys):
    for name in ("_config.yml", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book")
    assert twins.main([], root=tmp_path) == 0
    assert "wrote" not in capsys.readouterr().out  # regenerating the committed twins is a no-op
    chapter = twins.chapters(tmp_path)[0]
    assert twins.twin_text(chapter.read_text()) == twins.twin_text(chapter.read_text())
    chapter.write_text(chapter.read_text().replace("\n# ", "\n# Edited: ", 1))
    assert twins.main(["--check"], root=tmp_path) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"error: out of date: book/{chapter.stem}.ipynb: run `python -m autograder twins`"), err
    assert twins.main([], root=tmp_path) == 0 and twins.main(["--check"], root=tmp_path) == 0
    twin = json.loads(chapter.with_suffix(".ipynb").read_text())
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in twin["cells"])
    assert "Edited: " in "".join(twin["cells"][0]["source"])


_CELL_HARNESS = r"""
import json, subprocess, sys
mode, source = sys.argv[1], open(sys.argv[2]).read()

class Blocker:  # "autograder" is not installed (the package is importable everywhere else in this venv)
    def find_spec(self, name, path=None, target=None):
        if name == "autograder" or name.startswith("autograder."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

class Result:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr, self.stdout = returncode, stderr, ""

calls = []
def fake_run(argv, **kwargs):
    calls.append(argv)
    if mode == "fail":
        return Result(1, "Collecting x\n  Cloning ...\nERROR: Could not find a version that satisfies x\n"
                         "ERROR: No matching distribution found for x\n")
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, Blocker)]  # "installed" now
    return Result(0, "")

subprocess.run = fake_run
if mode != "installed":
    sys.meta_path.insert(0, Blocker())
try:
    exec(compile(source, "<setup cell>", "exec"), {})
except RuntimeError as exc:
    print("RuntimeError:", exc)
print(json.dumps(calls))
"""


def _run_cell(tmp_path, mode: str, **env) -> tuple[list[str], list]:
    (tmp_path / "harness.py").write_text(_CELL_HARNESS)
    (tmp_path / "cell.py").write_text(setup_cell.setup_source())
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "harness.py"), mode, str(tmp_path / "cell.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in {**os.environ, **env}.items() if v is not None},
    )
    assert proc.returncode == 0, proc.stderr
    *lines, calls = proc.stdout.splitlines()
    return lines, json.loads(calls)


def test_setup_cell_does_nothing_where_the_package_imports(tmp_path):
    """The local venv, a course JupyterHub, the book build, the grading sandbox (no network): no pip, no output."""
    assert _run_cell(tmp_path, "installed") == ([], [])


def test_setup_cell_installs_the_pinned_source_keeping_numpy_and_torch(tmp_path):
    lines, calls = _run_cell(tmp_path, "install", AUTOGRADER_SOURCE=None)
    keep = [f"numpy=={importlib.metadata.version('numpy')}", f"torch=={importlib.metadata.version('torch')}"]
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", setup_cell.install_source(), *keep]]
    assert lines == [
        f"installed autograder {importlib.metadata.version('autograder')} from "
        f"{setup_cell.install_source()}; kept {', '.join(keep)}"
    ]
    lines, calls = _run_cell(tmp_path, "install", AUTOGRADER_SOURCE="/some/checkout")
    assert calls[0][5] == "/some/checkout" and lines[0].startswith("installed autograder ") and len(lines) == 1


def test_setup_cell_reports_a_failed_install_in_one_line(tmp_path):
    lines, calls = _run_cell(tmp_path, "fail", AUTOGRADER_SOURCE="/no/such/checkout")
    assert len(calls) == 1
    assert lines == [
        "RuntimeError: pip could not install the course package from /no/such/checkout: "
        "ERROR: Could not find a version that satisfies x"
    ]


def test_chapter_glue_helpers_run_without_myst_nb(monkeypatch):
    """In Colab or Binder (no myst-nb) a chapter's glue calls store nothing but still check their arguments, and a
    glued figure is shown in the notebook instead."""
    import IPython.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from autograder.book import notebook

    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import myst_nb now raises ModuleNotFoundError
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    assert notebook.glue_number("n", 3) is None and notebook.glue_text("t", "x") is None
    notebook.glue_markdown("m", "`code`")
    with pytest.raises(TypeError, match="needs a real number"):
        notebook.glue_number("n", "3")
    fig = plt.figure()
    notebook.glue_figure("f", fig)
    assert shown == [fig] and not plt.fignum_exists(fig.number)


# --------------------------------------------------------------------------------------------------------------
# one repository URL
# --------------------------------------------------------------------------------------------------------------
def _without_setup_cells(path: Path, text: str) -> str:
    """A file's text without its setup cells (they are generated from _config.yml and checked above)."""
    if path.suffix == ".ipynb":
        nb = json.loads(text)
        nb["cells"] = [c for c in nb["cells"] if not setup_cell.is_setup_source("".join(c["source"]))]
        return json.dumps(nb)
    if path.suffix == ".md":
        return text.replace(setup_cell.setup_source(), "")
    return text


def test_the_repository_url_is_written_in_one_place():
    """``_config.yml`` holds the URL; setup cells and the site's buttons derive from it. No other file may carry it,
    a link into the repository's owner, a hand-made Colab/Binder link, or a ``git+`` install source (a stale copy)."""
    url = setup_cell.repository()
    owner_repo = url.removeprefix("https://github.com/")
    found = []
    for path in tracked_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in ("_config.yml", "tests/test_launch.py", "tests/test_site.py") or path.suffix in (".png", ".svg"):
            continue
        try:
            text = _without_setup_cells(path, path.read_text())
        except UnicodeDecodeError:
            continue
        # citations of other projects (github.com/ggml-org/llama.cpp) are fine; any link into this repository's
        # owner, a hand-made launch link or an install source is a second copy of the URL
        patterns = (
            re.escape(owner_repo),
            r"github\.com/" + re.escape(owner_repo.split("/")[0]) + r"\b",
            r"colab\.research\.google\.com/github",
            r"mybinder\.org/v2",
            r"git\+https?://",
        )
        found += [f"{rel}: {m.group(0)}" for pattern in patterns for m in re.finditer(pattern, text)]
    assert not found, "repository URL copies outside _config.yml:\n" + "\n".join(sorted(set(found)))


# --------------------------------------------------------------------------------------------------------------
# Binder and the package's dependency ranges
# --------------------------------------------------------------------------------------------------------------
def _requirements(path: Path) -> dict[str, Requirement]:
    reqs = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            reqs[canonicalize_name(req.name)] = req
    return reqs


def _pinned(req: Requirement) -> str:
    (spec,) = req.specifier
    assert spec.operator == "==", f"{req} is not pinned"
    return spec.version


def test_binder_environment_runs_the_notebooks_and_holds_nothing_only_the_tests_need():
    binder = ROOT / "binder"
    local = _requirements(ROOT / "requirements.txt")
    wanted = _requirements(binder / "requirements.txt")
    assert (binder / "runtime.txt").read_text().strip() == f"python-{sys.version_info.major}.{sys.version_info.minor}"
    post_build = binder / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable (repo2docker runs it)"
    assert "pip install --no-deps" in post_build.read_text()
    forbidden = [name for name in wanted if name in {canonicalize_name(n) for n in TEST_ONLY}]
    assert not forbidden, f"binder/requirements.txt installs what only the tests need: {forbidden}"
    # repo2docker installs system packages (Chromium, PostgreSQL) only from apt.txt, conda ones from environment.yml
    assert sorted(os.listdir(binder)) == ["postBuild", "requirements.txt", "runtime.txt"]
    assert not re.search(r"apt|chromium|postgres", post_build.read_text(), flags=re.I)
    for name, req in wanted.items():  # the same versions as the local environment (torch: its CPU build)
        assert name in local, f"binder pins {name}, requirements.txt does not"
        assert _pinned(req).split("+")[0] == _pinned(local[name]), f"{name}: binder {req}, local {local[name]}"
    project = importlib.metadata.metadata("autograder").get_all("Requires-Dist")
    for dependency in map(Requirement, project):
        if dependency.marker is not None:
            continue  # the instructor extra
        name = canonicalize_name(dependency.name)
        assert name in wanted, f"the package needs {dependency}; binder/requirements.txt lacks it"
        for where, pins in (("binder", wanted), ("requirements.txt", local)):
            version = _pinned(pins[name]).split("+")[0]
            assert dependency.specifier.contains(version), f"{where} pins {name}=={version} outside {dependency}"
        assert any(spec.operator in (">=", ">", "~=") for spec in dependency.specifier), f"{dependency} is no range"


# --------------------------------------------------------------------------------------------------------------
# a bare environment like Colab's
# --------------------------------------------------------------------------------------------------------------
def _closure(site: Path, roots) -> dict:
    """The installed distributions in ``site`` that ``roots`` need (their requirements, recursively, no extras)."""
    dists = {}
    for dist in importlib.metadata.distributions(path=[str(site)]):
        dists.setdefault(canonicalize_name(dist.metadata["Name"]), dist)
    todo, seen = [canonicalize_name(r) for r in roots], {}
    while todo:
        name = todo.pop()
        if name in seen or name not in dists:
            continue
        seen[name] = dists[name]
        for line in dists[name].requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def _fingerprint(dist) -> str:
    """Version, and every installed file's path, size and modification time, of one distribution."""
    digest = hashlib.sha256(dist.version.encode())
    for file in sorted(dist.files or [], key=str):
        path = Path(dist.locate_file(file))
        if path.exists():
            stat = path.stat()
            digest.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    """A virtualenv without pip or the course package whose numpy, torch, matplotlib, ipykernel, tqdm, pip and
    setuptools (and what they require) are this venv's own installs, seen through a ``.pth`` file of symlinks (so
    nothing is downloaded), plus a copy of the checkout for ``AUTOGRADER_SOURCE``. pip runs offline (no index, no
    configuration files, no build isolation: it builds with the shared setuptools)."""
    base = tmp_path_factory.mktemp("colab")
    site = Path(sysconfig.get_paths()["purelib"])
    dists = _closure(site, COLAB_LIKE)
    assert "autograder" not in dists and "nbgrader" not in dists and "myst-nb" not in dists
    shared = base / "shared"
    shared.mkdir()
    tops = {Path(str(f)).parts[0] for dist in dists.values() for f in dist.files or []}
    for top in sorted(t for t in tops if not t.startswith("..") and t != "__pycache__" and (site / t).exists()):
        (shared / top).symlink_to(site / top)
    venv = base / "venv"
    subprocess.run(
        [getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    venv_site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", purelib], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    (venv_site / "colab-shared.pth").write_text(f"{shared}\n")
    source = base / "checkout"
    for path in tracked_files():
        target = source / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    home = base / "home"
    home.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        # pip reads this store_false option from the environment inverted: "0" turns build isolation OFF
        "PIP_NO_BUILD_ISOLATION": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "AUTOGRADER_SOURCE": str(source),
    }
    before = {name: _fingerprint(dists[name]) for name in ("numpy", "torch")}
    yield {
        "python": venv / "bin" / "python",
        "site": venv_site,
        "shared": shared,
        "env": env,
        "source": source,
        "home": home,
    }
    after = {name: _fingerprint(d) for name, d in _closure(site, ("numpy", "torch")).items() if name in before}
    assert after == before, "numpy or torch of the shared installation changed"


def _kernel_run(colab, cells: list[str], cwd: Path) -> list[dict]:
    """Run ``cells`` in a fresh ipykernel of the Colab-like venv; returns the executed cells."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    kernels = cwd.parent / "kernels"
    spec = kernels / "colab-like"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(colab["python"]), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Colab-like",
                "language": "python",
            }
        )
    )
    km = KernelManager(kernel_name="colab-like", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    try:
        NotebookClient(nb, km=km, timeout=600, allow_errors=False, resources={"metadata": {"path": str(cwd)}}).execute(
            env=colab["env"]
        )
    finally:  # nbclient shuts down only the kernels it created itself
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return nb.cells


def _stream(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


_ENVIRONMENT_REPORT = textwrap.dedent("""\
    import json, autograder, numpy, torch
    print(json.dumps({"autograder": autograder.__file__, "numpy": [numpy.__version__, numpy.__file__],
                      "torch": [torch.__version__, torch.__file__]}))""")


@functools.cache
def _notebooks_to_run() -> list[tuple[str, list[str], str | None]]:
    """``(name, cells, kind)`` for each exercise (setup cell, imports, first answer stub, its check; then the
    solution's answer and the check again) and each chapter (setup cell and the imports cell after it)."""
    import jupytext

    runs = []
    for assignment in ASSIGNMENTS:
        exercise = nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
        solution = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
        code = [c for c in exercise.cells if c.cell_type == "code"]
        answer = next(i for i, c in enumerate(code) if c.metadata.get("nbgrader", {}).get("solution"))
        check = next(c for c in code[answer:] if c.source.startswith("check("))
        grade_id = code[answer].metadata.nbgrader.grade_id
        solved = next(c for c in solution.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
        runs.append(
            (
                f"exercises/{assignment}",
                [code[0].source, code[1].source, code[answer].source, check.source, solved.source, check.source],
                "exercise",
            )
        )
    for chapter in twins.chapters():
        code = [c.source for c in jupytext.read(chapter).cells if c.cell_type == "code"]
        runs.append((f"book/{chapter.stem}", code[:2], "chapter"))
    return runs


def _fresh(name: str) -> bool:
    """The first exercise and the first chapter install the package afresh (an uninstall first); the others find
    it installed, as a second notebook opened in the same Colab runtime would (every setup cell is the same text:
    ``test_every_chapter_and_assignment_notebook_starts_with_the_current_setup_cell``)."""
    return name in {next(r[0] for r in _notebooks_to_run() if r[2] == kind) for kind in ("exercise", "chapter")}


@pytest.mark.slow
@pytest.mark.parametrize("name,cells,kind", _notebooks_to_run(), ids=[r[0] for r in _notebooks_to_run()])
def test_setup_cell_installs_the_package_in_a_colab_like_environment(colab, tmp_path, name, cells, kind):
    """A notebook's own setup cell installs the package from ``AUTOGRADER_SOURCE`` (a copy of the checkout) into an
    environment that has numpy and torch but not the package, prints one line and keeps numpy and torch (or, where
    an earlier notebook installed it, does nothing); then the notebook's next cells run there (an exercise's check
    reports the stub's FAIL, then the solution's PASS)."""
    if _fresh(name):
        subprocess.run(
            [str(colab["python"]), "-m", "pip", "uninstall", "-y", "-q", "autograder"],
            env=colab["env"],
            capture_output=True,
            timeout=300,
        )
        assert not list(colab["site"].glob("autograder*")), "the package is still installed"
    installed = bool(list(colab["site"].glob("autograder-*.dist-info")))
    start = time.perf_counter()
    executed = _kernel_run(colab, cells + [_ENVIRONMENT_REPORT], tmp_path)
    seconds = time.perf_counter() - start
    setup_out = _stream(executed[0])
    keep = f"numpy=={importlib.metadata.version('numpy')}, torch=={importlib.metadata.version('torch')}"
    line = f"installed autograder {importlib.metadata.version('autograder')} from {colab['source']}; kept {keep}\n"
    assert setup_out == ("" if installed else line), setup_out
    report = json.loads(_stream(executed[-1]))
    assert report["autograder"].startswith(str(colab["site"])), report  # installed into the bare venv ...
    for module in ("numpy", "torch"):  # ... next to the numpy and torch it found, unchanged
        version, file = report[module]
        assert version == importlib.metadata.version(module) and file.startswith(str(colab["shared"])), report
    assert not [p.name for p in colab["site"].iterdir() if p.name.lower().startswith(("numpy", "torch"))]
    if kind == "exercise":
        stub, solved = _stream(executed[3]), _stream(executed[5])
        assert "FAIL" in stub and "NotImplementedError" in stub, stub
        assert "PASS" in solved and "FAIL" not in solved, solved
    print(
        f"{name}: setup cell ({'installed' if not installed else 'package present'}) and {len(cells) - 1} more "
        f"cells in {seconds:.1f} s"
    )


# --------------------------------------------------------------------------------------------------------------
# nbgrader's own exchange: release, fetch, validate, submit, collect
# --------------------------------------------------------------------------------------------------------------
def _exchange(step: str, assignment: str, exchange: Path, course_root: Path, **config_values):
    """Run one of nbgrader's exchange steps (``ReleaseAssignment``, ``List``, ``FetchAssignment``, ``Submit``,
    ``Collect``) in this process, as its ``nbgrader <step>`` command does: the course directory's
    ``nbgrader_config.py`` where there is one (the instructor's), the exchange in ``exchange``."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeFactory
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (course_root / "nbgrader_config.py").is_file():
        config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config())
    config.CourseDirectory.root = str(course_root)
    config.CourseDirectory.assignment_id = assignment
    config.Exchange.root = str(exchange)
    config.Exchange.assignment_dir = str(course_root)
    for key, value in config_values.items():
        section, name = key.split("__")
        config[section][name] = value
    coursedir = CourseDirectory(config=config)
    cls = getattr(ExchangeFactory(config=config), step)
    return cls(coursedir=coursedir, authenticator=Authenticator(config=config), config=config).start()


@pytest.mark.slow
def test_nbgrader_release_fetch_validate_submit_collect(tmp_path, monkeypatch):
    """The README's JupyterHub flow with nbgrader's default exchange in a temporary directory: the instructor releases
    an assignment from this course directory (``nbgrader release_assignment``, the command itself), a student lists,
    fetches, fills in, validates and submits it, and the instructor collects it into the submitted layout that
    ``python -m autograder grade`` reads. The other steps run nbgrader's exchange classes in this process, as their
    commands do (each ``nbgrader`` command takes seconds just to start)."""
    from nbgrader.utils import get_username
    from nbgrader.validator import Validator

    assignment = "memory-scaling"
    exchange, student_home, submitted = tmp_path / "exchange", tmp_path / "student", tmp_path / "submitted"
    student_home.mkdir()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    monkeypatch.setenv("PATH", env["PATH"])  # collect runs alembic (the gradebook's migrations) from PATH
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("nbgrader")),
            "release_assignment",
            assignment,
            f"--Exchange.root={exchange}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    released = exchange / "tokens-to-vectors" / "outbound" / assignment / f"{assignment}.ipynb"
    assert released.read_bytes() == (ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_bytes()

    student = {"CourseDirectory__course_id": "tokens-to-vectors"}
    listed = _exchange("List", assignment, exchange, student_home, **student)
    assert [(a["course_id"], a["assignment_id"], a["status"]) for a in listed] == [
        ("tokens-to-vectors", assignment, "released")
    ]
    _exchange("FetchAssignment", assignment, exchange, student_home, **student)
    notebook = student_home / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    solution = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    answers = {
        c.metadata.nbgrader.grade_id: c.source for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution")
    }
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = re.sub(r"[ \t]*### (BEGIN|END) SOLUTION\n", "", answers[cell.metadata.nbgrader.grade_id])
    nbformat.write(nb, notebook)
    results = Validator().validate(str(notebook))  # what `nbgrader validate` runs (python3 kernel: this venv)
    assert results == {}, results  # no failed test cell, no edited locked cell
    _exchange("Submit", assignment, exchange, student_home, **student)

    _exchange(
        "Collect",
        assignment,
        exchange,
        ROOT,
        CourseDirectory__submitted_directory=str(submitted),
        CourseDirectory__db_url=f"sqlite:///{tmp_path / 'gradebook.db'}",
    )
    collected = submitted / get_username() / assignment / f"{assignment}.ipynb"
    assert collected.read_bytes() == notebook.read_bytes()
