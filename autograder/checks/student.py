"""The student's one-line self-check: ``check(embedding_forward)`` in a notebook cell.

It runs the *visible* checks of that function (the same ones as its test cell) and prints one PASS/FAIL line
per check, then a summary. Hidden checks run only at grading time, on inputs drawn from a grading seed.

>>> from autograder.checks.student import check
>>> check(embedding_forward)          # doctest: +SKIP
PASS rows, shape and dtype of the lookup
FAIL ids < 0 or >= vocab_size raise IndexError: embedding_forward(weight (6, 4) float32, ids [ 0 -1] int64): ...
"""
from __future__ import annotations

from .core import ASSIGNMENTS, format_verdict, groups, verdicts

__all__ = ["check", "ASSIGNMENTS"]


def _visible_groups(name: str) -> list[tuple[str, str]]:
    """``[(assignment, group)]`` of the visible groups whose checks test the function or class called ``name``."""
    found = []
    for assignment in ASSIGNMENTS:
        for group_name, checks in groups(assignment).items():
            if any(c.function == name and not c.hidden for c in checks):
                found.append((assignment, group_name))
    return found


def check(fn) -> None:
    """Run the visible checks of ``fn`` (a graded function or class, e.g. ``check(apply_rope)``) and print one
    ``PASS``/``FAIL`` line per check and a summary line. Never raises for a wrong answer: it is a report."""
    name = getattr(fn, "__name__", None)
    targets = _visible_groups(name) if isinstance(name, str) else []
    if not targets:
        raise ValueError(f"{name or fn!r} is not a graded function: pass the function itself, e.g. "
                         f"check(embedding_forward)")
    passed = total = 0
    for assignment, group_name in targets:
        for check_name, ok, message in verdicts(assignment, group_name, {name: fn}):
            total += 1
            passed += ok
            print(format_verdict(check_name, ok, message))
    verdict = "all pass" if passed == total else f"{total - passed} failing"
    print(f"{name}: {passed}/{total} visible checks pass ({verdict}); hidden checks with more cases run at grading time.")
