"""The operating-system boundary around student code: a bubblewrap (``bwrap``) sandbox for the notebook's kernel.

Only the Jupyter kernel runs inside; ``nbgrader autograde`` (gradebook, locked-cell restoration) stays outside in
the trusted, limited grading child and talks to the kernel over jupyter_client's ``ipc`` transport (unix sockets in
a private per-submission directory, the only host directory the sandbox can write). Inside:

* **namespaces**: own user namespace (the kernel runs as uid/gid 65534, no capabilities, ``no_new_privs``), in
  which no further user namespace can be created (no ``unshare -r``, hence no mount of any kind), own mount
  namespace with an empty root, own pid namespace (nothing outside is visible or signalable; nothing
  survives the kernel: when bwrap goes, its pid namespace goes), own network namespace (loopback only, no route
  out and no view of the host's loopback servers), own IPC and UTS namespaces; ``--die-with-parent``.
* **files**: ``/usr`` and the interpreter (``sys.base_prefix``, the virtualenv's ``sys.prefix``) read-only, a
  handful of ``/etc`` files (not ``/etc``), ``/proc`` of the sandbox's own pid namespace, a minimal ``/dev``, a
  read-only copy of the student-facing package (``autograder/student``, ``autograder/data``) first on
  ``PYTHONPATH``, the kernel's connection file (read-only), and one writable size-limited tmpfs ``/scratch`` (also
  ``$HOME``; ``/tmp`` is a link to it) as the working directory, the same wherever the environment lives: an
  interpreter directory under the host's ``/tmp`` is bound read-only inside ``/scratch``, where the link leads. No
  host directory is writable: the kernel's ipc sockets are in a 1 MiB tmpfs of the sandbox (``/run/kernel``), which
  the grader reaches from outside through ``/proc/PID/root`` (:func:`sandbox_root`). Not visible: the instructor's
  home, the checkout (hence ``solutions/``, ``autograder/reference``, ``autograder/checks``), SUBMISSIONS,
  ``--out``, the gradebook, other workers' directories, the host's ``/tmp``.
* **limits**: ``RLIMIT_NPROC`` for the kernel's uid (set by ``prlimit`` inside; it binds because that uid is not
  root on the host, see below), and the grading child's ``RLIMIT_AS``/``RLIMIT_FSIZE`` and CPU quota (its cgroup,
  :class:`autograder.grading.limits.CpuGroup`), which the kernel inherits.

Running as root, the sandbox's user namespace is created here (:func:`_user_namespace`) with uid 65534 inside
mapped to the host's unprivileged uid 65534 (``nobody``), not to root: bwrap's own ``--unshare-user --uid 65534``
would map it to host root, for which the kernel ignores ``RLIMIT_NPROC`` and which owns every system file. Its
holder sets the namespace's ``user.max_user_namespaces`` to 0 (bwrap's ``--disable-userns`` cannot be combined
with ``--userns``); not root, ``--disable-userns`` does it. bwrap
sets up the mounts as root of that namespace (it can read an interpreter under ``/root``), then ``setpriv`` drops
to 65534 with an empty capability bounding set before anything of the student's runs. Not root, bwrap's ordinary
``--unshare-user`` maps the sandbox's 65534 to the grading user, who is unprivileged already.

:func:`availability` tries the real thing once per process (a sandboxed ``python -c``), so a machine that forbids
user namespaces (Ubuntu's AppArmor restriction), lacks bwrap, or is not Linux is detected, with the fix, before
grading starts: the grader fails closed unless the instructor passes ``--unsafe-no-sandbox``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Availability",
    "SandboxUnavailable",
    "availability",
    "require",
    "Jail",
    "ISOLATION_BWRAP",
    "ISOLATION_NONE",
    "SANDBOX_UID",
    "SCRATCH",
    "LIBDIR",
    "SPEC_PATH",
    "RUNTIME",
    "CONNECTION",
    "build_libdir",
    "write_spec",
    "sandbox_root",
]

ISOLATION_BWRAP = "bwrap"  # the isolation column of grades.csv
ISOLATION_NONE = "none (--unsafe-no-sandbox)"
SANDBOX_UID = 65534  # nobody/nogroup, inside and (as root) outside
SCRATCH = "/scratch"  # the sandbox's only writable directory: cwd, $HOME, $TMPDIR, /tmp
LIBDIR = "/opt/autograder"  # the read-only student-facing package copy, first on PYTHONPATH
SPEC_PATH = "/opt/autograder-spec.json"  # the grading spec (assignment, groups, hidden seed), read-only
RUNTIME = "/run/kernel"  # the kernel's ipc sockets, inside (a tiny tmpfs of the sandbox's own)
CONNECTION = "/run/kernel.json"  # the kernel's connection file, inside (read-only)
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "localtime", "nsswitch.conf")
_FIX_BWRAP = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"
_FIX_USERNS = (
    "allow unprivileged user namespaces (Ubuntu 23.10+: sysctl -w "
    "kernel.apparmor_restrict_unprivileged_userns=0; elsewhere: sysctl -w user.max_user_namespaces=15000)"
)


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be set up here; ``str(exc)`` is one line: why, and the fix."""


