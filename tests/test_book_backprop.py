"""Helpers of the backpropagation chapter."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.book import backprop as B
from autograder.reference import numpy_ref as N


@pytest.mark.parametrize("shape", [(0,), (7,), (3, 5), (2, 3, 4)])
def test_sorted_scatter_add_equals_add_at(shape):
    rng = np.random.default_rng(sum(shape))
    ids = rng.integers(0, 6, size=shape)
    grad_out = rng.standard_normal(shape + (3,))
    np.testing.assert_allclose(
        B.scatter_add_sorted(grad_out, ids, 6), N.embedding_backward(grad_out, ids, 6), rtol=1e-12, atol=1e-12
    )


def test_sparse_sgd_equals_dense_sgd_and_rejects_repeats():
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((10, 4))
    ids = np.array([2, 5, 2, 9, 5, 2])
    grad_out = rng.standard_normal((6, 4))
    dense = weight - 0.5 * N.embedding_backward(grad_out, ids, 10)
    sparse = B.sgd_rows_(weight.copy(), *N.sparse_embedding_backward(grad_out, ids), lr=0.5)
    np.testing.assert_allclose(sparse, dense, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="repeats"):
        B.sgd_rows_(weight.copy(), ids, grad_out, lr=0.5)


def test_finite_difference_errors_show_truncation_and_round_off():
    x = np.array([0.3, -1.2, 2.0])

    def f(v):
        return float(np.sum(np.sin(v) * v))

    exact = np.cos(x) * x + np.sin(x)
    eps = np.array([1e-1, 1e-5, 1e-12])
    err = B.finite_difference_errors(f, x, exact, eps, N.numerical_gradient)
    assert err[1] < 1e-9 and err[0] > 1e-4 and err[2] > 1e-6  # big eps: truncation; tiny eps: round-off


def test_markov_corpus_is_deterministic_and_in_range():
    a = B.markov_corpus(20, 500, np.random.default_rng(3))
    assert a.dtype == np.int64 and a.min() >= 0 and a.max() < 20
    np.testing.assert_array_equal(a, B.markov_corpus(20, 500, np.random.default_rng(3)))
    # each token has at most `branching` successors
    pairs = {(int(u), int(v)) for u, v in zip(a[:-1], a[1:], strict=True)}
    assert max(sum(1 for p in pairs if p[0] == u) for u in range(20)) <= 3


def test_hand_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    p = B.init_bigram(7, 3, rng)
    x, y = rng.integers(0, 7, 12), rng.integers(0, 7, 12)
    _, g = B.bigram_loss_and_grads(p, x, y)
    for name in ("E", "W", "b"):

        def f(value, name=name):
            q = p.copy()
            setattr(q, name, value)
            return B.bigram_loss_and_grads(q, x, y)[0]

        np.testing.assert_allclose(
            getattr(g, name), N.numerical_gradient(f, getattr(p, name).copy()), rtol=1e-6, atol=1e-8
        )


def test_numpy_and_torch_training_agree():
    rng = np.random.default_rng(0)
    tokens = B.markov_corpus(30, 400, rng)
    p = B.init_bigram(30, 8, rng)
    ln, pn = B.train_numpy(p, tokens[:-1], tokens[1:], lr=1.0, steps=25)
    lt, pt = B.train_torch(p, tokens[:-1], tokens[1:], lr=1.0, steps=25)
    assert ln[-1] < ln[0] - 0.5  # it learns
    np.testing.assert_allclose(ln, lt, rtol=1e-10)
    np.testing.assert_allclose(pn.E, pt.E, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pn.W, pt.W, rtol=1e-9, atol=1e-12)


def test_tied_table_gradient_is_both_paths_and_matches_autograd():
    rng = np.random.default_rng(7)
    E, b = 0.3 * rng.standard_normal((40, 6)), 0.1 * rng.standard_normal(40)
    x, y = rng.integers(0, 5, 30), rng.integers(0, 40, 30)
    loss, g = B.tied_bigram_grads(E, b, x, y)
    loss_t, grad_t = B.tied_bigram_autograd(E, b, x, y)
    assert loss == pytest.approx(loss_t, abs=1e-12)
    np.testing.assert_allclose(g["E"], grad_t, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(g["E"], g["input"] + g["output"], rtol=0, atol=0)
    touched = np.abs(g["input"]).sum(axis=1) > 0
    assert touched.sum() <= 5 and (np.abs(g["output"]).sum(axis=1) > 0).all()


def test_chunked_cross_entropy_in_torch_matches_autograd_on_all_logits():
    import torch

    from autograder.book import backprop as B
    from autograder.reference import torch_ref

    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(70, 16, generator=gen, dtype=torch.float64)
    weight = torch.randn(300, 16, generator=gen, dtype=torch.float64)
    targets = torch.randint(300, (70,), generator=gen)
    loss_ref, dh_ref, dw_ref = torch_ref.chunked_cross_entropy(hidden, weight, targets, 16)
    for chunk in (1, 16, 70, 1000):
        loss, dh, dw = B.chunked_cross_entropy_torch(hidden, weight, targets, chunk)
        assert loss == pytest.approx(loss_ref, rel=1e-12)
        torch.testing.assert_close(dh, dh_ref)
        torch.testing.assert_close(dw, dw_ref)
    with pytest.raises(ValueError, match="chunk_size"):
        B.chunked_cross_entropy_torch(hidden, weight, targets, 0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            B.cuda_peak_bytes(lambda: None)
