"""The nbgrader side of grading one submission: a private course directory, its gradebook, ``nbgrader autograde``
in a limited child process whose kernel runs in the sandbox, and the judging of what that kernel published.

Everything here runs in a grading worker (trusted code). The student's code runs exactly once, in the sandboxed
kernel (:mod:`autograder.grading.kernel`): its test cells only *probe* (the grading spec says so), and after the last
cell the kernel publishes the probe data (:mod:`autograder.grading.execute`). The judges run here, with the hidden
seed fixed here, and decide every checked test cell's points; the kernel's own verdict can only take points away
(a cell that raised, e.g. on a plain hidden ``assert``), never give them.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

from .limits import Child, Limits, run_children
from .records import GradeResult, GradeTask, TestRecord

__all__ = [
    "warm_up",
    "notebook_problem",
    "SourceInfo",
    "source_info",
    "max_score",
    "populate_gradebook",
    "prepare_gradebook_blob",
    "grade_in",
    "isolation_of",
    "EMIT_CODE",
]

HIDDEN_MARK = "BEGIN HIDDEN TESTS"
PROBE_RESULTS_LIMIT = 256 << 20  # characters of the encoded probe payload accepted from the kernel
#: what the grader runs in the kernel after the notebook's last cell (the payload of autograder.student.grading)
EMIT_CODE = "import autograder.student.grading as _autograder_grading; _autograder_grading.emit()"
LOG_CHARS = 200_000  # characters of nbgrader's and the kernel's log kept per submission
# The student's id inside a private course directory, which holds one student: any real id (spaces, brackets that
# nbgrader would read as glob patterns) is only ever a key in the grader's own results.
PRIVATE_STUDENT = "student"


def tools_on_path() -> None:
    """Put this interpreter's ``bin`` folder first on ``PATH`` (a kernel's ``python`` must be the course
    environment's, even without an activated virtualenv), and let nbgrader read its gradebook schema version in
    process: a new ``Gradebook`` otherwise runs ``alembic heads`` as a program from ``PATH`` (seconds, and missing
    when the virtualenv is not activated)."""
    import sys

    bindir = os.path.dirname(sys.executable)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    import nbgrader.api

    nbgrader.api.get_alembic_version = _alembic_head


@functools.lru_cache(maxsize=1)
def _alembic_head() -> str:
    """What ``alembic heads`` prints first for nbgrader's migrations (the schema version of a new gradebook)."""
    import nbgrader
    from alembic.script import ScriptDirectory

    return ScriptDirectory(os.path.join(os.path.dirname(nbgrader.__file__), "alembic")).get_current_head()


#: what a grading worker imports before it forks each notebook's autograde child (which starts with all of it)
WARM_MODULES = (
    "IPython.core.interactiveshell",
    "nbgrader.apps.nbgraderapp",
    "nbgrader.converters.autograde",
    "nbgrader.preprocessors",
    "numpy",
    "autograder.checks.core",
    "autograder.student.registry",
    "autograder.grading.execute",
    "autograder.grading.sandbox",
    "autograder.grading.kernel",  # the kernel manager of every autograde child
)


def skip_unused_imports() -> None:
    """Keep what the grader never uses out of this process (and of the workers forked from it):

    * ``rfc3987_syntax``: jsonschema, under nbformat and nbgrader, imports it when installed only to check the
      ``iri`` string formats, which no notebook schema uses; its import compiles 38 grammars (~0.8 s of CPU).
      Without it, jsonschema simply does not check those formats. No effect once jsonschema is imported.
    * the body of ``nbgrader/__init__.py`` (:func:`defer_nbgrader_init`): it imports nbgrader's Jupyter server
      extensions (tornado handlers, the exchange), ~0.6 s of CPU that a rerun with nothing to grade would spend
      for ``nbgrader.api`` alone.
    """
    import sys

    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)
    defer_nbgrader_init()


