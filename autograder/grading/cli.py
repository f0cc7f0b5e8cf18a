"""``python -m autograder grade SUBMISSIONS --assignment ID --out DIR [--jobs N] [--timeout SECONDS]``

Grades every student folder of an nbgrader submitted layout (``SUBMISSIONS/<student>/<assignment>/*.ipynb``) in
parallel, one kernel per submission, and writes ``DIR/grades.csv``, ``DIR/feedback/`` and the gradebook. A rerun
regrades only submissions whose notebook (or the assignment's source, the limits or the course secret) changed;
``--force`` regrades all, ``--retry-failed`` runs crashed and timed-out notebooks again, ``--refresh`` runs none
(manual scores, extensions and exports only). Every rerun applies the grading policy stored in DIR (due time,
penalty, limits, exports, roster, resubmission policy); changing it takes ``--change-policy``. Each notebook's kernel
runs in a bubblewrap sandbox; where none can be set up, grading stops with a one-line reason and fix unless
``--unsafe-no-sandbox`` is given. Outputs are staged and published at the end: an interrupted run (Ctrl-C, SIGTERM)
leaves the previous complete state. Exit status 0 whenever grading ran; 2 with a one-line message for a usage
error; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from . import inputs
from .dask_executor import SchedulerError, check_address
from .picking import Pick, grade_ids_of, pick_notebook
from .policy import RESUBMISSION_POLICIES, Policy, PolicyError
from .records import STATUSES, GradeResult, GradeTask
from .sandbox import ISOLATION_NONE, SandboxUnavailable
from .secret import SecretError
from .tasks import code_fingerprint, content_hash

__all__ = ["main", "find_submissions", "source_notebook", "UsageError", "all_missing_warning"]

MAX_NOTEBOOK_BYTES = inputs.MAX_NOTEBOOK_BYTES
_DEFAULT = Policy()  # the policy of a first run, for --help
SIMILARITY_FILE = "similarity.json"  # the class's similarity flags and what they were computed from (the state)


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
    for entry in inputs.list_folder(submissions, submissions):  # links are listed, never followed (inputs.py)
        if entry.name.startswith(".") or entry.kind not in ("folder", "link"):
            continue
        problem = inputs.student_id_problem(entry.name)
        if problem or entry.kind == "link":
            problem = problem or f"{entry.name} is a symbolic link: links are never followed"
            found[entry.name] = Pick(None, problem=problem)
            continue
        folder = submissions / entry.name / assignment
        found[entry.name] = pick_notebook(folder, notebook_name, set(grade_ids), root=submissions)
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
        for sub in _folders_of(submissions, student)
        if sub.kind == "folder" and not sub.name.startswith(".")
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


def _folders_of(submissions: Path, student: str) -> list[inputs.Entry]:
    try:
        return inputs.list_folder(submissions, submissions / student)
    except (OSError, inputs.Rejected):
        return []


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
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"wall-clock seconds per notebook (policy; first run: {_DEFAULT.timeout:g})",
    )
    p.add_argument(
        "--memory",
        type=float,
        default=None,
        help=f"memory limit per notebook, GiB of address space (policy; first run: {_DEFAULT.memory:g})",
    )
    p.add_argument(
        "--output-chars",
        type=int,
        default=None,
        help=f"printed output kept per notebook (policy; first run: {_DEFAULT.output_chars})",
    )
    p.add_argument(
        "--db-url", default=None, help="gradebook URL, e.g. postgresql://user@host/course (default: sqlite in --out)"
    )
    runs = p.add_mutually_exclusive_group()
    runs.add_argument("--force", action="store_true", help="regrade every submission, even unchanged ones")
    runs.add_argument(
        "--retry-failed",
        action="store_true",
        help="grade again only the submissions whose last result was crashed or timeout (and students "
        "never graded); every other student keeps the stored result",
    )
    runs.add_argument(
        "--refresh",
        action="store_true",
        help="run no notebook: rewrite grades.csv, feedback, report and exports from the stored results and the "
        "gradebook as it stands (manual scores, extra credit, extensions, policy changes)",
    )
    p.add_argument(
        "--change-policy",
        action="store_true",
        help="allow options that differ from the grading policy stored in --out (due, penalty, limits, exports, "
        "roster, Canvas column, resubmission); the change is printed in one line",
    )
    p.add_argument(
        "--due",
        default=None,
        metavar="ISO-8601-TIME",
        help="due time with a time zone, e.g. 2026-12-05T23:59+01:00, or none (policy); submission times come from "
        "the timestamp.txt that nbgrader collect writes beside each notebook",
    )
    p.add_argument(
        "--late-penalty-per-hour",
        type=float,
        default=None,
        metavar="P",
        help="percent of the maximum score deducted per started hour past --due, never below 0 "
        f"(policy; first run: {_DEFAULT.late_penalty_per_hour:g})",
    )
    p.add_argument(
        "--resubmission",
        default=None,
        choices=RESUBMISSION_POLICIES,
        help=f"which of a student's graded submissions counts (policy; first run: {_DEFAULT.resubmission})",
    )
    p.add_argument(
        "--export",
        action="append",
        default=None,
        choices=["canvas", "none"],
        help="also write the final scores for an LMS: canvas -> DIR/canvas.csv (repeatable; none: no export; policy)",
    )
    p.add_argument(
        "--roster",
        default=None,
        metavar="FILE",
        help="CSV with an id column (the student folder names) and optional name, first_name, "
        "last_name, email, section, canvas_id, sis_user_id, sis_login_id, or Canvas' gradebook export as it "
        "comes; none: no roster (policy)",
    )
    p.add_argument(
        "--canvas-column",
        default=None,
        metavar="NAME",
        help="the Canvas assignment column, e.g. 'Token embeddings (123456)' (default: the assignment id; policy)",
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
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _grade(args)
    except (UsageError, SchedulerError, SandboxUnavailable, SecretError, PolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _stop_everything()
        print(
            f"interrupted: grading stopped; {args.out} keeps the previous complete results (results finished so far "
            "are kept for the next run)",
            file=sys.stderr,
        )
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)  # no interpreter shutdown: the pool's threads would wait for workers already killed
    finally:
        signal.signal(signal.SIGTERM, previous)


def _on_sigterm(signum, frame):
    """SIGTERM stops grading as Ctrl-C does (except while the results are being published: see _publishing)."""
    if _PUBLISHING[0]:
        _PUBLISHING[1] = True  # finish publishing first: one complete state
        return
    raise KeyboardInterrupt


#: [publishing now, a stop was asked meanwhile]
_PUBLISHING = [False, False]


def _stop_everything() -> None:
    """Kill every process this one started (grading workers, their autograde children and kernels), at once."""
    from .limits import descendants, kill_tree

    everyone = descendants(os.getpid())
    for pid in sorted(everyone):
        try:
            kill_tree(pid, everyone)
        except OSError:
            pass


def _validate(args) -> None:
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1 (got {args.jobs})")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out} is a file: give a folder for grades.csv, feedback/ and the gradebook")
    if args.scheduler is not None:
        check_address(args.scheduler)
    if Path(args.out).resolve().parent == Path(args.submissions).resolve():
        raise UsageError(
            f"--out {args.out} is inside {args.submissions}, where it would be taken for a student folder: "
            "put it elsewhere"
        )


def _given_policy(args) -> dict:
    """The policy options present on the command line (``none`` read as no value)."""
    given = {}
    for name in ("timeout", "memory", "output_chars", "late_penalty_per_hour", "canvas_column", "resubmission"):
        if getattr(args, name) is not None:
            given[name] = getattr(args, name)
    if args.due is not None:
        given["due"] = None if args.due.strip().lower() == "none" else args.due.strip()
    if args.roster is not None:
        given["roster"] = None if args.roster.strip().lower() == "none" else str(Path(args.roster).resolve())
    if args.export is not None:
        given["export"] = tuple(sorted({e for e in args.export if e != "none"}))
    return given


def _validate_policy(policy) -> None:
    """The policy's values, before anything is read: one line each."""
    if policy.timeout <= 0:
        raise UsageError(f"--timeout must be positive (got {policy.timeout:g})")
    if policy.memory <= 0:
        raise UsageError(f"--memory must be positive (got {policy.memory:g})")
    if policy.output_chars < 0:
        raise UsageError(f"--output-chars must not be negative (got {policy.output_chars})")
    if policy.late_penalty_per_hour < 0 or policy.late_penalty_per_hour > 100:
        raise UsageError(f"--late-penalty-per-hour must be between 0 and 100 (got {policy.late_penalty_per_hour:g})")
    if policy.late_penalty_per_hour and policy.due is None:
        raise UsageError("--late-penalty-per-hour needs --due (the time it counts from)")
    if policy.canvas_column is not None and "canvas" not in policy.export:
        raise UsageError("--canvas-column is for --export canvas")


