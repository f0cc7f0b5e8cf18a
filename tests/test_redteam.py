"""Red team: a class of submissions written to cheat or to do damage, graded by ``python -m autograder grade``.

One grading run (``--jobs 2``) holds two honest bystanders and one student per attack. A *cheat* submits the
fixture's answers unsolved and defines the solved ones only if its attack worked (read the answer key, a secret, a
classmate's notebook, the network, forge the probe payload, choose the hidden inputs): it must score 0. A *vandal*
submits solved answers and attacks the course (write into the checkout, site-packages, the instructor's home, the
host's /tmp, the gradebook; kill processes; leave daemons; fork-bomb; fill the disk; exhaust memory; mount a tmpfs
in a user namespace of its own; find a second writable tmpfs; keep 120 processes busy; flood the output with huge
errors, display updates and metadata); it defines its answers only if the attack was contained, so it must keep
full marks. After the run: the bystanders keep full marks (the CPU hog is graded first, so both are graded while it
runs), nothing outside the sandbox changed (the checkout's tracked files, site-packages, marker files in the home
directory and the host's /tmp, the submissions), no loopback or outside server saw a connection, no process left,
and no student's files in ``--out`` (executed notebook, feedback, log) exceed :data:`OUT_BYTES_PER_STUDENT`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import uuid
from pathlib import Path

import pytest
from grading_cli import grade_command

from autograder.grading import sandbox
from autograder.grading.benchmarks import synthetic

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "grading"
SOURCE = FIXTURES / "grading-fixture.ipynb"
ASSIGNMENT = "grading-fixture"
FULL = "5"

OUT_BYTES_PER_STUDENT = 2 << 20  # what one student's notebook may put into --out, whatever it prints
HOG_SECONDS = 30  # how long the CPU hog keeps its processes busy
EARLY = {"cpuhog"}  # attacks graded first (their ids sort before the bystanders'), so that the bystanders overlap

# one class graded once per module: under pytest-xdist (--dist loadgroup) the whole module runs in one worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("redteam")]


def _require_sandbox() -> None:
    found = sandbox.availability()
    if not found.ok:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"the sandbox is required in CI: {found.detail}")
        pytest.skip(f"no sandbox here: {found.detail}")


# ------------------------------------------------------------------------------------------------ the attacks
# Each cheat sets _CHEAT = True when its attack worked; its answers are solved only then.
CHEATS = {
    "import-key": """
for _m in ("autograder.reference", "autograder.reference.numpy_ref", "autograder.checks", "autograder.checks.core",
           "autograder.grading", "autograder.grading.course"):
    try:
        __import__(_m)
        _CHEAT = True
    except Exception:
        pass
""",
    "read-key-files": """
import os, glob
_paths = [{root!r} + "/solutions", {root!r} + "/tests/fixtures/grading/grading-fixture.ipynb",
          {root!r} + "/autograder/reference/numpy_ref.py", {root!r} + "/autograder/checks/core.py"]
try:
    import autograder
    _pkg = os.path.dirname(autograder.__file__)
    _paths += [_pkg + "/reference", _pkg + "/checks", _pkg + "/../solutions", _pkg + "/../tests/fixtures"]
except Exception:
    pass
for _p in _paths:
    try:
        if os.path.isdir(_p):
            _CHEAT |= bool(os.listdir(_p))
        else:
            _CHEAT |= bool(open(_p).read(100))
    except Exception:
        pass
_seen = 0
for _dir, _dirs, _files in os.walk("/"):
    _dirs[:] = [d for d in _dirs if _dir != "/" or d not in ("proc", "sys", "dev", "usr")]
    for _f in _files:
        _seen += 1
        if _f.endswith(".ipynb") or _f in ("numpy_ref.py", "torch_ref.py", "course-secret", "gradebook.db"):
            try:        # this course's key: its solutions, references, secret or gradebook (not nbgrader's own)
                _text = open(os.path.join(_dir, _f), errors="replace").read()
                _CHEAT |= ("BEGIN SOLUTION" in _text and "run_checks(" in _text) or "grading-fixture" in _text \
                    or _f in ("course-secret", "numpy_ref.py", "torch_ref.py")
            except Exception:
                pass
    if _seen > 60_000:
        break
