"""The trusted re-run's untrusted half: execute a submission's own code cells and run the probes on them.

:func:`run` executes in a forked, limited child (see :mod:`autograder.grading.limits`). It imports the checks
*before* any student code runs, executes the submitted notebook's code cells except the test cells (in an IPython
shell, so magics work), then calls :func:`autograder.checks.core.probe_group` for every checked test cell and
writes the results with :func:`autograder.checks.core.encode` (JSON + npz; the grader decodes them without
unpickling and judges them in its own process). Nothing this process says is believed, only measured.
"""
from __future__ import annotations

import importlib
import json
import os

__all__ = ["run", "code_cells"]


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
    devnull = os.open(os.devnull, os.O_WRONLY)     # what the student's code prints is not needed here
    os.dup2(devnull, 1)
    from autograder.checks import core
    for module in spec["check_modules"]:
        importlib.import_module(module)
    for group in spec["groups"]:
        core.group(spec["assignment"], group)          # load every check before student code runs
    with open(spec["notebook"], encoding="utf-8") as fh:
        notebook = json.load(fh)
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    for source in code_cells(notebook, set(spec["skip_grade_ids"])):
        shell.run_cell(source, store_history=False)
    namespace = shell.user_ns
    results = {group: core.probe_group(spec["assignment"], group, namespace) for group in spec["groups"]}
    blob = core.encode(results)
    tmp = spec["out"] + ".part"
    with open(tmp, "wb") as fh:
        fh.write(blob)
    os.replace(tmp, spec["out"])
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(run(sys.argv[1]))