def _validate_memory(policy, stored, source: bytes) -> None:
    """``--memory`` against what a kernel of this assignment needs, measured once per value (one line)."""
    if stored is None or stored.memory != policy.memory:  # measured once per value, not on every rerun
        from .policy import memory_problem

        problem = memory_problem(policy.memory, source)
        if problem:
            raise UsageError(problem)


def _grade(args) -> int:
    from . import policy as grading_policy
    from .cache import gradebook_blob, load_checks
    from .course import max_score, notebook_problem, source_info, warm_up
    from .feedback import render
    from .filenames import safe_filename
    from .lateness import parse_due, read_timestamp
    from .roster import RosterError, read_roster
    from .store import RETRIED_STATUSES, GradebookMismatch, Store, StoreLocked

    _validate(args)
    results_dir = Path(args.out) / ".autograder" / safe_filename(args.assignment)
    stored_policy = grading_policy.load(results_dir)
    policy, changes = grading_policy.resolve(stored_policy, _given_policy(args), args.change_policy)
    try:
        due = parse_due(policy.due) if policy.due is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _validate_policy(policy)
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
    picks = find_submissions(Path(args.submissions), args.assignment, notebook_name, grade_ids_of(source))
    try:
        roster = read_roster(policy.roster, students=picks)
    except RosterError as exc:
        raise UsageError(str(exc)) from None
    _validate_memory(policy, stored_policy, source)  # last: it measures a worker (seconds)
    _warn_unchecked(args, source)
    secret = _secret(args)

    try:
        store = Store(args.out, args.assignment, notebook_name, args.db_url)
    except StoreLocked as exc:
        raise UsageError(str(exc)) from None
    staging = None
    try:
        if changes:
            print(grading_policy.describe_changes(changes), file=sys.stderr)
        results: dict[str, GradeResult] = {}
        todo: list[GradeTask] = []
        cached_results: list[GradeResult] = []
        answers: dict[str, bytes] = {}
        times = {}
        counts = Counter()
        from .secret import fingerprint, hidden_seed

        base = dict(
            assignment=args.assignment,
            notebook_name=notebook_name,
            source_notebook=source,
            timeout_s=float(policy.timeout),
            memory_bytes=int(policy.memory * 2**30),
            output_chars=int(policy.output_chars),
            secret_id=fingerprint(secret),
            check_modules=tuple(args.checks_module),
            sandbox=not args.unsafe_no_sandbox,
            grader_fingerprint=code_fingerprint(*args.checks_module, *_probe_modules(args, source)),
        )
        previously_recorded = dict(store._recorded)
        for student, pick in picks.items():
            times[student] = read_timestamp(
                Path(args.submissions) / student / args.assignment, root=Path(args.submissions)
            )
            data, rejected = _read_submission(Path(args.submissions), pick)  # the input rule (inputs.py)
            if data:
                answers[student] = data
            task = GradeTask(
                student=student, submission=data, hidden_seed=hidden_seed(secret, args.assignment, student), **base
            )
            if rejected or data is None:  # decided here: no notebook runs
                result = GradeResult(
                    student,
                    args.assignment,
                    "invalid-notebook" if rejected else "missing",
                    None,
                    max_score(source),
                    reason=rejected or f"no notebook submitted for {args.assignment}",
                    submission_hash=content_hash(task),
                )
                result.feedback_html = render(result)
                cached_results.append(result)
                continue
            stored = store.stored(student)
            if args.refresh:
                if stored is None:
                    counts["never graded"] += 1  # --refresh runs no notebook: left out, said in the summary
                else:
                    counts["stale"] += stored.submission_hash != content_hash(task)
                    cached_results.append(stored)
                continue
            if args.retry_failed:
                if stored is not None and stored.status not in RETRIED_STATUSES:
                    counts["stale"] += stored.submission_hash != content_hash(task)
                    cached_results.append(stored)
                else:
                    todo.append(task)
                continue
            cached = None if args.force else store.cached(student, content_hash(task))
            if cached is not None:
                cached_results.append(cached)
                counts["failed kept"] += cached.status in RETRIED_STATUSES
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
        retried = 0
        if executor is not None:
            tasks = [_with_blob(t, blob) for t in todo]
            _run(tasks, args, store, results, executor, times)
            retried = _retry_failures(tasks, args, store, results, times)
        elapsed = time.perf_counter() - started
        # ---- the end of the run: the gradebook and every output, published at once
        _PUBLISHING[0] = True
        signal.signal(signal.SIGINT, _on_sigterm)
        from .publish import Staging

        staging = Staging(store.out)
        store.stage = staging.root
        rows, reasons = _final_rows(
            args, policy, store, results, picks, due, source, answers, times, previously_recorded, changes
        )
        store.write_csv(rows)
        for row in rows:
            store.write_feedback(row)
            store.publish_files(row.result)
        outputs = _write_outputs(args, policy, store, rows, roster, reasons)
        if policy != stored_policy:
            grading_policy.save(results_dir, policy)
        published = staging.publish()
        staging = None
        store.stage = store.out
    finally:
        if staging is not None:
            staging.discard()
        store.close()
    _summary(rows, len(todo), retried, counts, elapsed, args, policy, store, published, outputs)
    warning = all_missing_warning(Path(args.submissions), args.assignment, picks)
    if warning:
        print(warning, file=sys.stderr)
    if _PUBLISHING[1]:
        print("stopped after publishing this run's results (a stop signal arrived meanwhile)", file=sys.stderr)
        return 130
    return 0