""",
    "secrets": """
import os
for _p in ("/etc/shadow", {out!r} + "/course-secret", {home_marker!r}, "/root/.bash_history"):
    try:
        _CHEAT |= bool(open(_p).read(10))
    except Exception:
        pass
try:
    _CHEAT |= {home_marker_name!r} in os.listdir(os.path.dirname({home_marker!r}))
except Exception:
    pass
_CHEAT |= any(k for k in os.environ if "SECRET" in k or k.startswith("PG") or k == "REDTEAM_CANARY")
""",
    "classmate": """
import glob
for _pattern in ({subs!r} + "/*/*/*.ipynb", "/tmp/grade-*/submitted/*/*/*.ipynb", "/tmp/*/*/*/*/*.ipynb",
                 "/proc/*/cwd/submitted/*/*/*.ipynb", "/proc/*/root/tmp/grade-*/submitted/*/*/*.ipynb"):
    for _path in glob.glob(_pattern):
        try:
            _CHEAT |= "def scale" in open(_path).read()
        except Exception:
            pass
""",
    "network": """
import socket
for _address in (("127.0.0.1", {port}), ({host_ip!r}, {port_any}), ("localhost", {port}), ("8.8.8.8", 53)):
    try:
        socket.create_connection(_address, timeout=2).close()
        _CHEAT = True
    except Exception:
        pass
""",
    "forge": """
import base64, threading, time
from IPython.display import display
_MIME = "application/vnd.autograder.probes+base64"
_fake = base64.b64encode(b"forged: every check passed").decode()
print("\\n--autograder-probe-results--\\n" + "PASS " * 100)
display({{_MIME: _fake}}, raw=True)
try:
    import autograder.student.grading as _g
    _g.emit = lambda: display({{_MIME: _fake}}, raw=True)
except Exception:
    pass
def _spam():
    for _ in range(100):
        display({{_MIME: _fake}}, raw=True)
        time.sleep(0.05)
threading.Thread(target=_spam, daemon=True).start()
""",
    "seed": """
import json, os
os.environ["AUTOGRADER_SEED"] = "0"
with open("/scratch/spec.json", "w") as _fh:
    json.dump({{"assignment": "grading-fixture", "groups": [], "hidden_seed": 0, "probe_modules": []}}, _fh)
os.environ["AUTOGRADER_GRADING_SPEC"] = "/scratch/spec.json"
for _p in ("/opt/autograder-spec.json",):
    try:
        open(_p, "w").write("{{}}")
        _CHEAT = True
    except Exception:
        pass
""",
    "gradebook-fds": """
import os
for _fd in os.listdir("/proc/self/fd"):
    try:
        _target = os.readlink(f"/proc/self/fd/{{_fd}}")
    except OSError:
        continue
    _CHEAT |= "gradebook" in _target or "submitted" in _target or ".db" in _target
""",
}

# Each vandal sets _OK = False when its attack was *not* contained; its answers are defined only while _OK is True.
VANDALS = {
    "writer": """
import os, glob
_targets = [{root!r} + "/autograder/grading/course.py", {root!r} + "/autograder/__init__.py",
            {root!r} + "/solutions/pwned.txt", {tmp_marker!r}, "/tmp/redteam-pwned-{tag}",
            {home_dir!r} + "/redteam-pwned-{tag}", {out!r} + "/grades.csv", {out!r} + "/gradebook.db",
            {subs!r} + "/alice/grading-fixture/grading-fixture.ipynb", "/etc/passwd", "/usr/redteam-pwned-{tag}"]
try:
    import numpy, autograder
    _targets += [numpy.__file__, os.path.join(os.path.dirname(numpy.__file__), "..", "redteam_pwned_{tag}.py"),
                 autograder.__file__]
