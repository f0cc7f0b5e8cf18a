"""Timing helpers: statistics on a fake clock, device naming, cache detection and bytes accounting.

No assertion here depends on how fast anything ran: the clock is fake wherever a duration is checked.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.measure import timing
from autograder.measure.timing import Bandwidth, Timing


class FakeClock:
    """A clock whose successive calls return 0, d0, d0, d0 + d1, ... so that call ``i`` lasts ``durations[i]``."""

    def __init__(self, durations):
        self.now = 0.0
        self.durations = iter(durations)
        self.started = False

    def __call__(self) -> float:
        if self.started:
            self.now += next(self.durations)
        self.started = not self.started
        return self.now


def test_time_fn_statistics_on_a_fake_clock():
    durations = [0.010, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009]
    calls = []
    t = timing.time_fn(lambda: calls.append(1), device="cpu", warmup=2, repeats=10, clock=FakeClock(durations))
    assert len(calls) == 12  # 2 warm-up calls, untimed, then 10 timed ones
    assert t.samples_s == pytest.approx(tuple(durations))
    assert t.n == 10
    assert t.median_s == pytest.approx(0.0055)
    # linear interpolation between order statistics: p10 at rank 0.9 of 1..10 ms, p90 at rank 8.1
    assert t.p10_s == pytest.approx(0.0019)
    assert t.p90_s == pytest.approx(0.0091)
    assert t.spread == pytest.approx((0.0091 - 0.0019) / 0.0055)
    assert t.method == "FakeClock"  # a fake clock is never reported as perf_counter
    assert t.device == timing.device_name("cpu")


def test_time_interleaved_alternates_and_keeps_each_functions_samples():
    calls = []
    # round r: a lasts 1 + r, b lasts 10 + r (seconds on the fake clock)
    durations = [d for r in range(4) for d in (1.0 + r, 10.0 + r)]
    a, b = timing.time_interleaved(
        [lambda: calls.append("a"), lambda: calls.append("b")],
        device="cpu",
        warmup=1,
        repeats=4,
        clock=FakeClock(durations),
    )
    assert calls == ["a", "b"] * 5  # one warm-up round, then four timed rounds, alternating
    assert a.samples_s == (1.0, 2.0, 3.0, 4.0) and b.samples_s == (10.0, 11.0, 12.0, 13.0)
    assert a.median_s == 2.5 and b.median_s == 11.5


def test_garbage_collection_is_paused_while_timing_and_restored():
    import gc

    seen = []
    assert gc.isenabled()
    timing.time_fn(lambda: seen.append(gc.isenabled()), device="cpu", warmup=1, repeats=2)
    assert seen == [False, False, False] and gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        timing.time_fn(lambda: 1 / 0, device="cpu")
    assert gc.isenabled()  # restored even when the timed function raises


def test_median_of_odd_samples_is_the_middle_one_and_outliers_do_not_move_it():
    t = Timing("dev", "fake", (1.0, 1000.0, 2.0, 3.0, 2.5))
    assert t.median_s == 2.5
    assert t.p90_s > 100 and t.p10_s == pytest.approx(1.4)


def test_timing_to_dict_round_trips_the_statistics():
    t = Timing("dev", "fake", (3.0, 1.0, 2.0))
    d = t.to_dict()
    assert d["median_s"] == 2.0 and d["n"] == 3 and d["samples_s"] == [3.0, 1.0, 2.0]
    assert d["p10_s"] == pytest.approx(1.2) and d["p90_s"] == pytest.approx(2.8)
    assert "2.0" in str(Timing("dev", "fake", (2e-6,))) and "dev" in str(t)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"repeats": 0}, "repeats"),
        ({"warmup": -1}, "warmup"),
        ({"repeats": 2.5}, "repeats"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_time_fn_rejects_bad_arguments_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        timing.time_fn(lambda: None, **kwargs)


def test_time_fn_rejects_a_non_callable():
    with pytest.raises(ValueError, match="callable"):
        timing.time_fn(42)


def test_empty_timing_is_refused():
    with pytest.raises(ValueError, match="at least one sample"):
        Timing("dev", "fake", ())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_requesting_cuda_without_a_gpu_says_so():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        timing.time_fn(lambda: None, device="cuda")


def test_real_clock_cpu_timing_names_the_device_and_clock():
    t = timing.time_fn(lambda: sum(range(100)), device="cpu", warmup=0, repeats=3)
    assert t.method == "perf_counter" and t.n == 3 and all(s >= 0 for s in t.samples_s)
    assert t.device.startswith("CPU ") and "thread" in t.device


def test_device_name_for_cpu_and_default_device():
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert timing.device_name("cpu").endswith(", 1 thread)")
        torch.set_num_threads(2)
        name = timing.device_name("cpu")
        assert name.startswith(f"CPU {timing.cpu_model()} (") and name.endswith(", 2 threads)")
    finally:
        torch.set_num_threads(previous)
    assert timing.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert timing.device_name() == timing.device_name(timing.default_device())


def test_cpu_model_reads_proc_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  9654 96-Core Processor\n")
    assert timing.cpu_model(info) == "AMD EPYC 9654 96-Core Processor"
    assert timing.cpu_model(tmp_path / "missing")  # falls back to platform, never empty


@pytest.mark.parametrize(
    "name, slug",
    [
        ("CPU AMD EPYC (x86_64, 2 threads)", "cpu-amd-epyc-x86-64-2-threads"),
        ("NVIDIA H100 80GB HBM3 (cuda)", "nvidia-h100-80gb-hbm3-cuda"),
    ],
)
def test_device_slug(name, slug):
    assert timing.device_slug(name) == slug


def test_device_slug_rejects_an_empty_name():
    with pytest.raises(ValueError, match="no letters"):
        timing.device_slug(" ()-")


def _fake_cache(root, cpu, index, level, kind, size, shared):
    d = root / f"cpu{cpu}" / "cache" / f"index{index}"
    d.mkdir(parents=True)
    for name, value in (("level", level), ("type", kind), ("size", size), ("shared_cpu_list", shared)):
        (d / name).write_text(f"{value}\n")


def test_cpu_last_level_cache_sums_distinct_slices_of_the_top_level(tmp_path):
    for cpu in range(4):
        _fake_cache(tmp_path, cpu, 0, 1, "Data", "32K", str(cpu))
        _fake_cache(tmp_path, cpu, 1, 1, "Instruction", "32K", str(cpu))
        _fake_cache(tmp_path, cpu, 2, 2, "Unified", "1024K", str(cpu))
        _fake_cache(tmp_path, cpu, 3, 3, "Unified", "32768K", "0-1" if cpu < 2 else "2-3")  # two L3 slices
    assert timing.cpu_last_level_cache_bytes(tmp_path) == 2 * 32 * 2**20


def test_cpu_last_level_cache_is_none_without_sysfs(tmp_path):
    assert timing.cpu_last_level_cache_bytes(tmp_path) is None
    assert timing.last_level_cache_bytes("cpu") >= 2**20


@pytest.mark.parametrize("text, value", [("32768K", 32 * 2**20), ("1M", 2**20), ("512", 512), ("2 GiB", 2**31)])
def test_parse_cache_size(text, value):
    assert timing._parse_cache_size(text) == value


# ------------------------------------------------------------------------------------------ bytes accounting
def _const(seconds, n=5):
    return Timing("dev", "fake", (seconds,) * n)


def test_bandwidth_arithmetic():
    bw = Bandwidth(
        "op",
        2_000_000_000,
        op=_const(0.5),
        copy=_const(0.25),
        memory_copy=_const(1.0),
        memory_copy_bytes=10_000_000_000,
        cache_bytes=32 * 2**20,
    )
    assert bw.gbps == pytest.approx(4.0)
    assert bw.copy_gbps == pytest.approx(8.0)
    assert bw.fraction_of_copy == pytest.approx(0.5)
    assert bw.memory_gbps == pytest.approx(10.0)
    assert bw.fraction_of_memory == pytest.approx(0.4)
    assert not bw.fits_in_cache
    d = bw.to_dict()
    assert d["gbps"] == pytest.approx(4.0) and d["op"]["median_s"] == 0.5 and d["memory_copy_bytes"] == 10**10
    assert "4.0 GB/s" in str(bw) and "50% of copy" in str(bw)


def test_small_bandwidth_is_flagged_as_cache_resident():
    bw = Bandwidth("op", 8 * 2**20, op=_const(1e-3), copy=_const(1e-4), cache_bytes=32 * 2**20)
    assert bw.fits_in_cache and "from cache" in str(bw)
    assert bw.memory_gbps is None and bw.fraction_of_memory is None


def test_measure_bandwidth_copies_the_same_bytes(monkeypatch):
    """The same-size copy reads and writes bytes_moved / 2 each; the memory copy is 4x the cache per buffer."""
    copied = []
    real_copy_fn = timing._copy_fn

    def spy(n_bytes, device):
        copied.append(n_bytes)
        return real_copy_fn(n_bytes, device)

    monkeypatch.setattr(timing, "_copy_fn", spy)
    monkeypatch.setattr(timing, "last_level_cache_bytes", lambda device=None: 2**20)
    bw = timing.measure_bandwidth("noop", lambda: None, 3_000_001, device="cpu", warmup=0, repeats=2)
    assert copied == [1_500_000, 4 * 2**20]
    assert bw.bytes_moved == 3_000_001 and bw.memory_copy_bytes == 2 * 4 * 2**20 and bw.cache_bytes == 2**20
    assert bw.op.n == bw.copy.n == bw.memory_copy.n == 2


def test_measure_bandwidth_without_memory_copy_and_bad_bytes():
    bw = timing.measure_bandwidth("noop", lambda: None, 1000, device="cpu", memory_copy=False, warmup=0, repeats=1)
    assert bw.memory_copy is None and bw.memory_copy_bytes == 0
    for bad in (0, -5, 1.5):
        with pytest.raises(ValueError, match="bytes_moved"):
            timing.measure_bandwidth("x", lambda: None, bad, device="cpu")


def test_memory_copy_buffers_are_capped_on_request(monkeypatch):
    copied = []
    monkeypatch.setattr(timing, "_copy_fn", lambda n_bytes, device: copied.append(n_bytes) or (lambda: None))
    monkeypatch.setattr(timing, "last_level_cache_bytes", lambda device=None: 2**20)
    assert timing.memory_copy_baseline(device="cpu", warmup=0, repeats=1)[0] == 2 * 4 * 2**20
    assert timing.memory_copy_baseline(device="cpu", max_buffer_bytes=3 * 2**20, warmup=0, repeats=1)[0] == 6 * 2**20
    assert timing.memory_copy_baseline(device="cpu", max_buffer_bytes=2**30, warmup=0, repeats=1)[0] == 8 * 2**20
    assert copied == [4 * 2**20, 3 * 2**20, 4 * 2**20]
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="max_buffer_bytes"):
            timing.memory_copy_baseline(device="cpu", max_buffer_bytes=bad)


def test_copy_baseline_really_copies():
    t = timing.copy_baseline(4096, device="cpu", warmup=0, repeats=1)
    assert t.n == 1
    dst = timing._copy_fn(4096, torch.device("cpu"))()
    assert dst.numel() == 4096 and dst.dtype == torch.uint8
    assert np.count_nonzero(dst.numpy()) > 0  # random bytes were copied, not an empty buffer
    with pytest.raises(ValueError, match="n_bytes"):
        timing.copy_baseline(0, device="cpu")


def test_a_numpy_copy_really_copies_and_only_on_the_cpu():
    copy = timing._numpy_copy_fn(4096)
    copy()
    src, dst = copy.__closure__[0].cell_contents, copy.__closure__[1].cell_contents
    assert {src.dtype, dst.dtype} == {np.dtype(np.uint8)} and src.size == dst.size == 4096
    assert np.count_nonzero(src) > 0 and np.array_equal(src, dst)
    t = timing.copy_baseline(4096, device="cpu", copy_with="numpy", warmup=0, repeats=1)
    assert t.n == 1 and t.device == timing.device_name("cpu")
    with pytest.raises(ValueError, match="copy_with must be one of torch, numpy"):
        timing.copy_baseline(4096, device="cpu", copy_with="cupy")
    gpu = type("FakeCuda", (), {"type": "cuda", "__str__": lambda self: "cuda:0"})()
    with pytest.raises(ValueError, match="copy_with='numpy' copies on the CPU"):
        timing._copier(4096, gpu, "numpy")
    with pytest.raises(ValueError, match="n_bytes"):
        timing.copy_baseline(0, device="cpu", copy_with="numpy")


def test_numpy_timed_on_the_cpu_never_imports_torch():
    """A NumPy assignment's measurement cell (time_interleaved, measure_bandwidth with NumPy copies, on the CPU)
    runs without torch: importing it costs about 2 CPU seconds in a fresh grading kernel. Any other device or
    the torch copies do import it."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from autograder.measure.timing import measure_bandwidth, time_interleaved, device_name\n"
        "from autograder.measure.timing import memory_copy_baseline\n"
        "b = measure_bandwidth('x', lambda: np.ones(8), 4096, device='cpu', copy_with='numpy', warmup=1, repeats=2,"
        " memory_copy=False)\n"
        "m = memory_copy_baseline(device='cpu', copy_with='numpy', max_buffer_bytes=2**20, warmup=0, repeats=1)\n"
        "t = time_interleaved([lambda: np.ones(8)], device='cpu', warmup=0, repeats=2)\n"
        "assert m[0] == 2**21 and t[0].device == b.op.device == m[1].device == device_name('cpu')\n"
        "print('torch' in sys.modules)\n"
        "measure_bandwidth('x', lambda: np.ones(8), 4096, device='cpu', memory_copy=False, warmup=0, repeats=1)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_the_cpu_is_named_alike_with_and_without_torch_loaded():
    """Without torch the CPU's thread count is the cores this process may use; with torch, torch's own count."""
    name = timing.device_name("cpu")
    assert name.endswith(f", {torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''})")
    assert timing.device_name(torch.device("cpu")) == name and timing._as_device(torch.device("cpu")) is timing.CPU
    # default_device() is where torch work runs: a torch.device, which torch.zeros(..., device=) accepts
    assert isinstance(timing.default_device(), torch.device)
    assert torch.zeros(2, device=timing.default_device()).device.type == timing.default_device().type


