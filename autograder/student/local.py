"""What a test cell and a self-check cell call: :func:`run_checks` and :func:`check`.

Two modes, chosen by the environment:

* **local** (a student's machine, ``make test``, ``nbgrader validate``): probe and judge in this process, print a
  ``PASS``/``FAIL`` line per check, raise :class:`CheckFailed` on a failure. Visible checks use
  :data:`VISIBLE_SEED`, hidden ones :data:`LOCAL_HIDDEN_SEED` (the grading seed exists only at grading time).
  The judges (:mod:`autograder.checks`) are loaded by name, here only: this package never imports them otherwise.
* **grading** (inside the grading sandbox, where :data:`~autograder.student.grading.SPEC_ENV` names the grading
  spec): probe with the spec's hidden seed, keep the encoded result in memory for
  :func:`autograder.student.grading.emit`, print one line, never import a judge, never raise.
"""

from __future__ import annotations

import importlib
import inspect

from . import grading, registry
from .cases import LOCAL_HIDDEN_SEED, VISIBLE_SEED
from .verdict import CheckFailed, format_verdict

__all__ = ["run_checks", "check", "CheckFailed", "VISIBLE_SEED", "LOCAL_HIDDEN_SEED"]

#: the judge module local mode loads by name (absent from the grading sandbox, never loaded in grading mode)
JUDGE_MODULE = "autograder.checks.core"


def _judge():
    try:
        return importlib.import_module(JUDGE_MODULE)
    except ModuleNotFoundError as exc:
        raise RuntimeError(
            f"the checks' judges ({JUDGE_MODULE}) are not installed here, and "
            f"{grading.SPEC_ENV} is not set: run the notebook with the course package installed "
            f"(pip install -e .)"
        ) from exc


def run_checks(assignment: str, group_name: str, namespace: dict | None = None, *, quiet: bool = False) -> None:
    """What a test cell calls: run the checks of one group on ``namespace`` (default: the caller's globals, the
    notebook). Local mode prints a line per check and raises :class:`CheckFailed` listing the failures (``KeyError``
    for a group with no checks); grading mode prints one line and never raises."""
    if namespace is None:
        namespace = inspect.currentframe().f_back.f_globals
    if grading.spec_path() is not None:
        print(grading.probe_cell(assignment, group_name, namespace))
        return
    results = _judge().verdicts(assignment, group_name, namespace, LOCAL_HIDDEN_SEED)
    if not quiet:
        for name, ok, message in results:
            print(format_verdict(name, ok, message))
    failures = [(n, m) for n, ok, m in results if not ok]
    if failures:
        raise CheckFailed("; ".join(f"{n}: {m}" for n, m in failures))


def _visible_groups(name: str) -> list[tuple[str, str]]:
    """``[(assignment, group)]`` of the visible groups whose checks test the function or class called ``name``."""
    found = []
    for assignment in registry.ASSIGNMENTS:
        for group_name, probes in registry.groups(assignment).items():
            if any(p.function == name and not p.hidden for p in probes):
                found.append((assignment, group_name))
    return found


def check(fn) -> None:
    """Run the visible checks of ``fn`` (a graded function or class, e.g. ``check(apply_rope)``) and print one
    ``PASS``/``FAIL`` line per check and a summary line. Never raises for a wrong answer: it is a report.
    ``ValueError`` when ``fn`` is not graded. While grading it prints one line and does nothing else."""
    name = getattr(fn, "__name__", None)
    if grading.spec_path() is not None:
        shown = name if isinstance(name, str) else repr(fn)
        print(f"check({shown}): self-checks do not run while grading; the test cells are judged by the grader")
        return
    targets = _visible_groups(name) if isinstance(name, str) else []
    if not targets:
        raise ValueError(
            f"{name or fn!r} is not a graded function: pass the function itself, e.g. check(embedding_forward)"
        )
    core = _judge()
    passed = total = 0
    for assignment, group_name in targets:
        for check_name, ok, message in core.verdicts(assignment, group_name, {name: fn}):
            total += 1
            passed += ok
            print(format_verdict(check_name, ok, message))
    verdict = "all pass" if passed == total else f"{total - passed} failing"
    print(
        f"{name}: {passed}/{total} visible checks pass ({verdict}); hidden checks with more cases run at grading time."
    )