def _retry_failures(tasks: list[GradeTask], args, store, results: dict[str, GradeResult], times) -> int:
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
        times,
        transform=annotate,
        desc=f"retrying {len(again)} failed",
    )
    return len(again)


def _final_rows(
    args, policy, store, results, picks, due, source: bytes, answers, times, previously_recorded, changes=()
):
    """One :class:`~autograder.grading.scores.Row` per student, from the results and the gradebook as it stands
    (manual scores, extra credit, comments, extensions): the resubmission policy picks the result that counts, it
    is recorded in the gradebook with its lateness, and the similarity flags are added. Returns the rows and,
    per student, why the row may differ from the last run (for history.csv)."""
    from functools import partial

    from .lateness import Timestamp, assess
    from .policy import describe_changes
    from .resubmission import choose
    from .scores import build_row

    rows, reasons = [], {}
    for student in sorted(results):
        current, pick = results[student], picks[student]
        timestamp = times[student]
        extension = store.extension(student)

        def lateness(raw, when: Timestamp, status: str, max_points=current.max_score, extension=extension):
            deadline = due if status != "missing" else None
            return assess(when, deadline, raw, max_points, policy.late_penalty_per_hour, extension=extension)

        def final_score(result, when, lateness=lateness):
            if result.score is None:
                return None
            late = lateness(result.score, Timestamp(when), result.status)
            return max(0.0, result.score - (late.penalty or 0.0))

        def on_time(when, extension=extension):
            deadline = None if due is None else due + (extension or dt.timedelta(0))
            return deadline is None or when <= deadline

        choice = choose(policy.resubmission, current, timestamp.time, store.archived(student), final_score, on_time)
        result = choice.result
        when = timestamp if result is current else Timestamp(choice.submitted)
        results[student] = result
        store.record(result)
        view = store.view(student)
        row = build_row(
            result, view, partial(lateness, when=when, status=result.status), notebook=pick.name, pick_note=pick.note
        )
        row.resubmission = choice.note
        if choice.replaced_latest:
            row.notes.append(f"resubmission policy {choice.note}")
        if result.status != "missing":
            store.record_lateness(student, when.time, due, row.lateness.penalty)
        why = []
        before = previously_recorded.get(student)
        if before is not None and before != result.submission_hash:
            why.append(
                "an earlier submission counts (resubmission policy)"
                if choice.replaced_latest
                else "regraded: the notebook, the grader, the limits or the secret changed"
            )
        if args.retry_failed and result.status not in ("missing",) and before != result.submission_hash:
            why.append("--retry-failed")
        if row.hand_scored or row.extra_credit:
            why.append("manual scores or extra credit in the gradebook")
        if row.lateness.penalty:
            why.append(f"late penalty {row.lateness.penalty:g}")
        if changes:
            why.append(describe_changes(changes))
        reasons[student] = "; ".join(why)
        rows.append(row)
    flags = _similarity_flags(source, answers, store)
    for row in rows:
        row.flags = flags.get(row.student, [])
    return rows, reasons


