"""Tests of chapter 2's RoPE helpers: the two pair layouts and their weight permutation (``rope_layouts``), and the
frequencies of released models and of the context-extension methods (``rope_scaling``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autograder import models
from autograder.book import rope_scaling as rs
from autograder.book.rope_layouts import half_split_permutation, permute_heads_to_half, rope_rotate, rotate_half
from autograder.reference import torch_ref


# ----------------------------------------------------------------------------------------------- layouts
@pytest.mark.parametrize("shape", [(5, 8), (2, 3, 7, 16), (1, 64)])
def test_rope_rotate_matches_the_torch_reference(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    positions = torch.arange(shape[-2]) * 37 + 5
    expected = torch_ref.apply_rope(x.double(), positions).float()
    torch.testing.assert_close(rope_rotate(x, positions), expected, atol=1e-4, rtol=1e-4)
    assert rope_rotate(x, positions).dtype == x.dtype


@pytest.mark.parametrize("layout", ["interleaved", "half"])
def test_rope_rotate_scores_depend_only_on_the_offset(layout):
    q, k = torch.randn(2, 32, generator=torch.Generator().manual_seed(1)).unbind(0)
    pos = torch.arange(40)
    scores = rope_rotate(q.expand(40, 32), pos, layout=layout) @ rope_rotate(k.expand(40, 32), pos, layout=layout).T
    for offset in (-7, 0, 11):
        diag = torch.diagonal(scores, offset)
        assert float(diag.max() - diag.min()) < 1e-4


def test_half_layout_is_the_interleaved_one_on_permuted_dimensions():
    x = torch.randn(3, 9, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    pos = torch.arange(9) * 101
    perm = torch.as_tensor(half_split_permutation(16))
    assert perm.tolist() == [0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15]
    torch.testing.assert_close(rope_rotate(x[..., perm], pos, layout="half"), rope_rotate(x, pos)[..., perm])
    assert torch.equal(rotate_half(torch.arange(4.0)), torch.tensor([-2.0, -3.0, 0.0, 1.0]))


def test_permuting_projection_rows_gives_identical_scores_and_mixing_layouts_does_not():
    gen = torch.Generator().manual_seed(3)
    n_heads, head_dim, d_model, T = 4, 8, 32, 12
    x = torch.randn(T, d_model, dtype=torch.float64, generator=gen)
    w_q, w_k = (torch.randn(n_heads * head_dim, d_model, dtype=torch.float64, generator=gen) for _ in range(2))
    pos = torch.arange(T)

    def scores(wq, wk, layout):
        q = (x @ wq.T).view(T, n_heads, head_dim).transpose(0, 1)
        k = (x @ wk.T).view(T, n_heads, head_dim).transpose(0, 1)
        return rope_rotate(q, pos, layout=layout) @ rope_rotate(k, pos, layout=layout).transpose(-1, -2)

    meta = scores(w_q, w_k, "interleaved")
    converted = scores(permute_heads_to_half(w_q, n_heads), permute_heads_to_half(w_k, n_heads), "half")
    torch.testing.assert_close(converted, meta)
    mixed = scores(w_q, w_k, "half")  # unconverted weights in the other layout
    assert (mixed - meta).abs().max() > 0.1 * meta.abs().max()
    torch.testing.assert_close(
        torch.diagonal(mixed, 0, -2, -1),
        torch.diagonal(meta, 0, -2, -1),  # offset 0 agrees
        rtol=1e-5,
        atol=1e-5,
    )


def test_layout_helpers_reject_bad_arguments():
    with pytest.raises(ValueError, match="even"):
        rope_rotate(torch.zeros(4, 5), torch.arange(4))
    with pytest.raises(ValueError, match="positions"):
        rope_rotate(torch.zeros(4, 6), torch.arange(3))
    with pytest.raises(ValueError, match="layout"):
        rope_rotate(torch.zeros(4, 6), torch.arange(4), layout="neox")
    with pytest.raises(ValueError, match="inv_freq"):
        rope_rotate(torch.zeros(4, 6), torch.arange(4), inv_freq=torch.ones(2))
    with pytest.raises(ValueError, match="even"):
        half_split_permutation(7)
    with pytest.raises(ValueError, match="heads"):
        permute_heads_to_half(torch.zeros(12, 3), 4)


# ----------------------------------------------------------------------------------------------- frequencies
def test_unscaled_frequencies_run_over_the_rotated_head_dimension():
    f = rs.inv_freq(128, 500_000.0)
    assert f.shape == (64,) and f[0] == 1.0
    np.testing.assert_allclose(f[1], 500_000.0 ** (-2 / 128))
    np.testing.assert_allclose(f[-1], 500_000.0 ** (-126 / 128))
    with pytest.raises(ValueError, match="even"):
        rs.inv_freq(7)
    with pytest.raises(ValueError, match="exceed 1"):
        rs.inv_freq(8, 1.0)


def test_position_interpolation_and_ntk_aware_scaling():
    base = rs.inv_freq(64, 10000.0)
    np.testing.assert_allclose(rs.position_interpolation(64, 10000.0, 4.0), base / 4)
    ntk = rs.ntk_aware(64, 10000.0, 4.0)
    assert ntk[0] == base[0]  # the fastest pair is kept
    np.testing.assert_allclose(ntk[-1], base[-1] / 4)  # the slowest is interpolated by the full factor
    assert np.all(np.diff(base / ntk) > 0)  # and the factor grows monotonically between
    with pytest.raises(ValueError, match=">= 1"):
        rs.position_interpolation(64, 10000.0, 0.5)


def test_yarn_keeps_fast_pairs_interpolates_slow_ones_and_scales_attention():
    freqs, attention = rs.yarn(128, 10000.0, 4.0, 4096)
    base = rs.inv_freq(128, 10000.0)
    rotations = 4096 * base / (2 * math.pi)  # turns over the original context
    np.testing.assert_allclose(freqs[rotations > 32 * 1.5], base[rotations > 32 * 1.5])
    np.testing.assert_allclose(freqs[rotations < 1 / 1.5], base[rotations < 1 / 1.5] / 4)
    middle = (freqs < base) & (freqs > base / 4)
    assert middle.any()
    assert attention == pytest.approx(0.1 * math.log(4) + 1)
    assert rs.yarn(128, 10000.0, 4.0, 4096, attention_factor=0.7)[1] == 0.7
    # DeepSeek's ratio of two temperatures: equal mscales cancel
    assert rs.yarn(64, 10000.0, 40.0, 4096, mscale=1.0, mscale_all_dim=1.0)[1] == 1.0
    ratio = rs.yarn(64, 10000.0, 40.0, 4096, mscale=0.5, mscale_all_dim=1.0)[1]
    assert ratio == pytest.approx((0.05 * math.log(40) + 1) / (0.1 * math.log(40) + 1))
    # truncate=False keeps the ramp's fractional ends: a different, still monotone, blend
    cut, _ = rs.yarn(64, 150000.0, 32.0, 4096, truncate=True)
    smooth, _ = rs.yarn(64, 150000.0, 32.0, 4096, truncate=False)
    assert not np.allclose(cut, smooth) and np.all(np.diff(smooth) < 0)


def test_dynamic_ntk_changes_nothing_up_to_the_trained_length_then_raises_the_base():
    base = rs.inv_freq(128, 10000.0)
    for seq_len in (None, 1, 4096):
        np.testing.assert_array_equal(rs.dynamic_ntk(128, 10000.0, 2.0, 4096, seq_len), base)
    assert rs.dynamic_effective_factor(2.0, 4096, 8192) == 3.0  # f T / L - (f - 1), not T / L
    assert rs.dynamic_effective_factor(4.0, 4096, 4096 * 7 // 4) == 4.0  # reaches f at T = (2f - 1) L / f
    np.testing.assert_allclose(rs.dynamic_ntk(128, 10000.0, 2.0, 4096, 8192), rs.ntk_aware(128, 10000.0, 3.0))
    longer = [rs.dynamic_ntk(128, 10000.0, 2.0, 4096, t)[-1] for t in (5000, 8192, 20000)]
    assert longer[0] > longer[1] > longer[2]


def test_llama3_scaling_on_llama_3_1_8b():
    cfg = models.get_model("Llama 3.1 8B")
    freqs, attention = rs.model_inv_freq(cfg)
    base = rs.inv_freq(128, 500_000.0)
    wavelen = 2 * math.pi / base
    assert attention == 1.0
    np.testing.assert_allclose(freqs[wavelen < 8192 / 4], base[wavelen < 8192 / 4])  # short wavelengths kept
    np.testing.assert_allclose(freqs[wavelen > 8192 / 1], base[wavelen > 8192 / 1] / 8)  # long ones divided by 8
    between = (wavelen >= 2048) & (wavelen <= 8192)
    assert between.any() and np.all((freqs[between] <= base[between]) & (freqs[between] >= base[between] / 8))


def test_longrope_on_phi3_switches_lists_at_the_original_context():
    cfg = models.get_model("Phi-3-mini (128k)")
    lists = rs.longrope_factors(cfg.model)
    assert len(lists["short_factor"]) == len(lists["long_factor"]) == cfg.head_dim // 2 == 48
    assert lists["model"] == "Phi-3.5-mini-instruct" and "could not be retrieved" in lists["note"]
    base = rs.inv_freq(96, 10000.0)
    at_init, attention_init = rs.model_inv_freq(cfg)  # no length yet: the short list, as Transformers' module init
    short, attention = rs.model_inv_freq(cfg, seq_len=4096)
    long, attention_long = rs.model_inv_freq(cfg, seq_len=4097)
    np.testing.assert_array_equal(at_init, short)
    np.testing.assert_allclose(short, base / np.array(lists["short_factor"]))
    np.testing.assert_allclose(long, base / np.array(lists["long_factor"]))
    expected = math.sqrt(1 + math.log(32) / math.log(4096))
    assert attention_init == attention == attention_long == pytest.approx(expected)
    # an explicit factor or attention_factor wins over max_positions / original
    ones = [1.0] * 48
    assert rs.longrope(96, 1e4, ones, ones, 4096, factor=4.0, max_positions=131072)[1] == pytest.approx(
        math.sqrt(1 + math.log(4) / math.log(4096))
    )
    assert rs.longrope(96, 1e4, ones, ones, 4096, max_positions=131072, attention_factor=1.5)[1] == 1.5
    with pytest.raises(ValueError, match="one factor per pair"):
        rs.longrope(96, 10000.0, [1.0] * 47, ones, 4096, max_positions=131072, seq_len=10)
    with pytest.raises(ValueError, match="factor or max_positions"):
        rs.longrope(96, 10000.0, ones, ones, 4096)
    with pytest.raises(KeyError, match="Phi-3.5-mini-instruct"):
        rs.longrope_factors("GPT-2 small")


def test_model_inv_freq_uses_each_rows_theta_and_refuses_learned_positions():
    qwen, _ = rs.model_inv_freq(models.get_model("Qwen2.5 7B"))
    np.testing.assert_allclose(qwen, rs.inv_freq(128, 1_000_000.0))
    with pytest.raises(ValueError, match="learned"):
        rs.model_inv_freq(models.get_model("GPT-2 small"))


def test_rope_parameters_reads_old_and_v5_configs():
    old = {"rope_theta": 5e5, "max_position_embeddings": 100, "rope_scaling": {"type": "yarn", "factor": 2.0}}
    assert rs.rope_parameters(old) == {
        "rope_type": "yarn",
        "rope_theta": 5e5,
        "factor": 2.0,
        "original_max_position_embeddings": 100,
    }
    assert "type" in old["rope_scaling"]  # the input is left alone
    v5 = {"rope_parameters": {"rope_theta": 1e6, "rope_type": "linear", "factor": 8.0}}
    assert rs.rope_parameters(v5) == v5["rope_parameters"]
    assert rs.rope_parameters({"rope_theta": 1e4}) == {"rope_type": "default", "rope_theta": 1e4}
    gemma3 = rs.rope_config("Gemma 3 4B")["config"]
    with pytest.raises(ValueError, match="layer_type"):
        rs.config_inv_freq(gemma3)
    with pytest.raises(ValueError, match="unknown rope_type"):
        rs.init_from_parameters({"rope_type": "su", "rope_theta": 1e4}, 64, 4096)
    with pytest.raises(KeyError, match="Gemma 3 4B"):
        rs.rope_config("Gemma 9")


# ----------------------------------------------------------------------------------------------- score biases
def test_alibi_slopes_follow_the_papers_geometric_rule():
    from autograder.book.relative_bias import alibi_bias, alibi_slopes

    np.testing.assert_allclose(alibi_slopes(8), [2.0**-k for k in range(1, 9)])
    np.testing.assert_allclose(alibi_slopes(4), [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8])
    twelve = alibi_slopes(12)  # not a power of two: 8 slopes, then every other one of 16
    np.testing.assert_allclose(twelve[:8], alibi_slopes(8))
    np.testing.assert_allclose(twelve[8:], alibi_slopes(16)[0::2][:4])
    bias = alibi_bias(4, np.array([0.5]))
    assert bias[0, 3, 0] == -1.5 and bias[0, 2, 2] == 0 and np.isneginf(bias[0, 0, 1])
    with pytest.raises(ValueError):
        alibi_slopes(0)


def test_t5_buckets_are_exact_near_logarithmic_far_and_saturate():
    from autograder.book.relative_bias import t5_bucket

    rel = np.arange(-200, 201)
    causal = t5_bucket(rel, bidirectional=False)
    np.testing.assert_array_equal(causal[rel >= 0], 0)  # later keys: bucket 0 in the decoder
    np.testing.assert_array_equal(t5_bucket(-np.arange(16), bidirectional=False), np.arange(16))  # exact below 16
    assert (
        t5_bucket(np.array([-127]), bidirectional=False)[0]
        == 31
        == t5_bucket(np.array([-5000]), bidirectional=False)[0]
    )
    assert np.all(np.diff(t5_bucket(-np.arange(300), bidirectional=False)) >= 0)
    both = t5_bucket(rel)
    assert both.min() == 0 and both.max() == 31
    np.testing.assert_array_equal(both[rel > 0] >= 16, True)  # keys after the query: the upper half
    np.testing.assert_array_equal(t5_bucket(np.arange(1, 8)), 16 + np.arange(1, 8))
