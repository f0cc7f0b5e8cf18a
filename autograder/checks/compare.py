"""Building blocks of the assignment checks: input cases, one-line verdicts, and cross-checked references.

A check built with :func:`case_check` runs the student's function on a list of :class:`Case` inputs (the probe,
in the student's process) and compares each result with **both** reference implementations (the judge, in a
trusted process): the NumPy one in :mod:`autograder.reference.numpy_ref` and the PyTorch one in
:mod:`autograder.reference.torch_ref`. The judge rebuilds the inputs itself from the seed the probe reports, so
nothing the student's code returned is used as an input to the references.

Every failure is a :class:`~autograder.checks.core.CheckFailed` with one line a student can act on: the call that
went wrong, then the shape, dtype, first mismatching index or exception that was expected and what came back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .core import Check, CheckFailed, Raised, add, call, grading_seed


def torch_ids(ids):
    """``ids`` (any integer array-like) as the ``torch.long`` tensor the PyTorch references take."""
    import torch  # only the judges that consult torch_ref need it
    return torch.from_numpy(np.asarray(ids).astype(np.int64))

__all__ = ["Case", "case_check", "describe", "expect_array", "expect_int", "expect_number", "expect_raises",
           "references_agree", "arrays", "integer", "VISIBLE_SEED"]

#: visible checks always use this seed: the student sees exactly the inputs that are graded
VISIBLE_SEED = 0


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


# ------------------------------------------------------------------------------------------------ describing
def describe(value: Any) -> str:
    """A short one-line phrase for what the student's code produced: ``an array of shape (2, 3) float64``."""
    if isinstance(value, Raised):
        if value.type == "NotImplementedError" and not value.message:
            return "it raised NotImplementedError (replace `raise NotImplementedError()` with your code)"
        return f"it raised {value.type}" + (f": {_one_line(value.message)[:160]}" if value.message else "")
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} {value.dtype}"
    if type(value).__module__ == "torch" and hasattr(value, "shape"):
        return f"a tensor of shape {tuple(value.shape)} {value.dtype}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    if value is None:
        return "None (did you forget `return`?)"
    return f"{type(value).__name__} {_one_line(repr(value))[:60]}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def show_array(a: np.ndarray, limit: int = 60) -> str:
    """A compact one-line rendering of a small array, for case labels."""
    text = np.array2string(np.asarray(a), threshold=12, separator=" ", max_line_width=10_000).replace("\n", "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show_value(x: Any) -> str:
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.6g}"
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return show_value(x[()])
    return repr(x.item() if isinstance(x, np.generic) else x)


# ------------------------------------------------------------------------------------------------ verdicts
def expect_raises(got: Any, exc_type: type[BaseException], where: str, hint: str = "") -> None:
    """Fail unless ``got`` records an exception of class ``exc_type`` (or a subclass)."""
    if isinstance(got, Raised) and got.is_a(exc_type):
        return
    tail = f" ({hint})" if hint else ""
    got_text = describe(got) if isinstance(got, Raised) else "got " + describe(got)
    raise CheckFailed(f"{where}: expected {exc_type.__name__}, but {got_text}{tail}")


def _not_raised(got: Any, where: str, wanted: str) -> None:
    if isinstance(got, Raised):
        raise CheckFailed(f"{where}: expected {wanted}, but {describe(got)}")