def defer_nbgrader_init() -> None:
    """Register the ``nbgrader`` package without running its ``__init__.py`` yet: its submodules (``nbgrader.api``,
    ``nbgrader.apps``, ...) import as usual, ``nbgrader.__version__`` is set, and the first access to any other
    attribute of the package that is not a submodule (its server-extension hooks) runs the real ``__init__.py``
    then, so nothing that uses them sees a difference. No effect when nbgrader is already imported or not installed."""
    import importlib.util
    import sys

    if "nbgrader" in sys.modules:
        return
    spec = importlib.util.find_spec("nbgrader")
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return
    package = importlib.util.module_from_spec(spec)

    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(f"module 'nbgrader' has no attribute {name!r}")
        if importlib.util.find_spec(f"nbgrader.{name}") is not None:  # ``from nbgrader import utils``: a submodule
            return importlib.import_module(f"nbgrader.{name}")
        del package.__dict__["__getattr__"]  # once: the real body defines the rest (or the name is missing)
        spec.loader.exec_module(package)  # the real package body, in this module object
        return getattr(package, name)

    package.__getattr__ = __getattr__
    sys.modules["nbgrader"] = package
    try:
        package.__version__ = importlib.import_module("nbgrader._version").__version__
    except Exception:  # a broken install: import it the usual way (and fail there, if it must)
        del sys.modules["nbgrader"]


def warm_up() -> None:
    """Import what the grading children need, once, so each forked child starts without import costs."""
    tools_on_path()
    import importlib

    for module in WARM_MODULES:
        importlib.import_module(module)


def isolation_of(task: GradeTask) -> str:
    """The isolation the kernel of ``task`` gets (the ``isolation`` column of grades.csv)."""
    from .sandbox import ISOLATION_BWRAP, ISOLATION_NONE

    return ISOLATION_BWRAP if task.sandbox else ISOLATION_NONE


# ------------------------------------------------------------------------------------------------ the source
def notebook_problem(data: bytes) -> str | None:
    """``None`` for a readable notebook, else a one-line reason (truncated JSON, not a notebook, ...)."""
    import warnings

    import nbformat

    warnings.filterwarnings("ignore", module="nbformat")  # missing cell ids and the like: not our concern
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})"
    if not text.strip():
        return "the notebook file is empty"
    from autograder.student.transport import MAX_JSON_DEPTH, json_depth

    if json_depth(data) > MAX_JSON_DEPTH:  # nothing below may recurse into it (inputs.py)
        return f"the notebook nests more than {MAX_JSON_DEPTH} levels deep: it is not a notebook Jupyter wrote"
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        return (
            f"the notebook is not valid JSON (truncated or edited by hand?): {exc.msg}: "
            f"line {exc.lineno} column {exc.colno}"
        )
    if not isinstance(raw, dict) or "cells" not in raw:
        return "the file is JSON but not a Jupyter notebook (no 'cells')"
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"the notebook does not follow the notebook format: {first[:200]}"
    return None


@dataclass(frozen=True)
class TestCell:
    grade_id: str
    points: float
    hidden: bool


@dataclass(frozen=True)
class SourceInfo:
    test_cells: tuple[TestCell, ...]  # autograded test cells, in notebook order
    grade_cells: tuple[tuple[str, float], ...]  # every graded cell (tests, manually graded answers): (id, points)

    @property
    def max_score(self) -> float:
        return float(sum(points for _, points in self.grade_cells))


@functools.lru_cache(maxsize=16)
def source_info(source: bytes) -> SourceInfo:
    """The graded cells of an nbgrader source notebook, read from its cell metadata."""
    nb = json.loads(source.decode("utf-8"))
    tests, graded = [], []
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade"):
            continue
        text = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        points = float(meta.get("points", 0) or 0)
        graded.append((meta["grade_id"], points))
        if cell.get("cell_type") == "code" and not meta.get("solution"):
            tests.append(TestCell(meta["grade_id"], points, HIDDEN_MARK in text))
    return SourceInfo(tuple(tests), tuple(graded))


