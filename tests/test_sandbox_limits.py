"""Fast tests of the per-notebook limits that hold whatever a student's code does: the CPU quota of a grading child
(:class:`autograder.grading.limits.CpuGroup`) and the output cap of the kernel client
(:class:`autograder.grading.execute.LimitedExecute`), fed the messages a hostile kernel sends, without a kernel."""

from __future__ import annotations

import os
import re
import resource
import sys
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.grading import execute, limits

# ------------------------------------------------------------------------------------------------ CPU
BUSY_S = 3.0


def _hog() -> int:
    """8 busy processes for BUSY_S seconds; prints the CPU seconds they used together."""
    end = time.monotonic() + BUSY_S
    kids = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            while time.monotonic() < end:
                pass
            os._exit(0)
        kids.append(pid)
    for pid in kids:
        os.waitpid(pid, 0)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"cpu {used.ru_utime + used.ru_stime:.3f}")
    return 0


@pytest.mark.skipif(
    limits.cpu_control() is None, reason="no writable cgroup here (cgroup v2 with cpu delegated, or root on cgroup v1)"
)
def test_a_child_and_everything_it_forks_share_one_cpu_quota(tmp_path):
    """Eight busy processes of one child get the child's quota together, not eight times it."""
    cores = 0.2
    out = limits.run_children(
        [limits.Child("hog", str(tmp_path), target=_hog)], limits.Limits(cpu_cores=cores), timeout_s=60
    )
    used = float(re.search(r"cpu ([\d.]+)", out["hog"].output).group(1))
    print(f"8 busy processes for {BUSY_S:g} s under a {cores:g}-core quota used {used:.2f} CPU s")
    # unlimited they would use several CPU seconds (8 processes, every free core); the quota allows 0.6
    assert used < cores * BUSY_S * 1.5 + 0.3, out["hog"].output
    assert not [p for p in os.listdir(limits.cpu_control()[1]) if p.startswith(f"autograder-{os.getpid()}-")]


def test_without_a_cgroup_each_process_gets_a_cpu_time_limit_and_a_lower_priority(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "cpu_control", lambda: None)

    def target() -> int:
        print("rlimit", resource.getrlimit(resource.RLIMIT_CPU)[0], "nice", os.nice(0))
        return 0

    before = os.nice(0)
    out = limits.run_children([limits.Child("t", str(tmp_path), target=target)], limits.Limits(nice=5), timeout_s=30)
    found = re.search(r"rlimit (\d+) nice (\d+)", out["t"].output)
    assert found, out["t"].output
    assert 0 < int(found.group(1)) <= 32 and int(found.group(2)) == min(19, before + 5)


# ------------------------------------------------------------------------------------------------ output cap
CAP = 10_000


def _executor(cap: int = CAP) -> execute.LimitedExecute:
    ep = execute.LimitedExecute(output_chars=cap)
    ep.nb = new_notebook(cells=[new_code_cell("pass"), new_code_cell("pass")])
    ep.reset_execution_trackers()
    ep._printed, ep._noted_cells, ep.clear_before_next_output = 0, set(), False
    return ep


def _send(ep, cell_index: int, msg_type: str, content: dict) -> None:
    """What nbclient's ``process_message`` does with an iopub message of the cell ``cell_index``."""
    msg = {"msg_type": msg_type, "header": {"msg_type": msg_type}, "parent_header": {"msg_id": "m"}, "content": content}
    cell = ep.nb.cells[cell_index]
    ep.process_message(msg, cell, cell_index)


def _notebook_bytes(ep) -> int:
    return len(nbformat.writes(ep.nb).encode())


def _display(data: str, display_id: str | None = None, metadata: dict | None = None) -> dict:
    content = {"data": {"text/plain": data}, "metadata": metadata or {}}
    if display_id:
        content["transient"] = {"display_id": display_id}
    return content