def test_torch_threads_sets_and_restores_and_rejects_bad_counts():
    before = torch.get_num_threads()
    with timing.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="positive"):
        with timing.torch_threads(0):
            pass


def test_memory_copy_by_threads_names_each_thread_count(monkeypatch):
    monkeypatch.setattr(timing, "last_level_cache_bytes", lambda device=None: 2**16)
    before = torch.get_num_threads()
    out = timing.memory_copy_by_threads((1, 2), warmup=0, repeats=3)
    assert [t for t, _, _ in out] == [1, 2] and all(moved == 2 * 4 * 2**16 for _, moved, _ in out)
    assert "1 thread)" in out[0][2].device and "2 threads)" in out[1][2].device
    assert all(r.n == 3 for _, _, r in out) and torch.get_num_threads() == before
    assert timing.available_cores() >= 1
    with pytest.raises(ValueError):
        timing.memory_copy_by_threads(())


class FakeCuda:
    """A stand-in for ``torch.cuda`` that logs what the timing loop does: event records, synchronisations, the
    device properties it asks for; each event pair reports ``pair_ms`` milliseconds."""

    def __init__(self, log, l2_bytes=50 * 2**20, pair_ms=2.0):
        self.log, self.l2_bytes, self.pair_ms = log, l2_bytes, pair_ms
        cuda = self

        class Event:
            def __init__(self, enable_timing=False):
                assert enable_timing
                self.kind = None

            def record(self):
                cuda.log.append("record")

            def synchronize(self):
                cuda.log.append("event-sync")

            def elapsed_time(self, end):
                return cuda.pair_ms

        self.Event = Event

    def synchronize(self, device=None):
        self.log.append("sync")

    def get_device_properties(self, device):
        return type("Props", (), {"L2_cache_size": self.l2_bytes})()