def max_score(source: bytes) -> float:
    try:
        return source_info(source).max_score
    except Exception:  # a broken source is reported by the CLI; here it only sizes a result
        return 0.0


def populate_gradebook(db_url: str, assignment: str, notebook_name: str, source: bytes) -> None:
    """Record the assignment's cells in a gradebook exactly as ``nbgrader generate_assignment`` does (the same
    preprocessors, in process): grade cells with points, locked source cells (with hidden tests) and checksums,
    so that ``autograde`` restores deleted or edited test cells from it."""
    import nbformat
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import ClearOutput, ClearSolutions, ComputeChecksums, LockCells, SaveCells

    tools_on_path()
    with Gradebook(db_url) as gb:
        gb.update_or_create_assignment(assignment)
    nb = nbformat.reads(source.decode("utf-8"), as_version=4)
    resources = {"nbgrader": {"db_url": db_url, "assignment": assignment, "notebook": notebook_name}}
    for preprocessor in (LockCells(), ClearSolutions(), ClearOutput(), ComputeChecksums(), SaveCells()):
        nb, resources = preprocessor.preprocess(nb, resources)


def prepare_gradebook_blob(assignment: str, notebook_name: str, source: bytes) -> bytes:
    """A SQLite gradebook file holding only the assignment's cells, for workers to start from."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="gradebook-") as tmp:
        path = os.path.join(tmp, "gradebook.db")
        populate_gradebook(f"sqlite:///{path}", assignment, notebook_name, source)
        with open(path, "rb") as fh:
            return fh.read()


# ------------------------------------------------------------------------------------------------ one submission
_CONFIG = '''\
"""Private course directory of one grading worker (written by autograder.grading.course)."""
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput,
                                    SaveAutoGrades)
from autograder.grading.execute import LimitedExecute
from autograder.grading.kernel import SandboxedKernelManager

c = get_config()  # defined by traitlets when it runs this file
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db_url!r}
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.OverwriteCells.add_missing_cells = True
# the whole-notebook deadline (the grader's --timeout) is the limit; no cell may outlast it
c.Execute.timeout = {cell_timeout}
c.Execute.iopub_timeout = {cell_timeout}    # a flood of output must not look like a dead kernel
c.LimitedExecute.output_chars = {output_chars}
c.LimitedExecute.kernel_manager_class = SandboxedKernelManager
c.LimitedExecute.emit_code = {emit_code!r}
c.LimitedExecute.emit_file = {emit_file!r}
c.LimitedExecute.emit_bytes = {emit_bytes}
c.LimitedExecute.progress_file = {progress_file!r}
c.SandboxedKernelManager.sandboxed = {sandboxed!r}
c.SandboxedKernelManager.runtime_dir = {runtime_dir!r}
c.SandboxedKernelManager.libdir = {libdir!r}
c.SandboxedKernelManager.spec_file = {spec_file!r}
c.SandboxedKernelManager.spec_env = {spec_env!r}
c.SandboxedKernelManager.scratch_dir = {scratch_dir!r}
c.SandboxedKernelManager.scratch_bytes = {scratch_bytes}
c.SandboxedKernelManager.nproc = {nproc}
c.Autograde.autograde_preprocessors = [LimitedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
'''


def _autograde_main(assignment: str, student: str) -> int:
    """In the forked child: ``nbgrader autograde ASSIGNMENT --student STUDENT`` in the current directory."""
    from jupyter_core.application import NoStart
    from nbgrader.apps.nbgraderapp import NbGraderApp

    app = NbGraderApp.instance()
    try:
        app.initialize(["autograde", assignment, "--student", student, "--force"])
        app.start()
    except NoStart:  # how jupyter apps end after running a subcommand
        pass
    return 0


def grade_in(workdir: str, task: GradeTask, result: GradeResult) -> None:
    """Grade ``task`` inside the empty directory ``workdir`` (mode 0700, never visible in the sandbox); fills
    ``result`` in place."""
    import time
    from functools import partial

    from autograder.student import grading

    from .sandbox import build_libdir, write_spec

    t0 = time.perf_counter()
    os.chmod(workdir, 0o700)
    info = source_info(task.source_notebook)
    db_path = os.path.join(workdir, "gradebook.db")
    db_url = f"sqlite:///{db_path}"
    if task.gradebook_blob:
        with open(db_path, "wb") as fh:
            fh.write(task.gradebook_blob)
    else:
        populate_gradebook(db_url, task.assignment, task.notebook_name, task.source_notebook)
    nb_file = f"{task.notebook_name}.ipynb"
    for folder, data in (
        (os.path.join(workdir, "source", task.assignment), task.source_notebook),
        (os.path.join(workdir, "submitted", PRIVATE_STUDENT, task.assignment), task.submission),
    ):
        os.makedirs(folder)
        with open(os.path.join(folder, nb_file), "wb") as fh:
            fh.write(data)
    checked = _checked_groups(task, info)  # decided here, in the trusted process
    spec_file = write_spec(
        os.path.join(workdir, "grading-spec.json"),
        {
            "assignment": task.assignment,
            "groups": checked,
            "hidden_seed": int(task.hidden_seed),
            "probe_modules": probe_modules(task),
        },
    )
    scratch = os.path.join(workdir, "scratch")  # the kernel's cwd without the sandbox only
    os.makedirs(scratch)
    emit_file = os.path.join(workdir, "probes.b64")
    libdir = build_libdir(os.path.join(workdir, "lib"), tuple(probe_modules(task)))  # read-only inside
    with open(os.path.join(workdir, "nbgrader_config.py"), "w") as fh:
        fh.write(
            _CONFIG.format(
                root=workdir,
                db_url=db_url,
                cell_timeout=int(task.timeout_s) + 30,
                output_chars=int(task.output_chars),
                emit_code=EMIT_CODE,
                emit_file=emit_file,
                emit_bytes=PROBE_RESULTS_LIMIT,
                progress_file=os.path.join(workdir, "progress.json"),
                sandboxed=bool(task.sandbox),
                runtime_dir=os.path.join(workdir, "runtime"),
                libdir=libdir,
                spec_file=spec_file,
                spec_env=grading.SPEC_ENV,
                scratch_dir=scratch,
                scratch_bytes=int(task.scratch_bytes),
                nproc=int(task.nproc),
            )
        )
    jupyter_dir = os.path.join(workdir, "jupyter")
    os.makedirs(jupyter_dir)
    limits = Limits(
        memory_bytes=task.memory_bytes,
        env={
            "JUPYTER_CONFIG_DIR": jupyter_dir,
            "JUPYTER_RUNTIME_DIR": os.path.join(jupyter_dir, "runtime"),
            "IPYTHONDIR": os.path.join(workdir, "ipython"),
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        },
    )
    import sys

    children = [
        Child(
            "autograde",
            workdir,
            target=partial(_autograde_main, task.assignment, PRIVATE_STUDENT),
            argv=[
                sys.executable,
                "-m",
                "nbgrader",
                "autograde",
                task.assignment,
                "--student",
                PRIVATE_STUDENT,
                "--force",
            ],
        )
    ]
    result.timings["setup_s"] = time.perf_counter() - t0
    outcomes = run_children(children, limits, task.timeout_s)
    result.timings["run_s"] = max(o.wall_s for o in outcomes.values())
    t1 = time.perf_counter()
    _collect(workdir, db_url, task, info, checked, outcomes, emit_file, result)
    result.timings["collect_s"] = time.perf_counter() - t1


def _checked_groups(task: GradeTask, info: SourceInfo) -> list[str]:
    """The test cells whose checks are registered (their verdict is re-derived in a trusted process)."""
    import importlib

    for module in task.check_modules:
        importlib.import_module(module)
    return checked_groups(task.assignment, info.test_cells)


def probe_modules(task: GradeTask) -> list[str]:
    """The modules outside ``autograder.student`` that register probes of ``task``'s assignment (imported by the
    probe process before the student's code runs): those of the task's check modules, e.g. the test fixture's."""
    import importlib

    from autograder.checks import core

    for module in task.check_modules:
        importlib.import_module(module)
    return core.probe_modules(task.assignment)


