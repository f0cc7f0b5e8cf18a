"""``python -m autograder grade SUBMISSIONS --assignment ID --out DIR [--jobs N] [--timeout SECONDS]``

Grades every student folder of an nbgrader submitted layout (``SUBMISSIONS/<student>/<assignment>/*.ipynb``) in
parallel, one kernel per submission, and writes ``DIR/grades.csv``, ``DIR/feedback/`` and the gradebook. A rerun
regrades only submissions whose notebook (or the assignment's source, the limits or the course secret) changed;
``--force`` regrades all. Each notebook's kernel runs in a bubblewrap sandbox; where none can be set up, grading
stops with a one-line reason and fix unless ``--unsafe-no-sandbox`` is given. Exit status 0 whenever grading ran;
2 with a one-line message for a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

from .dask_executor import SchedulerError, check_address
from .picking import Pick, grade_ids_in, pick_notebook
from .records import STATUSES, GradeResult, GradeTask
from .sandbox import ISOLATION_NONE, SandboxUnavailable
from .secret import SecretError
from .tasks import code_fingerprint, content_hash

__all__ = ["main", "find_submissions", "source_notebook", "UsageError", "all_missing_warning"]

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


def find_submissions(
    submissions: Path, assignment: str, notebook_name: str, grade_ids: set[str] = frozenset()
) -> dict[str, Pick]:
    """``{student: Pick}`` for every student folder in ``submissions`` (:func:`picking.pick_notebook`: the
    notebook that carries the assignment's ``grade_ids`` when ``<notebook_name>.ipynb`` is absent)."""
    if not submissions.is_dir():
        raise UsageError(
            f"submissions folder {submissions} does not exist "
            "(expected SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb)"
        )
    if (submissions / assignment).is_dir():  # one student's folder, not the class's: every student "missing"
        raise UsageError(
            f"{submissions} holds {assignment}/ itself, so it looks like one student's folder: pass the "
            "folder that holds one folder per student (SUBMISSIONS/<student>/<assignment>/)"
        )
    found: dict[str, Pick] = {}
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        found[student_dir.name] = pick_notebook(student_dir / assignment, notebook_name, set(grade_ids))
    if not found:
        raise UsageError(
            f"no student folders in {submissions} (expected SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb)"
        )
    return found


def all_missing_warning(submissions: Path, assignment: str, picks: dict[str, Pick]) -> str | None:
    """One line when no student has a notebook for ``assignment``, naming the folders students do have."""
    if any(p.path is not None for p in picks.values()):
        return None
    seen = Counter(
        sub.name
        for student in picks
        for sub in (submissions / student).iterdir()
        if sub.is_dir() and not sub.name.startswith(".")
    )
    hint = (
        f"their folders hold {', '.join(f'{n}/' for n, _ in seen.most_common(3))}: is --assignment right?"
        if seen
        else "the student folders are empty: is SUBMISSIONS the collected submissions folder?"
    )
    return (
        f"warning: every one of the {len(picks)} students is missing: no notebook in "
        f"SUBMISSIONS/<student>/{assignment}/; {hint}"
    )


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
    p = _Parser(
        prog="python -m autograder grade",
        description=__doc__.split("\n\n")[1].replace("``", ""),
        formatter_class=_HelpFormatter,
    )
    p.add_argument("submissions", help="nbgrader submitted layout: SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb")
    p.add_argument("--assignment", required=True, help="assignment id, e.g. token-embeddings")
    p.add_argument("--out", required=True, help="output folder: grades.csv, feedback/, gradebook.db")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once (processes)")
    p.add_argument("--timeout", type=float, default=120.0, help="wall-clock seconds per notebook")
    p.add_argument("--memory", type=float, default=4.0, help="memory limit per notebook, GiB (address space)")
    p.add_argument("--output-chars", type=int, default=200_000, help="printed output kept per notebook")
    p.add_argument(
        "--db-url", default=None, help="gradebook URL, e.g. postgresql://user@host/course (default: sqlite in --out)"
    )
    p.add_argument("--force", action="store_true", help="regrade every submission, even unchanged ones")
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="grade again only the submissions whose last result was crashed or timeout (and students "
        "never graded); every other student keeps the stored result",
    )
    p.add_argument(
        "--due",
        default=None,
        metavar="ISO-8601-TIME",
        help="due time with a time zone, e.g. 2026-12-05T23:59+01:00; submission times come from the "
        "timestamp.txt that nbgrader collect writes beside each notebook",
    )
    p.add_argument(
        "--late-penalty-per-hour",
        type=float,
        default=0.0,
        metavar="P",
        help="percent of the maximum score deducted per started hour past --due (never below 0)",
    )
    p.add_argument(
        "--export",
        action="append",
        default=[],
        choices=["canvas"],
        help="also write the final scores for an LMS: canvas -> DIR/canvas.csv (repeatable)",
    )
    p.add_argument(
        "--roster",
        default=None,
        metavar="FILE",
        help="CSV with an id column (the student folder names) and optional name, first_name, "
        "last_name, email, section, canvas_id, sis_user_id, sis_login_id",
    )
    p.add_argument(
        "--canvas-column",
        default=None,
        metavar="NAME",
        help="the Canvas assignment column, e.g. 'Token embeddings (123456)' (default: the assignment id)",
    )
    p.add_argument(
        "--secret-file",
        default=None,
        metavar="PATH",
        help="the course secret the hidden tests' inputs are drawn from (default: OUT/course-secret, "
        "created on first use, mode 0600; keep it out of the repository)",
    )
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run kernels without the bubblewrap sandbox (student code can then read the answer key "
        "and write anywhere this user can): only for machines without user namespaces, on trusted "
        "submissions; grades.csv says so per row",
    )
    p.add_argument("--source", default=None, help="the nbgrader source notebook (default: solutions/ID/ID.ipynb)")
    p.add_argument(
        "--checks-module",
        action="append",
        default=[],
        metavar="MODULE",
        help="extra module to import that registers the assignment's checks (repeatable)",
    )

    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:8786",
        help="grade on the Dask cluster of this scheduler instead of local processes (--jobs is then "
        "ignored: the workers' threads decide)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    from .course import skip_unused_imports

    skip_unused_imports()
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _grade(args)
    except (UsageError, SchedulerError, SandboxUnavailable, SecretError) as exc:
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
    if args.late_penalty_per_hour < 0 or args.late_penalty_per_hour > 100:
        raise UsageError(f"--late-penalty-per-hour must be between 0 and 100 (got {args.late_penalty_per_hour:g})")
    if args.late_penalty_per_hour and args.due is None:
        raise UsageError("--late-penalty-per-hour needs --due (the time it counts from)")
    if args.retry_failed and args.force:
        raise UsageError("--retry-failed and --force contradict each other: --force regrades everyone")
    if args.canvas_column is not None and "canvas" not in args.export:
        raise UsageError("--canvas-column is for --export canvas")
    if Path(args.out).resolve().parent == Path(args.submissions).resolve():
        raise UsageError(
            f"--out {args.out} is inside {args.submissions}, where it would be taken for a student folder: "
            "put it elsewhere"
        )


