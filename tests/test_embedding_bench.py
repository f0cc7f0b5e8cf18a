"""The embedding benchmark: workload, correctness gate, JSON output, committed results and plots (its byte counts:
``test_embedding_bytes.py``).

Nothing here asserts a duration: the quick run checks structure and accounting, not speed.
"""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pytest
import torch

from autograder.measure import embedding_bench as bench
from autograder.measure.embedding_bytes import dense_backward_bytes, forward_bytes
from autograder.measure.zipf import zipf_ids

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    assert bench.main(["--quick", "--device", "cpu", "--out", str(out), "--no-progress"]) == 0
    return json.loads(out.read_text())


def test_zipf_ids_are_in_range_and_skewed():
    rng = np.random.default_rng(0)
    ids = zipf_ids(20_000, 1000, rng)
    assert ids.dtype == np.int64 and ids.shape == (20_000,)
    assert ids.min() >= 0 and ids.max() < 1000
    counts = np.sort(np.bincount(ids, minlength=1000))[::-1]
    # rank 1 has probability 1 / H(1000) ~ 13 %, rank 1000 ~ 0.013 %
    assert 0.10 < counts[0] / ids.size < 0.17 and counts[-1] < counts[0] / 100
    with pytest.raises(ValueError, match="positive"):
        zipf_ids(0, 10, rng)


def test_uncoalesced_sparse_gradient_really_is_a_view_of_grad_out():
    """The accounting above says nothing is copied; check that PyTorch still works that way."""
    case = bench.make_case(50, 4, bench.QUICK, torch.device("cpu"))
    fn = bench._module_backward(case, sparse=True, coalesce=False)
    grad = fn()
    assert grad.is_sparse and grad._values().data_ptr() == case.grad_out_t.data_ptr()
    assert not case.weight_t.requires_grad  # the module shares the table without changing it


def test_every_variant_agrees_with_the_reference_and_a_wrong_one_is_caught(monkeypatch):
    case = bench.make_case(64, 8, bench.QUICK, torch.device("cpu"))
    bench.check_variants(case)  # all agree
    real = bench.variants

    def with_a_bug(c):
        out = real(c)
        kind, lib, name, fn, n = out[-1]
        return out[:-1] + [(kind, lib, name, lambda: fn().to_dense() * 1.01, n)]

    monkeypatch.setattr(bench, "variants", with_a_bug)
    with pytest.raises(AssertionError, match="sparse \\+ coalesce disagrees"):
        bench.check_variants(case)


def test_quick_run_writes_a_complete_result(quick):
    grid = bench.QUICK
    n_variants = 6 + 6  # six forward and six backward variants on a CPU
    assert quick["schema"] == bench.SCHEMA and quick["quick"] is True
    assert quick["device"].startswith("CPU ") and quick["device_type"] == "cpu"
    assert quick["numpy"] == np.__version__ and quick["torch"] == torch.__version__
    assert quick["date"] and quick["command"].startswith("python -m autograder.measure.embedding_bench --quick")
    assert len(quick["results"]) == len(grid.vocabs) * len(grid.dims) * n_variants
    assert len(quick["memory_copies"]) == 3 and quick["memory_copy_gbps"] > 0
    # bounded: each buffer of the past-the-cache copy at most the quick grid's cap, whatever the machine's cache
    assert all(m["bytes"] <= 2 * grid.memory_copy_max_bytes for m in quick["memory_copies"])
    assert quick["grid"]["memory_copy_max_bytes"] == grid.memory_copy_max_bytes
    assert "capped" in bench.summarize(quick)
    for r in quick["results"]:
        assert r["p10_s"] <= r["median_s"] <= r["p90_s"] and len(r["samples_s"]) == grid.repeats
        assert r["gbps"] == pytest.approx(r["bytes_moved"] / r["median_s"] / 1e9)
        assert r["fraction_of_copy"] == pytest.approx(r["gbps"] / r["copy_gbps"])
        assert r["gbps_p10"] <= r["gbps"] <= r["gbps_p90"]
        assert r["table_bytes"] == 4 * r["vocab"] * r["dim"] and 1 <= r["unique_ids"] <= r["vocab"]
    fwd = bench.lookup(quick, kind="forward", vocab=64, dim=8, op="F.embedding")
    assert fwd["bytes_moved"] == forward_bytes(grid.n_tokens, 8)
    dense = bench.lookup(quick, kind="backward", vocab=1024, dim=8, op="np.add.at (dense)")
    assert dense["bytes_moved"] == dense_backward_bytes(grid.n_tokens, 1024, 8)