def shipped_modules(task) -> list[str]:
    """Modules outside the package that grading ``task`` imports: its check modules and their probe modules.
    Empty for a task that is not a :class:`GradeTask` (the Dask executor also runs other picklable tasks)."""
    if not isinstance(task, GradeTask):
        return []
    return sorted({*task.check_modules, *probe_modules(task)})


def checked_groups(assignment: str, test_cells) -> list[str]:
    """grade_ids of ``test_cells`` with checks registered for ``assignment`` (check modules already imported)."""
    from autograder.checks import core

    checked = []
    for cell in test_cells:
        try:
            core.group(assignment, cell.grade_id)
        except (KeyError, ModuleNotFoundError):
            continue
        checked.append(cell.grade_id)
    return checked


def _gib(n: int) -> str:
    return f"{n / 2**30:g} GiB"


def _failure(log: str) -> tuple[str, str]:
    """``(status, one-line reason)`` for a failed ``nbgrader autograde``, from its log."""
    if "DeadKernelError" in log or "Kernel died" in log or "Kernel didn't respond" in log:
        return "crashed", "the kernel died while running the notebook (os._exit, a segfault or a killed process)"
    if "UnresponsiveKernelError" in log:
        return "timeout", "the kernel stopped responding and could not be interrupted"
    if "CellTimeoutError" in log or "Timeout waiting for" in log:
        return "timeout", "a cell ran past the time limit"
    if "MemoryError" in log:
        return "crashed", "the grading process ran out of memory (printed output too large?)"
    errors = [line.strip() for line in log.splitlines() if "Error" in line or "[ERROR]" in line]
    return "crashed", ("nbgrader autograde failed: " + (errors[-1] if errors else "no error message"))[:300]


