"""Grading on a Dask cluster (:mod:`autograder.grading.dask_executor`).

One ``distributed.LocalCluster`` per module, on loopback only: 2 worker processes with 1 thread each; every port
it opens, the scheduler's HTTP port included, is on 127.0.0.1 and chosen by the system (``dashboard_address=None``
would take 127.0.0.1:8787, ``":0"`` all interfaces).
Its scheduler allows one worker death per task (``allowed_failures=1``: a task is tried on at most two workers)
and gives each worker only as many tasks as it has threads (``worker-saturation: 1.0``), so a worker that dies
takes down only the task it was running.

The stand-in task functions below (picklable, module level) play the roles a real submission can play on a cluster:
graded normally, killing its worker every time, killing it once, or raising (an infrastructure fault).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dask
import distributed  # pinned in requirements.txt: a missing install must fail here, not skip
import pytest
from grading_cli import fixture_env, grade_command

from autograder.grading.dask_executor import DaskExecutor, SchedulerError, _cancelled_by_lost_connection, _with_retries
from autograder.grading.package_shipping import ShipPackage, package_zip, register_by_value


# ------------------------------------------------------------------------------------------------ stand-ins
@dataclass(frozen=True)
class StandInTask:
    student: str
    action: str = "grade"  # grade | kill | kill-once | kill-process | raise
    marker: str = ""  # for kill-once: a file that exists after the first attempt


@dataclass(frozen=True)
class StandInResult:
    student: str
    status: str
    score: float
    reason: str = ""
    pid: int = 0
    threads: int = 0


def stand_in_grade(task: StandInTask) -> StandInResult:
    """Runs in a worker's grading process, whose parent is the Dask worker process."""
    if task.action == "kill" or (task.action == "kill-once" and not Path(task.marker).exists()):
        if task.marker:
            Path(task.marker).write_text(str(os.getpid()))
        time.sleep(0.2)  # let the scheduler see the task running
        os.kill(os.getppid(), signal.SIGKILL)  # the Dask worker process dies mid-task
        time.sleep(30)
    if task.action == "kill-process":
        os.kill(os.getpid(), signal.SIGKILL)  # the grading process dies, the Dask worker lives
    if task.action == "raise":
        raise OSError("disk full (stand-in infrastructure fault)")
    time.sleep(0.05)
    import threading

    return StandInResult(
        task.student, "graded", float(len(task.student)), pid=os.getpid(), threads=threading.active_count()
    )


def stand_in_crashed(task: StandInTask, reason: str) -> StandInResult:
    return StandInResult(task.student, "crashed", 0.0, reason)


def run_all(executor: DaskExecutor, tasks) -> list[StandInResult]:
    results: list[StandInResult] = []
    executor.run(tasks, results.append)
    return results


# ------------------------------------------------------------------------------------------------ the cluster
@pytest.fixture(scope="module")
def cluster():
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"allowed_failures": 1},
        )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def address(cluster):
    """The scheduler's address, with both workers up (a previous test may have killed some)."""
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=120)
    return cluster.scheduler_address


def stand_in_executor(address: str, **kwargs) -> DaskExecutor:
    return DaskExecutor(address, grade=stand_in_grade, crashed=stand_in_crashed, prepare_process=None, **kwargs)


# ------------------------------------------------------------------------------------------------ shipping
def test_package_zip_is_deterministic_and_complete():
    first, second = package_zip(), package_zip()
    assert first == second
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert "autograder/__init__.py" in names
    assert "autograder/grading/dask_executor.py" in names
    assert "autograder/data/model_configs.csv" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def _where_autograder_is() -> tuple[str, str]:
    """In a worker and in a child process it starts (as grading starts kernels: in a scratch directory)."""
    import tempfile

    import autograder

    with tempfile.TemporaryDirectory() as scratch:
        child = subprocess.run(
            [sys.executable, "-c", "import autograder.checks.core as m; print(m.__file__)"],
            capture_output=True,
            text=True,
            check=True,
            cwd=scratch,
        )
    return autograder.__file__, child.stdout.strip()


