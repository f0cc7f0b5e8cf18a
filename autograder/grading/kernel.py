"""The kernel manager nbgrader's ``Execute`` uses in a grading child: the kernel starts inside the sandbox.

:class:`SandboxedKernelManager` is ``c.LimitedExecute.kernel_manager_class`` in a worker's private course
directory. It speaks the ``ipc`` transport (unix sockets in a tmpfs of the sandbox's own, reached from here through
``/proc/PID/root``; no TCP port exists that another process could reach, and no host directory is writable from
inside) and uses :class:`SandboxProvisioner`,
which wraps the kernel's command in :class:`autograder.grading.sandbox.Jail` and starts it with every inherited
file descriptor closed (jupyter_client's own launcher passes all of them on, the gradebook's included).

With ``sandboxed = False`` (``--unsafe-no-sandbox``) the kernel starts as plain nbgrader starts it, but still with
the grading spec in its environment and closed descriptors: the grading is the same, only the isolation is gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from traitlets import Bool, Integer, Unicode

from . import sandbox

__all__ = ["SandboxedKernelManager", "SandboxProvisioner", "INSIDE_CONNECTION"]

INSIDE_CONNECTION = "kernel-inside.json"  # the connection file as the kernel sees it (sandbox paths)


class SandboxProvisioner(LocalProvisioner):
    """Launches the kernel command in the sandbox (or, unsandboxed, with a clean environment)."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        km = self.parent
        runtime = km.runtime_dir
        info = dict(km.get_connection_info())
        if isinstance(info.get("key"), bytes):  # the HMAC key, as the connection file spells it
            info["key"] = info["key"].decode()
        cmd = [
            sys.executable if os.path.basename(c) in ("python", "python3") and i == 0 else c for i, c in enumerate(cmd)
        ]
        extra = km.kernel_env()
        if km.sandboxed:
            info["ip"] = f"{sandbox.RUNTIME}/kernel-ipc"
            inside = os.path.join(runtime, INSIDE_CONNECTION)
            with open(inside, "w") as fh:
                json.dump(info, fh)
            os.chmod(inside, 0o644)
            cmd = [sandbox.CONNECTION if c == km.connection_file else c for c in cmd]
            jail = sandbox.Jail(km.libdir, inside, km.spec_file or None, km.scratch_bytes, km.nproc)
            argv, fds, cleanup = jail.command(cmd, extra)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            cwd = runtime
        else:
            argv, fds, cleanup = cmd, (), (lambda: None)
            env = sandbox.Jail(km.libdir).env(extra)
            env["PYTHONPATH"] = km.libdir
            env["HOME"] = env["TMPDIR"] = km.scratch_dir
            for name in ("MPLCONFIGDIR", "IPYTHONDIR", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
                env[name] = env[name].replace(sandbox.SCRATCH, km.scratch_dir)
            if km.spec_file:
                env[km.spec_env] = km.spec_file
            cwd = km.scratch_dir
        try:
            self.process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                pass_fds=fds,
                close_fds=True,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=kwargs.get("stdout"),
                stderr=kwargs.get("stderr"),
            )
        finally:
            cleanup()
        self.pid = self.process.pid
        if km.sandboxed:  # the client connects to the sockets inside, through the sandbox's root
            km.ip = f"{sandbox.sandbox_root(self.pid)}{sandbox.RUNTIME}/kernel-ipc"
            self.connection_info = km.get_connection_info()
        try:
            self.pgid = os.getpgid(self.pid)
        except OSError:
            self.pgid = None
        self.cwd = cwd
        return self.connection_info


class SandboxedKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` whose kernel runs in the sandbox, over ``ipc`` sockets in ``runtime_dir``."""

    runtime_dir = Unicode(help="host directory for the connection files (and, unsandboxed, the sockets)").tag(
        config=True
    )
    libdir = Unicode(help="host directory with the student-facing package copy").tag(config=True)
    spec_file = Unicode("", help="grading spec file (assignment, groups, hidden seed)").tag(config=True)
    spec_env = Unicode("AUTOGRADER_GRADING_SPEC", help="environment variable naming the spec file").tag(config=True)
    scratch_dir = Unicode(help="unsandboxed only: the kernel's working directory").tag(config=True)
    scratch_bytes = Integer(256 << 20, help="size of the sandbox's scratch tmpfs").tag(config=True)
    nproc = Integer(256, help="RLIMIT_NPROC of the sandboxed uid").tag(config=True)
    sandboxed = Bool(True, help="False: --unsafe-no-sandbox").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        os.makedirs(self.runtime_dir, mode=0o700, exist_ok=True)
        self.transport = "ipc"
        self.ip = os.path.join(self.runtime_dir, "kernel-ipc")
        self.connection_file = os.path.join(self.runtime_dir, "kernel.json")
        self.cache_ports = False

    def kernel_env(self) -> dict[str, str]:
        """Variables the kernel gets besides :meth:`autograder.grading.sandbox.Jail.env`'s."""
        if self.sandboxed and self.spec_file:
            return {self.spec_env: sandbox.SPEC_PATH}
        return {}

    async def _async_pre_start_kernel(self, **kw):
        if self.provisioner is None:
            import uuid

            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = SandboxProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)