except Exception:
    pass
for _t in _targets:
    try:
        with open(_t, "a") as _fh:
            _fh.write("\\nPWNED = True\\n")
        if not os.path.realpath(_t).startswith("/scratch/"):    # inside, /tmp is the sandbox's own scratch
            _OK = False
    except Exception:
        pass
""",
    "killer": """
import os, signal
try:
    os.kill(-1, signal.SIGKILL)
except Exception:
    pass
_mine = {{int(t) for t in os.listdir("/proc/self/task")}}    # kill(tid) of an own thread would end the kernel
for _pid in range(1, 40000):
    if _pid not in _mine:
        try:
            os.kill(_pid, signal.SIGKILL)
        except Exception:
            pass
_OK = len([p for p in os.listdir("/proc") if p.isdigit()]) < 10
""",
    "daemon": """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        try:
            os.execv("/bin/sleep", ["sleep", "313.{tag_digits}"])
        finally:
            os._exit(0)
    os._exit(0)
time.sleep(0.5)
""",
    "forkbomb": """
import os, signal, time
_kids = []
try:
    while len(_kids) < 3000:
        _pid = os.fork()
        if _pid == 0:
            time.sleep(15)
            os._exit(0)
        _kids.append(_pid)
except OSError:
    pass
_OK = len(_kids) < 1000
for _pid in _kids:             # the bomb's own kernel needs its process budget back to go on
    os.kill(_pid, signal.SIGKILL)
    os.waitpid(_pid, 0)
""",
    "diskfill": """
import os
_written = 0
for _where in ("/scratch/fill", "/run/kernel/fill", "/tmp/fill2"):
    try:
        with open(_where, "wb") as _fh:
            while _written < (2 << 30):
                _fh.write(b"\\0" * (4 << 20))
                _fh.flush()
                _written += 4 << 20
    except OSError:
        pass
    try:
        os.remove(_where)
    except OSError:
        pass
_OK = _written < (1 << 30)
""",
    "userns": """
import os, subprocess, sys
# a user namespace of its own, with a mount namespace, then a tmpfs of host-RAM size there (the kernel itself is
# multi-threaded, and unshare(CLONE_NEWUSER) needs a single thread: a fresh process tries)
os.makedirs("/scratch/mnt", exist_ok=True)
_mount = "mount -t tmpfs none /scratch/mnt && head -c 300000000 /dev/zero > /scratch/mnt/fill && echo mounted"
_r = subprocess.run(["unshare", "-rm", "sh", "-c", _mount], capture_output=True, text=True)
print("unshare -rm:", _r.returncode, _r.stdout.strip(), _r.stderr.strip()[-200:])
_py = subprocess.run([sys.executable, "-c", "import ctypes; print(ctypes.CDLL(None).unshare(0x10000000 | 0x20000))"],
                     capture_output=True, text=True)
print("unshare(CLONE_NEWUSER | CLONE_NEWNS):", _py.stdout.strip())
if "mounted" in _r.stdout or _py.stdout.strip() == "0":
    _OK = False
""",
    "second-tmpfs": """
import os
_writable = []
for _line in open("/proc/self/mountinfo"):
    _f = _line.split()
    _point = _f[4].replace(chr(92) + "040", " ")
    if "rw" in _f[5].split(",") and os.path.isdir(_point) and os.access(_point, os.W_OK):
        _writable.append(_point)
print("writable mounts:", sorted(_writable))
if sorted(_writable) != ["/run/kernel", "/scratch"] or os.path.realpath("/tmp") != "/scratch":
    _OK = False
""",
    "cpuhog": """
import os, resource, time
_end = time.time() + {hog_seconds}
_kids = []
for _ in range(120):
    try:
        _pid = os.fork()
    except OSError:
        break
    if _pid == 0:
        while time.time() < _end:
            pass
        os._exit(0)
    _kids.append(_pid)
for _pid in _kids:
    os.waitpid(_pid, 0)
