"""Run untrusted work in child processes under limits, and kill everything it started.

Each child is forked from the grading worker: it starts its own session (process group), sets ``RLIMIT_AS``
(address space, inherited by a Jupyter kernel it launches) and ``RLIMIT_FSIZE`` (no file larger than the limit),
joins a cgroup of its own with a CPU quota (:class:`CpuGroup`; where no cgroup is writable, ``RLIMIT_CPU`` and a
lower priority instead), drops environment variables that look like credentials, sends stdout and stderr to a pipe
of which only a bounded head and tail are kept, and then either calls a Python function (in a warm worker, see
:func:`enable_warm_fork`) or ``exec``\\s a command. :func:`run_children` waits for several children at once until a
shared wall-clock deadline and then kills every process they started -- including Jupyter kernels, which
``jupyter_client`` puts in sessions of their own.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import math
import os
import re
import resource
import selectors
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "Limits",
    "CpuGroup",
    "cpu_control",
    "Child",
    "ChildOutcome",
    "run_children",
    "become_subreaper",
    "enable_warm_fork",
    "descendants",
    "kill_tree",
    "reap_adopted",
]

_SUBREAPER = False
_WARM_FORK = False
_SECRET = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|^PG|^AWS_|^GOOGLE_|^AZURE_|DATABASE_URL|DSN", re.I)
KEEP_BYTES = 32_768  # of a child's combined stdout/stderr: this much of the head and of the tail are kept


@dataclass(frozen=True)
class Limits:
    memory_bytes: int | None = 4 << 30  # RLIMIT_AS
    file_bytes: int | None = 512 << 20  # RLIMIT_FSIZE
    env: dict[str, str] = field(default_factory=dict)  # set in the child before it runs
    # CPU time per child (its kernel and everything the student's code forks): a cgroup quota of this many cores
    # (cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), so that a notebook running many busy processes gets no
    # more CPU than one running one, and a bystander graded beside it keeps its share. None: no CPU limit.
    cpu_cores: float | None = 1.0
    nice: int = 5  # only where no cgroup is writable: the child's priority, with RLIMIT_CPU (see CpuGroup)


_CPU_PERIOD_US = 100_000
_GROUP_NUMBERS = itertools.count()


@functools.lru_cache(maxsize=1)
def cpu_control() -> tuple[str, str] | None:
    """``(kind, directory)`` of the cgroup under which this process can create per-child CPU groups: ``("v2",
    dir)`` where a cgroup v2 hierarchy delegates the ``cpu`` controller to this process's cgroup, ``("v1", dir)``
    where the cgroup v1 ``cpu`` hierarchy is writable (root on a v1 or hybrid host), else None. Tried for real once
    per process: a group is created, given a quota and removed."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/cgroup") as fh:
            memberships = [line.rstrip("\n").split(":", 2) for line in fh if line.count(":") >= 2]
        with open("/proc/self/mountinfo") as fh:
            mounts = [line.split() for line in fh]
    except OSError:
        return None
    candidates = []
    for fields in mounts:
        if "-" not in fields:
            continue
        dash = fields.index("-")
        fstype, options, root, point = fields[dash + 1], fields[dash + 3].split(","), fields[3], fields[4]
        for hierarchy, controllers, path in memberships:
            if fstype == "cgroup2" and hierarchy == "0" or fstype == "cgroup" and "cpu" in controllers.split(","):
                if fstype == "cgroup" and "cpu" not in options:
                    continue
                if path == root or path.startswith(root.rstrip("/") + "/"):
                    rel = path[len(root.rstrip("/")) :].lstrip("/")
                    kind = "v2" if fstype == "cgroup2" else "v1"
                    candidates.append((kind, os.path.join(point.replace("\\040", " "), rel).rstrip("/")))
    for kind, directory in candidates:
        if kind == "v2":
            try:
                with open(os.path.join(directory, "cgroup.controllers")) as fh:
                    if "cpu" not in fh.read().split():
                        continue
                with open(os.path.join(directory, "cgroup.subtree_control")) as fh:
                    enabled = "cpu" in fh.read().split()
                if not enabled:
                    with open(os.path.join(directory, "cgroup.subtree_control"), "w") as fh:
                        fh.write("+cpu")
            except OSError:
                continue
        group = CpuGroup.create((kind, directory), 1.0)
        if group is not None:
            group.remove()
            return kind, directory
    return None


