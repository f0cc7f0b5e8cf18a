"""Inference and sharding helpers of the memory-scaling chapter."""

from __future__ import annotations

import pytest

from autograder import models
from autograder.book import inference as I
from autograder.book import sharding as S
from autograder.reference import numpy_ref as N

LLAMA8 = models.get_model("Llama 3.1 8B")


def test_kv_cache_per_token_and_what_gqa_saved():
    assert I.kv_cache_bytes_per_token(LLAMA8) == 2 * 32 * 8 * 128 * 2 == 128 * 2**10
    assert I.mha_kv_cache_bytes_per_token(LLAMA8) == 4 * I.kv_cache_bytes_per_token(LLAMA8)
    assert I.kv_cache_bytes_for(LLAMA8, 131072) == 16 * 2**30
    assert I.kv_cache_bytes_for(LLAMA8, 10, "float32", batch_size=3) == 3 * 10 * 2 * I.kv_cache_bytes_per_token(LLAMA8)


def test_flops_per_token_count_multiplied_parameters_only():
    # untied: the token table is a lookup (no FLOPs), the output table a matrix product
    assert I.matmul_parameters(LLAMA8) == LLAMA8.total_params - LLAMA8.token_embedding_params
    tied = models.get_model("Llama 3.2 1B")
    assert I.matmul_parameters(tied) == tied.total_params  # the tied table counts once, at the output
    gpt2 = models.get_model("GPT-2 small")
    assert I.matmul_parameters(gpt2) == gpt2.total_params - models.parameter_breakdown(gpt2)["position_embedding"]
    assert I.training_flops_per_token(LLAMA8) == 3 * I.forward_flops_per_token(LLAMA8)


def test_decode_reads_every_multiplied_weight_one_table_row_and_the_cache():
    # an untied input table is read one row per token, not whole: Llama 3.1 8B reads V*D - D fewer values
    untouched = LLAMA8.token_embedding_params - LLAMA8.d_model
    assert I.decode_bytes_per_token(LLAMA8, 0) == 2 * (LLAMA8.total_params - untouched)
    assert I.decode_bytes_per_token(LLAMA8, 100) == 2 * (LLAMA8.total_params - untouched) + 100 * 128 * 2**10
    # the figures: 14.98 GiB and 208 tokens/s on an H100 at 8k tokens (not 15.96 GiB / 196)
    read = I.decode_bytes_per_token(LLAMA8, 8192)
    assert round(read / 2**30, 2) == 14.98 and round(3.35e12 / read) == 208
    # a tied table is the output layer: read whole, plus the looked-up row
    tied = models.get_model("Llama 3.2 1B")
    assert I.decode_weight_parameters(tied) == tied.total_params + tied.d_model
    gpt2 = models.get_model("GPT-2 small")  # learned positions: one position row too
    assert I.decode_weight_parameters(gpt2) == gpt2.total_params - 1024 * 768 + 2 * 768


def test_attention_flops_cap_at_the_window_and_the_context():
    # 4 L h d T: +29% over 2N for Llama 3.1 8B at 8k tokens (the figure)
    assert I.attention_flops_per_token(LLAMA8, 8192) == 4 * 32 * 32 * 128 * 8192
    assert round(I.attention_flops_per_token(LLAMA8, 8192) / I.forward_flops_per_token(LLAMA8), 2) == 0.29
    assert I.decode_flops_per_token(LLAMA8, 0) == I.forward_flops_per_token(LLAMA8)
    mistral = models.get_model("Mistral 7B")  # v0.1: a 4096-token window in every layer
    assert I.sliding_window(mistral) == 4096 and I.sliding_window(LLAMA8) is None
    assert I.kv_cache_bytes_for(mistral, 32768) == I.kv_cache_bytes_for(mistral, 4096)
    assert I.attention_flops_per_token(mistral, 30000) == I.attention_flops_per_token(mistral, 4096)
    phi = models.get_model("Phi-3-mini (128k)")  # a window larger than the context changes nothing
    assert I.kv_tokens_per_layer(phi, 131072) == 131072
    with pytest.raises(ValueError, match="context"):
        I.kv_cache_bytes_for(models.get_model("Gemma 2B"), 8193)
    with pytest.raises(ValueError, match="context"):
        I.decode_bytes_per_token(models.get_model("GPT-2 small"), 2048)


def test_mla_and_paged_caches():
    got = I.mla_kv_values_per_token(I.DEEPSEEK_V3_MLA)
    assert got["mla"] == 61 * 576 and got["mha"] == 61 * 128 * (128 + 64 + 128)
    paged = I.paged_kv_cache_bytes(LLAMA8, [1, 16, 17], block_tokens=16)
    per_token = I.kv_cache_bytes_per_token(LLAMA8)
    assert paged["exact"] == 34 * per_token and paged["paged"] == (16 + 16 + 32) * per_token
    assert paged["contiguous"] == 3 * 131072 * per_token
    with pytest.raises(ValueError):
        I.paged_kv_cache_bytes(LLAMA8, [4], block_tokens=0)


@pytest.mark.parametrize("stage, per_param", [(0, 16), (1, 4 + 12 / 8), (2, 2 + 14 / 8), (3, 16 / 8)])
def test_zero_stages_follow_the_paper(stage, per_param):
    assert S.zero_bytes_per_device(1000, 8, stage) == pytest.approx(1000 * per_param)


def test_zero_stage_zero_is_training_bytes_and_megatron_is_eighteen():
    assert S.zero_bytes_per_device(10**6, 64, 0) == N.training_bytes(10**6, "bfloat16", "adam")
    assert S.zero_bytes_per_device(10**6, 1, 0, grad_bytes=4) == 18 * 10**6
    with pytest.raises(ValueError, match="stage"):
        S.zero_bytes_per_device(10, 8, 4)
    with pytest.raises(ValueError):
        S.zero_bytes_per_device(10, 0, 1)


def test_vocabulary_padding_and_parallel_split():
    assert S.padded_vocab_size(50257, 64) == 50304  # nanoGPT's GPT-2 vocabulary
    part = S.vocab_parallel_bytes_per_device(128256, 4096, 16, tp=8)
    assert part["padded_vocab"] % (128 * 8) == 0 and part["padded_vocab"] >= 128256
    assert part["rows"] * 8 == part["padded_vocab"]
    assert part["table_bytes"] == part["rows"] * 4096 * 2 and part["logits_bytes"] == 16 * part["rows"] * 4
    with pytest.raises(ValueError):
        S.padded_vocab_size(0, 64)


def test_vocab_parallel_loss_exchanges_three_values_per_token():
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    logits = 5 * torch.randn(12, 1000, dtype=torch.float64)
    targets = torch.randint(1000, (12,))
    for shards in (logits.split(250, dim=1), logits.split([100, 400, 500], dim=1)):
        loss, exchanged = S.vocab_parallel_cross_entropy(list(shards), targets)
        assert float(loss) == pytest.approx(float(F.cross_entropy(logits, targets)), rel=1e-12)
        assert exchanged == {"values_per_token": 3, "all_reduces": 2}  # max; target logit + sum of exponentials
    with pytest.raises(ValueError, match="rows"):
        S.vocab_parallel_cross_entropy([logits[:5]], targets)