def _similarity_flags(source: bytes, answers: dict[str, bytes], store) -> dict[str, list[str]]:
    """The class's similarity flags, reused from the output folder's state when nothing they depend on changed."""
    from . import similarity

    stored = store.read_state(SIMILARITY_FILE)
    flags, record = similarity.remembered_class_flags(
        source, answers, stored, warn=lambda line: print(f"warning: {line}", file=sys.stderr)
    )
    if record != stored:
        store.write_state(SIMILARITY_FILE, record)
    return flags


def _read_submission(submissions: Path, pick: Pick) -> tuple[bytes | None, str]:
    """``(the notebook's bytes or None, "")``, or ``(b"", reason)`` for an input the rule rejects (inputs.py)."""
    if pick.problem:
        return b"", pick.problem
    if pick.path is None:
        return None, ""
    try:
        return inputs.read_notebook(submissions, pick.path), ""
    except FileNotFoundError:
        return b"", f"{pick.name} disappeared while the class was graded"
    except inputs.Rejected as exc:
        return b"", str(exc)


def _write_outputs(args, policy, store, rows, roster, reasons) -> list[Path]:
    """The class report, the history and the LMS exports (after grades.csv, from the same rows), staged."""
    from .lms_export import write_canvas
    from .report import write_report

    paths = [write_report(store.stage, rows, args.assignment, reasons=reasons, previous=store.out)]
    if "canvas" in policy.export:
        lacking = roster.missing(r.student for r in rows)
        if lacking:
            shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
            print(
                f"warning: the roster {roster.path} lacks {len(lacking)} student"
                f"{'s' if len(lacking) != 1 else ''} ({shown}): their Canvas rows carry only the id",
                file=sys.stderr,
            )
        paths.append(write_canvas(store.stage, rows, roster, policy.canvas_column or args.assignment))
    return [store.out / p.relative_to(store.stage) for p in paths]


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


