"""The judge registry: the half of every check that decides, joined to its probe.

A check is split in two so that a student's kernel can never decide its own score:

* its **probe** (:mod:`autograder.student.registry`, in the package the grading sandbox holds) runs the student's
  code on inputs built from a seed and returns plain data;
* its **judge** ``judge(data, seed) -> None`` (registered here by ``autograder.checks.<assignment>``) compares that
  data with the reference implementations and raises :class:`CheckFailed` with a one-line, student-facing message.

The rule every judge keeps: **the seed comes from the judge's caller** (the grader's hidden seed; visible checks
always :data:`VISIBLE_SEED`), never from probe data, and every input (ids, shapes, sizes, seeds, generator states,
labels) is rebuilt from that seed by the same builder the probe used (imported from
:mod:`autograder.student.probes`). Probe data supplies only the student's outputs. A forged seed, forged inputs or a
rebound ``call`` in the student's kernel therefore change nothing but that kernel's own answers.

Checks are registered per assignment in *groups*; a group's name is the nbgrader ``grade_id`` of the test cell that
runs it. Each judge carries a **weight** (``@judge(..., weight=2)``; 1 by default, so a cell's checks count
equally): :func:`cell_points` splits a test cell's points across its checks by weight, so a function that passes
one of two equally weighted checks earns half the cell's points. :func:`group` joins probes and judges by
``(assignment, group, check name)`` and fails loudly when one side
lacks the other.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autograder.student import registry
from autograder.student.cases import LOCAL_HIDDEN_SEED, VISIBLE_SEED
from autograder.student.registry import ASSIGNMENTS, Probe
from autograder.student.transport import Raised, decode, encode
from autograder.student.verdict import CheckFailed, format_verdict

__all__ = [
    "ASSIGNMENTS",
    "VISIBLE_SEED",
    "LOCAL_HIDDEN_SEED",
    "Raised",
    "CheckFailed",
    "Check",
    "judge",
    "add_judge",
    "group",
    "groups",
    "judges",
    "judge_group",
    "verdicts",
    "probe_modules",
    "format_verdict",
    "encode",
    "decode",
    "cell_points",
]

Judge = Callable[[Any, int], None]


@dataclass(frozen=True)
class Check:
    """One check: its probe (which says what it calls), its judge and its weight within the test cell."""

    probe: Probe
    judge: Judge
    weight: float = 1.0

    @property
    def assignment(self) -> str:
        return self.probe.assignment

    @property
    def group(self) -> str:
        return self.probe.group

    @property
    def name(self) -> str:
        return self.probe.name

    @property
    def function(self) -> str:
        return self.probe.function

    @property
    def hidden(self) -> bool:
        return self.probe.hidden


_JUDGES: dict[tuple[str, str, str], Judge] = {}
_WEIGHTS: dict[tuple[str, str, str], float] = {}


def add_judge(assignment: str, group_name: str, name: str, fn: Judge, weight: float = 1.0) -> Judge:
    """Register ``fn`` as the judge of one check, with its ``weight`` in the test cell (a finite number > 0)."""
    key = (assignment, group_name, name)
    if key in _JUDGES:
        raise ValueError(f"duplicate judge {name!r} in {assignment}/{group_name}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight < float("inf"):
        raise ValueError(
            f"the weight of {assignment}/{group_name}/{name!r} must be a finite number > 0, got {weight!r}"
        )
    _JUDGES[key] = fn
    _WEIGHTS[key] = float(weight)
    return fn


def judge(assignment: str, group_name: str, name: str, *, weight: float = 1.0):
    """Decorator registering ``fn(data, seed)`` as the judge of the check ``name`` of a group, with its
    ``weight`` in the test cell's points (1 by default: a cell's checks count equally)."""

    def decorate(fn: Judge) -> Judge:
        return add_judge(assignment, group_name, name, fn, weight)

    return decorate


def cell_points(assignment: str, group_name: str, verdicts: list[tuple[str, bool, str]], points: float) -> float:
    """A test cell's points for its checks' ``verdicts`` (``[(check name, passed, message)]``): ``points`` times
    the weight of the passed checks over the weight of all the cell's checks. A check the verdicts lack counts
    as failed; a verdict for a check the cell does not have raises ``KeyError`` (a grader bug, not a student's)."""
    checks = {c.name: c.weight for c in group(assignment, group_name)}
    unknown = [name for name, _, _ in verdicts if name not in checks]
    if unknown:
        raise KeyError(f"verdicts for checks that {assignment}/{group_name} does not have: {', '.join(unknown)}")
    passed = {name for name, ok, _ in verdicts if ok}
    earned = sum(w for name, w in checks.items() if name in passed)
    return float(points) * earned / sum(checks.values())


def _load(assignment: str) -> None:
    """Import the judges of ``assignment``: ``autograder.checks.<assignment_with_underscores>`` if there is one, and
    the module each other probe module names in its ``JUDGE_MODULE`` attribute (the grader's test fixture)."""
    probes = registry.groups(assignment)  # validates the id, loads the course's probes
    modules = [f"autograder.checks.{assignment.replace('-', '_')}"]
    for ps in probes.values():
        for p in ps:
            named = getattr(sys.modules.get(p.module), "JUDGE_MODULE", None)
            if isinstance(named, str) and named not in modules:
                modules.append(named)
    for module in modules:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module or module != modules[0]:
                raise


def _join(probes: list[Probe]) -> list[Check]:
    checks = []
    for probe in probes:
        fn = _JUDGES.get((probe.assignment, probe.group, probe.name))
        if fn is None:
            raise RuntimeError(
                f"internal error: the check {probe.name!r} of {probe.assignment}/{probe.group} has a probe but no judge"
            )
        checks.append(Check(probe, fn, _WEIGHTS[(probe.assignment, probe.group, probe.name)]))
    return checks


def group(assignment: str, group_name: str) -> list[Check]:
    """The checks of one test cell. Raises ``KeyError`` -- loudly -- for a group with no checks."""
    _load(assignment)
    return _join(registry.group(assignment, group_name))


def groups(assignment: str) -> dict[str, list[Check]]:
    _load(assignment)
    return {g: _join(ps) for g, ps in registry.groups(assignment).items()}


def judges(assignment: str) -> set[tuple[str, str]]:
    """``{(group, check name)}`` of every judge registered for ``assignment`` (with or without a probe)."""
    _load(assignment)
    return {(g, n) for a, g, n in _JUDGES if a == assignment}


def probe_modules(assignment: str) -> list[str]:
    """Modules outside :mod:`autograder.student` that registered probes of ``assignment`` (the grader's test
    fixture): the grader lists them in the grading spec's ``probe_modules`` and ships their files
    (``sys.modules[name].__file__``) into the sandbox."""
    _load(assignment)
    return sorted(
        {
            p.module
            for ps in registry.groups(assignment).values()
            for p in ps
            if p.module and not p.module.startswith("autograder.student") and p.module in sys.modules
        }
    )


def judge_group(assignment: str, group_name: str, results: Any, seed: int) -> list[tuple[str, bool, str]]:
    """Judge one group's decoded probe data: ``[(check name, passed, message)]`` in registration order.

    ``seed`` is the hidden seed the grader chose (it is used for hidden checks only; visible ones always judge
    :data:`VISIBLE_SEED`'s inputs). Missing, raised or malformed results fail their check, with a message.
    """
    if not isinstance(results, dict):
        results = {}
    verdicts = []
    for check in group(assignment, group_name):
        result = results.get(check.name, Raised("MissingResult", ("MissingResult",), "no result was produced"))
        if isinstance(result, Raised):
            verdicts.append((check.name, False, f"{check.function} raised {result}"))
            continue
        try:
            check.judge(result, registry.seed_for(check.hidden, seed))
            verdicts.append((check.name, True, "ok"))
        except CheckFailed as exc:
            verdicts.append((check.name, False, str(exc)))
        except Exception as exc:  # malformed results (wrong types, forged records) are the student's failure
            verdicts.append(
                (check.name, False, f"{check.function} returned something unusable: {type(exc).__name__}: {exc}"[:500])
            )
    return verdicts


def verdicts(
    assignment: str, group_name: str, namespace: dict, seed: int = LOCAL_HIDDEN_SEED
) -> list[tuple[str, bool, str]]:
    """Probe ``namespace`` and judge the results with one ``seed``, through the encode/decode boundary the grader
    uses (what :func:`autograder.student.run_checks` does outside grading)."""
    results = registry.probe_group(assignment, group_name, namespace, seed)
    return judge_group(assignment, group_name, decode(encode(results)), seed)