def _grade(args) -> int:
    from .cache import gradebook_blob, load_checks
    from .course import max_score, notebook_problem, source_info, warm_up
    from .feedback import render
    from .lateness import parse_due
    from .roster import RosterError, read_roster
    from .store import RETRIED_STATUSES, GradebookMismatch, Store, StoreLocked

    _validate(args)
    try:
        due = parse_due(args.due) if args.due is not None else None
        roster = read_roster(args.roster)
    except (ValueError, RosterError) as exc:
        raise UsageError(str(exc)) from None
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
    picks = find_submissions(Path(args.submissions), args.assignment, notebook_name, grade_ids_in(source_path))
    _warn_unchecked(args, source)
    secret = _secret(args)

    try:
        store = Store(args.out, args.assignment, notebook_name, args.db_url)
    except StoreLocked as exc:
        raise UsageError(str(exc)) from None
    try:
        results: dict[str, GradeResult] = {}
        todo: list[GradeTask] = []
        cached_results: list[GradeResult] = []
        answers: dict[str, bytes] = {}
        kept_stale = 0
        from .secret import fingerprint, hidden_seed

        base = dict(
            assignment=args.assignment,
            notebook_name=notebook_name,
            source_notebook=source,
            timeout_s=float(args.timeout),
            memory_bytes=int(args.memory * 2**30),
            output_chars=int(args.output_chars),
            secret_id=fingerprint(secret),
            check_modules=tuple(args.checks_module),
            sandbox=not args.unsafe_no_sandbox,
            grader_fingerprint=code_fingerprint(*args.checks_module, *_probe_modules(args, source)),
        )
        for student, pick in picks.items():
            path = pick.path
            too_big = path is not None and path.stat().st_size > MAX_NOTEBOOK_BYTES
            data = None if path is None else (b"" if too_big else path.read_bytes())
            if data:
                answers[student] = data
            task = GradeTask(
                student=student, submission=data, hidden_seed=hidden_seed(secret, args.assignment, student), **base
            )
            if too_big:
                result = GradeResult(
                    student,
                    args.assignment,
                    "invalid-notebook",
                    None,
                    max_score(source),
                    reason=f"the notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MiB",
                    submission_hash=content_hash(task),
                )
                result.feedback_html = render(result)
                cached_results.append(result)
                continue
            if args.retry_failed:
                stored = store.stored(student)
                if stored is not None and stored.status not in RETRIED_STATUSES:
                    kept_stale += stored.submission_hash != content_hash(task)
                    cached_results.append(stored)
                else:
                    todo.append(task)
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
                store.gradebook()  # an unreachable server fails now, before any worker starts
            except Exception as exc:
                raise gradebook_error(exc) from None
        executor = None
        if todo:
            if not args.scheduler:  # import nbgrader here once: local workers are forked from this process with it
                if not args.unsafe_no_sandbox:
                    from .cache import require_sandbox

                    require_sandbox()  # fail closed: no sandbox, no grading (one line: why, and the fix)
                warm_up()
                # the judges and every test cell's checks too, before the workers fork (as the warning's check did)
                load_checks(args.assignment, args.checks_module, [c.grade_id for c in source_info(source).test_cells])
            executor = _executor(args, len(todo))
        started = time.perf_counter()
        blob = gradebook_blob(args.assignment, notebook_name, source) if todo else None
        try:
            store.prepare_assignment(source, blob)
        except GradebookMismatch as exc:
            raise UsageError(str(exc)) from None
        except Exception as exc:  # e.g. a PostgreSQL server that went away
            raise gradebook_error(exc) from None
        store.write_course_config()
        for result in cached_results:
            results[result.student] = result
            if result.status == "invalid-notebook" and not store.cached(result.student, result.submission_hash):
                store.save(result)
            else:
                store.record(result)  # a gradebook shared with other runs gets it back if it was lost
        retried = 0
        if executor is not None:
            tasks = [_with_blob(t, blob) for t in todo]
            _run(tasks, args, store, results, executor)
            retried = _retry_failures(tasks, args, store, results)
        elapsed = time.perf_counter() - started
        rows = _final_rows(args, store, results, picks, due, source, answers)
        path = store.write_csv(rows)
        for row in rows:
            store.write_feedback(row)
        outputs = _write_outputs(args, store, rows, roster)
    finally:
        store.close()
    _summary(rows, len(todo), retried, kept_stale, elapsed, args, path, store, outputs)
    warning = all_missing_warning(Path(args.submissions), args.assignment, picks)
    if warning:
        print(warning, file=sys.stderr)
    return 0


