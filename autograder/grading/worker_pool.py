"""The grading process pool of a Dask worker: the one owner of that pool, used by the task and by the package plugin.

The Dask worker process is multi-threaded (event loop, profiler, task threads), and grading forks children (kernel,
sandbox): forking there could copy a lock some other thread holds. So, as in local grading, the work runs in a
single-threaded pool process (``spawn``, one per worker thread) and forks from there. The pool lives on the
``distributed.Worker`` object under :data:`POOL_ATTRIBUTE` as ``(identity, ProcessPoolExecutor)``, so that it
survives a re-shipped package; ``identity`` is ``(autograder.__file__, prepare)``, and a pool of another identity is
replaced.

* :func:`worker_pool` -- the pool (created on first use, re-created after a new package or a broken pool);
* :func:`discard_pool` -- forget a broken pool (the task that saw it break raises, so Dask re-runs it);
* :func:`stop_pool` -- the worker closes or gets another package (:class:`~.package_shipping.ShipPackage` teardown).

This module imports only the standard library at top level, and :func:`stop_pool` uses nothing else: the package
plugin is pickled *by value* with this module (:func:`~.package_shipping.register_by_value`), so a worker without
``autograder`` can unpickle it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

__all__ = ["POOL_ATTRIBUTE", "worker_pool", "discard_pool", "stop_pool"]

POOL_ATTRIBUTE = "_autograder_grading_pool"  # on the Worker object: (identity, pool)
_LOCK_ATTRIBUTE = POOL_ATTRIBUTE + "_lock"


def _lock(worker) -> threading.Lock:
    return worker.__dict__.setdefault(_LOCK_ATTRIBUTE, threading.Lock())


def worker_pool(worker, prepare: Callable[[], None] | None):
    """This worker's grading pool: a ``ProcessPoolExecutor`` with one ``spawn`` process per worker thread, each
    started by :func:`_start_grading_process` (which runs ``prepare``)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import autograder

    identity = (autograder.__file__, prepare)
    with _lock(worker):
        current = getattr(worker, POOL_ATTRIBUTE, None)
        if current is not None and current[0] == identity:
            return current[1]
        if current is not None:
            current[1].shutdown(wait=False, cancel_futures=True)
        # Dask starts worker processes as daemons, and a daemon may not start children; this flag only guards that
        # check here (the nanny keeps its own view), and the pool's processes exit when this worker exits.
        multiprocessing.current_process().daemon = False
        pool = ProcessPoolExecutor(
            max_workers=max(1, worker.state.nthreads),
            initializer=_start_grading_process,
            initargs=(os.getpid(), prepare),
            mp_context=multiprocessing.get_context("spawn"),
        )
        setattr(worker, POOL_ATTRIBUTE, (identity, pool))
        return pool


def discard_pool(worker, pool) -> None:
    """Forget ``pool`` (broken) if it is still this worker's pool, and shut it down."""
    with _lock(worker):
        current = getattr(worker, POOL_ATTRIBUTE, None)
        if current is not None and current[1] is pool:
            delattr(worker, POOL_ATTRIBUTE)
    pool.shutdown(wait=False, cancel_futures=True)


def stop_pool(worker) -> None:
    """Stop this worker's grading pool, if any (its processes and the kernels they started exit)."""
    with _lock(worker):
        current = worker.__dict__.pop(POOL_ATTRIBUTE, None)
    if current is not None:
        current[1].shutdown(wait=False, cancel_futures=True)


def _start_grading_process(worker_pid: int, prepare: Callable[[], None] | None) -> None:
    """Initializer of a grading process: follow the Dask worker into death, then the usual set-up.

    A pool process would otherwise outlive a killed worker (killed, out of memory), waiting forever on a queue whose
    other end it holds itself. The check is a timer signal, not a thread: grading forks warm children only from a
    single-threaded process (:func:`autograder.grading.limits.run_children`), and forked children inherit neither
    the timer nor, for their own pid, the check.
    """
    import signal

    me = os.getpid()

    def check_worker(signum, frame) -> None:
        if os.getpid() == me and os.getppid() != worker_pid:
            _die_with_descendants()

    signal.signal(signal.SIGALRM, check_worker)
    signal.setitimer(signal.ITIMER_REAL, 0.5, 0.5)
    import sys

    if "jsonschema" not in sys.modules:  # as autograder.grading.course.skip_unused_imports (stdlib only here)
        sys.modules.setdefault("rfc3987_syntax", None)
    if prepare is not None:
        prepare()


def _die_with_descendants() -> None:
    """SIGKILL every process this one started (kernels included), then exit."""
    try:
        import psutil

        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                pass
    finally:
        os._exit(1)
