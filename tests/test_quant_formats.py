"""llama.cpp block formats and the Q4_K_M mixture."""

from __future__ import annotations

import pytest

from autograder import models
from autograder.book import quant_formats as Q

LLAMA_LIKE = [c for c in models.load_model_configs() if c.family in ("llama", "gemma", "qwen2")]


@pytest.mark.parametrize(
    "fmt, block_bytes, bpw",
    [
        ("Q4_0", 18, 4.5),
        ("Q8_0", 34, 8.5),
        ("Q5_0", 22, 5.5),
        ("Q4_K", 144, 4.5),
        ("Q5_K", 176, 5.5),
        ("Q6_K", 210, 6.5625),
    ],
)
def test_block_sizes_match_ggml_static_asserts(fmt, block_bytes, bpw):
    # the sizes ggml-common.h asserts with static_assert(sizeof(block_...) == ...)
    assert Q.FORMATS[fmt].block_bytes == block_bytes
    assert Q.FORMATS[fmt].bits_per_weight == bpw


def test_quantized_bytes_and_its_errors():
    assert Q.quantized_bytes(4, 512, "Q4_K") == 4 * 2 * 144
    with pytest.raises(ValueError, match="multiple"):
        Q.quantized_bytes(4, 896, "Q4_K")
    with pytest.raises(ValueError, match="unknown format"):
        Q.quantized_bytes(4, 512, "Q3_X")
    with pytest.raises(ValueError, match="positive"):
        Q.quantized_bytes(0, 512, "Q8_0")


@pytest.mark.parametrize("cfg", LLAMA_LIKE, ids=lambda c: c.model)
def test_gguf_tensors_hold_exactly_the_models_parameters(cfg):
    assert sum(t.n_elements for t in Q.gguf_tensors(cfg)) == cfg.total_params


def test_gguf_layout_refuses_families_it_does_not_model():
    with pytest.raises(ValueError, match="families"):
        Q.gguf_tensors(models.get_model("GPT-2 small"))


def test_use_more_bits_picks_half_of_32_layers():
    chosen = [i for i in range(32) if Q.use_more_bits(i, 32)]
    assert chosen == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]


def test_q4_k_m_keeps_an_untied_token_table_at_q4_k_and_the_output_at_q6_k():
    types = {t.name: fmt for t, fmt in Q.q4_k_m_tensor_types(models.get_model("Llama 3.1 8B"))}
    assert types["token_embd.weight"] == "Q4_K" and types["output.weight"] == "Q6_K"
    assert types["blk.0.attn_v.weight"] == "Q6_K" and types["blk.4.attn_v.weight"] == "Q4_K"
    assert types["blk.6.ffn_down.weight"] == "Q6_K" and types["blk.5.ffn_down.weight"] == "Q4_K"
    assert types["blk.0.attn_norm.weight"] == "F32"
    total = Q.mixture_bytes(Q.q4_k_m_tensor_types(models.get_model("Llama 3.1 8B")))["total"]
    assert 4.85 < 8 * total / models.get_model("Llama 3.1 8B").total_params < 4.95


def test_tied_tables_take_the_output_type_and_odd_widths_fall_back():
    gemma = {t.name: f for t, f in Q.q4_k_m_tensor_types(models.get_model("Gemma 2B"))}
    assert gemma["token_embd.weight"] == "Q6_K" and "output.weight" not in gemma
    qwen = {t.name: f for t, f in Q.q4_k_m_tensor_types(models.get_model("Qwen2.5 0.5B"))}
    assert qwen["token_embd.weight"] == "Q8_0"  # 896 columns: not a multiple of 256
    assert qwen["blk.1.attn_q.weight"] == "Q5_0" and qwen["blk.1.attn_q.bias"] == "F32"
    phi = {t.name: f for t, f in Q.q4_k_m_tensor_types(models.get_model("Phi-3-mini (128k)"))}
    assert phi["blk.0.attn_qkv.weight"] == "Q5_K"
    llama70 = {t.name: f for t, f in Q.q4_k_m_tensor_types(models.get_model("Llama 3.1 70B"))}
    assert llama70["blk.20.attn_v.weight"] in ("Q5_K", "Q6_K") and "Q4_K" not in {
        f for n, f in llama70.items() if n.endswith("attn_v.weight")
    }


def test_every_block_layout_matches_the_gguf_package():
    # gguf (ggml's Python package) carries GGML_QUANT_SIZES: (values per block, bytes per block) for every type
    gguf = pytest.importorskip("gguf")
    sizes = gguf.constants.GGML_QUANT_SIZES
    for name, fmt in Q.FORMATS.items():
        block_values, block_bytes = sizes[gguf.constants.GGMLQuantizationType[name]]
        assert (fmt.block_values, fmt.block_bytes) == (block_values, block_bytes), name
    # the fallbacks are ggml types whose block divides more rows
    for k_quant, fallback in Q.FALLBACK.items():
        assert sizes[gguf.constants.GGMLQuantizationType[fallback]][0] < Q.QK_K, k_quant


def test_q5_k_falls_back_to_q5_1_and_microscaling_bits():
    assert Q.FALLBACK["Q5_K"] == "Q5_1" and Q._fits("Q5_K", 896) == "Q5_1"
    assert Q._fits("Q4_K", 896) == "Q5_0" and Q._fits("Q6_K", 896) == "Q8_0" and Q._fits("Q4_K", 900) == "F16"
    # MXFP4: 32 E2M1 values + one E8M0 byte; NVFP4: 16 E2M1 values + one E4M3 byte (+ an FP32 per tensor)
    assert Q.microscaling_bits_per_weight(4, 32, 8) == Q.FORMATS["MXFP4"].bits_per_weight == 4.25
    assert Q.microscaling_bits_per_weight(4, 16, 8) == Q.FORMATS["NVFP4"].bits_per_weight == 4.5
    assert Q.microscaling_bits_per_weight(4, 16, 8, 32, 2**20) == pytest.approx(4.5 + 32 / 2**20)
    with pytest.raises(ValueError, match="n_elements"):
        Q.microscaling_bits_per_weight(4, 16, 8, 32)
