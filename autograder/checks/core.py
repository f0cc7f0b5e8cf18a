"""The check framework shared by assignment test cells and the instructor grader.

A *check* is split in two so that a student's kernel can never decide its own score:

* ``probe(namespace) -> dict`` runs the student's code (functions taken from ``namespace``, a notebook's globals)
  on fixed or seeded inputs and returns **plain data** only: numpy arrays, Python scalars, strings, lists/dicts
  of those, and :class:`Raised` records for exceptions the student's code threw.
* ``judge(result) -> None`` compares that data with the reference implementations and raises
  :class:`CheckFailed` with a one-line, student-facing message when it is wrong.

In a notebook, a test cell runs both in the student's kernel (:func:`run_checks`); that is what nbgrader scores and
what the student sees. The grader re-runs the probes in a fresh sandboxed process and the judges in its own
trusted process (:func:`probe_group` / :func:`encode` there, :func:`decode` / :func:`judge_group` here), so a
monkeypatched ``np.allclose`` or checker in the student's kernel changes nothing.

Checks are registered per assignment in *groups*; a group's name is the nbgrader ``grade_id`` of the test cell
that runs it, so the grader maps cells to checks without parsing cell sources.
"""
from __future__ import annotations

import io
import json
import os
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["ASSIGNMENTS", "Raised", "CheckFailed", "Check", "register", "group", "groups", "run_checks",
           "probe_group", "judge_group", "verdicts", "format_verdict", "encode", "decode", "call", "grading_seed"]

#: the course's assignments, in chapter order (see course-contract.md)
ASSIGNMENTS = ("token-embeddings", "positional-encodings", "memory-scaling", "backprop")


@dataclass(frozen=True)
class Raised:
    """An exception raised by student code, recorded as data: its class name, its MRO names and message."""
    type: str
    bases: tuple[str, ...]
    message: str

    @classmethod
    def from_exc(cls, exc: BaseException, message: str | None = None) -> "Raised":
        """The record of ``exc``; ``message`` (default ``str(exc)``) is cut to 500 characters."""
        return cls(type(exc).__name__, tuple(c.__name__ for c in type(exc).__mro__),
                   (str(exc) if message is None else message)[:500])

    def is_a(self, exc_type: type[BaseException]) -> bool:
        return exc_type.__name__ in self.bases

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


class CheckFailed(AssertionError):
    """A check's verdict: the student's code is wrong; the message says how, in one line."""


@dataclass(frozen=True)
class Check:
    assignment: str
    group: str                      # the nbgrader grade_id of the test cell that runs this check
    name: str                       # short description shown to the student, e.g. "negative ids raise IndexError"
    function: str                   # the name under test in the student's namespace
    probe: Callable[[Callable], dict]
    judge: Callable[[dict], None]
    hidden: bool = False


_REGISTRY: dict[tuple[str, str], list[Check]] = {}


def register(assignment: str, group: str, name: str, function: str, *, hidden: bool = False):
    """Decorator for a ``(probe, judge)`` pair: ``@register(...)`` on a function returning ``(probe, judge)``,
    or use :func:`Check` directly with :func:`add`."""
    def decorate(make: Callable[[], tuple[Callable, Callable]]):
        probe, judge = make()
        add(Check(assignment, group, name, function, probe, judge, hidden))
        return make
    return decorate


def add(check: Check) -> Check:
    checks = _REGISTRY.setdefault((check.assignment, check.group), [])
    if any(c.name == check.name for c in checks):
        raise ValueError(f"duplicate check {check.name!r} in {check.assignment}/{check.group}")
    checks.append(check)
    return check


def _load(assignment: str) -> None:
    """Import the module that registers ``assignment``'s checks (``autograder.checks.<assignment_with_underscores>``)."""
    import importlib
    importlib.import_module(f"autograder.checks.{assignment.replace('-', '_')}")


def group(assignment: str, group_name: str) -> list[Check]:
    """The checks of one test cell. Raises ``KeyError`` -- loudly -- for a group with no checks."""
    _load(assignment)
    checks = _REGISTRY.get((assignment, group_name))
    if not checks:
        raise KeyError(f"no checks registered for {assignment}/{group_name}: a test cell that checks nothing must fail")
    return checks


def groups(assignment: str) -> dict[str, list[Check]]:
    _load(assignment)
    return {g: cs for (a, g), cs in _REGISTRY.items() if a == assignment}


def grading_seed(default: int = 0) -> int:
    """Seed for hidden-test inputs: ``AUTOGRADER_SEED`` when the grader sets it, else ``default``."""
    return int(os.environ.get("AUTOGRADER_SEED", default))


