"""Activation and training-state measurements of the memory-scaling chapter; the tracemalloc helper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autograder.book import activations as A
from autograder.book import training_state as T
from autograder.book.allocations import traced_peak_bytes


@pytest.mark.parametrize("s, b, h, a", [(16, 2, 32, 4), (32, 1, 64, 2)])
def test_saved_tensors_equal_korthikanti_plus_named_extras(s, b, h, a):
    torch.manual_seed(0)
    layer = A.GPTLayer(h, a).to(torch.bfloat16)
    measured, saved = A.saved_activation_bytes(layer, torch.randn(b, s, h, dtype=torch.bfloat16))
    extras = A.layernorm_statistics_bytes(s, b) + A.causal_mask_bytes(s)
    assert measured == A.korthikanti_layer_bytes(s, b, h, a) + extras
    assert all(n > 0 for _, _, n in saved)


def test_formula_and_layer_reject_bad_sizes():
    assert A.korthikanti_layer_bytes(1, 1, 1, 1) == 39
    with pytest.raises(ValueError):
        A.korthikanti_layer_bytes(0, 1, 8, 1)
    with pytest.raises(ValueError, match="multiple"):
        A.GPTLayer(10, 3)


@pytest.mark.parametrize("accounting, grad_bytes", [("zero", 2), ("megatron", 4)])
def test_measured_mixed_precision_state(accounting, grad_bytes):
    got = T.measure_mixed_precision_step(300, 8, 32, accounting=accounting)
    n = got["parameters"]
    assert n == 2 * 300 * 8
    assert got == {"parameters": n, "weights": 2 * n, "gradients": grad_bytes * n, "master": 4 * n, "optimizer": 8 * n}
    with pytest.raises(ValueError, match="accounting"):
        T.measure_mixed_precision_step(10, 2, 2, accounting="deepspeed")


def test_traced_peak_sees_numpy_buffers_and_returns_the_result():
    result, peak = traced_peak_bytes(lambda: float(np.ones(1_000_000).sum()))
    assert result == 1_000_000.0 and 8_000_000 <= peak < 9_000_000
    with pytest.raises(ValueError):
        traced_peak_bytes(42)