_used = resource.getrusage(resource.RUSAGE_CHILDREN)
print("hog: %d processes used %.1f s of CPU in %d s" % (len(_kids), _used.ru_utime + _used.ru_stime, {hog_seconds}))
""",
    "huge-error": """
from IPython import get_ipython
for _ in range(3):
    try:
        raise ValueError("x" * (16 << 20))
    except ValueError:
        get_ipython().showtraceback()    # an error message as an uncaught exception sends it
# and an uncaught one with a huge name and value, raised by this cell's own handler (its `print`): nbgrader copies
# the shell reply's error into the cell when the published error's name differs from it
_Huge = type("E" * (4 << 20), (Exception,), {{}})
def print(*args, **kwargs):
    global print
    del print
    raise _Huge("v" * (16 << 20))
raise RuntimeError("into the handler")
""",
    "display-flood": """
from IPython import get_ipython
from IPython.display import display, update_display
_big = "y" * (4 << 20)
for _ in range(20):
    display({{"text/plain": "tick"}}, raw=True, display_id="flood")
for _ in range(5):
    update_display({{"text/plain": _big}}, raw=True, display_id="flood")
display({{"text/plain": "tock"}}, raw=True, display_id="flood")
display({{"text/plain": "z"}}, metadata={{"junk": _big}}, raw=True)
get_ipython().displayhook(_big)
print("s" * (4 << 20))
""",
    "membomb": """
_hogs = []
try:
    while len(_hogs) < 40:
        _hogs.append(bytearray(256 << 20))
except MemoryError:
    pass
_OK = len(_hogs) < 40
del _hogs
""",
}


def _unsolved(text: str) -> str:
    return synthetic._SOLUTION.sub(lambda m: f"{m.group(1)}raise NotImplementedError()", text)


def _notebook(attack: str, flag: str, default: bool) -> bytes:
    """The fixture with ``attack`` run before the first answer (``flag = default`` first); each answer cell keeps
    its unsolved stub and defines the solved functions only when ``flag is True`` after the attack."""
    source = json.loads(SOURCE.read_text())
    nb = synthetic.solved(source)
    cells = nb["cells"]
    for cell, original in zip(cells, source["cells"], strict=True):
        if synthetic._is_answer(cell):
            cell["source"] = (
                _unsolved(synthetic._source(cell))
                + f"\nif {flag} is True:\n"
                + textwrap.indent(synthetic._source(original), "    ")
            )
    code = (
        f"{flag} = {default}\ntry:\n"
        + textwrap.indent(attack, "    ")
        + "\nexcept BaseException as _exc:\n    print('attack raised', _exc)\n"
    )
    cells.insert(synthetic._first_answer(nb), synthetic._code_cell(code))
    return json.dumps(nb, indent=1).encode()


def _student(kind: str, attack: str) -> str:
    return f"{'aa-' if attack in EARLY else ''}{kind}-{attack}"


def _out_bytes(out: Path, students) -> dict[str, int]:
    """``{student: bytes of the files in --out that belong to them}`` (their autograded notebook, feedback, log)."""
    sizes = dict.fromkeys(students, 0)
    for path in out.rglob("*"):
        if path.is_file() and not path.is_symlink():
            owner = next((s for s in sizes if s in path.relative_to(out).parts or path.stem == s), None)
            if owner is not None:
                sizes[owner] += path.stat().st_size
    return sizes


def _guarded(code: str) -> str:
    """A vandal's attack, run only as the sandboxed uid: should the sandbox ever be missing, it does nothing."""
    return "import os\nif os.getuid() == 65534:\n" + textwrap.indent(code, "    ")


