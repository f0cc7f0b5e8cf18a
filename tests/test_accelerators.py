"""The accelerator datasheet table and the quantities derived from it."""

from __future__ import annotations

import pytest

from autograder import accelerators as A


def test_h100_row_derives_dense_flops_ridge_and_binary_memory():
    h100 = A.get_accelerator("NVIDIA H100 SXM")
    assert h100.bf16_dense_flops == pytest.approx(1979e12 / 2)  # the datasheet prints "with sparsity"
    assert h100.ridge_flops_per_byte == pytest.approx(989.5e12 / 3.35e12)
    assert h100.memory_bytes == 80 * 2**30  # "80GB" is 80 GiB of HBM
    assert "datasheet" in h100.source


def test_every_row_has_a_source_and_a_ridge_between_one_and_a_thousand():
    rows = A.load_accelerators()
    assert len(rows) >= 2
    for acc in rows:
        assert acc.source and 1 < acc.ridge_flops_per_byte < 1000


def test_unknown_name_and_malformed_rows_are_clear_errors(tmp_path):
    with pytest.raises(KeyError, match="known"):
        A.get_accelerator("TPU v9")
    bad = tmp_path / "acc.csv"
    bad.write_text(
        "accelerator,memory_gib,memory_bandwidth_gb_s,bf16_tensor_tflops_with_sparsity,sparsity_speedup,"
        "source\nX,80,fast,1,2,s\n"
    )
    with pytest.raises(ValueError, match="line 2"):
        A.load_accelerators(bad)
    bad.write_text(
        "accelerator,memory_gib,memory_bandwidth_gb_s,bf16_tensor_tflops_with_sparsity,sparsity_speedup,"
        "source\nX,80,0,1,2,s\n"
    )
    with pytest.raises(ValueError, match="positive"):
        A.load_accelerators(bad)