def expect_array(got: Any, expected: np.ndarray, where: str, *, rtol: float = 1e-6, atol: float = 1e-6,
                 dtype: Any = "expected", integer_kind: bool = False, hint: str = "") -> None:
    """Fail unless ``got`` is an ndarray of ``expected``'s shape whose values match within ``atol + rtol*|e|``.

    ``dtype``: ``"expected"`` demands ``expected.dtype``; a dtype demands that dtype; ``None`` accepts any.
    ``integer_kind``: demand an integer dtype (any width) instead of an exact dtype.
    """
    expected = np.asarray(expected)
    tail = f" ({hint})" if hint else ""
    _not_raised(got, where, f"an array of shape {expected.shape}")
    if not isinstance(got, np.ndarray):
        raise CheckFailed(f"{where}: expected a numpy.ndarray of shape {expected.shape}, got {describe(got)}{tail}")
    if got.shape != expected.shape:
        raise CheckFailed(f"{where}: expected shape {expected.shape}, got {got.shape}{tail}")
    if integer_kind:
        if not np.issubdtype(got.dtype, np.integer):
            raise CheckFailed(f"{where}: expected an integer array, got dtype {got.dtype}{tail}")
    elif dtype is not None:
        want = expected.dtype if isinstance(dtype, str) and dtype == "expected" else np.dtype(dtype)
        if got.dtype != want:
            raise CheckFailed(f"{where}: expected dtype {want}, got {got.dtype}{tail}")
    if got.size == 0:
        return
    if not np.issubdtype(got.dtype, np.number) and got.dtype != np.bool_:
        raise CheckFailed(f"{where}: expected numbers, got dtype {got.dtype}{tail}")
    g = got.astype(np.float64) if got.dtype != np.float64 else got
    e = expected.astype(np.float64)
    ok = np.isclose(g, e, rtol=rtol, atol=atol) | (np.isnan(e) & np.isnan(g))
    if not ok.all():
        bad = np.argwhere(~ok)
        first = tuple(int(i) for i in bad[0])
        idx = first if len(first) != 1 else first[0]
        raise CheckFailed(f"{where}: values differ at index {idx}: expected {show_value(expected[first])}, got "
                          f"{show_value(got[first])} ({len(bad)} of {got.size} entries differ){tail}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def expect_int(got: Any, expected: int, where: str, hint: str = "") -> None:
    """Fail unless ``got`` is an integer (``int`` or a NumPy integer, not a float or bool) equal to ``expected``."""
    tail = f" ({hint})" if hint else ""
    _not_raised(got, where, f"the int {expected}")
    if not _is_int(got):
        kind = "a float" if isinstance(got, (float, np.floating)) else describe(got)
        raise CheckFailed(f"{where}: expected the int {expected}, got {kind} {got!r:.40}: return a whole number "
                          f"of bytes/parameters (int(...), or integer arithmetic){tail}")
    if int(got) != int(expected):
        raise CheckFailed(f"{where}: expected {expected}, got {int(got)}{tail}")


def expect_number(got: Any, expected: float, where: str, *, rtol: float = 1e-6, atol: float = 1e-9,
                  hint: str = "") -> None:
    """Fail unless ``got`` is a finite real scalar (Python or NumPy, or a 0-d array) close to ``expected``."""
    tail = f" ({hint})" if hint else ""
    _not_raised(got, where, f"a number close to {expected:.6g}")
    if isinstance(got, np.ndarray) and got.ndim == 0:
        got = got[()]
    if not isinstance(got, (int, float, np.integer, np.floating)) or isinstance(got, (bool, np.bool_)):
        raise CheckFailed(f"{where}: expected a scalar number, got {describe(got)}{tail}")
    if not math.isfinite(float(got)):
        # + 0.0 turns a reference of -0.0 into 0 ("close to -0" reads like a typo)
        raise CheckFailed(f"{where}: expected a finite number close to {expected + 0.0:.6g}, got {float(got)}"
                          f"{tail or ' (an overflow, or the log of 0?)'}")
    if not math.isclose(float(got), float(expected), rel_tol=rtol, abs_tol=atol):
        raise CheckFailed(f"{where}: expected {expected:.8g}, got {float(got):.8g}{tail}")


def references_agree(a: Any, b: Any, what: str, *, atol: float = 1e-6) -> None:
    """The two references must agree before a student is judged by them (an internal error otherwise)."""
    if isinstance(a, (tuple, list)):
        for x, y in zip(a, b, strict=True):
            references_agree(x, y, what, atol=atol)
        return
    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.shape != b_arr.shape or not np.allclose(a_arr, b_arr, rtol=1e-6, atol=atol):
        raise RuntimeError(f"internal error: the NumPy and PyTorch references disagree on {what}")


# ------------------------------------------------------------------------------------------------ comparators
Comparator = Callable[[Any, Any, str, Case], None]


def arrays(*, rtol: float = 1e-6, atol: float = 1e-6, dtype: Any = "expected",
           integer_kind: bool = False) -> Comparator:
    """Compare an array result with the NumPy reference (after checking it against the PyTorch one)."""
    def compare(got, ref_np, ref_torch, where, case):
        if ref_torch is not None:
            references_agree(ref_np, ref_torch, where, atol=max(atol, 1e-6))
        expect_array(got, ref_np, where, rtol=rtol, atol=atol, dtype=dtype, integer_kind=integer_kind, hint=case.hint)
    return compare


def integer() -> Comparator:
    def compare(got, ref_np, ref_torch, where, case):
        if ref_torch is not None and int(ref_np) != int(ref_torch):
            raise RuntimeError(f"internal error: the NumPy and PyTorch references disagree on {where}")
        expect_int(got, int(ref_np), where, hint=case.hint)
    return compare


# ------------------------------------------------------------------------------------------------ checks
def _snapshot(args: Sequence[Any]) -> list[Any]:
    return [a.copy() if isinstance(a, np.ndarray) else None for a in args]


def _mutated(args: Sequence[Any], before: list[Any]) -> list[int]:
    changed = []
    for i, (a, b) in enumerate(zip(args, before)):
        if b is None:
            continue
        same = a.shape == b.shape and (np.array_equal(a, b, equal_nan=True)
                                       if np.issubdtype(b.dtype, np.inexact) else np.array_equal(a, b))
        if not same:
            changed.append(i)
    return changed


def case_check(assignment: str, group: str, name: str, function: str, *,
               cases: Callable[[int], list[Case]],
               numpy_ref: Callable | None,
               torch_ref: Callable | None,
               compare: Comparator,
               seeded: bool = False,
               arg_names: Sequence[str] = (),
               mutation_hint: str = "compute a new array instead (e.g. `x + y`, not `x += y`)") -> Check:
    """Register a check that calls ``function`` on ``cases(seed)`` and compares with both references.

    ``numpy_ref(*args, **kwargs)`` and ``torch_ref(*args, **kwargs)`` take the case's NumPy inputs (the torch
    one converts them itself) and return NumPy data. ``seeded``: hidden checks draw their inputs from
    :func:`grading_seed`, so they differ at grading time; visible ones always use :data:`VISIBLE_SEED`.
    Every case also fails if the student's function modified one of its array arguments in place.
    """
    def probe(fn):
        seed = grading_seed() if seeded else VISIBLE_SEED
        out = []
        for case in cases(seed):
            before = _snapshot(case.args)
            got = call(fn, *case.args, **case.kwargs)
            out.append({"got": got, "mutated": _mutated(case.args, before)})
        return {"seed": seed, "cases": out}

    def judge(result):
        built = cases(int(result["seed"]))
        results = result["cases"]
        if len(results) != len(built):
            raise CheckFailed(f"{function}: expected {len(built)} results, got {len(results)}")
        for case, record in zip(built, results):
            where = f"{function}({case.label})"
            if record["mutated"]:
                which = ", ".join(arg_names[i] if i < len(arg_names) else f"argument {i}" for i in record["mutated"])
                raise CheckFailed(f"{where}: modified its input {which} in place; {mutation_hint}")
            got = record["got"]
            if case.raises is not None:
                ref = call(numpy_ref, *case.args, **case.kwargs)
                if not (isinstance(ref, Raised) and ref.is_a(case.raises)):
                    raise RuntimeError(f"internal error: the NumPy reference does not raise {case.raises.__name__} for {where}")
                expect_raises(got, case.raises, where, case.hint)
                continue
            ref_np = numpy_ref(*case.args, **case.kwargs) if numpy_ref is not None else None
            ref_torch = torch_ref(*case.args, **case.kwargs) if torch_ref is not None else None
            compare(got, ref_np, ref_torch, where, case)

    return add(Check(assignment, group, name, function, probe, judge, hidden=seeded))


def custom_check(assignment: str, group: str, name: str, function: str, *, probe: Callable[[Callable, int], Any],
                 judge: Callable[[Any, int], None], seeded: bool = False) -> Check:
    """Register a check with its own probe ``probe(fn, seed) -> data`` and judge ``judge(data, seed)``.

    The seed is chosen in the probe (:func:`grading_seed` when ``seeded``) and handed to the judge, which
    rebuilds every input from it.
    """
    def probe_(fn):
        seed = grading_seed() if seeded else VISIBLE_SEED
        return {"seed": seed, "data": probe(fn, seed)}

    def judge_(result):
        judge(result["data"], int(result["seed"]))

    return add(Check(assignment, group, name, function, probe_, judge_, hidden=seeded))


def case_checks(assignment: str, group: str, function: str, *, cases: Callable[[int], list[Case]],
                results_name: str, error_names: dict[type, str] | None = None, **kwargs) -> list[Check]:
    """Register one :func:`case_check` for the cases that expect a result and one per expected exception class,
    so the student sees a PASS/FAIL line for each (e.g. "values and shape", "negative ids raise IndexError")."""
    kinds: list[type | None] = []
    for case in cases(VISIBLE_SEED):
        if case.raises not in kinds:
            kinds.append(case.raises)
    checks = []
    for kind in kinds:
        name = results_name if kind is None else (error_names or {}).get(kind, f"bad input raises {kind.__name__}")
        checks.append(case_check(assignment, group, name, function,
                                 cases=lambda seed, kind=kind: [c for c in cases(seed) if c.raises is kind], **kwargs))
    return checks