def _run(tasks, args, store, results, executor, times, transform=None, desc: str | None = None) -> None:
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
            store.save(result, record=False, submitted_at=times[result.student].time)  # recorded at the end
            results[result.student] = result
            counts["graded" if result.status == "graded" else "failed"] += 1
            bar.set_postfix(graded=counts["graded"], failed=counts["failed"], refresh=False)
            bar.update(1)

        executor.run(tasks, on_result)


def _summary(
    rows, regraded: int, retried: int, counts, elapsed: float, args, policy, store, published, outputs
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
    pending = [r for r in rows if r.manual_pending]
    extras = [
        (sum(r.hand_scored for r in rows), "with manual scores from the gradebook"),
        (sum(bool(r.extra_credit) for r in rows), "with extra credit"),
        (
            len(pending),
            "awaiting manual grading ("
            + ", ".join(f"{r.student}: {' '.join(r.manual_pending)}" for r in pending[:5])
            + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
            + ")",
        ),
        (
            sum(r.lateness.late for r in rows),
            "late"
            + (f" (-{policy.late_penalty_per_hour:g}% per started hour)" if policy.late_penalty_per_hour else ""),
        ),
        (sum(r.lateness.note.startswith("lateness unknown") for r in rows), "with an unknown submission time"),
        (
            sum(r.resubmission.startswith(("best", "latest-on-time")) and "kept" in r.resubmission for r in rows),
            f"where an earlier submission counts (--resubmission {policy.resubmission})",
        ),
        (sum(bool(r.flags) for r in rows), "with similarity flags (leads to check, not verdicts)"),
    ]
    lines += [f"  {n} {what}" for n, what in extras if n]
    if counts["failed kept"]:
        lines.append(
            f"  {counts['failed kept']} crashed or timed out last time and kept as they were: "
            "--retry-failed runs them again"
        )
    if counts["stale"]:
        flag = "--refresh" if args.refresh else "--retry-failed"
        lines.append(
            f"  {counts['stale']} students kept a stored result although their notebook, the limits or the grader "
            f"changed since ({flag}); rerun without it to grade them"
        )
    if counts["never graded"]:
        lines.append(
            f"  {counts['never graded']} students never graded are left out (--refresh runs no notebook); "
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
    lines.append(f"published in {store.out}: {', '.join(published)}; gradebook {store.db_url}")
    lines.append("wrote " + ", ".join(str(p) for p in outputs))
    print("\n".join(lines))
