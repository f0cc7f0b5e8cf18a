"""The trusted re-run's untrusted half: execute a submission's own code cells and run the probes on them.

:func:`run` executes in a forked, limited child (see :mod:`autograder.grading.limits`). It imports the probes
(:mod:`autograder.student.registry` and the spec's ``probe_modules``) *before* any student code runs, executes the
submitted notebook's code cells except the test cells (in an IPython shell, so magics work), then calls
:func:`autograder.student.registry.probe_group` with the spec's ``hidden_seed`` for every checked test cell and
writes the results with :func:`autograder.student.transport.encode` (JSON + npz; the grader decodes them without
unpickling and judges them in its own process, with its own seed). It never imports a judge. Nothing this process
says is believed, only measured.

The results leave through this process's original stdout, a pipe only the grader reads, after a marker line; what
the student's code prints goes to ``/dev/null``. The process is made non-dumpable first, so that the student's
kernel, running as the same user, can neither ``ptrace`` it nor open its pipe through ``/proc``.
"""
from __future__ import annotations

import importlib
import json
import os

__all__ = ["run", "code_cells", "MARKER", "read_results"]

MARKER = b"\n--autograder-probe-results--\n"


def read_results(output: bytes) -> bytes | None:
    """The encoded probe results from the probe process's whole output, or ``None`` if it wrote none."""
    at = output.rfind(MARKER)
    if at < 0:
        return None
    rest = output[at + len(MARKER):]
    size = int.from_bytes(rest[:8], "little") if len(rest) >= 8 else -1
    return rest[8:8 + size] if size == len(rest) - 8 else None


def _no_dump() -> None:
    import ctypes
    import sys
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)      # PR_SET_DUMPABLE = 0
        except (OSError, AttributeError):
            pass


def code_cells(notebook: dict, skip_grade_ids: set[str]) -> list[str]:
    """Sources of the notebook's code cells, without the cells whose nbgrader ``grade_id`` is in ``skip_grade_ids``."""
    sources = []
    for cell in notebook.get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {})
        gid = meta.get("nbgrader", {}).get("grade_id") if isinstance(meta, dict) and isinstance(meta.get("nbgrader"), dict) else None
        if gid in skip_grade_ids:
            continue
        source = cell.get("source", "")
        sources.append(source if isinstance(source, str) else "".join(source))
    return sources


def run(spec_path: str) -> int:
    with open(spec_path) as fh:
        spec = json.load(fh)
    os.environ["MPLBACKEND"] = "Agg"
    _no_dump()
    import sys
    sys.stdout.flush()
    results_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)     # what the student's code prints is not needed here
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    from autograder.student import registry, transport
    for module in spec["probe_modules"]:
        importlib.import_module(module)
    for group in spec["groups"]:
        registry.group(spec["assignment"], group)          # load every probe before student code runs
    with open(spec["notebook"], encoding="utf-8") as fh:
        notebook = json.load(fh)
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    for source in code_cells(notebook, set(spec["skip_grade_ids"])):
        shell.run_cell(source, store_history=False)
    namespace = shell.user_ns
    results = {group: registry.probe_group(spec["assignment"], group, namespace, spec["hidden_seed"])
               for group in spec["groups"]}
    blob = transport.encode(results)
    with os.fdopen(results_fd, "wb") as out:
        out.write(MARKER + len(blob).to_bytes(8, "little") + blob)
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(run(sys.argv[1]))
