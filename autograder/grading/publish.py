"""One published state: every output of a run is written to a staging folder and swapped into ``--out`` at the end.

A run writes ``grades.csv``, the feedback pages, the report, the history, the exports, the autograded notebooks and
the logs under ``OUT/.autograder/staging/`` (the same names as in ``OUT``). :meth:`Staging.publish` then records
the swap in a journal (``OUT/.autograder/publish.json``: which outputs the new state has) and moves each staged
output into place, removing the outputs this run did not produce (a ``canvas.csv`` from a run with ``--export
canvas``, say). Until the journal is written, ``OUT`` holds the previous complete state; once it is written, the
swap is finished by whoever comes next: :func:`recover` (called when the output folder is opened) replays it, so
even a run killed in the middle of the swap leaves one complete state, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

__all__ = ["PUBLISHED", "Staging", "recover"]

#: every output a run publishes (files and folders directly in OUT); nothing else in OUT is touched
PUBLISHED = (
    "grades.csv",
    "feedback",
    "report.html",
    "history.csv",
    "canvas.csv",
    "autograded",
    "logs",
)
_JOURNAL = "publish.json"


def _state_dir(out: Path) -> Path:
    return Path(out) / ".autograder"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def recover(out: str | os.PathLike) -> bool:
    """Finish a swap a previous run started (its journal exists) and drop a staging folder it left unpublished.
    Returns whether a swap was finished."""
    out = Path(out)
    journal = _state_dir(out) / _JOURNAL
    staging = _state_dir(out) / "staging"
    finished = False
    if journal.exists():
        try:
            present = set(json.loads(journal.read_text(encoding="utf-8"))["present"])
        except (OSError, ValueError, KeyError, TypeError):
            present = None
        if present is not None:
            _swap(out, staging, present)
            finished = True
        journal.unlink(missing_ok=True)
    if staging.exists():
        shutil.rmtree(staging, ignore_errors=True)
    trash = _state_dir(out) / "replaced"
    if trash.exists():
        shutil.rmtree(trash, ignore_errors=True)
    return finished


def _swap(out: Path, staging: Path, present: set[str]) -> None:
    """Idempotent: each staged output replaces the published one; a published output absent from ``present`` goes."""
    trash = _state_dir(out) / "replaced"
    trash.mkdir(parents=True, exist_ok=True)
    for name in PUBLISHED:
        staged, live = staging / name, out / name
        if name in present and staged.exists():
            if live.exists() or live.is_symlink():
                old = trash / name
                _remove(old)
                os.replace(live, old)
            os.replace(staged, live)
        elif name not in present and (live.exists() or live.is_symlink()):
            _remove(live)
    shutil.rmtree(trash, ignore_errors=True)


class Staging:
    """The staging folder of one run: write outputs under :attr:`root` (``path(name)``), then :meth:`publish`."""

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)
        recover(self.out)
        self.root = _state_dir(self.out) / "staging"
        self.root.mkdir(parents=True)

    def path(self, *parts: str) -> Path:
        """Where the output ``OUT/<parts>`` is staged."""
        return self.root.joinpath(*parts)

    def publish(self) -> list[str]:
        """Swap the staged outputs in (signals held off meanwhile); returns the names published."""
        present = sorted(name for name in PUBLISHED if (self.root / name).exists())
        journal = _state_dir(self.out) / _JOURNAL
        held = {signal.SIGINT, signal.SIGTERM}
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
        try:
            tmp = journal.with_suffix(".part")
            tmp.write_text(json.dumps({"present": present}), encoding="utf-8")
            os.replace(tmp, journal)  # from here on the new state is decided: recover() finishes it
            _swap(self.out, self.root, set(present))
            journal.unlink()
            shutil.rmtree(self.root, ignore_errors=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        return present

    def discard(self) -> None:
        """Drop what was staged (an interrupted run): the published state stays as it was."""
        shutil.rmtree(self.root, ignore_errors=True)