@dataclass(frozen=True)
class Availability:
    ok: bool
    isolation: str  # what a kernel gets here: ISOLATION_BWRAP, or ISOLATION_NONE when not ok
    detail: str  # ok: what was verified; not ok: why, and the fix (one line)


def _bwrap() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def availability() -> Availability:
    """Whether this machine can run a kernel in the sandbox: tried for real (once per process), not guessed.

    The probe starts the sandbox exactly as a kernel gets it and runs this interpreter inside to check what it
    sees: its uid is 65534, the network has no interface but loopback, the pid namespace holds only itself, the
    package copy is first on ``sys.path``, and writing ``/usr`` fails."""
    if not sys.platform.startswith("linux"):
        return Availability(
            False,
            ISOLATION_NONE,
            f"the sandbox needs Linux namespaces; this is {sys.platform}: "
            "grade on a Linux machine (or pass --unsafe-no-sandbox)",
        )
    if _bwrap() is None:
        return Availability(False, ISOLATION_NONE, f"bwrap (bubblewrap) is not on PATH: {_FIX_BWRAP}")
    probe = (
        "import os, socket, sys\n"
        f"assert os.getuid() == {SANDBOX_UID} and os.getgid() == {SANDBOX_UID}, 'uid'\n"
        "assert sorted(p for p in os.listdir('/proc') if p.isdigit()) and "
        "all(int(p) < 10 for p in os.listdir('/proc') if p.isdigit()), 'pid namespace'\n"
        "assert [n for _, n in socket.if_nameindex()] == ['lo'], 'network namespace'\n"
        f"assert {LIBDIR!r} in sys.path, 'package copy'\n"
        f"assert os.path.realpath('/tmp') == {SCRATCH!r}, '/tmp is the scratch directory'\n"
        "import ctypes\n"
        "assert ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0, 'user namespaces are not disabled'\n"
        "import ipykernel, numpy\n"
        "try:\n    open('/usr/autograder-probe', 'w')\nexcept OSError:\n    pass\n"
        "else:\n    raise AssertionError('/usr is writable')\n"
        "print('sandbox-ok')\n"
    )
    with tempfile.TemporaryDirectory(prefix="autograder-probe-") as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        jail = Jail(str(lib), scratch_bytes=16 << 20, nproc=64)
        try:
            argv, fds, done = jail.command([sys.executable, "-c", probe], {"PYTHONPATH": LIBDIR})
        except OSError as exc:
            return Availability(
                False, ISOLATION_NONE, f"cannot create the sandbox's user namespace ({exc}): {_FIX_USERNS}"
            )
        try:
            proc = subprocess.run(
                argv, pass_fds=fds, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Availability(False, ISOLATION_NONE, f"bwrap did not run ({type(exc).__name__}: {exc})")
        finally:
            done()
    if proc.returncode == 0 and "sandbox-ok" in proc.stdout:
        return Availability(
            True,
            ISOLATION_BWRAP,
            f"bwrap {_bwrap_version()}: user, mount, pid, net, ipc, uts namespaces; uid {SANDBOX_UID}; "
            "no nested user namespaces; tmpfs scratch",
        )
    said = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1][:200]
    if "namespace" in said.lower() or "permission" in said.lower() or "operation not permitted" in said.lower():
        return Availability(False, ISOLATION_NONE, f"bwrap cannot create namespaces here ({said}): {_FIX_USERNS}")
    return Availability(False, ISOLATION_NONE, f"the sandbox check failed ({said})")