def test_workers_and_their_child_processes_import_the_shipped_package(address):
    register_by_value()
    with distributed.Client(address, set_as_default=False) as client:
        _with_retries(lambda: client.register_plugin(ShipPackage(package_zip())))
        where = client.run(_where_autograder_is)
        local_dirs = client.run(lambda dask_worker: dask_worker.local_directory)
    assert set(where) == set(local_dirs) and len(where) == 2
    for worker, (in_worker, in_child) in where.items():
        shipped = Path(local_dirs[worker]).resolve()
        assert Path(in_worker).resolve().is_relative_to(shipped), in_worker
        assert Path(in_child).resolve().is_relative_to(shipped), in_child


# ------------------------------------------------------------------------------------------------ accounting
def test_every_submission_reported_once_with_its_own_result(address, tmp_path):
    tasks = [StandInTask(f"student{i:02d}") for i in range(8)]
    executor = stand_in_executor(address)
    results = run_all(executor, tasks)
    assert Counter(r.student for r in results) == Counter(t.student for t in tasks)
    assert all(r.status == "graded" and r.score == len(r.student) for r in results)
    assert len({r.pid for r in results}) == 2  # both workers graded ...
    assert {r.threads for r in results} == {1}  # ... in single-threaded processes (forking is safe)
    assert len(executor.stats.timings) == 8 and executor.stats.workers == 2


def test_worker_killed_mid_task_every_time_is_retried_then_reported_crashed(address, tmp_path):
    tasks = [StandInTask("alice"), StandInTask("mallory", "kill", str(tmp_path / "mallory.pid")), StandInTask("bob")]
    executor = stand_in_executor(address)
    results = run_all(executor, tasks)
    by_student = {r.student: r for r in results}
    assert Counter(r.student for r in results) == Counter(t.student for t in tasks)  # none lost, none twice
    assert by_student["mallory"].status == "crashed"
    assert "died 2 times" in by_student["mallory"].reason  # allowed_failures=1: tried on two workers
    assert by_student["alice"].status == by_student["bob"].status == "graded"
    assert executor.stats.crashed == 1
    grading_process = int((tmp_path / "mallory.pid").read_text())  # orphaned by its worker's death ...
    deadline = time.monotonic() + 10
    while _alive(grading_process) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(grading_process)  # ... it followed the worker


def test_worker_killed_mid_task_once_is_retried_and_graded(address, tmp_path):
    tasks = [StandInTask("carol", "kill-once", str(tmp_path / "carol.attempted")), StandInTask("dave")]
    executor = stand_in_executor(address)
    results = run_all(executor, tasks)
    by_student = {r.student: r for r in results}
    assert Counter(r.student for r in results) == Counter(t.student for t in tasks)
    assert (tmp_path / "carol.attempted").exists()  # carol's first attempt killed its worker ...
    assert by_student["carol"].status == "graded"  # ... and the retry graded her, once
    assert by_student["dave"].status == "graded"
    assert executor.stats.crashed == 0


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_grading_process_killed_is_retried_then_crashed_and_the_worker_grades_on(address):
    tasks = [StandInTask("grace", "kill-process"), StandInTask("heidi"), StandInTask("ivan")]
    executor = stand_in_executor(address, retries=1)
    results = run_all(executor, tasks)
    by_student = {r.student: r for r in results}
    assert Counter(r.student for r in results) == Counter(t.student for t in tasks)
    assert by_student["grace"].status == "crashed"
    assert "2 attempt(s)" in by_student["grace"].reason and "BrokenProcessPool" in by_student["grace"].reason
    assert by_student["heidi"].status == by_student["ivan"].status == "graded"


