"""The probe registry: every check's *probe*, the half that runs in the student's kernel.

A probe ``run(fn, seed) -> data`` calls the student's function or class ``fn`` on inputs built from ``seed`` and
returns plain data (see :mod:`autograder.student.transport`). Probes are registered per assignment in *groups*; a
group's name is the nbgrader ``grade_id`` of the test cell that runs it. The judges live outside this package
(:mod:`autograder.checks`), keyed by the same ``(assignment, group, check name)``.

Seeds: a visible probe always runs with :data:`~autograder.student.cases.VISIBLE_SEED`; a hidden one with the seed
its caller passes (the grader's hidden seed at grading time, :data:`~autograder.student.cases.LOCAL_HIDDEN_SEED`
otherwise). The judge receives the seed from the grader, never from the probe.

The course's probes are in ``autograder.student.probes.<assignment with underscores>``, imported on first use; other
modules (the grader's test fixture) register theirs by being imported.
"""

from __future__ import annotations

import importlib
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cases import VISIBLE_SEED, Case, run_cases
from .transport import Raised

__all__ = ["ASSIGNMENTS", "Probe", "register", "add", "case_probes", "group", "groups", "probe_group", "seed_for"]

#: the course's assignments, in chapter order (see course-contract.md)
ASSIGNMENTS = ("token-embeddings", "positional-encodings", "memory-scaling", "backprop")


@dataclass(frozen=True)
class Probe:
    assignment: str
    group: str  # the nbgrader grade_id of the test cell that runs this check
    name: str  # short description shown to the student, e.g. "negative ids raise IndexError"
    function: str  # the name under test in the student's namespace
    run: Callable[[Callable, int], Any]
    hidden: bool = False
    #: for a case check, the inputs (``cases(seed) -> [Case]``) that ``run`` calls the function on; its judge
    #: rebuilds them with the same function
    cases: Callable[[int], list[Case]] | None = None
    module: str = ""  # the module that registered it (the grader copies it into the sandbox)


_REGISTRY: dict[tuple[str, str], list[Probe]] = {}
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def add(probe: Probe) -> Probe:
    probes = _REGISTRY.setdefault((probe.assignment, probe.group), [])
    if any(p.name == probe.name for p in probes):
        raise ValueError(f"duplicate check {probe.name!r} in {probe.assignment}/{probe.group}")
    probes.append(probe)
    return probe


def register(assignment: str, group: str, name: str, function: str, *, hidden: bool = False):
    """Decorator registering ``run(fn, seed) -> data`` as the probe of one check."""

    def decorate(run: Callable[[Callable, int], Any]):
        add(Probe(assignment, group, name, function, run, hidden, module=run.__module__))
        return run

    return decorate


def case_probes(
    assignment: str,
    group: str,
    function: str,
    *,
    cases: Callable[[int], list[Case]],
    results_name: str,
    error_names: dict[type, str] | None = None,
    hidden: bool = False,
) -> list[Probe]:
    """Register one probe for the cases that expect a result and one per expected exception class, so the student
    sees a PASS/FAIL line for each (e.g. "values and shape", "negative ids raise IndexError")."""
    kinds: list[type | None] = []
    for case in cases(VISIBLE_SEED):
        if case.raises not in kinds:
            kinds.append(case.raises)
    probes = []
    for kind in kinds:
        name = results_name if kind is None else (error_names or {}).get(kind, f"bad input raises {kind.__name__}")

        def of_kind(seed: int, kind=kind) -> list[Case]:
            return [c for c in cases(seed) if c.raises is kind]

        def run(fn, seed, of_kind=of_kind):
            return run_cases(fn, of_kind(seed))

        probes.append(add(Probe(assignment, group, name, function, run, hidden, of_kind, cases.__module__)))
    return probes


def _load(assignment: str) -> None:
    """Import ``autograder.student.probes.<assignment_with_underscores>`` if there is one."""
    if not _NAME.match(assignment):
        raise KeyError(f"{assignment!r} is not an assignment id (lower-case letters, digits and dashes)")
    module = f"autograder.student.probes.{assignment.replace('-', '_')}"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:  # the module exists but an import inside it failed: a real error
            raise


def group(assignment: str, group_name: str) -> list[Probe]:
    """The probes of one test cell. Raises ``KeyError`` -- loudly -- for a group with none."""
    _load(assignment)
    probes = _REGISTRY.get((assignment, group_name))
    if not probes:
        raise KeyError(f"no checks registered for {assignment}/{group_name}: a test cell that checks nothing must fail")
    return probes


def groups(assignment: str) -> dict[str, list[Probe]]:
    _load(assignment)
    return {g: ps for (a, g), ps in _REGISTRY.items() if a == assignment}


def seed_for(hidden: bool, seed: int) -> int:
    """The seed a check runs with: ``seed`` for a hidden check, :data:`VISIBLE_SEED` for a visible one."""
    return int(seed) if hidden else VISIBLE_SEED


def probe_group(assignment: str, group_name: str, namespace: dict, seed: int) -> dict[str, Any]:
    """Run every probe of a group against ``namespace`` (hidden ones with ``seed``); ``{check name: data}``.

    A missing function or a probe that crashes is recorded as a :class:`Raised` for that check alone.
    """
    results: dict[str, Any] = {}
    for probe in group(assignment, group_name):
        fn = namespace.get(probe.function)
        if fn is None:
            results[probe.name] = Raised(
                "NameError",
                ("NameError", "Exception"),
                f"`{probe.function}` is not defined: keep the function name from the template",
            )
            continue
        try:
            results[probe.name] = probe.run(fn, seed_for(probe.hidden, seed))
        except Exception as exc:  # a crash in the student's code outside `call` is recorded for this check
            results[probe.name] = Raised.from_exc(exc, f"{exc} ({_where(exc)})")
    return results


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"line {frames[-1].lineno}" if frames else "no traceback"