class CpuGroup:
    """A cgroup holding one child and everything it starts, with a CPU quota of ``cores``.

    :meth:`create` in the parent (None where no cgroup is writable, see :func:`cpu_control`), :meth:`join` in the
    forked child before it runs anything, :meth:`remove` in the parent once the child is gone: it kills whatever is
    left in the group first (a process that escaped its session is still in its cgroup)."""

    def __init__(self, kind: str, path: str):
        self.kind, self.path = kind, path

    @classmethod
    def create(cls, control: tuple[str, str] | None, cores: float) -> CpuGroup | None:
        if control is None:
            return None
        kind, parent = control
        path = os.path.join(parent, f"autograder-{os.getpid()}-{next(_GROUP_NUMBERS)}")
        quota = max(1000, int(math.ceil(cores * _CPU_PERIOD_US)))
        try:
            os.mkdir(path)
        except OSError:
            return None
        group = cls(kind, path)
        try:
            if kind == "v2":
                group._write("cpu.max", f"{quota} {_CPU_PERIOD_US}")
            else:
                group._write("cpu.cfs_period_us", str(_CPU_PERIOD_US))
                group._write("cpu.cfs_quota_us", str(quota))
        except OSError:
            group.remove()
            return None
        return group

    def _write(self, name: str, value: str) -> None:
        fd = os.open(os.path.join(self.path, name), os.O_WRONLY)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)

    def join(self) -> None:
        """Move the calling process into the group (its later children are born there)."""
        self._write("cgroup.procs", "0")

    def pids(self) -> set[int]:
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as fh:
                return {int(p) for p in fh.read().split()}
        except OSError:
            return set()

    def remove(self, timeout_s: float = 2.0) -> None:
        """SIGKILL every process still in the group, then remove it (retried while the killed ones exit)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for pid in self.pids() - {os.getpid()}:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    return  # left behind empty-to-be; harmless, and named after this process
                time.sleep(0.01)


@dataclass
class Child:
    """A unit of untrusted work: ``target()`` in a forked child (its return value is the exit code), or
    ``argv`` exec'd there. ``cwd`` is entered first. With both, ``target`` runs only in a process that called
    :func:`enable_warm_fork` and is still single-threaded (a forked copy of a warm worker starts at once), and
    ``argv`` is exec'd otherwise (forking a multi-threaded process, a Dask worker say, is only safe straight into
    ``exec``)."""

    name: str
    cwd: str
    target: Callable[[], int] | None = None
    argv: list[str] | None = None
    capture_bytes: int = 0  # >0: keep the output whole (up to this size) in ChildOutcome.data


@dataclass
class ChildOutcome:
    name: str
    returncode: int | None  # negative: killed by that signal; None: still running at the deadline
    timed_out: bool
    wall_s: float
    output: str  # head and tail of stdout+stderr
    data: bytes = b""  # the whole output, for a child with capture_bytes

    @property
    def signal_name(self) -> str | None:
        if self.returncode is not None and self.returncode < 0:
            try:
                return signal.Signals(-self.returncode).name
            except ValueError:
                return f"signal {-self.returncode}"
        return None


def enable_warm_fork() -> None:
    """Let :func:`run_children` fork children that run a Python ``target`` in a copy of this warm process instead
    of exec'ing a fresh interpreter (seconds of imports saved per child).

    Only for a process that forks nothing else and stays single-threaded (a :class:`LocalExecutor` worker). It
    pins PyTorch to one thread first: a process that has entered an OpenMP parallel region (PyTorch's CPU thread
    pool, e.g. in a judge) cannot fork a child that uses PyTorch -- the child hangs."""
    global _WARM_FORK
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    _WARM_FORK = True


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``), so that a kernel
    whose parent died can still be found and killed. Returns whether it worked."""
    global _SUBREAPER
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        _SUBREAPER = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        _SUBREAPER = False
    return _SUBREAPER


