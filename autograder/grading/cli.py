"""``python -m autograder grade SUBMISSIONS --assignment ID --out DIR [--jobs N] [--timeout SECONDS]``

Grades every student folder of an nbgrader submitted layout (``SUBMISSIONS/<student>/<assignment>/*.ipynb``) in
parallel, one kernel per submission, and writes ``DIR/grades.csv``, ``DIR/feedback/`` and the gradebook. A rerun
regrades only submissions whose notebook (or the assignment's source, or the limits) changed; ``--force`` regrades
all. Exit status 0 whenever grading ran; 2 with a one-line message for a usage error.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

from .dask_executor import SchedulerError, check_address
from .tasks import STATUSES, GradeResult, GradeTask, code_fingerprint, content_hash

__all__ = ["main", "find_submissions", "source_notebook", "UsageError"]

MAX_NOTEBOOK_BYTES = 64 << 20


class UsageError(Exception):
    """A mistake in the command line or its folders: printed as one line, exit status 2."""


def _course_root() -> Path:
    """The course directory: the current directory when it holds ``solutions/``, else this repository."""
    here = Path.cwd()
    if (here / "solutions").is_dir():
        return here
    return Path(__file__).resolve().parents[2]


def source_notebook(assignment: str, source: str | None) -> Path:
    if source:
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"--source {source}: no such notebook")
        return path
    root = _course_root()
    path = root / "solutions" / assignment / f"{assignment}.ipynb"
    if not path.is_file():
        known = sorted(p.parent.name for p in (root / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)
        hint = f"known assignments: {', '.join(known)}" if known else f"no assignment sources in {root / 'solutions'}"
        raise UsageError(f"unknown assignment {assignment!r}: {path} does not exist ({hint})")
    return path


def find_submissions(submissions: Path, assignment: str, notebook_name: str) -> dict[str, Path | None]:
    """``{student: notebook path or None}`` for every student folder in ``submissions``."""
    if not submissions.is_dir():
        raise UsageError(f"submissions folder {submissions} does not exist "
                         "(expected SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb)")
    if (submissions / assignment).is_dir():   # one student's folder, not the class's: every student "missing"
        raise UsageError(f"{submissions} holds {assignment}/ itself, so it looks like one student's folder: pass the "
                         "folder that holds one folder per student (SUBMISSIONS/<student>/<assignment>/)")
    found: dict[str, Path | None] = {}
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        folder = student_dir / assignment
        notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file()) if folder.is_dir() else []
        expected = folder / f"{notebook_name}.ipynb"
        if expected in notebooks:
            found[student_dir.name] = expected
        elif notebooks:   # renamed by the student or the LMS: take the most recently modified notebook
            found[student_dir.name] = max(notebooks, key=lambda p: p.stat().st_mtime)
        else:
            found[student_dir.name] = None
    if not found:
        raise UsageError(f"no student folders in {submissions} "
                         "(expected SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb)")
    return found


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows a default only where there is one to show: not for required options, flags or ``None``."""

    def _get_help_string(self, action):
        if action.required or action.default is None or action.default is False or action.default == []:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, not argparse's usage block: ``error: ... (see --help)``, exit status 2."""
        self.exit(2, f"error: {message} (see python -m autograder grade --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m autograder grade", description=__doc__.split("\n\n")[1].replace("``", ""),
                formatter_class=_HelpFormatter)
    p.add_argument("submissions", help="nbgrader submitted layout: SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb")
    p.add_argument("--assignment", required=True, help="assignment id, e.g. token-embeddings")
    p.add_argument("--out", required=True, help="output folder: grades.csv, feedback/, gradebook.db")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once (processes)")
    p.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per notebook")
    p.add_argument("--memory", type=float, default=4.0, help="memory limit per notebook, GiB (address space)")
    p.add_argument("--output-chars", type=int, default=200_000, help="printed output kept per notebook")
    p.add_argument("--db-url", default=None,
                   help="gradebook URL, e.g. postgresql://user@host/course (default: sqlite in --out)")
    p.add_argument("--force", action="store_true", help="regrade every submission, even unchanged ones")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the hidden tests' inputs (the grader gives it to the probes and to the judge)")
    p.add_argument("--source", default=None, help="the nbgrader source notebook (default: solutions/ID/ID.ipynb)")
    p.add_argument("--checks-module", action="append", default=[], metavar="MODULE",
                   help="extra module to import that registers the assignment's checks (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:8786",
                   help="grade on the Dask cluster of this scheduler instead of local processes (--jobs is then "
                        "ignored: the workers' threads decide)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _grade(args)
    except (UsageError, SchedulerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _validate(args) -> None:
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1 (got {args.jobs})")
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be positive (got {args.timeout:g})")
    if args.memory <= 0:
        raise UsageError(f"--memory must be positive (got {args.memory:g})")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out} is a file: give a folder for grades.csv, feedback/ and the gradebook")
    if args.output_chars < 0:
        raise UsageError(f"--output-chars must not be negative (got {args.output_chars})")
    if args.scheduler is not None:
        check_address(args.scheduler)
    if Path(args.out).resolve().parent == Path(args.submissions).resolve():
        raise UsageError(f"--out {args.out} is inside {args.submissions}, where it would be taken for a student folder: "
                         "put it elsewhere")


def _grade(args) -> int:
    from .course import max_score, notebook_problem, prepare_gradebook_blob, source_info, warm_up
    from .feedback import render
    from .store import GradebookMismatch, Store, StoreLocked

    _validate(args)
    source_path = source_notebook(args.assignment, args.source)
    notebook_name = source_path.stem
    source = source_path.read_bytes()
    problem = notebook_problem(source)
    if problem:
        raise UsageError(f"the assignment source {source_path} is unreadable: {problem}")
    try:
        if not source_info(source).test_cells:
            raise UsageError(f"{source_path} has no nbgrader test cells (cells with grade=true, solution=false)")
    except (KeyError, ValueError) as exc:
        raise UsageError(f"{source_path} has malformed nbgrader metadata: {exc}") from None
    students = find_submissions(Path(args.submissions), args.assignment, notebook_name)
    _warn_unchecked(args, source)

    try:
        store = Store(args.out, args.assignment, notebook_name, args.db_url)
    except StoreLocked as exc:
        raise UsageError(str(exc)) from None
    try:
        results: dict[str, GradeResult] = {}
        todo: list[GradeTask] = []
        cached_results: list[GradeResult] = []
        base = dict(assignment=args.assignment, notebook_name=notebook_name, source_notebook=source,
                    timeout_s=float(args.timeout), memory_bytes=int(args.memory * 2**30),
                    output_chars=int(args.output_chars), seed=int(args.seed),
                    check_modules=tuple(args.checks_module),
                    grader_fingerprint=code_fingerprint(*args.checks_module))
        for student, path in students.items():
            too_big = path is not None and path.stat().st_size > MAX_NOTEBOOK_BYTES
            data = None if path is None else (b"" if too_big else path.read_bytes())
            task = GradeTask(student=student, submission=data, **base)
            if too_big:
                result = GradeResult(student, args.assignment, "invalid-notebook", None, max_score(source),
                                     reason=f"the notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MiB",
                                     submission_hash=content_hash(task))
                result.feedback_html = render(result)
                cached_results.append(result)
                continue
            cached = None if args.force else store.cached(student, content_hash(task))
            if cached is not None:
                cached_results.append(cached)
            else:
                todo.append(task)

        def gradebook_error(exc: Exception) -> UsageError:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return UsageError(f"cannot use the gradebook {store.db_url}: {type(exc).__name__}: {first}")

        if not store.default_db:
            try:
                store.gradebook()     # an unreachable server fails now, before any worker starts
            except Exception as exc:  # noqa: BLE001
                raise gradebook_error(exc) from None
        executor = None
        if todo:
            if not args.scheduler:   # import nbgrader here once: local workers are forked from this process with it
                warm_up()
            executor = _executor(args, len(todo))
        started = time.perf_counter()
        blob = prepare_gradebook_blob(args.assignment, notebook_name, source) if todo else None
        try:
            store.prepare_assignment(source, blob)
        except GradebookMismatch as exc:
            raise UsageError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - e.g. a PostgreSQL server that went away
            raise gradebook_error(exc) from None
        for result in cached_results:
            results[result.student] = result
            if result.status == "invalid-notebook" and not store.cached(result.student, result.submission_hash):
                store.save(result)
            else:
                store.record(result)     # a gradebook shared with other runs gets it back if it was lost
        if executor is not None:
            _run([_with_blob(t, blob) for t in todo], args, store, results, executor)
        elapsed = time.perf_counter() - started
        path = store.write_csv(list(results.values()))
    finally:
        store.close()
    _summary(results, len(todo), elapsed, args, path, store)
    return 0


def _with_blob(task: GradeTask, blob: bytes) -> GradeTask:
    from dataclasses import replace
    return replace(task, gradebook_blob=blob)


def _warn_unchecked(args, source: bytes) -> None:
    """Say so when some test cells have no registered checks: their kernel verdict cannot be re-derived."""
    import importlib
    from .course import checked_groups, source_info
    try:
        for module in args.checks_module:
            importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(f"--checks-module: {exc}") from None
    cells = source_info(source).test_cells
    checked = set(checked_groups(args.assignment, cells))
    unchecked = [cell.grade_id for cell in cells if cell.grade_id not in checked]
    if unchecked:
        print(f"warning: no checks registered for {args.assignment} test cells {', '.join(unchecked)}: "
              "their points come from the student's kernel alone", file=sys.stderr)


def _executor(args, n_tasks: int):
    """Local worker processes, or the Dask cluster of ``--scheduler``; started (connected) now."""
    if args.scheduler:
        from .dask_executor import DaskExecutor
        return DaskExecutor(args.scheduler).start()
    from .executors import LocalExecutor
    return LocalExecutor(min(args.jobs, n_tasks)).start()


def _run(tasks, args, store, results, executor) -> None:
    from tqdm import tqdm
    counts = Counter()
    with tqdm(total=len(tasks), desc=f"grading {args.assignment}", unit="nb", disable=args.no_progress,
              file=sys.stderr) as bar:
        def on_result(result: GradeResult) -> None:
            store.save(result)
            results[result.student] = result
            counts["graded" if result.status == "graded" else "failed"] += 1
            bar.set_postfix(graded=counts["graded"], failed=counts["failed"], refresh=False)
            bar.update(1)
        executor.run(tasks, on_result)


def _summary(results: dict[str, GradeResult], regraded: int, elapsed: float, args, csv_path, store) -> None:
    by_status = Counter(r.status for r in results.values())
    graded = [r.score for r in results.values() if r.status == "graded" and r.score is not None]
    max_score = next(iter(results.values())).max_score if results else 0.0
    lines = [f"{args.assignment}: {len(results)} students, {regraded} run now in {elapsed:.1f} s "
             f"({len(results) - regraded} unchanged since the last run)",
             f"  {'status':<17}{'students':>8}"]
    lines += [f"  {status:<17}{by_status.get(status, 0):>8}" for status in STATUSES]
    if graded:
        mean = sum(graded) / len(graded)
        lines.append(f"  scores of graded notebooks: mean {mean:.2f} / {max_score:g}, "
                     f"min {min(graded):g}, max {max(graded):g}")
    failed = sorted((r for r in results.values() if r.status != "graded"), key=lambda r: r.student)
    for r in failed[:20]:
        lines.append(f"  {r.student}: {r.status}: {r.reason}")
    if len(failed) > 20:
        lines.append(f"  ... and {len(failed) - 20} more (see grades.csv)")
    lines.append(f"wrote {csv_path}, feedback in {store.out / 'feedback'}, gradebook {store.db_url}")
    print("\n".join(lines))