def _bwrap_version() -> str:
    try:
        out = subprocess.run([_bwrap(), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired, TypeError):
        return "?"
    return out.split()[-1] if out.split() else "?"


def require() -> Availability:
    """:func:`availability`, or :class:`SandboxUnavailable` with its one-line reason and fix."""
    found = availability()
    if not found.ok:
        raise SandboxUnavailable(found.detail)
    return found


# ------------------------------------------------------------------------------------------------ the jail
def _interpreter_dirs() -> list[str]:
    """Directories an interpreter in the sandbox needs: the venv (``sys.prefix``), its base installation
    (``sys.base_prefix``; pyenv's lives under the home directory) and where ``sys.executable`` really is."""
    dirs = []
    for path in (sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))):
        real = os.path.realpath(path)
        if real.startswith("/usr/") or real == "/usr":
            continue
        if not any(real == d or real.startswith(d + os.sep) for d in dirs):
            dirs = [d for d in dirs if not d.startswith(real + os.sep)] + [real]
    return dirs


# The holder of the sandbox's user namespace (root only): it enters a new user namespace, waits for the grader to
# write its uid/gid maps, then sets the namespace's user.max_user_namespaces to 0 (it holds every capability in the
# namespace it created), so that nothing inside can create a user namespace: no ``unshare -r``, hence no mount of a
# fresh tmpfs of host-RAM size. Only a process with CAP_SYS_RESOURCE in that namespace could raise the limit again,
# and the student's uid has no capability there.
_HOLDER = (
    "import ctypes, sys, time\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "if libc.unshare(0x10000000) != 0:\n"  # CLONE_NEWUSER
    "    sys.exit('unshare(CLONE_NEWUSER) failed: errno %d' % ctypes.get_errno())\n"
    "print('ns', flush=True)\n"
    "sys.stdin.readline()\n"
    "with open('/proc/sys/user/max_user_namespaces', 'w') as fh:\n"
    "    fh.write('0')\n"
    "print('sealed', flush=True)\n"
    "time.sleep(600)\n"
)


def _user_namespace() -> tuple[int, subprocess.Popen]:
    """(fd of a new user namespace mapping uids 0 and 65534 to themselves, the process holding it).

    Root only. The holder (:data:`_HOLDER`, this interpreter with ``-I -S``) enters a fresh user namespace; its
    maps are written from here, it then forbids further user namespaces inside, and bwrap joins it with
    ``--userns FD``. 65534 must map to itself so that the sandboxed uid is an unprivileged host uid; 0 maps to 0
    only for bwrap's own setup (mounts), before ``setpriv`` drops it. Raises ``OSError`` when any step fails."""
    import select

    holder = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        close_fds=True,
    )

    def said(expected: str) -> None:
        ready, _, _ = select.select([holder.stdout], [], [], 10.0)
        line = holder.stdout.readline().decode(errors="replace").strip() if ready else ""
        if line != expected:
            holder.kill()
            why = holder.stderr.read().decode(errors="replace").strip().splitlines() or ["no answer within 10 s"]
            raise OSError(f"the user namespace holder failed: {why[-1][:200]}")

    try:
        said("ns")
        mapping = f"0 0 1\n{SANDBOX_UID} {SANDBOX_UID} 1\n"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{holder.pid}/{name}", "w") as fh:
                fh.write(mapping)
        holder.stdin.write(b"go\n")
        holder.stdin.flush()
        said("sealed")
        fd = os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except BaseException:
        _stop(holder)
        raise
    return fd, holder