def _proc_table() -> dict[int, tuple[int, int]]:
    """``{pid: (ppid, pgid)}`` for every process visible in /proc (empty where /proc does not exist)."""
    table = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        table[int(name)] = (int(fields[1]), int(fields[2]))
    return table


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, grandchildren, ...)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for p, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(p)
    found, stack = set(), [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            if c not in found:
                found.add(c)
                stack.append(c)
    return found


def kill_tree(pid: int, known: set[int] = frozenset()) -> None:
    """SIGKILL ``pid``, every descendant, the processes in ``known`` (descendants seen earlier, which may have
    been re-parented since) and the process group of each of them, except this process's own group."""
    me_group, me = os.getpgrp(), os.getpid()
    for _ in range(3):  # a dying tree can still fork: sweep until nothing new is found
        victims = (descendants(pid) | {pid} | set(known)) - {me}
        table = _proc_table()
        victims = {v for v in victims if v in table}
        groups = {table[v][1] for v in victims} | {pid}
        for group in groups - {me_group, 0, 1}:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not descendants(pid):
            break


def reap_adopted() -> None:
    """Kill and collect processes adopted by this (subreaper) process: kernels left behind by a killed child.

    Only call it when this process has no children of its own running (between tasks)."""
    if not _SUBREAPER:
        return  # never touch the children of a process we do not own (a Dask worker's)
    me = os.getpid()
    for pid, (ppid, _) in _proc_table().items():
        if ppid == me:
            kill_tree(pid)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _child_main(
    child: Child, limits: Limits, write_fd: int, warm: bool, group: CpuGroup | None, child_cpu_s: int
) -> None:
    """In the forked child: never returns. ``child_cpu_s``: its processes' RLIMIT_CPU where ``group`` is None."""
    code = 70
    try:
        if group is not None:
            try:
                group.join()
            except OSError:  # the group went away (an administrator's cleanup): the fallback below instead
                group = None
        if group is None and limits.cpu_cores:  # no cgroup: a per-process CPU-time bound and a lower priority
            os.nice(limits.nice)
        os.setsid()
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.closerange(3, 256)  # drop every inherited descriptor (pipes of sibling children, sockets)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        if limits.memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        if limits.file_bytes:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if group is None and limits.cpu_cores and child_cpu_s:
            resource.setrlimit(resource.RLIMIT_CPU, (child_cpu_s, child_cpu_s + 5))
        for name in [n for n in os.environ if _SECRET.search(n)]:
            del os.environ[name]  # student code must not read (and print into its feedback) credentials
        os.environ.update(limits.env)
        os.chdir(child.cwd)
        if child.argv is not None and (child.target is None or not warm):
            os.execvpe(child.argv[0], child.argv, dict(os.environ))
        code = int(child.target() or 0)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # report and exit; never return into the parent's code
        try:
            import traceback

            traceback.print_exc()
        except BaseException:
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


class _Buffer:
    def __init__(self, capture_bytes: int = 0) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0
        self.capture_bytes = capture_bytes
        self.whole = bytearray()

    def add(self, data: bytes) -> None:
        if self.capture_bytes and len(self.whole) + len(data) <= self.capture_bytes:
            self.whole += data
        elif self.capture_bytes:
            self.capture_bytes = 0  # too much: nothing whole is kept
            self.whole = bytearray()
        room = KEEP_BYTES - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > KEEP_BYTES:
                self.dropped += len(self.tail) - KEEP_BYTES
                del self.tail[: len(self.tail) - KEEP_BYTES]

    def text(self) -> str:
        middle = f"\n[... {self.dropped} bytes of output dropped ...]\n".encode() if self.dropped else b""
        return (bytes(self.head) + middle + bytes(self.tail)).decode("utf-8", "replace")


def run_children(children: list[Child], limits: Limits, timeout_s: float) -> dict[str, ChildOutcome]:
    """Fork every child at once, wait until all exit or ``timeout_s`` passes, then kill all they started.

    Returns ``{child.name: ChildOutcome}``. Single-threaded (a select loop), so forking stays safe.
    """
    import threading

    warm = _WARM_FORK and threading.active_count() == 1 and os.environ.get("AUTOGRADER_CHILDREN") != "exec"
    start = time.monotonic()
    deadline = start + timeout_s
    running: dict[int, tuple[Child, int, _Buffer]] = {}
    groups: dict[int, CpuGroup | None] = {}
    control = cpu_control() if limits.cpu_cores else None
    child_cpu_s = int(math.ceil((limits.cpu_cores or 1.0) * timeout_s)) + 1
    buffers: dict[str, _Buffer] = {}
    outcomes: dict[str, ChildOutcome] = {}
    selector = selectors.DefaultSelector()
    for child in children:
        read_fd, write_fd = os.pipe()
        group = CpuGroup.create(control, limits.cpu_cores) if control else None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            _child_main(child, limits, write_fd, warm, group, child_cpu_s)
        os.close(write_fd)
        groups[pid] = group
        buffer = buffers[child.name] = _Buffer(child.capture_bytes)
        running[pid] = (child, read_fd, buffer)
        selector.register(read_fd, selectors.EVENT_READ, buffer)
    open_fds = {fd for _, fd, _ in running.values()}
    seen: dict[int, set[int]] = {pid: set() for pid in running}  # descendants seen so far, per child
    next_scan = 0.0

    def drain(timeout: float) -> None:
        for key, _ in selector.select(timeout):
            try:
                data = os.read(key.fd, 1 << 16)
            except OSError:
                data = b""
            if data:
                key.data.add(data)
            else:
                selector.unregister(key.fd)
                os.close(key.fd)
                open_fds.discard(key.fd)

    while running and time.monotonic() < deadline:
        drain(min(0.05, max(0.0, deadline - time.monotonic())) if open_fds else 0.0)
        if not open_fds:
            time.sleep(0.02)
        if time.monotonic() >= next_scan:
            for pid in running:
                seen[pid] |= descendants(pid)
            next_scan = time.monotonic() + 0.2
        for pid in list(running):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                child, fd, buffer = running.pop(pid)
                kill_tree(pid, seen[pid])  # the child is gone; whatever it left running (a kernel) goes too
                if groups[pid] is not None:
                    groups[pid].remove()
                outcomes[child.name] = ChildOutcome(
                    child.name, os.waitstatus_to_exitcode(status), False, time.monotonic() - start, ""
                )
    for pid, (child, _fd, _buffer) in running.items():
        kill_tree(pid, seen[pid] | descendants(pid))
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        if groups[pid] is not None:
            groups[pid].remove()
        outcomes[child.name] = ChildOutcome(child.name, None, True, time.monotonic() - start, "")
    # collect what the killed children left in their pipes, then close them
    end = time.monotonic() + 1.0
    while open_fds and time.monotonic() < end:
        drain(0.05)
    for fd in list(open_fds):
        selector.unregister(fd)
        os.close(fd)
    selector.close()
    reap_adopted()
    for name, outcome in outcomes.items():
        outcome.output = buffers[name].text()
        outcome.data = bytes(buffers[name].whole)
    return outcomes
