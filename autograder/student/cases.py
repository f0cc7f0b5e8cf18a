"""Inputs of the checks: :class:`Case` (one call of a student's function) and the seeds they are drawn from.

Every input a check uses is built by a function of a seed that lives in :mod:`autograder.student.probes`. The probe
calls it in the student's kernel; the judge, in the grader's process, calls the **same** function with the seed *it*
chose. Nothing the probe reports is ever used as an input by the judge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .transport import call

__all__ = ["Case", "VISIBLE_SEED", "LOCAL_HIDDEN_SEED", "run_cases", "torch_ids"]

#: visible checks always use this seed: the student sees exactly the inputs that are graded
VISIBLE_SEED = 0
#: hidden checks run outside grading (``make test`` on the solutions, an instructor's kernel) use this fixed seed;
#: at grading time the grader chooses the hidden seed and passes it to the probes and to the judge
LOCAL_HIDDEN_SEED = 0


@dataclass
class Case:
    """One call of the student's function: ``fn(*args, **kwargs)``.

    ``label`` describes the inputs to the student (``"weight (6, 4) float32, ids [[0 5 2] [2 2 1]]"``).
    ``raises`` is the exception class the contract demands for these inputs (``None``: a result is expected);
    ``hint`` is appended to the failure message (the usual cause of that mistake).
    """

    label: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    raises: type[BaseException] | None = None
    hint: str = ""


def torch_ids(ids):
    """``ids`` (any integer array-like) as a ``torch.long`` tensor (what the PyTorch checks pass as ids)."""
    import torch  # only the PyTorch checks need it

    return torch.from_numpy(np.asarray(ids).astype(np.int64))


def _snapshot(args: Sequence[Any]) -> list[Any]:
    return [a.copy() if isinstance(a, np.ndarray) else None for a in args]


def _mutated(args: Sequence[Any], before: list[Any]) -> list[int]:
    changed = []
    for i, (a, b) in enumerate(zip(args, before, strict=False)):
        if b is None:
            continue
        same = a.shape == b.shape and (
            np.array_equal(a, b, equal_nan=True) if np.issubdtype(b.dtype, np.inexact) else np.array_equal(a, b)
        )
        if not same:
            changed.append(i)
    return changed


def run_cases(fn: Callable, cases: list[Case]) -> dict:
    """The probe of a case check: ``{"cases": [{"got": result or Raised, "mutated": [indices of array arguments
    the call changed in place]}]}``, one record per case, in order."""
    out = []
    for case in cases:
        before = _snapshot(case.args)
        got = call(fn, *case.args, **case.kwargs)
        out.append({"got": got, "mutated": _mutated(case.args, before)})
    return {"cases": out}
