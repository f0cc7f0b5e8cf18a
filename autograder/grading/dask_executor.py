"""Grade a class on a Dask cluster: ``python -m autograder grade ... --scheduler tcp://HOST:8786``.

:class:`DaskExecutor` implements the executor interface of :mod:`autograder.grading.executors`
(``run(tasks, on_result)``): each :class:`~autograder.grading.tasks.GradeTask` becomes one Dask task that runs the
pure function :func:`~autograder.grading.tasks.grade_submission` on a worker, and every
:class:`~autograder.grading.tasks.GradeResult` comes back, as plain data, to this process -- the only writer of the
gradebook, ``grades.csv`` and the feedback files.

What the cluster guarantees, and what this module adds:

* **No shared disk.** Before the first task, the ``autograder`` package this process imports is zipped and shipped
  to every worker (:mod:`autograder.grading.package_shipping`); a task carries its submission and the source
  notebook as bytes. A worker machine needs only the pinned requirements and a Python 3 Jupyter kernel, checked on
  connect (:func:`worker_environment`): a worker that differs is named in a one-line error before any grading.
* **Bounded retries.** A worker process that dies while grading (killed, out of memory, machine lost) has its
  submission re-run on another worker by the scheduler, up to its ``distributed.scheduler.allowed-failures`` setting
  (default 3); after that the submission is reported ``crashed`` with the reason. An exception raised by the grading
  function itself (an infrastructure fault: a bad submission never raises) is retried ``retries`` times, then
  reported ``crashed`` the same way.
* **Same isolation as local grading.** On a worker, each submission is graded in a single-threaded grading process
  (one per worker thread, started with the local pool's initializer), which starts the limited children -- kernel,
  probe sandbox -- exactly as a local worker process does; the grading process dies with its Dask worker.
* **Bounded load.** At most as many submissions are on the cluster as its workers have threads: a worker holds only
  what it is grading, so one that dies costs no waiting submission a retry.
* **Every submission reported exactly once.** ``on_result`` is called once per task, in completion order; a task
  whose result cannot be obtained for any reason (including a lost scheduler) is reported ``crashed``, never
  dropped, and a duplicate is impossible by construction (one future per task, consumed once).
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from .filenames import safe_filename
from .worker_pool import discard_pool, worker_pool

__all__ = [
    "DaskExecutor",
    "SchedulerError",
    "check_address",
    "TaskTiming",
    "RunStats",
    "worker_environment",
    "COMPARED_PACKAGES",
]

# Packages whose version must be the same on every worker as here: a different nbgrader, NumPy or PyTorch could
# change a score. (Dask itself checks its own packages: python, dask, distributed, cloudpickle, msgpack, ...)
COMPARED_PACKAGES = ("nbgrader", "nbconvert", "nbclient", "jupyter_client", "ipykernel", "numpy", "torch")


class _ClusterLost(Exception):
    """The scheduler went away during grading: every submission not yet reported is reported ``crashed``."""


class SchedulerError(RuntimeError):
    """The cluster cannot grade: unreachable scheduler, no workers, or workers without the course environment.

    ``str(error)`` is one line that says what to do.
    """


@dataclass(frozen=True)
class TaskTiming:
    """Where and how long one submission was graded: seconds inside the grading function on the worker."""

    index: int
    worker: str
    compute_s: float


@dataclass
class RunStats:
    """What one :meth:`DaskExecutor.run` cost: connection and shipping, then the grading wall time."""

    workers: int = 0
    threads: int = 0
    connect_s: float = 0.0
    ship_s: float = 0.0
    wall_s: float = 0.0
    allowed_failures: int | None = None
    timings: list[TaskTiming] = field(default_factory=list)
    crashed: int = 0


def _version(package: str) -> str | None:
    try:
        return metadata.version(package).split("+")[0]  # 2.13.0+cpu and 2.13.0+cu128 grade alike
    except metadata.PackageNotFoundError:
        return None


def worker_environment() -> dict[str, Any]:
    """This process's grading environment: Python version, :data:`COMPARED_PACKAGES` versions, Jupyter kernels.

    Runs on each worker (``client.run``) and here; :meth:`DaskExecutor.run` refuses workers that differ.
    """
    try:
        from jupyter_client.kernelspec import find_kernel_specs

        kernels = sorted(find_kernel_specs())
    except Exception as exc:  # report, don't crash the check
        kernels = [f"<cannot list kernels: {exc}>"]
    try:
        from autograder.grading.sandbox import availability

        found = availability()
        sandbox = {"ok": found.ok, "detail": found.detail}
    except Exception as exc:  # report, don't crash the check
        sandbox = {"ok": False, "detail": f"cannot check the sandbox: {type(exc).__name__}: {exc}"}
    return {
        "python": ".".join(map(str, sys.version_info[:2])),
        "packages": {name: _version(name) for name in COMPARED_PACKAGES},
        "kernels": kernels,
        "sandbox": sandbox,
    }


def _environment_problems(here: dict[str, Any], there: dict[str, Any], require_sandbox: bool = True) -> list[str]:
    problems = []
    sandbox = there.get("sandbox") or {"ok": False, "detail": "the worker did not report its sandbox"}
    if require_sandbox and not sandbox["ok"]:
        problems.append(f"no sandbox ({sandbox['detail']}; or pass --unsafe-no-sandbox)")
    if there["python"] != here["python"]:
        problems.append(f"Python {there['python']} (here {here['python']})")
    for name, want in here["packages"].items():
        have = there["packages"].get(name)
        if have != want:
            problems.append(f"{name} {have or 'missing'} (here {want})")
    if "python3" not in there["kernels"]:
        problems.append(f"no 'python3' Jupyter kernel (has {', '.join(there['kernels']) or 'none'})")
    return problems


def check_address(address: str) -> str:
    """``address`` if it looks like a scheduler address (``tcp://HOST:PORT``, ``HOST:PORT``), else a
    :class:`SchedulerError` saying what to give."""
    if not isinstance(address, str) or not re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://\S+|[\w.-]+:\d+", address):
        raise SchedulerError(
            f"--scheduler {address!r} is not a scheduler address: give the address "
            "`dask scheduler` prints, e.g. tcp://10.0.0.5:8786"
        )
    return address


def _grade_on_worker(
    grade: Callable[[Any], Any], task: Any, prepare: Callable[[], None] | None
) -> tuple[Any, float, str]:
    """The Dask task: ``grade(task)`` in this worker's grading pool; the result, its duration, the worker address.

    The work runs in the worker's single-threaded grading pool (:mod:`.worker_pool`, its processes started once by
    ``prepare``), which forks the kernel and sandbox from there. A pool process that dies takes only its own task with
    it: the pool is replaced and the task raises, so Dask re-runs it (``retries``).
    """
    from concurrent.futures.process import BrokenProcessPool

    from distributed import get_worker

    worker = get_worker()
    pool = worker_pool(worker, prepare)
    try:
        result, seconds = pool.submit(_timed, grade, task).result()
    except BrokenProcessPool:
        discard_pool(worker, pool)
        raise
    return result, seconds, worker.address


def _timed(grade: Callable[[Any], Any], task: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = grade(task)
    return result, time.perf_counter() - start


def _allowed_failures(dask_scheduler=None) -> int:
    return dask_scheduler.allowed_failures


def _key(task: Any, index: int, run_id: str) -> str:
    label = "-".join(str(getattr(task, attr)) for attr in ("assignment", "student") if hasattr(task, attr))
    label = safe_filename(label) if label else "task"
    return f"grade-{label}-{index}-{run_id}"


def _default_grade() -> Callable[[Any], Any]:
    from autograder.grading.tasks import grade_submission

    return grade_submission


def _default_crashed(task: Any, reason: str) -> Any:
    from autograder.grading.executors import failed_result

    return failed_result(task, reason)


def _default_prepare() -> Callable[[], None]:
    from autograder.grading.executors import init_worker  # the local pool's initializer: same worker set-up

    return init_worker


_DEFAULT = object()


class DaskExecutor:
    """Run grading tasks on the Dask cluster whose scheduler listens at ``address`` (``tcp://HOST:8786``).

    Parameters
    ----------
    address:
        The scheduler's address, as ``dask scheduler`` prints it.
    retries:
        How many times a task whose grading function *raised* is re-run (worker deaths are bounded by the
        scheduler's ``allowed-failures``, see the module docstring).
    connect_timeout_s, workers_timeout_s:
        How long to wait for the scheduler (default: Dask's ``distributed.comm.timeouts.connect``, 30 s unless set,
        e.g. ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s``), then for at least one worker, before a
        :class:`SchedulerError`; and how long grading waits with no worker at all before the submissions left
        are reported ``crashed``.
    poll_s:
        How often, while no submission finishes, grading checks that workers are still there.
    grade, crashed, prepare_process:
        The task function (default :func:`autograder.grading.tasks.grade_submission`), the factory of the
        ``crashed`` result for a task that could not be graded, ``crashed(task, reason) -> result`` (default
        :func:`autograder.grading.executors.failed_result`), and the initializer of each grading process on a worker
        (default: the local pool's). Tests pass stand-ins; the grading command uses the defaults.
    ship_package:
        Upload this process's ``autograder`` package to the workers (default). ``False`` only when the workers are
        known to run this exact code already.
    log:
        Where the one-line description of the cluster goes before grading (default: standard error).
    """

    def __init__(
        self,
        address: str,
        *,
        retries: int = 1,
        connect_timeout_s: float | None = None,
        workers_timeout_s: float = 60.0,
        poll_s: float = 5.0,
        grade: Callable[[Any], Any] | None = None,
        crashed: Callable[[Any, str], Any] | None = None,
        prepare_process: Callable[[], None] | None | object = _DEFAULT,
        ship_package: bool = True,
        log: Callable[[str], None] | None = None,
        require_sandbox: bool = True,
    ):
        self.address = check_address(address)
        self.require_sandbox = require_sandbox
        self.retries = retries
        if connect_timeout_s is None:  # Dask's own setting (30 s unless configured)
            import importlib

            import dask.config

            importlib.import_module("distributed")  # registers distributed's configuration defaults
            from dask.utils import parse_timedelta

            connect_timeout_s = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="s")
        self.connect_timeout_s = float(connect_timeout_s)
        self.workers_timeout_s = workers_timeout_s
        self.poll_s = poll_s
        self.grade = grade or _default_grade()
        self.crashed = crashed or _default_crashed
        self.prepare_process = _default_prepare() if prepare_process is _DEFAULT else prepare_process
        self.ship_package = ship_package
        self.log = log or (lambda message: print(message, file=sys.stderr))
        self.stats = RunStats()
        self._client = None

    # ------------------------------------------------------------------------------------------- connection
    def start(self) -> DaskExecutor:
        """Connect to the scheduler now (optional; :meth:`run` connects otherwise): an unreachable scheduler is a
        :class:`SchedulerError` before the caller prepares anything else."""
        if self._client is None:
            started = time.perf_counter()
            self._client = self._connect()
            self._connect_s = time.perf_counter() - started
        return self

    def _connect(self):
        from distributed import Client

        try:
            return Client(self.address, timeout=self.connect_timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(
                f"cannot reach the Dask scheduler at {self.address} within "
                f"{self.connect_timeout_s:.0f} s ({type(exc).__name__}): start it with "
                "`dask scheduler` and check the address and firewall"
            ) from None

    def close(self) -> None:
        """Disconnect (after :meth:`start` without :meth:`run`); the cluster itself keeps running."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _prepare(self, client, tasks: Sequence[Any]) -> None:
        """Wait for workers, ship the package (and the tasks' check modules), refuse workers unlike this process."""
        try:
            client.wait_for_workers(1, timeout=self.workers_timeout_s)
        except TimeoutError:
            raise SchedulerError(
                f"the Dask scheduler at {self.address} has no workers after "
                f"{self.workers_timeout_s:.0f} s: start `dask worker {self.address}` on each "
                "grading machine (in the course environment)"
            ) from None
        start = time.perf_counter()
        if self.ship_package:
            from autograder.grading.package_shipping import ShipPackage, package_zip, register_by_value

            register_by_value()
            from autograder.grading.course import shipped_modules

            extra = sorted({m for task in tasks for m in shipped_modules(task)})
            try:
                bundle = package_zip(extra_modules=extra)
            except ModuleNotFoundError as exc:
                raise SchedulerError(str(exc)) from None
            replies = _with_retries(lambda: client.register_plugin(ShipPackage(bundle)))
            failed = {w: r for w, r in (replies or {}).items() if r.get("status") != "OK"}
            if failed:
                worker, reply = next(iter(failed.items()))
                raise SchedulerError(
                    f"could not install the autograder package on worker {worker}: {reply.get('exception', reply)}"
                )
        here = worker_environment()
        for worker, there in client.run(worker_environment, on_error="return").items():
            if isinstance(there, BaseException):  # the worker left meanwhile: nothing to check
                continue
            problems = _environment_problems(here, there, self.require_sandbox)
            if problems:
                raise SchedulerError(
                    f"worker {worker} does not have the course environment: {'; '.join(problems)}. "
                    "Install the pinned requirements.txt (and bubblewrap) there and restart "
                    "`dask worker`"
                )
        self.stats.ship_s = time.perf_counter() - start
        info = client.scheduler_info(n_workers=-1) if _takes_n_workers(client) else client.scheduler_info()
        self.stats.workers = len(info["workers"])
        self.stats.threads = sum(w["nthreads"] for w in info["workers"].values())
        self.stats.allowed_failures = client.run_on_scheduler(_allowed_failures)

    # ------------------------------------------------------------------------------------------------ run
    def run(self, tasks: Iterable[Any], on_result: Callable[[Any], None]) -> None:
        """Grade ``tasks`` on the cluster; call ``on_result(result)`` here, once per task, as each finishes.

        At most as many tasks are on the cluster as its workers have threads (re-read after every completion, so
        workers may join or leave): a worker holds only the submissions it is grading, so one that dies takes no
        waiting submission's retry budget with it, and the scheduler never holds the whole class's notebooks.
        Raises :class:`SchedulerError` (before any grading) when the cluster cannot grade.
        """
        tasks: Sequence[Any] = list(tasks)
        self.stats = RunStats()
        if not tasks:
            self.close()
            return
        self.start()
        client, self._client = self._client, None
        try:
            self.stats.connect_s = self._connect_s
            self._prepare(client, tasks)
            self.log(
                f"grading {len(tasks)} submission(s) on the Dask cluster at {self.address}: "
                f"{self.stats.workers} worker(s), {self.stats.threads} thread(s); a submission whose worker "
                f"dies is retried on another, at most {self.stats.allowed_failures} time(s)"
            )
            wall_start = time.perf_counter()
            with client.as_current():  # distributed.wait uses the current client
                self._grade_all(client, tasks, on_result)
            self.stats.wall_s = time.perf_counter() - wall_start
        finally:
            client.close()

    def _grade_all(self, client, tasks: Sequence[Any], on_result: Callable[[Any], None]) -> None:
        from distributed import wait

        run_id = uuid.uuid4().hex[:12]
        waiting = iter(range(len(tasks)))
        in_flight: dict[Any, int] = {}  # future -> task index
        reported: set[int] = set()

        def report(index: int, result: Any) -> None:
            if index in reported:  # one future per task, consumed once: this cannot happen
                raise RuntimeError(f"submission {index} reported twice")
            reported.add(index)
            on_result(result)

        def cluster(call: Callable[[], Any]) -> Any:
            """A call to the scheduler; any failure of it means the cluster is gone (not the writer's errors)."""
            try:
                return call()
            except TimeoutError:
                raise
            except Exception as exc:  # CommClosedError, FuturesCancelledError, ...
                raise _ClusterLost(f"{type(exc).__name__}: {exc}".strip().splitlines()[0]) from exc

        def refill() -> None:
            capacity = max(1, sum(cluster(client.nthreads).values()))
            while len(in_flight) < capacity:
                index = next(waiting, None)
                if index is None:
                    return
                in_flight[
                    cluster(
                        lambda index=index: client.submit(
                            _grade_on_worker,
                            self.grade,
                            tasks[index],
                            self.prepare_process,
                            key=_key(tasks[index], index, run_id),
                            pure=False,
                            retries=self.retries,
                        )
                    )
                ] = index

        def give_up(reason: str) -> None:
            lost = [*in_flight.values(), *waiting]
            for future in in_flight:
                try:
                    future.release()
                except Exception:  # the client may be gone already
                    pass
            in_flight.clear()
            for index in lost:
                self.stats.crashed += 1
                report(index, self.crashed(tasks[index], reason[:500]))

        no_workers_since: float | None = None
        try:
            refill()
            while in_flight:
                try:
                    done, _ = cluster(lambda: wait(list(in_flight), timeout=self.poll_s, return_when="FIRST_COMPLETED"))
                except TimeoutError:
                    if sum(cluster(client.nthreads).values()):
                        no_workers_since = None
                        refill()  # workers may have joined
                    else:
                        no_workers_since = no_workers_since or time.monotonic()
                        if time.monotonic() - no_workers_since > self.workers_timeout_s:
                            give_up(f"no Dask worker left to grade it for {self.workers_timeout_s:.0f} s")
                    continue
                for future in done:
                    if _cancelled_by_lost_connection(future):  # not graded: the scheduler went away under it
                        raise _ClusterLost("the connection to the scheduler was lost")
                    index = in_flight.pop(future)
                    result = self._collect(future, tasks[index], index)
                    future.release()  # free its memory on the cluster; nothing recomputes it
                    report(index, result)
                refill()
        except _ClusterLost as exc:
            what = "the connection to the scheduler was lost" if "connection" in str(exc.__cause__).lower() else exc
            give_up(f"lost the Dask scheduler before this submission was graded ({what})")

    def _collect(self, future, task: Any, index: int) -> Any:
        """The result of one finished future, or the ``crashed`` result that says why there is none."""
        from distributed.scheduler import KilledWorker

        try:
            result, compute_s, worker = future.result()
        except KilledWorker as exc:
            self.stats.crashed += 1
            return self.crashed(
                task,
                f"the Dask worker grading it died {exc.allowed_failures + 1} times "
                f"(last on {exc.last_worker.address}); not retried further",
            )
        except Exception as exc:  # any failure of one task is that task's 'crashed' reason
            self.stats.crashed += 1
            kind = "cancelled" if future.cancelled() else f"{type(exc).__name__}: {exc}"
            return self.crashed(
                task, f"grading failed on the Dask cluster after {self.retries + 1} attempt(s) ({kind})"[:500]
            )
        self.stats.timings.append(TaskTiming(index, worker, compute_s))
        return result


def _cancelled_by_lost_connection(future) -> bool:
    """Whether ``future`` was cancelled by its client because the connection to the scheduler was lost (Dask's
    reason ``scheduler-connection-lost``), rather than by a failure of its own task."""
    if not future.cancelled():
        return False
    # the future's state holds the FutureCancelledError with the reason (result() would block or time out first)
    exception = getattr(getattr(future, "_state", None), "exception", None)
    return getattr(exception, "reason", None) == "scheduler-connection-lost"


def _with_retries(call: Callable[[], Any], attempts: int = 3, pause_s: float = 1.0) -> Any:
    """``call()``, again after a pause when a connection closed under it: the scheduler's broadcast to all workers
    fails as a whole when one of them leaves (or restarts) meanwhile."""
    for attempt in range(attempts):
        try:
            return call()
        except OSError:  # CommClosedError, StreamClosedError
            if attempt == attempts - 1:
                raise
            time.sleep(pause_s)


def _takes_n_workers(client) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters
