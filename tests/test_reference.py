"""Cross-checks of the NumPy references against the PyTorch references, autograd and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autograder.reference import numpy_ref as N
from autograder.reference import torch_ref as T

settings.register_profile("course", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("course")

INT_DTYPES = st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16])


@st.composite
def table_and_ids(draw, max_vocab=40, max_dim=9):
    """A float table (V, D) and integer ids of any shape (empty, scalar, repeated) that index it."""
    vocab = draw(st.integers(1, max_vocab))
    dim = draw(st.integers(1, max_dim))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    weight = draw(hnp.arrays(dtype, (vocab, dim), elements=st.floats(-10, 10, width=32)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    id_dtype = draw(INT_DTYPES.filter(lambda d: np.iinfo(d).max >= vocab - 1))
    ids = draw(hnp.arrays(id_dtype, shape, elements=st.integers(0, vocab - 1)))
    return weight, ids


# ------------------------------------------------------------------------------------------ token embeddings
@given(table_and_ids())
def test_embedding_forward_matches_torch_and_one_hot(case):
    weight, ids = case
    out = N.embedding_forward(weight, ids)
    assert out.shape == ids.shape + (weight.shape[1],) and out.dtype == weight.dtype
    ref = T.embedding_forward(torch.from_numpy(weight), torch.from_numpy(ids.astype(np.int64))).numpy()
    np.testing.assert_array_equal(out, ref)
    codes = N.one_hot(ids, weight.shape[0])
    assert codes.dtype == np.float32 and codes.shape == ids.shape + (weight.shape[0],)
    np.testing.assert_array_equal(codes, T.one_hot(torch.from_numpy(ids.astype(np.int64)), weight.shape[0]).numpy())
    np.testing.assert_allclose(codes.astype(weight.dtype) @ weight, out, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bad", [-1, 5, -6, 100])
def test_out_of_range_ids_raise_index_error(bad):
    weight = np.arange(10.0).reshape(5, 2)
    with pytest.raises(IndexError):
        N.embedding_forward(weight, np.array([0, bad]))
    with pytest.raises(IndexError):
        N.one_hot(np.array([[bad]]), 5)
    with pytest.raises(IndexError):
        N.embedding_backward(np.ones((2, 2)), np.array([0, bad]), 5)
    with pytest.raises(IndexError):
        T.embedding_forward(torch.from_numpy(weight), torch.tensor([0, bad]))


@pytest.mark.parametrize("ids", [np.array([0.0, 1.0]), np.array([True, False]), np.array(["1"])])
def test_non_integer_ids_raise_type_error(ids):
    with pytest.raises(TypeError):
        N.embedding_forward(np.ones((3, 2)), ids)
    with pytest.raises(TypeError):
        N.one_hot(ids, 3)


def test_xavier_uniform_bound_determinism_and_moments():
    vocab, dim = 3000, 200
    a = math.sqrt(6 / (vocab + dim))
    w = N.xavier_uniform(vocab, dim, np.random.default_rng(7))
    assert w.shape == (vocab, dim) and w.dtype == np.float32
    assert np.abs(w).max() <= a and np.abs(w).max() > 0.99 * a
    np.testing.assert_array_equal(w, N.xavier_uniform(vocab, dim, np.random.default_rng(7)))
    assert not np.array_equal(w, N.xavier_uniform(vocab, dim, np.random.default_rng(8)))
    assert abs(w.mean()) < 0.01 * a and abs(w.var() / (a * a / 3) - 1) < 0.01
    wt = T.xavier_uniform(vocab, dim, torch.Generator().manual_seed(0)).numpy()
    assert abs(np.abs(wt).max() - np.abs(w).max()) < 1e-3 * a and abs(wt.var() / w.var() - 1) < 0.02


@given(st.integers(2, 30), st.integers(1, 6), st.data())
def test_nearest_neighbors_matches_torch_and_brute_force(vocab, dim, data):
    weight = data.draw(hnp.arrays(np.float64, (vocab, dim), elements=st.integers(-3, 3).map(float)))
    query = data.draw(st.integers(0, vocab - 1))
    k = data.draw(st.integers(1, vocab - 1))
    got = N.nearest_neighbors(weight, query, k)
    np.testing.assert_array_equal(got, T.nearest_neighbors(torch.from_numpy(weight), query, k).numpy())

    # brute force in pure Python: sort by (-cosine, id)
    def cos(i):
        u, v = weight[i], weight[query]
        nu, nv = np.linalg.norm(u), np.linalg.norm(v)
        return 0.0 if nu == 0 or nv == 0 else float(u @ v / (nu * nv))

    expected = sorted((i for i in range(vocab) if i != query), key=lambda i: (-round(cos(i), 12), i))[:k]
    assert got.tolist() == expected and query not in got


def test_nearest_neighbors_uses_cosine_not_dot_product():
    weight = np.array([[1.0, 0.0], [10.0, 9.0], [0.9, 0.1], [0.0, 1.0]])
    assert N.nearest_neighbors(weight, 0, 2).tolist() == [2, 1]  # a dot product would rank row 1 first
    with pytest.raises(ValueError):
        N.nearest_neighbors(weight, 0, 4)
    with pytest.raises(IndexError):
        N.nearest_neighbors(weight, -1, 1)


# ------------------------------------------------------------------------------------------ positions
@given(st.integers(1, 64), st.integers(1, 16).map(lambda h: 2 * h), st.sampled_from([100.0, 10000.0]))
def test_sinusoidal_matches_torch_and_formula(max_len, dim, base):
    pe = N.sinusoidal_positions(max_len, dim, base)
    assert pe.shape == (max_len, dim) and pe.dtype == np.float32
    np.testing.assert_allclose(pe, T.sinusoidal_positions(max_len, dim, base).numpy(), atol=1e-6)
    p, i = max_len - 1, dim // 2 - 1
    assert pe[p, 2 * i] == pytest.approx(math.sin(p / base ** (2 * i / dim)), abs=1e-6)
    assert pe[p, 2 * i + 1] == pytest.approx(math.cos(p / base ** (2 * i / dim)), abs=1e-6)
    np.testing.assert_array_equal(pe[0, 0::2], 0.0)
    np.testing.assert_array_equal(pe[0, 1::2], 1.0)


def _sinusoidal_by_hand(max_len: int, dim: int, base: float) -> np.ndarray:
    """The contract's formula entry by entry in plain Python floats: ``PE[p, 2i] = sin(p / base**(2i/D))``,
    ``PE[p, 2i+1] = cos(p / base**(2i/D))``."""
    table = np.empty((max_len, dim))
    for p in range(max_len):
        for i in range(dim // 2):
            table[p, 2 * i] = math.sin(p / base ** (2 * i / dim))
            table[p, 2 * i + 1] = math.cos(p / base ** (2 * i / dim))
    return table


def _rope_by_hand(x: np.ndarray, positions: np.ndarray, base: float) -> np.ndarray:
    """The contract's rotation pair by pair in plain Python floats: ``(x[..., t, 2i], x[..., t, 2i+1])`` turned by
    ``positions[t] * base**(-2i/D)``."""
    out = np.empty(x.shape)
    dim = x.shape[-1]
    for index in np.ndindex(x.shape[:-1]):
        angle_per_pair = [float(positions[index[-1]]) * base ** (-2 * i / dim) for i in range(dim // 2)]
        for i, angle in enumerate(angle_per_pair):
            a, b = float(x[index + (2 * i,)]), float(x[index + (2 * i + 1,)])
            out[index + (2 * i,)] = a * math.cos(angle) - b * math.sin(angle)
            out[index + (2 * i + 1,)] = a * math.sin(angle) + b * math.cos(angle)
    return out


BASES = st.sampled_from([10.0, 100.0, 500.0, 10000.0, 500000.0])


@given(st.integers(1, 40), st.integers(1, 12).map(lambda h: 2 * h), BASES)
def test_sinusoidal_equals_the_formula_at_every_position_and_pair(max_len, dim, base):
    """Both references against the formula evaluated entry by entry (not only at one position or one pair)."""
    expected = _sinusoidal_by_hand(max_len, dim, base)
    np.testing.assert_allclose(N.sinusoidal_positions(max_len, dim, base), expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(T.sinusoidal_positions(max_len, dim, base).numpy(), expected, atol=1e-6, rtol=0)


@given(st.integers(1, 6), st.integers(1, 8).map(lambda h: 2 * h), st.integers(0, 2), BASES, st.data())
def test_rope_rotates_every_pair_by_its_own_frequency(seq_len, dim, batch_dims, base, data):
    """Both references against the rotation computed pair by pair: a frequency wrong at any pair other than pair 0
    (where every exponent is 0) fails here, even when the two references share the mistake."""
    shape = (2,) * batch_dims + (seq_len, dim)
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-5, 5)))
    pos = data.draw(hnp.arrays(np.int64, (seq_len,), elements=st.integers(0, 5000)))
    expected = _rope_by_hand(x, pos, base)
    np.testing.assert_allclose(N.apply_rope(x, pos, base), expected, atol=1e-9, rtol=0)
    np.testing.assert_allclose(
        T.apply_rope(torch.from_numpy(x), torch.from_numpy(pos), base).numpy(), expected, atol=1e-9, rtol=0
    )


@pytest.mark.parametrize("args", [(10, 7), (0, 4), (4, 0), (-1, 4)])
def test_sinusoidal_rejects_odd_or_non_positive(args):
    with pytest.raises(ValueError):
        N.sinusoidal_positions(*args)


def test_add_positions_shapes_and_errors():
    table = N.sinusoidal_positions(8, 4)
    x = np.ones((3, 5, 4), dtype=np.float32)
    out = N.add_positions(x, table)
    assert out.shape == x.shape
    np.testing.assert_allclose(out[2], 1 + table[:5])
    np.testing.assert_allclose(N.add_positions(x[0], table), out[0])
    np.testing.assert_allclose(out, T.add_positions(torch.from_numpy(x), torch.from_numpy(table)).numpy())
    with pytest.raises(ValueError):
        N.add_positions(np.ones((9, 4)), table)
    with pytest.raises(ValueError):
        N.add_positions(np.ones((5, 6)), table)


@given(st.integers(1, 12), st.integers(1, 8).map(lambda h: 2 * h), st.integers(0, 3), st.data())
def test_rope_matches_complex_torch_reference(seq_len, dim, batch_dims, data):
    shape = (2,) * batch_dims + (seq_len, dim)
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-5, 5)))
    pos = data.draw(hnp.arrays(np.int64, (seq_len,), elements=st.integers(0, 5000)))
    out = N.apply_rope(x, pos)
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_allclose(out, T.apply_rope(torch.from_numpy(x), torch.from_numpy(pos)).numpy(), atol=1e-9)
    # a rotation preserves each pair's length
    np.testing.assert_allclose(
        np.hypot(out[..., 0::2], out[..., 1::2]), np.hypot(x[..., 0::2], x[..., 1::2]), atol=1e-9
    )


@given(st.integers(0, 3000), st.integers(0, 3000), st.integers(-500, 500))
def test_rope_score_depends_only_on_offset(m, n, shift):
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(1, 16)), rng.normal(size=(1, 16))

    def score(a, b):
        return float(N.apply_rope(q, [a])[0] @ N.apply_rope(k, [b])[0])

    m2, n2 = m + abs(shift), n + abs(shift)
    assert score(m, n) == pytest.approx(score(m2, n2), abs=1e-8)


def test_rope_interleaved_not_half_split_and_errors():
    x = np.zeros((1, 4))
    x[0, 0] = 1.0
    out = N.apply_rope(x, [1])
    np.testing.assert_allclose(out[0], [math.cos(1), math.sin(1), 0, 0], atol=1e-12)  # pair (0, 1) rotates
    with pytest.raises(ValueError):
        N.apply_rope(np.ones((2, 5)), [0, 1])
    with pytest.raises(ValueError):
        N.apply_rope(np.ones((2, 4)), [0, 1, 2])


@given(st.integers(1, 8).map(lambda h: 2 * h), st.integers(0, 3), st.data())
def test_layout_conversion_matches_the_torch_reference_and_argsort_inverts_it(dim, batch_dims, data):
    dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int64]))
    x = data.draw(hnp.arrays(dtype, (2,) * batch_dims + (dim,), elements=st.integers(-100, 100)))
    half = N.interleaved_to_half(x)
    assert half.shape == x.shape and half.dtype == x.dtype
    np.testing.assert_array_equal(half, T.interleaved_to_half(torch.from_numpy(x)).numpy())
    np.testing.assert_array_equal(half[..., np.argsort(N.interleaved_to_half(np.arange(dim)))], x)


@given(st.integers(1, 12), st.integers(1, 8).map(lambda h: 2 * h), st.data())
def test_half_split_rope_on_converted_vectors_is_the_converted_interleaved_rope(seq_len, dim, data):
    """rotate_half RoPE (Hugging Face's layout) on interleaved_to_half(x) == interleaved_to_half(apply_rope(x))."""
    x = data.draw(hnp.arrays(np.float64, (seq_len, dim), elements=st.floats(-5, 5)))
    pos = data.draw(hnp.arrays(np.int64, (seq_len,), elements=st.integers(0, 5000)))
    theta = pos[:, None] * 10000.0 ** (-np.arange(0, dim, 2) / dim)
    cos, sin = np.tile(np.cos(theta), 2), np.tile(np.sin(theta), 2)
    h = N.interleaved_to_half(x)
    rotate_half = np.concatenate([-h[:, dim // 2 :], h[:, : dim // 2]], axis=-1)
    np.testing.assert_allclose(h * cos + rotate_half * sin, N.interleaved_to_half(N.apply_rope(x, pos)), atol=1e-9)


def test_layout_conversion_rejects_odd_and_empty_axes():
    for bad in (np.ones((3, 5)), np.ones((2, 0)), np.float64(1.0)):
        with pytest.raises(ValueError):
            N.interleaved_to_half(bad)
        with pytest.raises(ValueError):
            T.interleaved_to_half(torch.as_tensor(bad))
    np.testing.assert_array_equal(N.interleaved_to_half(np.arange(6)), [0, 2, 4, 1, 3, 5])


@given(
    st.integers(1, 64).map(lambda h: 2 * h),
    st.floats(100, 2e6),
    st.floats(1, 64),
    st.integers(64, 200_000),
    st.floats(0.5, 2),
    st.floats(0.5, 8),
)
def test_llama3_frequencies_match_the_clamped_torch_form(dim, base, factor, original, low, extra):
    high = low + extra
    ours = N.llama3_inv_freq(dim, base, factor, original, low, high)
    assert ours.shape == (dim // 2,) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, T.llama3_inv_freq(dim, base, factor, original, low, high).numpy(), rtol=1e-12)
    plain = base ** (-np.arange(0, dim, 2) / dim)
    assert np.all(ours <= plain * (1 + 1e-12)) and np.all(ours >= plain / factor * (1 - 1e-12))


def test_llama3_frequencies_on_llama_3_1_and_errors():
    f = N.llama3_inv_freq(128, 500_000.0, 8.0, 8192, 1.0, 4.0)
    plain = 500_000.0 ** (-np.arange(0, 128, 2) / 128)
    wavelength = 2 * math.pi / plain
    np.testing.assert_allclose(f[wavelength < 2048], plain[wavelength < 2048], rtol=1e-14)
    np.testing.assert_allclose(f[wavelength > 8192], plain[wavelength > 8192] / 8)
    np.testing.assert_allclose(
        N.llama3_inv_freq(64, 10000.0, 1.0, 4096), 10000.0 ** (-np.arange(0, 64, 2) / 64), rtol=1e-14
    )  # factor 1
    for bad in [
        dict(dim=7),
        dict(dim=0),
        dict(base=1.0),
        dict(factor=0.5),
        dict(original_max_positions=0),
        dict(low_freq_factor=4.0, high_freq_factor=1.0),
        dict(low_freq_factor=0.0),
    ]:
        args = {**dict(dim=64, base=10000.0, factor=4.0, original_max_positions=4096), **bad}
        with pytest.raises(ValueError):
            N.llama3_inv_freq(**args)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_token_position_embedding(positions):
    torch.manual_seed(0)
    m = T.TokenPositionEmbedding(50, 8, 16, positions=positions)
    ids = torch.randint(0, 50, (3, 10))
    out = m(ids)
    assert out.shape == (3, 10, 8)
    table = m.position.weight if positions == "learned" else m.position_table
    torch.testing.assert_close(out, m.token.weight[ids] + table[:10])
    names = {n for n, _ in m.named_parameters()}
    assert ("position.weight" in names) == (positions == "learned")
    assert ("position_table" in dict(m.named_buffers())) == (positions == "sinusoidal")
    if positions == "sinusoidal":
        np.testing.assert_allclose(m.position_table.numpy(), N.sinusoidal_positions(16, 8))
    with pytest.raises(ValueError):
        m(torch.zeros(1, 17, dtype=torch.long))


# ------------------------------------------------------------------------------------------ memory
KNOWN_TABLES = {  # (vocab, d_model) -> parameters of the input embedding table
    "GPT-2 small": (50257, 768, 38_597_376),
    "BERT-base": (30522, 768, 23_440_896),
    "GPT-3 175B": (50257, 12288, 617_558_016),
    "Llama 3.1 8B": (128256, 4096, 525_336_576),
    "Phi-3-mini": (32064, 3072, 98_500_608),
}


@pytest.mark.parametrize("name", KNOWN_TABLES)
def test_embedding_parameters_of_known_models(name):
    vocab, dim, params = KNOWN_TABLES[name]
    assert N.embedding_parameters(vocab, dim) == params
    assert N.tensor_bytes(params, "float32") == T.tensor_bytes(params, "float32") == 4 * params
    assert N.tensor_bytes(params, "bfloat16") == T.tensor_bytes(params, "bfloat16") == 2 * params
    assert N.tensor_bytes(params, "int4") == math.ceil(params / 2)


def test_gpt3_table_is_a_third_of_a_percent_not_a_fifth():
    assert N.embedding_parameters(50257, 12288) / 175e9 == pytest.approx(0.00353, abs=1e-4)


@given(st.integers(0, 10**6), st.sampled_from(sorted(N.DTYPE_BYTES)))
def test_tensor_bytes_matches_real_tensors(n, dtype):
    assert N.tensor_bytes(n, dtype) == T.tensor_bytes(n, dtype)


def test_int4_rounds_up_and_unknown_dtype_raises():
    assert [N.tensor_bytes(n, "int4") for n in (0, 1, 2, 3, 7)] == [0, 1, 1, 2, 4]
    for bad in ("float64", "fp8", "int2", ""):
        with pytest.raises(ValueError):
            N.tensor_bytes(10, bad)
    with pytest.raises(ValueError):
        N.training_bytes(10, "float32", "adagrad")


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_training_bytes_matches_real_optimizer_state(optimizer, dtype):
    n = 1237
    assert N.training_bytes(n, dtype, optimizer) == T.training_bytes(n, dtype, optimizer)


def test_training_bytes_per_parameter_table():
    per = {
        (d, o): N.training_bytes(10**6, d, o) / 10**6
        for d in ("float32", "bfloat16")
        for o in ("sgd", "momentum", "adam")
    }
    assert per == {
        ("float32", "sgd"): 8,
        ("float32", "momentum"): 12,
        ("float32", "adam"): 16,
        ("bfloat16", "sgd"): 8,
        ("bfloat16", "momentum"): 12,
        ("bfloat16", "adam"): 16,
    }
    # Llama 3.1 8B with Adam in mixed precision: about 128 GB before activations
    assert N.training_bytes(8_030_261_248, "bfloat16", "adam") == 16 * 8_030_261_248


def test_lookup_bytes():
    assert N.lookup_bytes(2048, 4096, "bfloat16") == 2048 * 4096 * 2
    assert N.lookup_bytes(3, 4096, "int4") == 3 * 2048
    assert N.lookup_bytes(10, 768, "float32") == T.lookup_bytes(10, 768, "float32")


# ------------------------------------------------------------------------------------------ backprop
@given(table_and_ids(max_vocab=12))
def test_embedding_backward_matches_autograd_and_accumulates(case):
    weight, ids = case
    vocab, dim = weight.shape
    g = np.random.default_rng(ids.size).normal(size=ids.shape + (dim,))
    dense = N.embedding_backward(g, ids, vocab)
    ref = T.embedding_backward(torch.from_numpy(g), torch.from_numpy(ids.astype(np.int64)), vocab).numpy()
    np.testing.assert_allclose(dense, ref, atol=1e-12)
    uniq, rows = N.sparse_embedding_backward(g, ids)
    assert np.all(np.diff(uniq) > 0) and rows.shape == (uniq.size, dim)
    np.testing.assert_allclose(rows, dense[uniq], atol=1e-12)
    untouched = np.setdiff1d(np.arange(vocab), uniq)
    np.testing.assert_array_equal(dense[untouched], 0.0)
    if ids.size:
        tu, tr = T.sparse_embedding_backward(torch.from_numpy(g), torch.from_numpy(ids.astype(np.int64)), vocab)
        np.testing.assert_array_equal(uniq, tu.numpy())
        np.testing.assert_allclose(rows, tr.numpy(), atol=1e-12)


def test_duplicate_ids_accumulate_where_fancy_assignment_loses_updates():
    ids = np.array([3, 3, 3, 1])
    g = np.ones((4, 2))
    wrong = np.zeros((5, 2))
    wrong[ids] += g
    right = N.embedding_backward(g, ids, 5)
    assert right[3].tolist() == [3.0, 3.0] and wrong[3].tolist() == [1.0, 1.0]


@given(st.integers(1, 8), st.integers(2, 10), st.sampled_from([1.0, 100.0, 1e4]), st.data())
def test_softmax_cross_entropy_matches_torch_and_is_stable(n, c, scale, data):
    logits = data.draw(hnp.arrays(np.float64, (n, c), elements=st.floats(-1, 1))) * scale
    targets = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    loss, dlogits = N.softmax_cross_entropy(logits, targets)
    loss_t, dlogits_t = T.softmax_cross_entropy(torch.from_numpy(logits), torch.from_numpy(targets))
    assert np.isfinite(loss) and loss == pytest.approx(loss_t, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(dlogits, dlogits_t.numpy(), atol=1e-12)
    np.testing.assert_allclose(dlogits.sum(axis=1), 0.0, atol=1e-12)


def test_softmax_cross_entropy_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    logits, targets = rng.normal(size=(5, 7)), rng.integers(0, 7, 5)
    _, analytic = N.softmax_cross_entropy(logits, targets)
    numeric = N.numerical_gradient(lambda z: N.softmax_cross_entropy(z, targets)[0], logits)
    np.testing.assert_allclose(analytic, numeric, atol=1e-8)
    with pytest.raises(ValueError):
        N.softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(IndexError):
        N.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))


def test_numerical_gradient_restores_x_even_when_f_raises():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    grad = N.numerical_gradient(lambda v: float(np.sum(np.sin(v) * v)), x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(grad, np.sin(before) + before * np.cos(before), atol=1e-8)

    def boom(v):
        raise RuntimeError("f failed")

    with pytest.raises(RuntimeError):
        N.numerical_gradient(boom, x)
    np.testing.assert_array_equal(x, before)


def test_embedding_function_gradcheck_and_matches_numpy():
    torch.manual_seed(0)
    weight = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    ids = torch.tensor([[1, 1, 4], [6, 0, 1]])
    assert torch.autograd.gradcheck(lambda w: T.EmbeddingFunction.apply(w, ids), (weight,))
    out = T.EmbeddingFunction.apply(weight, ids)
    g = torch.randn_like(out)
    out.backward(g)
    np.testing.assert_allclose(weight.grad.numpy(), N.embedding_backward(g.numpy(), ids.numpy(), 7), atol=1e-12)
    with pytest.raises(IndexError):
        T.EmbeddingFunction.apply(weight, torch.tensor([7]))


# ----------------------------------------------------------------------------------- KV cache, chunked loss
@given(
    st.integers(1, 130),
    st.integers(1, 16),
    st.integers(1, 9),
    st.integers(0, 50),
    st.sampled_from(sorted(N.DTYPE_BYTES)),
    st.integers(1, 4),
)
def test_kv_cache_bytes_matches_meta_tensors(n_layers, n_kv_heads, head_dim, n_tokens, dtype, batch):
    assert N.kv_cache_bytes(n_layers, n_kv_heads, head_dim, n_tokens, dtype, batch) == T.kv_cache_bytes(
        n_layers, n_kv_heads, head_dim, n_tokens, dtype, batch
    )


def test_kv_cache_bytes_formula_and_errors():
    # Llama 3.1 8B: 32 layers, 8 kv heads of 128 in bfloat16 = 128 KiB per token
    assert N.kv_cache_bytes(32, 8, 128, 1) == 2 * 32 * 8 * 128 * 2
    assert N.kv_cache_bytes(1, 1, 3, 2, "int4") == 2 * 2 * 2  # each 3-value vector rounds up to 2 bytes
    for bad in [dict(n_layers=0), dict(n_kv_heads=-1), dict(head_dim=1.5), dict(batch_size=0), dict(n_tokens=-1)]:
        kwargs = dict(n_layers=2, n_kv_heads=2, head_dim=4, n_tokens=3, batch_size=1) | bad
        with pytest.raises(ValueError):
            N.kv_cache_bytes(**kwargs)
    with pytest.raises(ValueError, match="dtype"):
        N.kv_cache_bytes(2, 2, 4, 3, "fp8")


@given(
    st.integers(1, 40),
    st.integers(1, 6),
    st.integers(2, 30),
    st.integers(1, 50),
    st.sampled_from([np.float32, np.float64]),
    st.integers(0, 10**6),
)
def test_chunked_cross_entropy_matches_autograd_for_any_chunk(n, d, v, chunk, dtype, seed):
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((n, d)).astype(dtype)
    weight = rng.standard_normal((v, d)).astype(dtype)
    targets = rng.integers(0, v, n)
    loss, dh, dw = N.chunked_cross_entropy(hidden, weight, targets, chunk)
    loss_t, dh_t, dw_t = T.chunked_cross_entropy(
        torch.from_numpy(hidden).double(), torch.from_numpy(weight).double(), torch.from_numpy(targets), chunk
    )
    tol = 1e-10 if dtype == np.float64 else 1e-5
    assert loss == pytest.approx(loss_t, rel=tol, abs=tol)
    assert dh.dtype == dtype and dw.dtype == dtype and dh.shape == (n, d) and dw.shape == (v, d)
    np.testing.assert_allclose(dh, dh_t.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dw, dw_t.numpy(), rtol=tol, atol=tol)


def test_chunked_cross_entropy_equals_full_softmax_cross_entropy_and_rejects_bad_input():
    rng = np.random.default_rng(0)
    hidden, weight, targets = rng.standard_normal((9, 4)), rng.standard_normal((7, 4)), rng.integers(0, 7, 9)
    loss, dz = N.softmax_cross_entropy(hidden @ weight.T, targets)
    got = N.chunked_cross_entropy(hidden, weight, targets, 2)
    assert got[0] == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(got[1], dz @ weight, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[2], dz.T @ hidden, rtol=1e-12, atol=1e-14)
    big = N.chunked_cross_entropy(1e3 * hidden, weight, targets, 4)  # logits in the thousands stay finite
    assert np.isfinite(big[0]) and np.isfinite(big[1]).all()
    with pytest.raises(ValueError):
        N.chunked_cross_entropy(hidden, weight, targets, 0)
    with pytest.raises(ValueError):
        N.chunked_cross_entropy(hidden, weight[:, :3], targets, 2)
    with pytest.raises(ValueError):
        N.chunked_cross_entropy(hidden, weight, targets[:5], 2)
    with pytest.raises(IndexError):
        N.chunked_cross_entropy(hidden, weight, np.full(9, 7), 2)
    with pytest.raises(TypeError):
        N.chunked_cross_entropy(hidden, weight, targets.astype(float), 2)


@pytest.mark.parametrize("dtype", ["int8", "int4"])
def test_training_bytes_refuses_integer_dtypes_like_autograd(dtype):
    with pytest.raises(ValueError, match="floating-point"):
        N.training_bytes(10, dtype, "adam")
    with pytest.raises(ValueError, match="floating-point"):
        T.training_bytes(10, dtype, "adam")
    with pytest.raises(RuntimeError):  # what the refusal mirrors: no integer tensor requires grad
        torch.zeros(2, dtype=torch.int8).requires_grad_(True)
    with pytest.raises(ValueError, match="unknown dtype"):
        N.training_bytes(10, "float64", "adam")