class FakeFlush:
    def __init__(self, log, n_bytes):
        self.log, self.n_bytes = log, n_bytes

    def __call__(self):
        self.log.append(("flush", self.n_bytes))


def test_cuda_loop_times_k_calls_per_event_pair_flushes_and_interleaves():
    log = []
    cuda = FakeCuda(log)
    flush = FakeFlush(log, timing.l2_flush_bytes("cuda:0", cuda=cuda))
    assert flush.n_bytes >= 2 * cuda.l2_bytes  # twice the L2 the device reports

    def op():
        log.append("op")

    def copy():
        log.append("copy")

    def one_pair(name):
        return [("flush", flush.n_bytes), "record", *[name] * 4, "record", "event-sync"]

    samples, k = timing._cuda_rounds([op, copy], cuda, "cuda:0", 1, 3, 4, flush)
    assert k == 4
    timed = log[log.index("sync") + 1 :]  # after the warm-up round and the synchronize
    assert timed == (one_pair("op") + one_pair("copy")) * 3  # flush, then k calls per pair, op and copy alternate
    assert log[: log.index("sync")] == ["op", "copy"]  # warm-up: untimed, unflushed
    # each sample is the pair's time over k
    assert samples == [[2.0e-3 / 4] * 3, [2.0e-3 / 4] * 3]