def _retry_failures(tasks: list[GradeTask], args, store, results: dict[str, GradeResult]) -> int:
    """Grade every ``crashed`` or ``timeout`` result of this run once more, with fresh workers; the second
    result is the one reported, and its reason names the first. Returns how many were retried."""
    from dataclasses import replace

    from .store import RETRIED_STATUSES

    first = {
        t.student: results[t.student]
        for t in tasks
        if t.student in results and results[t.student].status in RETRIED_STATUSES
    }
    if not first:
        return 0
    again = [t for t in tasks if t.student in first]

    def annotate(result: GradeResult) -> GradeResult:
        before = first[result.student]
        note = f"first run: {before.status}: {before.reason}"
        if result.status in RETRIED_STATUSES:
            note = f"retried once, failed again ({note})"
        else:
            note = f"graded on the second try ({note})"
        log = f"=== first run ===\n{before.log}\n=== retry ===\n{result.log}" if before.log else result.log
        return replace(result, reason="; ".join(x for x in (result.reason, note) if x)[:1000], log=log)

    _run(
        again,
        args,
        store,
        results,
        _executor(args, len(again)),
        transform=annotate,
        desc=f"retrying {len(again)} failed",
    )
    return len(again)


def _final_rows(args, store, results, picks, due, source: bytes, answers: dict[str, bytes]):
    """One :class:`~autograder.grading.scores.Row` per student, from the results and the gradebook as it stands
    (manual scores, comments, extensions), with lateness written back into the gradebook and similarity flags."""
    from functools import partial

    from .lateness import assess, read_timestamp
    from .scores import build_row

    rows = []
    for student in sorted(results):
        result, pick = results[student], picks[student]
        view = store.view(student)
        folder = Path(args.submissions) / student / args.assignment
        timestamp = read_timestamp(folder)
        lateness_of = partial(
            assess,
            timestamp,
            due if result.status != "missing" else None,
            max_score=result.max_score,
            percent_per_hour=args.late_penalty_per_hour,
            extension=view.extension,
        )
        row = build_row(result, view, lateness_of, notebook=pick.name, pick_note=pick.note)
        if result.status != "missing":
            store.record_lateness(student, timestamp.time, due, row.lateness.penalty)
        rows.append(row)
    flags = _similarity_flags(source, answers)
    for row in rows:
        row.flags = flags.get(row.student, [])
    return rows