def _cell_errors(autograded_path: str) -> tuple[dict[str, str], list[str], bool]:
    """From the autograded notebook: ``{grade_id: 'Ename: evalue'}`` for failed graded cells, the error names of
    every cell, and whether any output was truncated by the grader."""
    with open(autograded_path, encoding="utf-8") as fh:
        nb = json.load(fh)
    errors, names, truncated = {}, [], False
    for cell in nb.get("cells", []):
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                names.append(out.get("ename", ""))
                if gid:
                    errors[gid] = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip()
            elif out.get("output_type") == "stream" and "output truncated by the grader" in str(out.get("text", "")):
                truncated = True
    return errors, names, truncated


def _kernel_scores(db_url: str, task: GradeTask) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url) as gb:
        submission = gb.find_submission_notebook(task.notebook_name, task.assignment, PRIVATE_STUDENT)
        return {grade.name: float(grade.auto_score or 0.0) for grade in submission.grades}


def _collect(workdir, db_url, task, info, checked, outcomes, emit_file, result) -> None:
    from autograder.checks import core

    if os.environ.get("AUTOGRADER_DEBUG"):  # print what each child wrote (nbgrader's log, tracebacks)
        for o in outcomes.values():
            print(f"--- {o.name} rc={o.returncode} timed_out={o.timed_out} wall={o.wall_s:.2f}\n{o.output}")
    autograde = outcomes["autograde"]
    # nbgrader's and the kernel's log, for the instructor only (never in the feedback page)
    result.log = "\n".join(
        f"--- {o.name}: exit status {o.returncode}{' (timed out)' if o.timed_out else ''}, {o.wall_s:.1f} s\n{o.output}"
        for o in outcomes.values()
    )[-LOG_CHARS:]
    autograded = os.path.join(workdir, "autograded", PRIVATE_STUDENT, task.assignment, f"{task.notebook_name}.ipynb")
    failed = autograde.timed_out or autograde.returncode != 0 or not os.path.exists(autograded)
    if autograde.timed_out:
        result.status = "timeout"
        result.reason = (
            f"the notebook did not finish within the {task.timeout_s:g} s time limit (--timeout); "
            "every process it started was killed"
        )
    elif autograde.returncode != 0 or not os.path.exists(autograded):
        if autograde.signal_name:
            result.status, result.reason = "crashed", f"the grading process was killed by {autograde.signal_name}"
        else:
            result.status, result.reason = _failure(autograde.output)
    if failed:
        where = running_cell(os.path.join(workdir, "progress.json"), "hung" if autograde.timed_out else "crashed")
        result.reason = "; ".join(x for x in (result.reason, where) if x)
        result.log = (f"{where}\n" if where else "") + result.log
        result.autograded = _sanitized(
            failed_notebook(task, db_url, result.status, result.reason), task.source_notebook
        )
        return
    kernel = _kernel_scores(db_url, task)
    errors, error_names, truncated = _cell_errors(autograded)
    with open(autograded, encoding="utf-8") as fh:  # kept in --out/autograded/ for the formgrader, sanitised
        result.autograded = _sanitized(fh.read(), task.source_notebook)
    verdicts, probe_problem = _judge(task, checked, emit_file)
    tests, notes = [], []
    for cell in info.test_cells:
        got = kernel.get(cell.grade_id, 0.0)
        kernel_passed = got >= cell.points and cell.grade_id not in errors
        checks: tuple = ()
        if cell.grade_id not in checked:
            kind = "passed" if kernel_passed else "kernel-only"
            points, passed = (got, kernel_passed)
            message = "passed" if passed else _kernel_message(cell, errors)
        elif cell.grade_id not in verdicts:
            kind, points, passed = "no-results", 0.0, False
            message = f"no probe results for this test cell: {probe_problem}"
        else:
            checks = tuple(verdicts[cell.grade_id])
            if not all(ok for _, ok, _ in checks):
                kind, passed = "wrong", False  # partial credit: the passed checks' share, by weight
                points = core.cell_points(task.assignment, cell.grade_id, list(checks), cell.points)
                message = "; ".join(f"{n}: {m}" for n, ok, m in checks if not ok)
            elif cell.grade_id in errors:
                kind, points, passed = "kernel-error", 0.0, False
                message = _kernel_message(cell, errors)
            else:
                kind, points, passed, message = "passed", cell.points, True, "passed"
        tests.append(
            TestRecord(cell.grade_id, float(points), cell.points, passed, message[:500], cell.hidden, checks, kind)
        )
    if "MemoryError" in error_names:
        notes.append(f"a cell raised MemoryError (memory limit {_gib(task.memory_bytes)})")
    if truncated:
        notes.append(f"printed output was truncated at {task.output_chars:,} characters")
    result.tests = tests
    result.status = "graded"
    result.score = float(sum(t.points for t in tests)) + _other_points(kernel, info)
    passed = sum(t.passed for t in tests)
    result.reason = "; ".join([f"{passed}/{len(tests)} test cells passed"] + notes)