def test_grading_function_that_raises_is_retried_then_crashed(address):
    tasks = [StandInTask("erin", "raise"), StandInTask("frank")]
    results = run_all(stand_in_executor(address, retries=1), tasks)
    by_student = {r.student: r for r in results}
    assert by_student["frank"].status == "graded"
    assert by_student["erin"].status == "crashed"
    assert "2 attempt(s)" in by_student["erin"].reason and "disk full" in by_student["erin"].reason


def test_scheduler_lost_mid_run_reports_every_remaining_submission_crashed():
    """A scheduler of its own, closed after the second result: the rest are reported, none twice, none lost."""
    import threading

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
    )
    tasks = [StandInTask(f"s{i:02d}") for i in range(12)]
    results: list[StandInResult] = []
    closer = threading.Thread(target=cluster.close)

    def on_result(result: StandInResult) -> None:
        results.append(result)
        if len(results) == 2:
            closer.start()

    try:
        stand_in_executor(cluster.scheduler_address).run(tasks, on_result)
    finally:
        if closer.is_alive():
            closer.join()
        cluster.close()
    assert Counter(r.student for r in results) == Counter(t.student for t in tasks)
    crashed = [r for r in results if r.status == "crashed"]
    assert crashed and all(r.reason.startswith("lost the Dask scheduler") for r in crashed)


def test_a_future_cancelled_by_the_lost_connection_is_told_from_one_cancelled_for_itself():
    """When the client loses the scheduler, Dask cancels every future with the reason ``scheduler-connection-lost``;
    ``wait`` can return such a future as done before the client's calls fail, and it must be reported as a lost
    scheduler, not as that submission's own failure (a race seen with two test workers on two cores)."""
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as client:
        lost = client.submit(time.sleep, 5, pure=False)
        client.futures[lost.key].cancel(reason="scheduler-connection-lost", msg="Client lost the connection")
        own = client.submit(time.sleep, 5, pure=False)
        own.cancel()
        assert lost.cancelled() and _cancelled_by_lost_connection(lost)
        assert own.cancelled() and not _cancelled_by_lost_connection(own)
        assert not _cancelled_by_lost_connection(client.submit(abs, -1))


