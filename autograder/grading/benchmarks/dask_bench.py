"""Cluster grading benchmark: ``python -m autograder.grading.benchmarks.dask_bench [--n 6] [--workers 2]
[--assignment ID]``.

Grades one synthetic class (``--n`` solved copies of the assignment's source notebook: the realistic cost) side by
side in one run:

* ``local``: the :class:`~autograder.grading.executors.LocalExecutor` with ``--workers`` processes (what
  ``python -m autograder grade --jobs N`` uses), pool start included;
* ``dask, cold``: a ``distributed.LocalCluster`` of ``--workers`` worker processes with one thread each, on loopback,
  through :class:`~autograder.grading.dask_executor.DaskExecutor` (connect, ship the package, start each worker's
  grading process, grade);
* ``dask, warm``: the same cluster again (package shipped, grading processes running): the steady state of a
  cluster that grades assignment after assignment.

For each it prints seconds per notebook (wall time / notebooks), the notebook's own cost (mean seconds inside
``grade_submission``, measured where it ran) and the overhead per notebook: the worker time not spent grading,
``(wall * workers - sum of grading seconds) / notebooks``. Statuses and scores of the runs are compared. A benchmark,
not a test: on a shared machine the load average (printed) moves every figure; rerun when it is high.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import synthetic
from .throughput_bench import pick_source


@dataclass
class Run:
    name: str
    wall_s: float
    setup_s: float  # connect + ship (dask) or pool start (local), inside wall_s
    slots: int  # processes grading at once
    results: list

    @property
    def n(self) -> int:
        return len(self.results)

    @property
    def per_notebook_s(self) -> float:
        return self.wall_s / self.n

    @property
    def notebook_cost_s(self) -> float:
        return statistics.mean(r.timings.get("total_s", 0.0) for r in self.results)

    @property
    def overhead_per_notebook_s(self) -> float:
        busy = sum(r.timings.get("total_s", 0.0) for r in self.results)
        return (self.wall_s * self.slots - busy) / self.n


def _tasks(assignment: str, source: Path, n: int, folder: Path, check_modules: tuple[str, ...]):
    """``n`` grading tasks for solved copies of ``source``, built as the grading command builds them."""
    from .course import prepare_gradebook_blob
    from .tasks import GradeTask

    kinds = synthetic.write_class(source, folder, assignment, {f"student{i:03d}": "solved" for i in range(n)})
    data = source.read_bytes()
    blob = prepare_gradebook_blob(assignment, source.stem, data)
    return [
        GradeTask(
            student=s,
            assignment=assignment,
            notebook_name=source.stem,
            submission=(folder / s / assignment / source.name).read_bytes(),
            source_notebook=data,
            gradebook_blob=blob,
            timeout_s=120.0,
            check_modules=check_modules,
        )
        for s in sorted(kinds)
    ]


def _local(tasks, workers: int) -> Run:
    from .executors import LocalExecutor

    results: list = []
    t0 = time.perf_counter()
    executor = LocalExecutor(workers).start()
    setup = time.perf_counter() - t0
    executor.run(tasks, results.append)
    return Run(f"local, {workers} processes", time.perf_counter() - t0, setup, workers, results)


def _dask(tasks, address: str, name: str) -> Run:
    from .dask_executor import DaskExecutor

    results: list = []
    executor = DaskExecutor(address, log=lambda message: None)
    t0 = time.perf_counter()
    executor.run(tasks, results.append)
    wall = time.perf_counter() - t0
    stats = executor.stats
    return Run(name, wall, stats.connect_s + stats.ship_s, stats.threads, results)


def _load() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m autograder.grading.benchmarks.dask_bench", description=__doc__.split("\n\n")[1]
    )
    p.add_argument("--n", type=int, default=6, help="solved notebooks in the class")
    p.add_argument("--workers", type=int, default=2, help="local processes = Dask workers (1 thread each)")
    p.add_argument(
        "--assignment",
        default=None,
        help="assignment id (default: the first with a solutions/ source, else the grader's fixture)",
    )
    args = p.parse_args(argv)
    if args.n < 1 or args.workers < 1:
        p.error("--n and --workers must be at least 1")

    assignment, source, extra, env = pick_source(args)
    check_modules = tuple(extra[extra.index("--checks-module") + 1 :][:1]) if "--checks-module" in extra else ()
    for name, value in env.items():  # the fixture's check module: importable here and in children
        os.environ[name] = value
        sys.path[:0] = [v for v in value.split(os.pathsep) if v]

    import dask
    from distributed import LocalCluster

    print(
        f"{assignment}: {args.n} solved notebooks, {args.workers} worker(s); {os.cpu_count()} CPU(s), {_load()} "
        "(a shared machine: other users' load moves every figure)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        tasks = _tasks(assignment, source, args.n, Path(tmp) / "submitted", check_modules)
        runs = [_local(tasks, args.workers)]
        print(f"  done: {runs[-1].name}; {_load()}", flush=True)
        t0 = time.perf_counter()
        with (
            dask.config.set({"distributed.scheduler.worker-saturation": 1.0}),
            LocalCluster(
                n_workers=args.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
            ) as cluster,
        ):
            cluster_start = time.perf_counter() - t0
            runs.append(_dask(tasks, cluster.scheduler_address, "dask, cold"))
            print(f"  done: {runs[-1].name}; {_load()}", flush=True)
            runs.append(_dask(tasks, cluster.scheduler_address, "dask, warm"))
            print(f"  done: {runs[-1].name}; {_load()}", flush=True)

    print(f"\nLocalCluster start ({args.workers} workers, loopback): {cluster_start:.1f} s (not in the figures below)")
    print(f"{'run':<22}{'s/notebook':>11}{'setup s':>9}{'notebook s':>12}{'overhead s/nb':>15}{'overhead %':>12}")
    for run in runs:
        print(
            f"{run.name:<22}{run.per_notebook_s:>11.2f}{run.setup_s:>9.2f}{run.notebook_cost_s:>12.2f}"
            f"{run.overhead_per_notebook_s:>15.2f}{run.overhead_per_notebook_s / run.notebook_cost_s:>12.0%}"
        )
    local = runs[0]
    for run in runs[1:]:
        extra = run.per_notebook_s - local.per_notebook_s
        print(
            f"{run.name} vs local: {run.per_notebook_s / local.per_notebook_s:.2f}x the seconds per notebook, "
            f"{extra:+.2f} s per notebook ({extra / run.notebook_cost_s:+.0%} of the notebook's own "
            f"{run.notebook_cost_s:.2f} s)"
        )
    outcome = [{r.student: (r.status, r.score) for r in run.results} for run in runs]
    same = all(o == outcome[0] for o in outcome[1:])
    print("statuses and scores: " + ("identical in every run" if same else "DIFFER between runs"))
    statuses = {status for status, _ in outcome[0].values()}
    print(f"statuses: {', '.join(sorted(statuses))}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