def call(fn: Callable, *args, **kwargs) -> Any:
    """Call student code; return its result, or a :class:`Raised` record if it raised an ``Exception``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any student exception becomes data
        return Raised.from_exc(exc)


# ------------------------------------------------------------------------------------------------ running
def probe_group(assignment: str, group_name: str, namespace: dict) -> dict[str, Any]:
    """Run every probe of a group against ``namespace``; returns ``{check name: probe result}``.

    A missing function or a probe that crashes is recorded as a :class:`Raised` for that check alone.
    """
    results: dict[str, Any] = {}
    for check in group(assignment, group_name):
        fn = namespace.get(check.function)
        if fn is None:
            results[check.name] = Raised("NameError", ("NameError", "Exception"),
                                         f"`{check.function}` is not defined: keep the function name from the template")
            continue
        try:
            results[check.name] = check.probe(fn)
        except Exception as exc:  # noqa: BLE001
            results[check.name] = Raised.from_exc(exc, f"{exc} ({_where(exc)})")
    return results


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"line {frames[-1].lineno}" if frames else "no traceback"


def judge_group(assignment: str, group_name: str, results: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """Judge a group's probe results: ``[(check name, passed, message)]`` in registration order."""
    verdicts = []
    for check in group(assignment, group_name):
        result = results.get(check.name, Raised("MissingResult", ("MissingResult",), "no result was produced"))
        if isinstance(result, Raised):
            verdicts.append((check.name, False, f"{check.function} raised {result}"))
            continue
        try:
            check.judge(result)
            verdicts.append((check.name, True, "ok"))
        except CheckFailed as exc:
            verdicts.append((check.name, False, str(exc)))
        except Exception as exc:  # noqa: BLE001 - malformed results (wrong types) are the student's failure
            verdicts.append((check.name, False, f"{check.function} returned something unusable: {type(exc).__name__}: {exc}"[:500]))
    return verdicts


def verdicts(assignment: str, group_name: str, namespace: dict) -> list[tuple[str, bool, str]]:
    """Probe ``namespace`` and judge the results, through the same encode/decode boundary the grader uses."""
    return judge_group(assignment, group_name, decode(encode(probe_group(assignment, group_name, namespace))))


def format_verdict(name: str, ok: bool, message: str) -> str:
    """The line a student sees for one check: ``PASS name`` or ``FAIL name: message``."""
    return ("PASS " if ok else "FAIL ") + name + ("" if ok else f": {message}")


def run_checks(assignment: str, group_name: str, namespace: dict | None = None, *, quiet: bool = False) -> None:
    """What a test cell calls: probe and judge in this kernel, print a line per check, raise on any failure.

    ``namespace`` defaults to the caller's globals (the notebook). Raises ``AssertionError`` listing the failures.
    """
    if namespace is None:
        import inspect
        namespace = inspect.currentframe().f_back.f_globals
    results = verdicts(assignment, group_name, namespace)
    failures = [(n, m) for n, ok, m in results if not ok]
    if not quiet:
        for name, ok, message in results:
            print(format_verdict(name, ok, message))
    if failures:
        raise CheckFailed("; ".join(f"{n}: {m}" for n, m in failures))


# ------------------------------------------------------------------------------------------------ transport
# Probe results cross a process boundary as JSON plus one .npz (allow_pickle=False): the trusted side never
# unpickles anything the student's process produced.
def encode(results: dict[str, Any]) -> bytes:
    arrays: dict[str, np.ndarray] = {}

    def enc(value):
        if isinstance(value, Raised):
            return {"__raised__": [value.type, list(value.bases), value.message]}
        if isinstance(value, np.ndarray) or type(value).__module__ == "torch":
            arr = _to_numpy(value)
            if arr.dtype == object:
                return {"__unsupported__": "an object array"}
            key = f"a{len(arrays)}"
            arrays[key] = arr
            return {"__array__": key}
        if isinstance(value, np.generic):
            return {"__scalar__": value.item(), "dtype": value.dtype.str}
        if isinstance(value, dict):
            return {"__dict__": [[str(k), enc(v)] for k, v in value.items()]}
        if isinstance(value, (list, tuple)):
            return {"__list__": [enc(v) for v in value], "tuple": isinstance(value, tuple)}
        if value is None or isinstance(value, (bool, int, float, str)):
            if isinstance(value, float) and not np.isfinite(value):
                return {"__float__": repr(value)}
            return value
        return {"__unsupported__": type(value).__name__}

    header = json.dumps(enc(results)).encode()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return len(header).to_bytes(8, "little") + header + buffer.getvalue()


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    return value.detach().cpu().numpy()  # a torch.Tensor


@dataclass(frozen=True)
class Unsupported:
    type_name: str


def decode(blob: bytes) -> dict[str, Any]:
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + size])
    with np.load(io.BytesIO(blob[8 + size:]), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}

    def dec(value):
        if isinstance(value, dict):
            if "__raised__" in value:
                t, bases, message = value["__raised__"]
                return Raised(str(t), tuple(map(str, bases)), str(message))
            if "__array__" in value:
                return arrays[value["__array__"]]
            if "__scalar__" in value:
                return np.dtype(value["dtype"]).type(value["__scalar__"])
            if "__dict__" in value:
                return {k: dec(v) for k, v in value["__dict__"]}
            if "__list__" in value:
                items = [dec(v) for v in value["__list__"]]
                return tuple(items) if value.get("tuple") else items
            if "__float__" in value:
                return float(value["__float__"])
            if "__unsupported__" in value:
                return Unsupported(str(value["__unsupported__"]))
        return value

    return dec(header)