# ------------------------------------------------------------------------------------------------ the run
class _Listener:
    """A TCP server in this process that records every connection it accepts."""

    def __init__(self, host: str):
        self.sock = socket.create_server((host, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        self.sock.close()


def _host_ip() -> str:
    """A non-loopback address of this machine (the one a default route would use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return socket.gethostbyname(socket.gethostname())


def _tree_hash(paths) -> dict[str, str]:
    """``{path: sha256 of its bytes, or "<absent>"}``."""
    return {
        str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() if Path(p).is_file() else "<absent>" for p in paths
    }


def _checkout_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


def _sleepers(tag_digits: str) -> list[int]:
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if f"313.{tag_digits}".encode() in fh.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    _require_sandbox()
    import numpy

    work = tmp_path_factory.mktemp("redteam")
    subs, out = work / "submitted", work / "out"
    tag = uuid.uuid4().hex[:8]
    tag_digits = str(int(tag, 16))[:8]
    home = Path.home()
    home_marker = home / f".autograder-redteam-{tag}"
    home_marker.write_text("instructor's private file\n")
    tmp_marker = Path("/tmp") / f"autograder-redteam-{tag}"
    tmp_marker.write_text("host tmp marker\n")
    loopback, anywhere = _Listener("127.0.0.1"), _Listener("0.0.0.0")
    values = dict(
        root=str(ROOT),
        out=str(out),
        subs=str(subs),
        home_marker=str(home_marker),
        home_marker_name=home_marker.name,
        home_dir=str(home),
        tmp_marker=str(tmp_marker),
        tag=tag,
        tag_digits=tag_digits,
        port=loopback.port,
        port_any=anywhere.port,
        host_ip=_host_ip(),
        hog_seconds=HOG_SECONDS,
    )
    kinds = {"alice": None, "bob": None}
    solved = synthetic.variant(json.loads(SOURCE.read_text()), "solved")
    notebooks = {"alice": solved, "bob": solved}
    for name, code in CHEATS.items():
        notebooks[_student("cheat", name)] = _notebook(code.format(**values), "_CHEAT", False)
        kinds[_student("cheat", name)] = "cheat"
    for name, code in VANDALS.items():
        notebooks[_student("vandal", name)] = _notebook(_guarded(code.format(**values)), "_OK", True)
        kinds[_student("vandal", name)] = "vandal"
    for student, data in notebooks.items():
        folder = subs / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / SOURCE.name).write_bytes(data)
    site = Path(numpy.__file__).parent
    watched = [
        *_checkout_files(),
        numpy.__file__,
        site.parent / f"redteam_pwned_{tag}.py",
        home_marker,
        home / f"redteam-pwned-{tag}",
        tmp_marker,
        Path(f"/tmp/redteam-pwned-{tag}"),
        *sorted(subs.rglob("*.ipynb")),
        Path("/etc/passwd"),
    ]
    before = _tree_hash(watched)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(FIXTURES), os.environ.get("PYTHONPATH", "")]),
        "REDTEAM_CANARY": "an instructor's credential",
    }
    cmd = grade_command(str(subs), str(out), "--jobs", "2", "--timeout", "90", "--memory", "2")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    finally:
        loopback.close()
        anywhere.close()
    after = _tree_hash(watched)
    with open(out / "grades.csv", newline="") as fh:
        rows = {row["student"]: row for row in csv.DictReader(fh)}
    yield dict(
        proc=proc,
        rows=rows,
        kinds=kinds,
        before=before,
        after=after,
        loopback=loopback.accepted,
        anywhere=anywhere.accepted,
        sleepers=_sleepers(tag_digits),
        out=out,
        out_bytes=_out_bytes(out, kinds),
    )
    home_marker.unlink(missing_ok=True)
    tmp_marker.unlink(missing_ok=True)


def _explain(rows, student) -> str:
    return f"{student}: {rows[student]}"


def test_the_run_completes(attacked):
    assert attacked["proc"].returncode == 0, attacked["proc"].stderr[-3000:]
    assert set(attacked["rows"]) == set(attacked["kinds"])
    assert {row["isolation"] for row in attacked["rows"].values()} == {sandbox.ISOLATION_BWRAP}


def test_bystanders_keep_full_marks(attacked):
    for student in ("alice", "bob"):
        row = attacked["rows"][student]
        assert (row["status"], row["score"]) == ("graded", FULL), _explain(attacked["rows"], student)


@pytest.mark.parametrize("attack", sorted(CHEATS))
def test_cheats_score_zero(attacked, attack):
    row = attacked["rows"][_student("cheat", attack)]
    assert row["status"] == "graded", row
    assert row["score"] == "0", f"the {attack} attack earned points: {row}"


@pytest.mark.parametrize("attack", sorted(VANDALS))
def test_vandals_are_contained_and_keep_their_own_marks(attacked, attack):
    row = attacked["rows"][_student("vandal", attack)]
    assert (row["status"], row["score"]) == ("graded", FULL), f"the {attack} attack was not contained: {row}"


def test_no_student_puts_more_than_the_cap_into_out(attacked):
    sizes = attacked["out_bytes"]
    print("bytes in --out per student:", json.dumps(sizes, indent=1, sort_keys=True))
    assert set(sizes) == set(attacked["kinds"]) and all(sizes.values()), sizes  # each has a notebook there
    over = {student: size for student, size in sizes.items() if size > OUT_BYTES_PER_STUDENT}
    assert not over, f"students whose output was not capped: {over}"


def test_nothing_outside_the_sandbox_changed(attacked):
    before, after = attacked["before"], attacked["after"]
    changed = sorted(p for p in before if before[p] != after[p])
    assert not changed, f"files outside the sandbox changed (edit nothing while this test runs): {changed[:10]}"


def test_no_server_on_the_machine_was_reached(attacked):
    assert attacked["loopback"] == 0 and attacked["anywhere"] == 0


def test_no_process_survives_the_run(attacked):
    assert attacked["sleepers"] == [], "a daemon started by a notebook survived grading"


def test_the_secret_never_leaves_the_grader(attacked):
    out = attacked["out"]
    secret = (out / "course-secret").read_text().strip()
    assert oct((out / "course-secret").stat().st_mode & 0o777) == "0o600"
    assert secret not in (out / "grades.csv").read_text()
    for page in (out / "feedback").rglob("*.html"):
        assert secret not in page.read_text()
    assert secret not in attacked["proc"].stdout + attacked["proc"].stderr


# ------------------------------------------------------------------------------------------------ the sandbox itself
def _in_sandbox(code: str, nproc: int = 64) -> subprocess.CompletedProcess:
    jail = sandbox.Jail(str(FIXTURES), nproc=nproc, scratch_bytes=8 << 20)
    argv, fds, cleanup = jail.command([sys.executable, "-c", code], {})
    try:
        return subprocess.run(argv, pass_fds=fds, capture_output=True, text=True, timeout=120)
    finally:
        cleanup()


def test_the_process_limit_binds_inside_the_sandbox():
    """RLIMIT_NPROC does not bind root; the sandboxed uid is not root on the host, so it binds there."""
    _require_sandbox()
    proc = _in_sandbox(
        "import os, time\nn = 0\ntry:\n    while n < 500:\n        if os.fork() == 0:\n"
        "            time.sleep(5)\n            os._exit(0)\n        n += 1\nexcept OSError:\n"
        "    pass\nprint('forked', n)\n",
        nproc=40,
    )
    forked = int(re.search(r"forked (\d+)", proc.stdout).group(1))
    assert forked < 40, proc.stdout + proc.stderr


def test_the_sandbox_sees_no_host_secrets_and_writes_nowhere():
    _require_sandbox()
    code = textwrap.dedent(f"""
        import os, socket
        print("uid", os.getuid(), os.getgid())
        print("etc", sorted(os.listdir("/etc")))
        print("root", sorted(os.listdir("/root")) if os.path.isdir("/root") else None)
        print("checkout", os.path.exists({str(ROOT / "solutions")!r}), os.path.exists({str(ROOT / "autograder")!r}))
        print("ifaces", [n for _, n in socket.if_nameindex()])
        print("pids", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
        for target in ("/usr/x", {str(sys.prefix)!r} + "/x", "/etc/x", "/opt/autograder/x"):
            try:
                open(target, "w")
                print("wrote", target)
            except OSError:
                pass
        open("/scratch/ok", "w").write("fine")
        print("scratch ok")
    """)
    proc = _in_sandbox(code)
    text = proc.stdout
    assert "uid 65534 65534" in text, proc.stderr
    etc = eval(re.search(r"etc (\[.*\])", text).group(1))
    assert set(etc) <= {"ld.so.cache", "ld.so.conf", "localtime", "nsswitch.conf"}
    assert "shadow" not in etc and "passwd" not in etc
    assert re.search(r"root (None|\['.pyenv'\]|\[\])", text), text
    assert "checkout False False" in text
    assert "ifaces ['lo']" in text
    assert "wrote" not in text and "scratch ok" in text


def test_no_user_namespace_can_be_made_inside():
    """``unshare -rm`` would give the student namespaces of its own and any tmpfs, of host-RAM size, in them."""
    _require_sandbox()
    code = textwrap.dedent("""
        import ctypes, os, subprocess
        os.makedirs("/scratch/m")
        mount = "mount -t tmpfs none /scratch/m && echo MOUNTED"
        r = subprocess.run(["unshare", "-rm", "sh", "-c", mount], capture_output=True, text=True)
        print("cli", r.returncode, r.stdout.strip())
        print("unshare", ctypes.CDLL(None, use_errno=True).unshare(0x10000000))
    """)
    proc = _in_sandbox(code)
    assert "unshare -1" in proc.stdout and "MOUNTED" not in proc.stdout, proc.stdout + proc.stderr
    assert re.search(r"cli [1-9]", proc.stdout), proc.stdout + proc.stderr


_MOUNTS = textwrap.dedent("""
    import os, sys
    writable, tmpfs = [], []
    for line in open("/proc/self/mountinfo"):
        f = line.split()
        point = f[4].replace(chr(92) + "040", " ")
        if f[f.index("-") + 1] == "tmpfs":
            tmpfs.append(point)
        if "rw" in f[5].split(",") and os.path.isdir(point) and os.access(point, os.W_OK):
            writable.append(point)
    print("writable", sorted(writable))
    print("tmpfs", sorted(tmpfs))
    print("tmp", os.path.realpath("/tmp"))
    print("prefix", sys.prefix)
""")


@pytest.mark.parametrize("where", ["here", "under /tmp"])
def test_one_scratch_tmpfs_wherever_the_environment_lives(where, monkeypatch):
    """A checkout (and its .venv) cloned under /tmp gets the same sandbox: the only writable places are the scratch
    tmpfs (also /tmp) and the kernel's 1 MiB socket tmpfs, never a second tmpfs around the environment."""
    _require_sandbox()
    python, home, venv = sys.executable, None, None
    if where == "under /tmp":
        home = Path(tempfile.mkdtemp(prefix="autograder clone ", dir="/tmp"))
        venv = home / ".venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        monkeypatch.setattr(sys, "prefix", str(venv))  # what the grader reads to find the environment
        monkeypatch.setattr(sys, "executable", python)
    try:
        jail = sandbox.Jail(str(FIXTURES), scratch_bytes=8 << 20, nproc=64)
        argv, fds, cleanup = jail.command([python, "-I", "-c", _MOUNTS], {})
        try:
            proc = subprocess.run(argv, pass_fds=fds, capture_output=True, text=True, timeout=120)
        finally:
            cleanup()
    finally:
        if home is not None:
            shutil.rmtree(home)
    text = proc.stdout + proc.stderr
    assert "writable ['/run/kernel', '/scratch']" in text, text
    assert "tmpfs ['/', '/dev', '/run/kernel', '/scratch']" in text, text
    assert "tmp /scratch" in text, text
    if venv is not None:
        assert f"prefix {venv}" in text, text  # the environment under /tmp is the one that ran