def _similarity_flags(source: bytes, answers: dict[str, bytes]) -> dict[str, list[str]]:
    from . import similarity

    try:
        template, solution, reference = similarity.course_fingerprints(source)
    except Exception as exc:  # flags are leads: a source they cannot read loses only the flags
        print(
            f"warning: no similarity flags: the source's answer cells are unreadable ({type(exc).__name__})",
            file=sys.stderr,
        )
        return {}
    ids = similarity.answer_ids(source)
    prints = {s: similarity.fingerprint(similarity.answer_cells(data, ids), template) for s, data in answers.items()}
    return similarity.flags_by_student(similarity.compare_class(prints, solution, reference))


def _write_outputs(args, store, rows, roster) -> list[Path]:
    """The class report and the LMS exports (after grades.csv, from the same rows)."""
    from .lms_export import write_canvas
    from .report import write_report

    paths = [write_report(store.out, rows, args.assignment)]
    if "canvas" in args.export:
        lacking = roster.missing(r.student for r in rows)
        if lacking:
            shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
            print(
                f"warning: the roster {roster.path} lacks {len(lacking)} student"
                f"{'s' if len(lacking) != 1 else ''} ({shown}): their Canvas rows carry only the id",
                file=sys.stderr,
            )
        paths.append(write_canvas(store.out, rows, roster, args.canvas_column or args.assignment))
    return paths


def _probe_modules(args, source: bytes) -> list[str]:
    """The probe modules of the assignment outside the package (registered by its --checks-module modules)."""
    from .cache import checks_summary
    from .course import source_info

    cells = source_info(source).test_cells
    return checks_summary(args.assignment, args.checks_module, [c.grade_id for c in cells])[1]


def _secret(args) -> bytes:
    from .secret import SECRET_NAME, load_or_create

    if args.secret_file:
        return load_or_create(args.secret_file, create=False)
    return load_or_create(Path(args.out) / SECRET_NAME)


def _with_blob(task: GradeTask, blob: bytes) -> GradeTask:
    from dataclasses import replace

    return replace(task, gradebook_blob=blob)


def _warn_unchecked(args, source: bytes) -> None:
    """Say so when some test cells have no registered checks: their kernel verdict cannot be re-derived."""
    from .cache import checks_summary
    from .course import source_info

    cells = source_info(source).test_cells
    try:
        checked = set(checks_summary(args.assignment, args.checks_module, [c.grade_id for c in cells])[0])
    except ImportError as exc:
        raise UsageError(f"--checks-module: {exc}") from None
    unchecked = [cell.grade_id for cell in cells if cell.grade_id not in checked]
    if unchecked:
        print(
            f"warning: no checks registered for {args.assignment} test cells {', '.join(unchecked)}: "
            "their points come from the student's kernel alone",
            file=sys.stderr,
        )


