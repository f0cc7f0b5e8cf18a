"""What a failed check is, and the line a student sees for each check."""

from __future__ import annotations

__all__ = ["CheckFailed", "format_verdict"]


class CheckFailed(AssertionError):
    """A check's verdict: the student's code is wrong; the message says how, in one line."""


def format_verdict(name: str, ok: bool, message: str) -> str:
    """The line a student sees for one check: ``PASS name`` or ``FAIL name: message``."""
    return ("PASS " if ok else "FAIL ") + name + ("" if ok else f": {message}")
