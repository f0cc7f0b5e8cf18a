"""The grading policy of one assignment's output folder: what every rerun of ``grade`` on that ``--out`` applies.

The first run stores its due time, late penalty, limits, exports, roster, Canvas column and resubmission policy
in ``OUT/.autograder/<assignment>/state/policy.json``. A later run that leaves an option out takes the stored value
(a rerun without ``--due`` keeps every late penalty); a run that gives a value different from the stored one stops
with a one-line usage error unless ``--change-policy`` is given, and then the change is reported in one line.
``none`` clears an optional value (``--due none``, ``--export none``, ``--roster none``).

:class:`Policy` is plain data; :func:`resolve` merges the command line into the stored policy; :func:`load` and
:func:`save` read and write the file (atomically).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

__all__ = [
    "Policy",
    "PolicyError",
    "RESUBMISSION_POLICIES",
    "OPTIONS",
    "resolve",
    "load",
    "save",
    "policy_path",
    "describe_changes",
]

#: how a student's several graded submissions become one grade (see :mod:`autograder.grading.resubmission`)
RESUBMISSION_POLICIES = ("latest", "best", "latest-on-time")
POLICY_FILE = "policy.json"


class PolicyError(ValueError):
    """The command line contradicts the stored policy, or the policy file is unreadable (one line)."""


@dataclass(frozen=True)
class Policy:
    """Everything a rerun must apply as the first run did. ``due`` is the ``--due`` text as given (ISO 8601 with
    a zone), ``roster`` an absolute path, ``export`` a sorted tuple of export names."""

    due: str | None = None
    late_penalty_per_hour: float = 0.0
    timeout: float = 120.0
    memory: float = 4.0
    output_chars: int = 200_000
    export: tuple[str, ...] = ()
    roster: str | None = None
    canvas_column: str | None = None
    resubmission: str = "latest"

    def to_json(self) -> dict:
        data = asdict(self)
        data["export"] = list(self.export)
        return data

    @classmethod
    def from_json(cls, data: dict) -> Policy:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "export" in values:
            values["export"] = tuple(sorted(values["export"] or ()))
        return cls(**values)


#: policy field -> the command-line option that sets it
OPTIONS = {
    "due": "--due",
    "late_penalty_per_hour": "--late-penalty-per-hour",
    "timeout": "--timeout",
    "memory": "--memory",
    "output_chars": "--output-chars",
    "export": "--export",
    "roster": "--roster",
    "canvas_column": "--canvas-column",
    "resubmission": "--resubmission",
}


def policy_path(results_dir: str | os.PathLike) -> Path:
    return Path(results_dir) / "state" / POLICY_FILE


def load(results_dir: str | os.PathLike) -> Policy | None:
    """The stored policy, or ``None`` when this output folder has none yet."""
    path = policy_path(results_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PolicyError(f"cannot read the grading policy {path}: {exc.strerror}") from None
    try:
        return Policy.from_json(json.loads(text))
    except (ValueError, TypeError) as exc:
        raise PolicyError(
            f"the grading policy {path} is unreadable ({type(exc).__name__}): delete it and rerun with every option"
        ) from None


def save(results_dir: str | os.PathLike, policy: Policy) -> Path:
    path = policy_path(results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(policy.to_json(), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _show(value) -> str:
    if value is None or value == ():
        return "none"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def resolve(stored: Policy | None, given: dict, change: bool) -> tuple[Policy, list[tuple[str, object, object]]]:
    """The policy of this run and its changes ``[(field, old, new)]``.

    ``given`` holds only the options present on the command line (``None``/``()`` for ``none``). Without a stored
    policy, the defaults updated with ``given`` (no change reported). With one, an option that differs from it
    raises :class:`PolicyError` unless ``change``."""
    base = stored if stored is not None else Policy()
    values = {k: (tuple(sorted(v)) if k == "export" else v) for k, v in given.items()}
    new = replace(base, **values)
    if stored is None:
        return new, []
    changes = [(f.name, getattr(stored, f.name), getattr(new, f.name)) for f in fields(Policy)]
    changes = [(name, old, value) for name, old, value in changes if old != value]
    if changes and not change:
        name, old, value = changes[0]
        more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
        raise PolicyError(
            f"{OPTIONS[name]} {_show(value)} differs from this output folder's grading policy ({OPTIONS[name]} "
            f"{_show(old)}){more}: add --change-policy to change it, or leave the option out to keep it"
        )
    return new, changes


def describe_changes(changes: list[tuple[str, object, object]]) -> str:
    """One line: ``grading policy changed: --due A -> B; --export canvas -> none``."""
    return "grading policy changed: " + "; ".join(
        f"{OPTIONS[name]} {_show(old)} -> {_show(new)}" for name, old, new in changes
    )


# ------------------------------------------------------------------------------------------------ limits
#: headroom over the measured start-up address space: the student's own arrays and the checks' inputs need room
MEMORY_HEADROOM = 1.5
_PEAK_CODE = "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmPeak')))\n"
#: what a grading worker holds when it forks a notebook's autograde child, and what that child loads to run it
_GRADING_PROCESS = (
    "import importlib, sqlite3\n"
    "import autograder.grading.cli\n"
    "from autograder.grading.executors import init_worker\n"
    "init_worker()\n"
    "for m in ('nbgrader.api', 'nbclient', 'jupyter_client.manager', 'zmq', 'nbconvert.preprocessors'):\n"
    "    importlib.import_module(m)\n"
    "sqlite3.connect(':memory:').execute('select 1')\n"
)


def _imports(modules: list[str]) -> str:
    return "".join(f"try:\n    import {m}\nexcept Exception:\n    pass\n" for m in modules)


def kernel_modules(source: bytes) -> list[str]:
    """The modules a kernel of this assignment imports: ipykernel and the top-level imports of the source
    notebook's code cells (those installed here)."""
    import ast
    import importlib.util

    names = {"ipykernel.kernelapp"}
    try:
        cells = json.loads(source.decode("utf-8")).get("cells", [])
    except (ValueError, UnicodeDecodeError, AttributeError):
        cells = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        text = cell["source"] if isinstance(cell.get("source"), str) else "".join(cell.get("source", []))
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    found = []
    for name in sorted(names):
        try:
            if importlib.util.find_spec(name.split(".")[0]) is not None:
                found.append(name)
        except (ImportError, ValueError):
            continue
    return found