def running_cell(progress_file: str, what: str) -> str:
    """Which cell was running when the notebook ``what`` ("crashed", "hung"), from the progress file the grading
    ``Execute`` writes: a test cell by its name only (never its source: hidden tests stay hidden), the student's
    own cell by its number and first line. ``""`` when unknown (the kernel never started)."""
    try:
        with open(progress_file, encoding="utf-8") as fh:
            info = json.load(fh)
        number, total = int(info["code_cell"]), int(info["code_cells"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    if info.get("test"):
        name = f" ({info['grade_id']})" if info.get("grade_id") else ""
        return f"it {what} in code cell {number} of {total}, a test cell{name}"
    first = str(info.get("first_line", "")).replace("`", "'")
    return f"it {what} in code cell {number} of {total}" + (f", which starts `{first}`" if first else "")


def failed_notebook(task: GradeTask, db_url: str, status: str, reason: str) -> str:
    """The notebook of a crashed or timed-out run, for ``--out/autograded/`` (so the formgrader lists it and the
    instructor can score it by hand): the submission with its locked cells restored from the gradebook, as
    ``nbgrader autograde`` restores them, without outputs, and a first cell that says why it has no automatic
    score."""
    import nbformat
    from nbgrader.preprocessors import ClearOutput, OverwriteCells

    nb = nbformat.reads(task.submission.decode("utf-8"), as_version=4)
    try:
        resources = {"nbgrader": {"db_url": db_url, "assignment": task.assignment, "notebook": task.notebook_name}}
        nb, _ = OverwriteCells(add_missing_cells=True).preprocess(nb, resources)
    except Exception:  # the submission as it is: the instructor still sees what ran
        nb = nbformat.reads(task.submission.decode("utf-8"), as_version=4)
    nb, _ = ClearOutput().preprocess(nb, {})  # outputs the student saved are not the grader's: none are kept
    note = nbformat.v4.new_markdown_cell(  # shown as text: the sanitiser fences every cell not the course's own
        f"**Not scored by the autograder ({status}):** {reason}. Score its cells by hand in the formgrader; "
        "`python -m autograder grade ... --refresh` then takes the scores into grades.csv and the feedback."
    )
    nb.cells.insert(0, note)
    return nbformat.writes(nb)


def _sanitized(text: str, source: bytes) -> str:
    """The notebook kept for the formgrader with nothing a browser would run (outputs.sanitize_notebook); none
    (``""``) when it cannot be sanitised."""
    from .outputs import sanitize_notebook

    try:
        return sanitize_notebook(text, source)
    except Exception:  # a notebook the sanitiser cannot read is not kept
        return ""


def _other_points(kernel: dict[str, float], info: SourceInfo) -> float:
    """Points of graded cells that are not autograded test cells (manually graded answers): as nbgrader has them."""
    tests = {c.grade_id for c in info.test_cells}
    return float(sum(kernel.get(gid, 0.0) for gid, _ in info.grade_cells if gid not in tests))


def _kernel_message(cell, errors: dict[str, str]) -> str:
    if cell.hidden:
        return "failed (this cell holds hidden tests; their details are not shown)"
    error = errors.get(cell.grade_id)
    return f"failed: {error}" if error else "failed"


def _judge(task, checked, emit_file) -> tuple[dict[str, list], str]:
    """Decode the kernel's probe payload (base64 of JSON + npz, never pickle) and judge it here.

    The payload is untrusted output: the judges fix every input themselves (the hidden seed is ``task``'s, never
    one the kernel reports) and only compare. Returns ``({grade_id: verdicts}, why a cell has none)``."""
    from autograder.checks import core
    from autograder.student import grading

    if not checked:
        return {}, ""
    try:
        with open(emit_file, encoding="utf-8") as fh:
            text = fh.read(PROBE_RESULTS_LIMIT + 1)
    except OSError:
        return {}, "the kernel published no probe payload after the last cell (it died, or emitted two)"
    if len(text) > PROBE_RESULTS_LIMIT:
        return {}, "the probe payload is too large"
    try:
        data = grading.decode_emitted(text)
    except Exception as exc:  # a corrupted or forged payload is the submission's failure
        return {}, f"unreadable probe payload ({type(exc).__name__})"
    verdicts = {}
    for gid in checked:
        results = data.get(gid) if isinstance(data, dict) else None
        if isinstance(results, dict):
            verdicts[gid] = [
                (str(n), bool(ok), str(m))
                for n, ok, m in core.judge_group(task.assignment, gid, results, seed=task.hidden_seed)
            ]
    return verdicts, "the payload has no results for this cell"
