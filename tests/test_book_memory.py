"""Helpers of the memory-scaling chapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.book import memory as M


def test_zipf_ids_range_determinism_and_skew():
    ids = M.zipf_token_ids(1000, 20000, np.random.default_rng(0))
    assert ids.dtype == np.int64 and ids.shape == (20000,) and ids.min() >= 0 and ids.max() < 1000
    np.testing.assert_array_equal(ids, M.zipf_token_ids(1000, 20000, np.random.default_rng(0)))
    counts = np.bincount(ids, minlength=1000)
    # P(0) / P(1) = 2 under exponent 1; the most frequent id is 0
    assert counts.argmax() == 0 and 1.8 < counts[0] / counts[1] < 2.2
    assert np.unique(ids).size < 1000  # a batch touches fewer rows than the vocabulary
    with pytest.raises(ValueError):
        M.zipf_token_ids(0, 5, np.random.default_rng(0))


def test_sparse_gradient_bytes_match_a_real_sparse_gradient():
    emb = torch.nn.Embedding(100, 16, sparse=True)
    ids = torch.tensor([[3, 3, 7], [9, 7, 3]])
    emb(ids).sum().backward()
    grad = emb.weight.grad.coalesce()
    real = grad.values().nbytes + grad.indices().nbytes
    assert M.sparse_gradient_bytes(3, 16) == real
    assert M.dense_gradient_bytes(100, 16) == emb.weight.nbytes
    assert M.dense_gradient_bytes(100, 16, "bfloat16") == torch.zeros(100, 16, dtype=torch.bfloat16).nbytes


def test_intensities():
    assert M.lookup_intensity(4096, 768) == 0.0 and M.lookup_intensity(0, 8) == 0.0
    # square float32 matmul of side n: 2n^3 / (12 n^2) = n / 6
    assert M.matmul_intensity(600, 600, 600) == pytest.approx(100.0)


def test_html_table_escapes_and_aligns():
    out = M.html_table(["model", "bytes"], [["<GPT>", "1,024"]])
    assert "&lt;GPT&gt;" in out and '<td style="text-align:right">1,024</td>' in out and out.count("<tr>") == 2
    assert '<td style="white-space:nowrap">' in out


def test_sparse_gradients_in_torch_optim():
    from autograder.book import sparse_optim as S

    # SGD with momentum on a sparse gradient is dense momentum: same weights (float rounding apart)
    diff, rows = S.sparse_vs_dense(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
    assert diff < 1e-5 and rows == 0
    # SparseAdam is lazy: it leaves rows the batch missed, so it differs from dense Adam
    diff, rows = S.sparse_vs_dense(lambda p: torch.optim.SparseAdam(p, lr=0.1), lambda p: torch.optim.Adam(p, lr=0.1))
    assert diff > 1e-3 and rows > 0
    assert "SparseAdam" in S.optimizer_error(lambda p: torch.optim.Adam(p))
    assert S.optimizer_error(lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.01)).startswith("RuntimeError")
    assert S.optimizer_error(lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)) is None


def test_ridge_rows_is_the_exact_crossing():
    # Llama 3.1 8B's output layer (D = 4096, V = 128256, bf16) against the H100's ridge: 320 tokens (the issue's
    # figure; a log-spaced plot grid first crosses at 362)
    ridge = 989.5e12 / 3.35e12
    m = M.matmul_ridge_rows(4096, 128256, ridge, "bfloat16")
    assert m == 320
    at, before = (M.matmul_intensity(rows, 4096, 128256, "bfloat16") for rows in (m, m - 1))
    assert at >= ridge > before
    assert M.matmul_ridge_rows(8, 8, 1000.0) is None  # a small product never reaches it
    with pytest.raises(ValueError):
        M.matmul_ridge_rows(0, 8, 1.0)