def _start_peaks(programs: list[str]) -> list[int]:
    """Peak address space (bytes, ``VmPeak``) of a fresh interpreter running each program, measured at once."""
    import subprocess
    import sys

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", program + _PEAK_CODE],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for program in programs
    ]
    peaks = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        try:
            peaks.append(int(out.strip().splitlines()[-1]) * 1024)
        except (ValueError, IndexError):
            peaks.append(0)
    return peaks


def memory_problem(gib: float, source: bytes) -> str | None:
    """``None`` when ``--memory gib`` leaves room to start the grading process and the kernel, else one line with
    the minimum: the larger measured start-up address space (:func:`_start_peaks` of a grading worker as
    :func:`autograder.grading.executors.init_worker` prepares it, with what its autograde child loads, and of a
    fresh interpreter importing :func:`kernel_modules`) times :data:`MEMORY_HEADROOM`, rounded up to 0.1 GiB. Linux
    only (``/proc``); elsewhere nothing is measured. The measurement is remembered (:func:`.cache.start_peaks`)
    until the interpreter, the installed distributions or the grading code change."""
    import math

    if not os.path.exists("/proc/self/status"):
        return None
    from .cache import start_peaks

    kernel = kernel_modules(source)
    peaks = start_peaks([_GRADING_PROCESS, _imports(kernel)], _start_peaks)
    need = max(peaks)
    minimum = math.ceil(need * MEMORY_HEADROOM / 2**30 * 10) / 10
    if need and gib < minimum:
        which = "the grading process" if peaks[0] >= peaks[1] else f"a kernel importing {', '.join(kernel)}"
        return (
            f"--memory {gib:g} GiB is too small to grade anything: {which} needs {need / 2**30:.2f} GiB of address "
            f"space just to start here; give --memory {minimum:g} or more"
        )
    return None
