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


@pytest.mark.parametrize(
    "accounting, weights, grads, master", [("amp", 4, 4, 0), ("zero", 2, 2, 4), ("megatron", 2, 4, 4)]
)
def test_measured_training_state_of_a_real_step(accounting, weights, grads, master):
    got = T.measure_training_step(accounting, vocab=96, dim=32, n_layers=1, tokens=16)
    model = T.TinyLlama(96, 32, 1)
    n = sum(p.numel() for p in model.parameters())
    n_tensors = len(list(model.parameters()))
    assert got["parameters"] == n
    assert (got["weights"], got["gradients"], got["master"]) == (weights * n, grads * n, master * n)
    # Adam: two float32 moments per parameter, plus one float32 step counter per parameter tensor
    assert got["optimizer"] == 8 * n + 4 * n_tensors
    with pytest.raises(ValueError, match="accounting"):
        T.measure_training_step("deepspeed")


def test_state_recipes():
    assert T.recipe_bytes_per_parameter("bf16 + fp32 master + Adam (ZeRO)") == 16
    assert T.recipe_bytes_per_parameter("bf16, fp32 grads + Adam (Megatron)") == 18
    assert T.recipe_bytes_per_parameter("bf16 + fp32 master + 8-bit Adam") == pytest.approx(10 + 8 / 2048)
    assert all(r["source"] for r in T.STATE_RECIPES.values())
    with pytest.raises(KeyError, match="known"):
        T.recipe_bytes_per_parameter("fp4")


def test_traced_peak_sees_numpy_buffers_and_returns_the_result():
    result, peak = traced_peak_bytes(lambda: float(np.ones(1_000_000).sum()))
    assert result == 1_000_000.0 and 8_000_000 <= peak < 9_000_000
    with pytest.raises(ValueError):
        traced_peak_bytes(42)


def test_recompute_strategies_relate_as_korthikanti_table_2():
    s, b, h, a = 2048, 2, 1024, 16
    none = A.korthikanti_layer_bytes(s, b, h, a)
    got = {k: A.korthikanti_strategy_bytes(s, b, h, a, k, tensor_parallel=8) for k in A.RECOMPUTE_STRATEGIES}
    assert got["none"] == none
    assert got["selective"] == none - 5 * a * s * s * b  # the attention scores are recomputed
    assert got["tensor+sequence"] == pytest.approx(none / 8)  # everything split 8 ways
    assert got["tensor+sequence+selective"] == pytest.approx(got["selective"] / 8)
    assert got["full"] == 2 * s * b * h  # only the layer input, in 16 bits
    # tensor parallelism alone keeps 10 sbh whole; at t = 1 it is no parallelism at all
    assert A.korthikanti_strategy_bytes(s, b, h, a, "tensor", 1) == none
    assert got["tensor"] - got["tensor+sequence"] == pytest.approx(10 * s * b * h * (1 - 1 / 8))
    with pytest.raises(ValueError, match="strategy"):
        A.korthikanti_strategy_bytes(s, b, h, a, "offload")
    with pytest.raises(ValueError, match="tensor_parallel"):
        A.korthikanti_strategy_bytes(s, b, h, a, "tensor", 0)


def test_llama_layer_saves_a_per_token_amount_proportional_to_width():
    per = [
        A.activation_bytes_per_token(lambda h=h: A.LlamaLayer(h, h // 32, h // 128, 7 * h // 2), h, seq_len=32) / h
        for h in (256, 512)
    ]
    assert per[0] == pytest.approx(per[1], rel=0.02)
    # far above the 34 sbh of GPT's formula with selective recomputation, below GPT's + attention at this size
    assert 40 < per[1] < 70
    # eager attention keeps the s x s softmax: more per token, and growing with the sequence
    eager = [
        A.activation_bytes_per_token(lambda: A.LlamaLayer(256, 8, 2, 896, attention="eager"), 256, seq_len=n)
        for n in (32, 64)
    ]
    assert eager[0] > per[0] * 256 and eager[1] > eager[0]
    layer = A.LlamaLayer(64, 4, 2, 224)
    assert layer(torch.randn(2, 5, 64)).shape == (2, 5, 64)
    with pytest.raises(ValueError):
        A.LlamaLayer(64, 4, 3, 224)
    with pytest.raises(ValueError, match="attention"):
        A.LlamaLayer(64, 4, 2, 224, attention="flash")


def test_llama_layer_matches_transformers_llama_decoder_layer():
    transformers = pytest.importorskip("transformers")
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding

    h, a, kv, f = 128, 8, 2, 448
    cfg = transformers.LlamaConfig(
        hidden_size=h,
        num_attention_heads=a,
        num_key_value_heads=kv,
        intermediate_size=f,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        attn_implementation="sdpa",
        max_position_embeddings=1024,
    )

    class Reference(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer, self.rotary = LlamaDecoderLayer(cfg, layer_idx=0), LlamaRotaryEmbedding(cfg)

        def forward(self, x):
            pos = torch.arange(x.shape[1])[None]
            out = self.layer(x, attention_mask=None, position_ids=pos, position_embeddings=self.rotary(x, pos))
            return out[0] if isinstance(out, tuple) else out

    torch.manual_seed(0)
    ref = Reference()
    ours = A.LlamaLayer(h, a, kv, f)
    names = {"norm1": "input_layernorm", "norm2": "post_attention_layernorm"}
    names |= {k: f"self_attn.{k}_proj" for k in "qkvo"} | {k: f"mlp.{k}_proj" for k in ("gate", "up", "down")}
    with torch.no_grad():
        for ours_name, ref_name in names.items():
            ours.get_submodule(ours_name).weight.copy_(ref.layer.get_submodule(ref_name).weight)
    x = torch.randn(2, 24, h)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    # and autograd keeps the same bytes for the backward pass, per token
    assert A.activation_bytes_per_token(lambda: A.LlamaLayer(h, a, kv, f), h, seq_len=32) == (
        A.activation_bytes_per_token(Reference, h, seq_len=32)
    )