def test_quick_results_are_not_loaded_as_committed_results(quick, tmp_path):
    (tmp_path / "quick.json").write_text(json.dumps(quick))
    assert bench.load_results(tmp_path) == []
    assert len(bench.load_results(tmp_path, include_quick=True)) == 1
    (tmp_path / "old.json").write_text(json.dumps({**quick, "schema": 0}))
    with pytest.raises(ValueError, match="schema"):
        bench.load_results(tmp_path, include_quick=True)


def test_default_output_of_a_quick_run_is_not_the_committed_folder(quick, tmp_path):
    path = bench.write(quick, tmp_path)
    assert path == tmp_path / f"{quick['slug']}.json"
    assert bench.QUICK_DIR != bench.DATA_DIR


def test_plots_have_one_panel_per_dimension_and_every_variant(quick):
    for plot, kind in ((bench.plot_forward, "forward"), (bench.plot_backward, "backward")):
        fig = plot(quick)
        axes = fig.get_axes()
        assert len(axes) == len(quick["grid"]["dims"])
        labels = fig.legends[0].get_texts()
        ops = {r["op"] for r in bench.select(quick, kind=kind)}
        assert ops <= {t.get_text() for t in labels}
        assert quick["device"] in fig.get_suptitle()
        matplotlib.pyplot.close(fig)


def test_committed_results_are_full_runs_labelled_with_their_device():
    results = bench.load_results()
    assert results, "no committed benchmark results in autograder/data/bench/ (run make bench)"
    for r in results:
        path = bench.DATA_DIR / f"{r['slug']}.json"
        assert path.exists(), f"{r['device']} results are not stored under their device slug"
        assert r["grid"]["vocabs"] == list(bench.FULL.vocabs) and r["grid"]["dims"] == list(bench.FULL.dims)
        assert r["device_type"] in ("cpu", "cuda")
        assert r["device"].startswith("CPU ") == (r["device_type"] == "cpu")
        assert all(x["device"] == r["device"] or x["library"] == "numpy" for x in r["results"])
        assert "GB/s" in bench.summarize(r) and "a copy past the cache moves" in bench.summarize(r)
        assert bench.markdown_table(r, "forward").count("\n") == 1 + len(bench.select(r, kind="forward"))


def test_cli_refuses_cuda_without_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--device", "cuda"])
    assert "no CUDA GPU" in capsys.readouterr().err


def test_sync_book_cache_drops_the_caches_only_when_the_results_change(tmp_path):
    data, build = tmp_path / "data", tmp_path / "_build"
    data.mkdir()
    (data / "a.json").write_text("{}")

    def caches():
        for cache in (".jupyter_cache", ".doctrees"):
            (build / cache).mkdir(parents=True, exist_ok=True)
            (build / cache / "x").write_text("cached")

    assert bench.sync_book_cache(build, data)  # first build: nothing known yet
    caches()
    assert not bench.sync_book_cache(build, data) and (build / ".jupyter_cache" / "x").exists()
    (data / "b.json").write_text("{}")  # a GPU file is committed
    assert bench.sync_book_cache(build, data)
    assert not (build / ".jupyter_cache").exists() and not (build / ".doctrees").exists()
    caches()
    (data / "b.json").unlink()  # ... and removed again
    assert bench.sync_book_cache(build, data)
    caches()
    (data / "a.json").write_text('{"changed": 1}')
    assert bench.sync_book_cache(build, data)
    assert len(list(build.glob(".bench-data-*"))) == 1


def _minor_faults(fn) -> int:
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_numpy_dense_variants_write_the_whole_gradient_they_are_credited_with():
    from autograder.measure.scatter import scatter_add_sorted

    # one id: np.zeros leaves every page but one to the kernel, never written; the bench's variants write them all
    vocab, dim = 16384, 1024  # 64 MiB of float32
    ids = np.zeros(4, dtype=np.int64)
    grad_out = np.ones((4, dim), dtype=np.float32)
    case = bench.Case(vocab, dim, ids, np.zeros((1, dim), np.float32), grad_out, torch.device("cpu"))
    huge_pages = vocab * dim * 4 // (2 * 2**20)  # the fewest faults that can map 64 MiB (2 MiB pages)
    lazy = _minor_faults(lambda: np.add.at(np.zeros((vocab, dim), np.float32), ids, grad_out))
    written = _minor_faults(lambda: bench._np_add_at_backward(case))
    assert lazy < huge_pages <= written
    out = np.full((vocab, dim), np.nan, dtype=np.float32)  # every byte of out is overwritten, zeros included
    grad = scatter_add_sorted(grad_out, ids, vocab, out=out)
    assert grad is out and grad[0, 0] == 4 and not np.isnan(grad).any() and grad[1:].sum() == 0
    with pytest.raises(ValueError, match="out must be"):
        scatter_add_sorted(grad_out, ids, vocab, out=np.empty((vocab, dim), np.float64))