def test_cuda_loop_chooses_k_to_fill_a_millisecond():
    log = []
    cuda = FakeCuda(log, pair_ms=0.015)  # a 15 us kernel
    samples, k = timing._cuda_rounds([lambda: log.append("op")], cuda, "cuda:0", 0, 2, None, None)
    assert k == 67  # ceil(1 ms / 15 us)
    assert log.count("op") == 1 + 2 * 67  # one probing call, then two samples of k calls
    cuda.pair_ms = 5.0  # a slow kernel: one call per pair
    assert timing._cuda_rounds([lambda: None], cuda, "cuda:0", 0, 1, None, None)[1] == 1


def test_cpu_fallback_stays_one_call_per_sample_unflushed_unless_asked():
    calls = []
    t = timing.time_fn(lambda: calls.append(1), device="cpu", warmup=0, repeats=3, clock=FakeClock([1.0, 2.0, 3.0]))
    assert t.calls_per_sample == 1 and t.flush_bytes == 0 and len(calls) == 3
    t = timing.time_fn(
        lambda: calls.append(1), device="cpu", warmup=0, repeats=2, calls_per_sample=5, clock=FakeClock([10.0, 20.0])
    )
    assert t.samples_s == (2.0, 4.0) and t.calls_per_sample == 5 and "of 5 calls" in str(t)
    assert t.to_dict()["calls_per_sample"] == 5
    with pytest.raises(ValueError, match="calls_per_sample"):
        timing.time_fn(lambda: None, device="cpu", calls_per_sample=0)


def test_cpu_flush_on_request_overwrites_twice_the_last_level_cache(monkeypatch):
    monkeypatch.setattr(timing, "last_level_cache_bytes", lambda device=None: 2**20)
    t = timing.time_fn(lambda: None, device="cpu", warmup=0, repeats=2, flush_cache=True)
    assert t.flush_bytes == 2 * 2**20
