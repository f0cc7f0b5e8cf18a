"""Building blocks of the judges: one-line verdicts, comparators and cross-checked references.

A case check's judge (:func:`case_judges`) rebuilds the check's :class:`~autograder.student.cases.Case` inputs
itself, from the seed **its caller** (the grader) passes, with the same builder the probe used; it reads only the
student's *outputs* from the probe data (results, exceptions, which arguments were modified) and compares each with
**both** reference implementations: the NumPy one in :mod:`autograder.reference.numpy_ref` and the PyTorch one in
:mod:`autograder.reference.torch_ref`. No input (ids, shapes, sizes, seeds, labels) is ever taken from probe data.

Every failure is a :class:`~autograder.student.verdict.CheckFailed` with one line a student can act on: the call
that went wrong, then the shape, dtype, first mismatching index or exception that was expected and what came back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from autograder.student import registry
from autograder.student.cases import Case, torch_ids
from autograder.student.describe import describe, show_array
from autograder.student.transport import Raised, call
from autograder.student.verdict import CheckFailed

from .core import add_judge

__all__ = [
    "case_judges",
    "describe",
    "expect_array",
    "expect_finite",
    "expect_int",
    "expect_number",
    "expect_raises",
    "references_agree",
    "arrays",
    "integer",
    "show_array",
    "torch_ids",
]


def show_value(x: Any) -> str:
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.6g}"
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return show_value(x[()])
    return repr(x.item() if isinstance(x, np.generic) else x)


# ------------------------------------------------------------------------------------------------ verdicts
def expect_raises(got: Any, exc_type: type[BaseException], where: str, hint: str = "") -> None:
    """Fail unless ``got`` records an exception of class ``exc_type`` or one of Python's, NumPy's or PyTorch's own
    subclasses of it (:meth:`~autograder.student.transport.Raised.is_a`): a class the notebook defines never
    counts, so one class inheriting from every error type the checks expect earns nothing."""
    if isinstance(got, Raised) and got.is_a(exc_type):
        return
    tail = f" ({hint})" if hint else ""
    if isinstance(got, Raised) and got.claims(exc_type):
        raise CheckFailed(
            f"{where}: expected {exc_type.__name__}, but it raised {got.type}, a class defined in the notebook: "
            f"raise {exc_type.__name__} itself"
        )
    got_text = describe(got) if isinstance(got, Raised) else "got " + describe(got)
    raise CheckFailed(f"{where}: expected {exc_type.__name__}, but {got_text}{tail}")


def expect_finite(got: Any, where: str, hint: str = "") -> None:
    """Fail unless every value of the numeric array ``got`` is finite. For judges that test a property rather than
    compare with a reference (a bound, a mean, a spread): every comparison with NaN is false, so a table of NaN
    would pass ``not (x > bound).any()`` and every statistic test."""
    values = np.asarray(got)
    if values.dtype.kind in "fc" and not np.isfinite(values).all():
        bad = int(values.size - np.isfinite(values).sum())
        tail = f" ({hint})" if hint else ""
        raise CheckFailed(f"{where}: {bad} of {values.size} values are NaN or infinite{tail}")


def _not_raised(got: Any, where: str, wanted: str) -> None:
    if isinstance(got, Raised):
        raise CheckFailed(f"{where}: expected {wanted}, but {describe(got)}")


def expect_array(
    got: Any,
    expected: np.ndarray,
    where: str,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-6,
    dtype: Any = "expected",
    integer_kind: bool = False,
    hint: str = "",
) -> None:
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
        raise CheckFailed(
            f"{where}: values differ at index {idx}: expected {show_value(expected[first])}, got "
            f"{show_value(got[first])} ({len(bad)} of {got.size} entries differ){tail}"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def expect_int(got: Any, expected: int, where: str, hint: str = "") -> None:
    """Fail unless ``got`` is an integer (``int`` or a NumPy integer, not a float or bool) equal to ``expected``."""
    tail = f" ({hint})" if hint else ""
    _not_raised(got, where, f"the int {expected}")
    if not _is_int(got):
        kind = "a float" if isinstance(got, (float, np.floating)) else describe(got)
        raise CheckFailed(
            f"{where}: expected the int {expected}, got {kind} {got!r:.40}: return a whole number "
            f"of bytes/parameters (int(...), or integer arithmetic){tail}"
        )
    if int(got) != int(expected):
        raise CheckFailed(f"{where}: expected {expected}, got {int(got)}{tail}")


def expect_number(
    got: Any, expected: float, where: str, *, rtol: float = 1e-6, atol: float = 1e-9, hint: str = ""
) -> None:
    """Fail unless ``got`` is a finite real scalar (Python or NumPy, or a 0-d array) close to ``expected``."""
    tail = f" ({hint})" if hint else ""
    _not_raised(got, where, f"a number close to {expected:.6g}")
    if isinstance(got, np.ndarray) and got.ndim == 0:
        got = got[()]
    if not isinstance(got, (int, float, np.integer, np.floating)) or isinstance(got, (bool, np.bool_)):
        raise CheckFailed(f"{where}: expected a scalar number, got {describe(got)}{tail}")
    if not math.isfinite(float(got)):
        # + 0.0 turns a reference of -0.0 into 0 ("close to -0" reads like a typo)
        raise CheckFailed(
            f"{where}: expected a finite number close to {expected + 0.0:.6g}, got {float(got)}"
            f"{tail or ' (an overflow, or the log of 0?)'}"
        )
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
#: ``compare(got, numpy reference result, torch reference result or None, where, case)``
Comparator = Callable[[Any, Any, Any, str, Case], None]


def arrays(
    *, rtol: float = 1e-6, atol: float = 1e-6, dtype: Any = "expected", integer_kind: bool = False
) -> Comparator:
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


# ------------------------------------------------------------------------------------------------ case judges
def case_judges(
    assignment: str,
    group: str,
    *,
    numpy_ref: Callable | None,
    torch_ref: Callable | None,
    compare: Comparator,
    arg_names: tuple[str, ...] = (),
    mutation_hint: str = "compute a new array instead (e.g. `x + y`, not `x += y`)",
    weights: dict[str, float] | None = None,
) -> None:
    """Register the judge of every case probe of ``group`` (see :func:`autograder.student.registry.case_probes`).

    Each judge rebuilds its cases with the probe's own builder (``probe.cases(seed)``, ``seed`` from the grader)
    and compares the student's result for each with ``numpy_ref(*args, **kwargs)`` and ``torch_ref(...)`` (both
    return NumPy data; the torch one converts the inputs itself). A case also fails if the student's function
    modified one of its array arguments in place. ``weights`` (``{check name: weight}``) sets a check's share of
    the test cell's points; every other check weighs 1.
    """
    probes = [p for p in registry.group(assignment, group) if p.cases is not None]
    if not probes:
        raise RuntimeError(f"internal error: {assignment}/{group} has no case probes to judge")
    for probe in probes:
        add_judge(
            assignment,
            group,
            probe.name,
            _case_judge(probe.function, probe.cases, numpy_ref, torch_ref, compare, arg_names, mutation_hint),
            weight=(weights or {}).get(probe.name, 1.0),
        )


def _case_judge(function, cases, numpy_ref, torch_ref, compare, arg_names, mutation_hint):
    def judge(result, seed):
        built = cases(seed)
        results = result["cases"]
        if len(results) != len(built):
            raise CheckFailed(f"{function}: expected {len(built)} results, got {len(results)}")
        for case, record in zip(built, results, strict=False):
            where = f"{function}({case.label})"
            mutated = record["mutated"]
            if mutated:
                which = ", ".join(
                    arg_names[i] if isinstance(i, int) and 0 <= i < len(arg_names) else f"argument {i}" for i in mutated
                )
                raise CheckFailed(f"{where}: modified its input {which} in place; {mutation_hint}")
            got = record["got"]
            if case.raises is not None:
                ref = call(numpy_ref, *case.args, **case.kwargs)
                if not (isinstance(ref, Raised) and ref.is_a(case.raises)):
                    raise RuntimeError(
                        f"internal error: the NumPy reference does not raise {case.raises.__name__} for {where}"
                    )
                expect_raises(got, case.raises, where, case.hint)
                continue
            ref_np = numpy_ref(*case.args, **case.kwargs) if numpy_ref is not None else None
            ref_torch = torch_ref(*case.args, **case.kwargs) if torch_ref is not None else None
            compare(got, ref_np, ref_torch, where, case)

    return judge