def _stop(holder: subprocess.Popen) -> None:
    holder.kill()
    holder.wait()
    for stream in (holder.stdin, holder.stdout, holder.stderr):
        if stream is not None:
            stream.close()


def _inside_path(path: str) -> str:
    """Where the host directory ``path`` is bound in the sandbox: its own path, except under ``/tmp``, which inside
    is a link to :data:`SCRATCH`, so ``/tmp/x`` is bound at ``/scratch/x`` (and still opens as ``/tmp/x``)."""
    if path == "/tmp":
        raise SandboxUnavailable("the Python environment is /tmp itself: install it in a directory of its own")
    if path.startswith("/tmp/"):
        return SCRATCH + path[len("/tmp") :]
    return path


@dataclass(frozen=True)
class Jail:
    """One sandbox layout: ``libdir`` (host directory holding the student-facing package copy, bound read-only at
    :data:`LIBDIR`), ``connection_file`` (host file, bound read-only at :data:`CONNECTION`), ``spec_file`` (bound
    read-only at :data:`SPEC_PATH`), the scratch tmpfs size and the process limit for the sandboxed uid."""

    libdir: str
    connection_file: str | None = None
    spec_file: str | None = None
    scratch_bytes: int = 256 << 20
    nproc: int = 256

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        """The whole environment inside: nothing of the grader's (credentials, its PYTHONPATH, JPY_PARENT_PID:
        ipykernel's parent poller would see ppid 1 in the pid namespace and exit)."""
        env = {
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": SCRATCH,
            "TMPDIR": SCRATCH,
            "USER": "student",
            "LOGNAME": "student",
            "LANG": "C.UTF-8",
            "PYTHONPATH": LIBDIR,
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": f"{SCRATCH}/.matplotlib",
            "IPYTHONDIR": f"{SCRATCH}/.ipython",
            "JUPYTER_CONFIG_DIR": f"{SCRATCH}/.jupyter",
            "JUPYTER_DATA_DIR": f"{SCRATCH}/.jupyter/data",
            "JUPYTER_RUNTIME_DIR": f"{SCRATCH}/.jupyter/runtime",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            if name in os.environ:
                env[name] = os.environ[name]
        env.update(extra)
        return env

    def command(self, inner: list[str], env: dict[str, str]) -> tuple[list[str], tuple[int, ...], callable]:
        """``(argv, fds to pass, cleanup)`` running ``inner`` in the sandbox with ``self.env(env)``.

        Call ``cleanup()`` once the process started (or failed to): it closes the namespace fd and stops its
        holder (the namespace lives on as long as the sandbox runs)."""
        bwrap = _bwrap()
        if bwrap is None:
            raise SandboxUnavailable(f"bwrap (bubblewrap) is not on PATH: {_FIX_BWRAP}")
        argv = [bwrap]
        fds: tuple[int, ...] = ()
        holder = None
        if os.geteuid() == 0:
            fd, holder = _user_namespace()
            fds = (fd,)
            argv += [
                "--userns",
                str(fd),
                "--uid",
                "0",
                "--gid",
                "0",
                "--cap-add",
                "CAP_SETUID",
                "--cap-add",
                "CAP_SETGID",
            ]
        else:
            # --disable-userns (bwrap >= 0.8): nothing inside can create a user namespace (see _HOLDER for root)
            argv += ["--unshare-user", "--disable-userns", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        argv += [
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--hostname",
            "sandbox",
            "--clearenv",
        ]
        for name, value in self.env(env).items():
            argv += ["--setenv", name, value]
        argv += ["--ro-bind", "/usr", "/usr"]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = f"/{name}"
            if os.path.islink(path):
                argv += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                argv += ["--ro-bind", path, path]
        argv += ["--perms", "0755", "--dir", "/etc"]  # bwrap makes parents of mount points 0700
        for name in _ETC_FILES:
            if os.path.exists(f"/etc/{name}"):
                argv += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
        made: set[str] = set()

        def parents(path: str) -> list[str]:
            """``--dir`` for each missing ancestor of ``path``, world-searchable (bwrap makes them 0700)."""
            out = []
            for parent in reversed(Path(path).parents[:-1]):
                name = str(parent)
                if name not in made and name != "/usr":
                    made.add(name)
                    out += ["--perms", "0755", "--dir", name]
            return out

        # /tmp is always a link to the one scratch tmpfs, whatever the environment's path: an interpreter directory
        # under /tmp (a checkout or virtualenv cloned there) is bound read-only where that link leads, inside
        # /scratch, so the sandbox never gets a second writable tmpfs and sees the same layout wherever the course
        # lives.
        argv += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--perms",
            "1777",
            "--size",
            str(int(self.scratch_bytes)),
            "--tmpfs",
            SCRATCH,
            "--symlink",
            SCRATCH,
            "/tmp",
        ]
        made.add(SCRATCH)
        for path in _interpreter_dirs():
            inside = _inside_path(path)
            argv += parents(inside) + ["--ro-bind", path, inside]
        argv += [
            *parents(LIBDIR),
            "--ro-bind",
            self.libdir,
            LIBDIR,
            *parents(RUNTIME),
            "--perms",
            "0777",
            "--size",
            str(1 << 20),
            "--tmpfs",
            RUNTIME,
        ]
        if self.connection_file:
            argv += ["--ro-bind", self.connection_file, CONNECTION]
        if self.spec_file:
            argv += ["--ro-bind", self.spec_file, SPEC_PATH]
        argv += ["--chdir", SCRATCH, "--"]
        limit = ["prlimit", f"--nproc={int(self.nproc)}:{int(self.nproc)}", "--"]
        if holder is not None:
            argv += limit + [
                "setpriv",
                f"--reuid={SANDBOX_UID}",
                f"--regid={SANDBOX_UID}",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
            ]
        else:
            argv += limit
        argv += list(inner)

        def cleanup() -> None:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            if holder is not None:
                _stop(holder)

        return argv, fds, cleanup


def sandbox_root(bwrap_pid: int, timeout_s: float = 10.0) -> str:
    """``/proc/PID/root`` of the sandbox started by the bwrap process ``bwrap_pid`` (its first child, which holds
    the sandbox's mount namespace): the host's way into the sandbox's ``/run/kernel`` sockets."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with open(f"/proc/{bwrap_pid}/task/{bwrap_pid}/children") as fh:
                children = fh.read().split()
        except OSError:
            children = []
        if children:
            return f"/proc/{children[0]}/root"
        if time.monotonic() > deadline:
            raise OSError(f"bwrap (pid {bwrap_pid}) started no sandbox within {timeout_s:g} s")
        time.sleep(0.002)


# ------------------------------------------------------------------------------------------------ the package copy
def build_libdir(target: str, probe_modules: tuple[str, ...] = ()) -> str:
    """Write the read-only package copy for the sandbox into ``target``: the files of
    :func:`autograder.student.sandbox_tree` (``autograder/__init__.py``, ``autograder/student/**``,
    ``autograder/data/**``) and the source files of ``probe_modules`` (test fixtures that register probes).
    Returns ``target``. Nothing else of the package (references, judges, grader) is copied."""
    import importlib.util

    from autograder import student

    root = Path(target)
    package_root = Path(student.__file__).resolve().parents[2]
    for rel in student.sandbox_tree(package_root):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((package_root / rel).read_bytes())
    for name in probe_modules:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            raise ModuleNotFoundError(f"probe module {name!r} not found")
        origin = Path(spec.origin)
        if spec.submodule_search_locations:  # a package: copy its .py files
            dest = root / Path(*name.split("."))
            for src in origin.parent.rglob("*.py"):
                out = dest / src.relative_to(origin.parent)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(src.read_bytes())
        else:
            out = root / Path(*name.split(".")[:-1]) / origin.name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(origin.read_bytes())
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    return target


def write_spec(path: str, spec: dict) -> str:
    with open(path, "w") as fh:
        json.dump(spec, fh)
    os.chmod(path, 0o644)
    return path