@pytest.mark.parametrize("cap", [CAP, 10 * execute.ERROR_CHARS // 2])
def test_a_huge_exception_is_kept_as_an_error_but_short(cap):
    ep = _executor(cap)
    huge = "x" * (8 << 20)
    for cell in (0, 1):
        for _ in range(3):
            _send(ep, cell, "error", {"ename": "ValueError", "evalue": huge, "traceback": [huge, "last line"]})
    for cell in ep.nb.cells:  # each cell still failed (nbgrader's verdict), with the error's name
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors and errors[0].ename == "ValueError"
    if cap > execute.ERROR_CHARS:  # within the cap, the end of the traceback (the raise site) is what is kept
        assert ep.nb.cells[0].outputs[0].traceback[-1] == "last line"
    assert _notebook_bytes(ep) < cap + 2 * execute.ERROR_CHARS + 4096, _notebook_bytes(ep)


def test_display_updates_are_charged_for_every_output_they_rewrite():
    ep = _executor()
    for _ in range(20):
        _send(ep, 0, "display_data", _display("tick", "flood"))
    big = "y" * (1 << 20)
    for _ in range(5):
        _send(ep, 0, "update_display_data", _display(big, "flood"))
    _send(ep, 1, "display_data", _display("tock", "flood"))  # a new display with the id rewrites them too
    _send(ep, 1, "display_data", _display("z", metadata={"junk": big}))
    _send(ep, 1, "execute_result", {**_display(big), "execution_count": 1})
    assert _notebook_bytes(ep) < 2 * CAP + 4096, _notebook_bytes(ep)
    assert any("truncated by the grader" in o.get("text", "") for o in ep.nb.cells[1].outputs)


def test_within_the_cap_outputs_are_untouched():
    ep = _executor()
    _send(ep, 0, "stream", {"name": "stdout", "text": "hello\n"})
    _send(ep, 0, "display_data", _display("first", "d"))
    _send(ep, 0, "update_display_data", _display("second", "d"))
    _send(ep, 1, "error", {"ename": "E", "evalue": "v", "traceback": ["a", "b"]})
    outs0, outs1 = ep.nb.cells[0].outputs, ep.nb.cells[1].outputs
    assert outs0[0].text == "hello\n" and outs0[1].data["text/plain"] == "second"
    assert (outs1[0].ename, outs1[0].evalue, outs1[0].traceback) == ("E", "v", ["a", "b"])


def test_past_the_cap_a_short_stderr_line_still_fails_a_test_cell():
    ep = _executor()
    _send(ep, 0, "stream", {"name": "stdout", "text": "s" * (2 * CAP)})
    _send(ep, 1, "stream", {"name": "stderr", "text": "e" * (2 * CAP)})
    stderr = [o for o in ep.nb.cells[1].outputs if o.output_type == "stream" and o.name == "stderr"]
    assert len(stderr) == 1 and 0 < len(stderr[0].text) <= 200


def test_widget_messages_leave_nothing_in_the_notebook():
    ep = _executor()
    state = {"state": {"junk": "w" * (1 << 20)}}
    _send(ep, 0, "comm_open", {"comm_id": "c", "target_name": "jupyter.widget", "data": state})
    _send(ep, 0, "comm_msg", {"comm_id": "c", "data": {"method": "update", **state}})
    assert "widgets" not in ep.nb.metadata and _notebook_bytes(ep) < 4096


def test_content_chars_counts_every_string_and_survives_deep_nesting():
    assert execute.content_chars({"data": {"text/plain": "abc"}, "metadata": {"k": ["xy"]}}) >= 5
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert execute.content_chars({"d": deep}) >= 100_000
    assert sys.getrecursionlimit() < 100_000  # the count did not recurse


def test_the_reply_error_nbgrader_adds_is_short_too():
    """nbgrader copies the shell reply's error into a cell whose published error has another name (here: the
    exception's huge name, cut when published) or none (a student who silenced ``showtraceback``)."""
    ep = _executor()
    huge = "E" * (4 << 20)
    error = {"status": "error", "ename": huge, "evalue": huge, "traceback": [huge]}
    _send(ep, 0, "error", {k: v for k, v in error.items() if k != "status"})
    for index, cell in enumerate(ep.nb.cells):
        ep.on_cell_executed(cell=cell, cell_index=index, execute_reply={"content": dict(error)})
    for cell in ep.nb.cells:
        assert [o.output_type for o in cell.outputs].count("error") == 1, cell.outputs
    assert _notebook_bytes(ep) < CAP + 2 * execute.ERROR_CHARS + 4096, _notebook_bytes(ep)
