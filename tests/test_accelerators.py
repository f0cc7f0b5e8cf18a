"""The accelerator datasheet table and the quantities derived from it."""

from __future__ import annotations

import pytest

from autograder import accelerators as A


def test_h100_row_derives_dense_flops_ridge_and_binary_memory():
    h100 = A.get_accelerator("NVIDIA H100 SXM")
    assert h100.bf16_dense_flops == pytest.approx(1979e12 / 2)  # the datasheet prints "with sparsity"
    assert h100.ridge_flops_per_byte == pytest.approx(989.5e12 / 3.35e12)
    assert h100.memory_bytes == 80 * 2**30  # "80GB" is 80 GiB of HBM
    assert h100.memory_gib == 80 and h100.memory_gb == pytest.approx(85.899345920)
    assert "datasheet" in h100.source


def test_newer_rows_and_the_unit_a_printed_figure_is_read_in(tmp_path):
    names = {a.accelerator for a in A.load_accelerators()}
    assert {"NVIDIA H200 SXM", "NVIDIA B200 (HGX)", "AMD Instinct MI300X"} <= names
    h200 = A.get_accelerator("NVIDIA H200 SXM")
    # the driver reports 143771 MiB: more than 141e9 bytes, so 141 is read as GiB
    assert 141 * 10**9 < 143771 * 2**20 <= h200.memory_bytes
    assert h200.memory_bytes == 141 * 2**30 and h200.bandwidth_bytes_per_s == 4.8e12
    mi300x = A.get_accelerator("AMD Instinct MI300X")
    assert mi300x.bf16_dense_flops == pytest.approx(1307.45e12)
    header = (
        "accelerator,memory_printed_gb,memory_unit,memory_bandwidth_gb_s,bf16_tensor_tflops_with_sparsity,"
        "sparsity_speedup,source\n"
    )
    decimal = tmp_path / "gb.csv"
    decimal.write_text(header + "X,141,GB,1000,100,2,s\n")
    assert A.load_accelerators(decimal)[0].memory_bytes == 141 * 10**9
    unknown = tmp_path / "tb.csv"
    unknown.write_text(header + "X,141,TB,1000,100,2,s\n")
    with pytest.raises(ValueError, match="memory_unit"):
        A.load_accelerators(unknown)


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
        "accelerator,memory_printed_gb,memory_unit,memory_bandwidth_gb_s,bf16_tensor_tflops_with_sparsity,"
        "sparsity_speedup,source\nX,80,GiB,fast,1,2,s\n"
    )
    with pytest.raises(ValueError, match="line 2"):
        A.load_accelerators(bad)
    bad.write_text(
        "accelerator,memory_printed_gb,memory_unit,memory_bandwidth_gb_s,bf16_tensor_tflops_with_sparsity,"
        "sparsity_speedup,source\nX,80,GiB,0,1,2,s\n"
    )
    with pytest.raises(ValueError, match="positive"):
        A.load_accelerators(bad)