def _executor(args, n_tasks: int):
    """Local worker processes, or the Dask cluster of ``--scheduler``; started (connected) now."""
    if args.scheduler:
        from .dask_executor import DaskExecutor

        return DaskExecutor(args.scheduler, require_sandbox=not args.unsafe_no_sandbox).start()
    from .executors import LocalExecutor

    return LocalExecutor(min(args.jobs, n_tasks)).start()


def _run(tasks, args, store, results, executor, transform=None, desc: str | None = None) -> None:
    from tqdm import tqdm

    counts = Counter()
    with tqdm(
        total=len(tasks),
        desc=desc or f"grading {args.assignment}",
        unit="nb",
        disable=args.no_progress,
        file=sys.stderr,
    ) as bar:

        def on_result(result: GradeResult) -> None:
            if transform is not None:
                result = transform(result)
            store.save(result)
            results[result.student] = result
            counts["graded" if result.status == "graded" else "failed"] += 1
            bar.set_postfix(graded=counts["graded"], failed=counts["failed"], refresh=False)
            bar.update(1)

        executor.run(tasks, on_result)


def _summary(
    rows, regraded: int, retried: int, kept_stale: int, elapsed: float, args, csv_path, store, outputs
) -> None:
    """The table printed at the end, from the same rows as grades.csv (final scores: manual and late included)."""
    from .scores import class_stats

    stats = class_stats(rows)
    max_score = rows[0].max_score if rows else 0.0
    lines = [
        f"{args.assignment}: {len(rows)} students, {regraded} run now in {elapsed:.1f} s "
        f"({len(rows) - regraded} unchanged since the last run)"
        + (f", {retried} retried once after a crash or timeout" if retried else ""),
        f"  {'status':<17}{'students':>8}",
    ]
    lines += [f"  {status:<17}{stats.by_status.get(status, 0):>8}" for status in STATUSES]
    if stats.scored:
        lines.append(
            f"  final scores ({stats.scored} scored; ungraded notebooks have none): mean {stats.mean:.2f} / "
            f"{max_score:g}, min {stats.minimum:g}, max {stats.maximum:g}"
        )
    extras = [
        (sum(r.hand_scored for r in rows), "with manual scores from the gradebook"),
        (sum(bool(r.manual_pending) for r in rows), "awaiting manual grading"),
        (
            sum(r.lateness.late for r in rows),
            "late" + (f" (-{args.late_penalty_per_hour:g}% per started hour)" if args.late_penalty_per_hour else ""),
        ),
        (sum(r.lateness.note.startswith("lateness unknown") for r in rows), "with an unknown submission time"),
        (sum(bool(r.flags) for r in rows), "with similarity flags (leads to check, not verdicts)"),
    ]
    lines += [f"  {n} {what}" for n, what in extras if n]
    if kept_stale:
        lines.append(
            f"  {kept_stale} changed notebooks kept their stored result (--retry-failed); "
            "rerun without it to grade them"
        )
    isolation = Counter(r.result.isolation or "not run" for r in rows)
    lines.append("  isolation: " + ", ".join(f"{name}: {count}" for name, count in sorted(isolation.items())))
    if any(r.result.isolation == ISOLATION_NONE for r in rows):
        lines.append("  warning: kernels ran WITHOUT the sandbox (--unsafe-no-sandbox): see the isolation column")
    failed = sorted((r for r in rows if r.status != "graded"), key=lambda r: r.student)
    for r in failed[:20]:
        lines.append(f"  {r.student}: {r.status}: {r.reason}")
    if len(failed) > 20:
        lines.append(f"  ... and {len(failed) - 20} more (see grades.csv)")
    lines.append(f"wrote {csv_path}, feedback in {store.out / 'feedback'}, gradebook {store.db_url}")
    lines.append("wrote " + ", ".join(str(p) for p in outputs))
    print("\n".join(lines))