# ------------------------------------------------------------------------------------------------ errors
def test_unreachable_scheduler_is_a_one_line_error():
    with pytest.raises(SchedulerError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9 .*dask scheduler"):
        stand_in_executor("tcp://127.0.0.1:9", connect_timeout_s=2).run([StandInTask("x")], lambda r: None)


def test_malformed_address_is_a_one_line_error():
    with pytest.raises(SchedulerError, match="not a scheduler address"):
        stand_in_executor("localhost")


def test_no_tasks_means_no_connection():
    stand_in_executor("tcp://127.0.0.1:9", connect_timeout_s=1).run([], lambda r: pytest.fail("no result expected"))


# ------------------------------------------------------------------------------------------------ real grading
FIXTURES = Path(__file__).parent / "fixtures" / "grading"
SOURCE = FIXTURES / "grading-fixture.ipynb"
ASSIGNMENT = "grading-fixture"
#: a small class: full marks, a crashing kernel, unreadable JSON, a checker monkeypatch (partial marks from the
#: trusted re-run), no submission. (A timeout would cost its time limit twice; the local grader's tests cover it.)
CLASS = {"ada": "solved", "cy": "exit", "dot": "truncated", "fay": "monkeypatch", "gus": "missing"}


def grade_cli(submissions: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """``python -m autograder grade`` on the fixture assignment; its check module is importable here only."""
    env = fixture_env()
    cmd = grade_command(str(submissions), str(out), "--timeout", "60", *extra)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def graded_outputs(out: Path) -> dict[str, object]:
    """Everything the writer produced, minus the seconds each notebook took."""
    import csv
    import json

    with open(out / "grades.csv", newline="") as fh:
        rows = {
            row["student"]: {k: v for k, v in row.items() if not k.endswith("_s") and k != "seconds"}
            for row in csv.DictReader(fh)
        }
    stored = {}
    for path in sorted((out / ".autograder" / ASSIGNMENT).glob("*.json")):
        data = json.loads(path.read_text())
        data.pop("timings", None)
        stored[path.stem] = data
    feedback = {str(p.relative_to(out)): p.read_text() for p in sorted((out / "feedback").rglob("*.html"))}
    return {"csv": rows, "stored": stored, "feedback": feedback}


@pytest.mark.slow
def test_cluster_grading_equals_local_grading(address, tmp_path):
    from autograder.grading.benchmarks import synthetic

    synthetic.write_class(SOURCE, tmp_path / "submitted", ASSIGNMENT, CLASS)
    local = grade_cli(tmp_path / "submitted", tmp_path / "local", "--jobs", "2")
    assert local.returncode == 0, local.stderr[-3000:]
    # the same course secret (hidden seeds, and so the stored submission hashes) as the local run
    cluster = grade_cli(
        tmp_path / "submitted",
        tmp_path / "cluster",
        "--scheduler",
        address,
        "--secret-file",
        str(tmp_path / "local" / "course-secret"),
    )
    assert cluster.returncode == 0, cluster.stderr[-3000:]
    assert "on the Dask cluster at" in cluster.stderr

    on_cluster, at_home = graded_outputs(tmp_path / "cluster"), graded_outputs(tmp_path / "local")
    assert set(on_cluster["csv"]) == set(CLASS)
    expected = {s: "missing" if k == "missing" else synthetic.EXPECTED[k][0] for s, k in CLASS.items()}
    assert {s: row["status"] for s, row in on_cluster["csv"].items()} == expected
    assert on_cluster["csv"]["ada"]["score"] == on_cluster["csv"]["ada"]["max_score"]
    assert on_cluster == at_home


def test_grade_command_reports_an_unreachable_scheduler_in_one_line(tmp_path):
    from autograder.grading.benchmarks import synthetic

    synthetic.write_class(SOURCE, tmp_path / "submitted", ASSIGNMENT, {"ada": "solved"})
    os.environ["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"] = "3s"  # Dask's own setting, read by the command
    try:
        proc = grade_cli(tmp_path / "submitted", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9")
    finally:
        del os.environ["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"]
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9"), proc.stderr[-2000:]


def test_grade_command_rejects_a_malformed_scheduler_address(tmp_path):
    proc = grade_cli(tmp_path, tmp_path / "out", "--scheduler", "my-laptop")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --scheduler 'my-laptop' is not a scheduler address")


def test_a_worker_without_the_course_environment_is_named_with_what_differs():
    from autograder.grading.dask_executor import _environment_problems, worker_environment

    here = worker_environment()
    assert here["packages"]["nbgrader"] and "python3" in here["kernels"]
    assert _environment_problems(here, here) == []
    there = {**here, "packages": {**here["packages"], "torch": None, "numpy": "1.26.4"}, "kernels": ["ir"]}
    problems = _environment_problems(here, there)
    assert "torch missing" in " ".join(problems) and any(p.startswith("numpy 1.26.4 (here") for p in problems)
    assert any("no 'python3' Jupyter kernel" in p for p in problems)


def test_a_worker_that_cannot_sandbox_is_refused_unless_the_opt_out_is_given():
    from autograder.grading.dask_executor import _environment_problems, worker_environment

    here = worker_environment()
    there = {
        **here,
        "sandbox": {"ok": False, "detail": "bwrap (bubblewrap) is not on PATH: apt-get install bubblewrap"},
    }
    [problem] = _environment_problems(here, there)
    assert problem.startswith("no sandbox (bwrap") and "apt-get install bubblewrap" in problem
    assert "--unsafe-no-sandbox" in problem
    assert _environment_problems(here, there, require_sandbox=False) == []
    assert _environment_problems(here, {k: v for k, v in here.items() if k != "sandbox"})  # silent: refused
