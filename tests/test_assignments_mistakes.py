"""The mistakes students really make in the four assignments, as replacement source code for one answer cell each.

Each :class:`Mistake` names the function it breaks and which checks must catch it: ``"visible"`` (a visible test
cell fails, so the student can see and fix it before submitting) or ``"hidden"`` (every visible check passes and
only a hidden, grading-time check catches it: the reason the hidden cells exist). ``tests/test_assignments.py``
asserts exactly that; ``tests/test_assignments_nbgrader.py`` grades a few of them through nbgrader. This module
holds only the table (it defines no tests).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    id: str
    assignment: str
    function: str
    caught_by: str  # "visible" or "hidden"
    source: str

    @property
    def code(self) -> str:
        return textwrap.dedent(self.source).strip() + "\n"


def _m(id, assignment, function, caught_by, source):
    return Mistake(id, assignment, function, caught_by, source)


TE, PE, MS, BP = "token-embeddings", "positional-encodings", "memory-scaling", "backprop"

MISTAKES: list[Mistake] = [
    # ------------------------------------------------------------------------------------- token-embeddings
    _m(
        "xavier-bound-fan-in-only",
        TE,
        "xavier_uniform",
        "visible",
        """
        def xavier_uniform(vocab_size, dim, rng):
            a = np.sqrt(6.0 / vocab_size)
            return rng.uniform(-a, a, size=(vocab_size, dim)).astype(np.float32)
    """,
    ),
    _m(
        "xavier-bound-too-small",
        TE,
        "xavier_uniform",
        "visible",
        """
        def xavier_uniform(vocab_size, dim, rng):
            a = np.sqrt(2.0 / (vocab_size + dim))
            return rng.uniform(-a, a, size=(vocab_size, dim)).astype(np.float32)
    """,
    ),
    _m(
        "xavier-normal-instead-of-uniform",
        TE,
        "xavier_uniform",
        "visible",
        """
        def xavier_uniform(vocab_size, dim, rng):
            return rng.normal(0.0, np.sqrt(2.0 / (vocab_size + dim)), size=(vocab_size, dim)).astype(np.float32)
    """,
    ),
    _m(
        "xavier-zero-to-a",
        TE,
        "xavier_uniform",
        "visible",
        """
        def xavier_uniform(vocab_size, dim, rng):
            a = np.sqrt(6.0 / (vocab_size + dim))
            return rng.uniform(0.0, a, size=(vocab_size, dim)).astype(np.float32)
    """,
    ),
    _m(
        "xavier-float64",
        TE,
        "xavier_uniform",
        "visible",
        """
        def xavier_uniform(vocab_size, dim, rng):
            a = np.sqrt(6.0 / (vocab_size + dim))
            return rng.uniform(-a, a, size=(vocab_size, dim))
    """,
    ),
    _m(
        "xavier-fresh-default-rng",
        TE,
        "xavier_uniform",
        "visible",
        """
        def xavier_uniform(vocab_size, dim, rng):
            a = np.sqrt(6.0 / (vocab_size + dim))
            return np.random.default_rng().uniform(-a, a, size=(vocab_size, dim)).astype(np.float32)
    """,
    ),
    _m(
        "xavier-global-np-random",
        TE,
        "xavier_uniform",
        "visible",
        """
        def xavier_uniform(vocab_size, dim, rng):
            a = np.sqrt(6.0 / (vocab_size + dim))
            return np.random.uniform(-a, a, size=(vocab_size, dim)).astype(np.float32)
    """,
    ),
    _m(
        "xavier-fixed-seed",
        TE,
        "xavier_uniform",
        "visible",
        """
        def xavier_uniform(vocab_size, dim, rng):
            a = np.sqrt(6.0 / (vocab_size + dim))
            return np.random.default_rng(0).uniform(-a, a, size=(vocab_size, dim)).astype(np.float32)
    """,
    ),
    _m(
        "forward-negative-ids-wrap",
        TE,
        "embedding_forward",
        "visible",
        """
        def embedding_forward(weight, ids):
            return weight[ids]
    """,
    ),
    _m(
        "forward-only-upper-bound",
        TE,
        "embedding_forward",
        "visible",
        """
        def embedding_forward(weight, ids):
            if not np.issubdtype(ids.dtype, np.integer):
                raise TypeError("ids must be integers")
            if ids.size and ids.max() >= weight.shape[0]:
                raise IndexError("id out of range")
            return weight[ids]
    """,
    ),
    _m(
        "forward-float-ids-cast",
        TE,
        "embedding_forward",
        "visible",
        """
        def embedding_forward(weight, ids):
            ids = np.asarray(ids).astype(np.int64)
            if ids.size and (ids.min() < 0 or ids.max() >= weight.shape[0]):
                raise IndexError("id out of range")
            return weight[ids]
    """,
    ),
    _m(
        "forward-casts-to-float32",
        TE,
        "embedding_forward",
        "visible",
        """
        def embedding_forward(weight, ids):
            if not np.issubdtype(ids.dtype, np.integer):
                raise TypeError("ids must be integers")
            if ids.size and (ids.min() < 0 or ids.max() >= weight.shape[0]):
                raise IndexError("id out of range")
            return weight[ids].astype(np.float32)
    """,
    ),
    _m(
        "forward-min-of-empty-ids",
        TE,
        "embedding_forward",
        "hidden",
        """
        def embedding_forward(weight, ids):
            if not np.issubdtype(ids.dtype, np.integer):
                raise TypeError("ids must be integers")
            if ids.min() < 0 or ids.max() >= weight.shape[0]:
                raise IndexError("id out of range")
            return weight[ids]
    """,
    ),
    _m(
        "forward-rejects-floats-not-bools",
        TE,
        "embedding_forward",
        "hidden",
        """
        def embedding_forward(weight, ids):
            if np.issubdtype(ids.dtype, np.floating):
                raise TypeError("ids must be integers")
            if ids.size and (ids.min() < 0 or ids.max() >= weight.shape[0]):
                raise IndexError("id out of range")
            return weight[ids]
    """,
    ),
    _m(
        "one-hot-eye-float64-wraps",
        TE,
        "one_hot",
        "visible",
        """
        def one_hot(ids, vocab_size):
            return np.eye(vocab_size)[ids]
    """,
    ),
    _m(
        "one-hot-integer-codes",
        TE,
        "one_hot",
        "visible",
        """
        def one_hot(ids, vocab_size):
            return embedding_forward(np.eye(vocab_size, dtype=np.int64), ids)
    """,
    ),
    _m(
        "one-hot-float32-wraps",
        TE,
        "one_hot",
        "visible",
        """
        def one_hot(ids, vocab_size):
            return np.eye(vocab_size, dtype=np.float32)[ids]
    """,
    ),
    _m(
        "one-hot-float-ids-cast",
        TE,
        "one_hot",
        "hidden",
        """
        def one_hot(ids, vocab_size):
            ids = np.asarray(ids).astype(np.int64)
            if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
                raise IndexError("id out of range")
            return np.eye(vocab_size, dtype=np.float32)[ids]
    """,
    ),
    _m(
        "neighbors-dot-product",
        TE,
        "nearest_neighbors",
        "visible",
        """
        def nearest_neighbors(weight, query_id, k):
            scores = weight @ weight[query_id]
            scores[query_id] = -np.inf
            return np.argsort(-scores, kind="stable")[:k]
    """,
    ),
    _m(
        "neighbors-include-query",
        TE,
        "nearest_neighbors",
        "visible",
        """
        def nearest_neighbors(weight, query_id, k):
            unit = weight / np.linalg.norm(weight, axis=1, keepdims=True)
            return np.argsort(-(unit @ unit[query_id]), kind="stable")[:k]
    """,
    ),
    _m(
        "neighbors-ties-to-higher-id",
        TE,
        "nearest_neighbors",
        "visible",
        """
        def nearest_neighbors(weight, query_id, k):
            unit = weight / np.linalg.norm(weight, axis=1, keepdims=True)
            sims = unit @ unit[query_id]
            sims[query_id] = -np.inf
            return np.argsort(sims, kind="stable")[::-1][:k]
    """,
    ),
    _m(
        "neighbors-euclidean-distance",
        TE,
        "nearest_neighbors",
        "visible",
        """
        def nearest_neighbors(weight, query_id, k):
            dist = np.linalg.norm(weight - weight[query_id], axis=1)
            dist[query_id] = np.inf
            return np.argsort(dist, kind="stable")[:k]
    """,
    ),
    _m(
        "neighbors-least-similar-first",
        TE,
        "nearest_neighbors",
        "visible",
        """
        def nearest_neighbors(weight, query_id, k):
            unit = weight / np.linalg.norm(weight, axis=1, keepdims=True)
            sims = unit @ unit[query_id]
            sims[query_id] = np.inf
            return np.argsort(sims, kind="stable")[:k]
    """,
    ),
    _m(
        "neighbors-returns-similarities",
        TE,
        "nearest_neighbors",
        "visible",
        """
        def nearest_neighbors(weight, query_id, k):
            unit = weight / np.linalg.norm(weight, axis=1, keepdims=True)
            sims = unit @ unit[query_id]
            sims[query_id] = -np.inf
            return np.sort(sims)[::-1][:k]
    """,
    ),
    _m(
        "neighbors-drop-first-assumes-query-ranks-first",
        TE,
        "nearest_neighbors",
        "hidden",
        """
        def nearest_neighbors(weight, query_id, k):
            unit = weight / np.linalg.norm(weight, axis=1, keepdims=True)
            return np.argsort(-(unit @ unit[query_id]), kind="stable")[1:k + 1]
    """,
    ),
    # ------------------------------------------------------------------------------------- positional-encodings
    _m(
        "sinusoid-sin-cos-swapped",
        PE,
        "sinusoidal_positions",
        "visible",
        """
        def sinusoidal_positions(max_len, dim, base=10000.0):
            if max_len <= 0 or dim <= 0 or dim % 2:
                raise ValueError("bad sizes")
            angles = np.arange(max_len)[:, None] * base ** (-np.arange(0, dim, 2) / dim)
            table = np.empty((max_len, dim))
            table[:, 0::2], table[:, 1::2] = np.cos(angles), np.sin(angles)
            return table.astype(np.float32)
    """,
    ),
    _m(
        "sinusoid-exponent-i-over-dim",
        PE,
        "sinusoidal_positions",
        "visible",
        """
        def sinusoidal_positions(max_len, dim, base=10000.0):
            if max_len <= 0 or dim <= 0 or dim % 2:
                raise ValueError("bad sizes")
            angles = np.arange(max_len)[:, None] * base ** (-np.arange(dim // 2) / dim)
            table = np.empty((max_len, dim))
            table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
            return table.astype(np.float32)
    """,
    ),
    _m(
        "sinusoid-concatenated-halves",
        PE,
        "sinusoidal_positions",
        "visible",
        """
        def sinusoidal_positions(max_len, dim, base=10000.0):
            if max_len <= 0 or dim <= 0 or dim % 2:
                raise ValueError("bad sizes")
            angles = np.arange(max_len)[:, None] * base ** (-np.arange(0, dim, 2) / dim)
            return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)
    """,
    ),
    _m(
        "sinusoid-float64",
        PE,
        "sinusoidal_positions",
        "visible",
        """
        def sinusoidal_positions(max_len, dim, base=10000.0):
            if max_len <= 0 or dim <= 0 or dim % 2:
                raise ValueError("bad sizes")
            angles = np.arange(max_len)[:, None] * base ** (-np.arange(0, dim, 2) / dim)
            table = np.empty((max_len, dim))
            table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
            return table
    """,
    ),
    _m(
        "sinusoid-ignores-base",
        PE,
        "sinusoidal_positions",
        "visible",
        """
        def sinusoidal_positions(max_len, dim, base=10000.0):
            if max_len <= 0 or dim <= 0 or dim % 2:
                raise ValueError("bad sizes")
            angles = np.arange(max_len)[:, None] * 10000.0 ** (-np.arange(0, dim, 2) / dim)
            table = np.empty((max_len, dim))
            table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
            return table.astype(np.float32)
    """,
    ),
    _m(
        "sinusoid-positions-from-1",
        PE,
        "sinusoidal_positions",
        "visible",
        """
        def sinusoidal_positions(max_len, dim, base=10000.0):
            if max_len <= 0 or dim <= 0 or dim % 2:
                raise ValueError("bad sizes")
            angles = np.arange(1, max_len + 1)[:, None] * base ** (-np.arange(0, dim, 2) / dim)
            table = np.empty((max_len, dim))
            table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
            return table.astype(np.float32)
    """,
    ),
    _m(
        "sinusoid-only-odd-dim-checked",
        PE,
        "sinusoidal_positions",
        "hidden",
        """
        def sinusoidal_positions(max_len, dim, base=10000.0):
            if dim % 2:
                raise ValueError("dim must be even")
            angles = np.arange(max_len)[:, None] * base ** (-np.arange(0, dim, 2) / dim)
            table = np.empty((max_len, dim))
            table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
            return table.astype(np.float32)
    """,
    ),
    _m(
        "add-positions-in-place",
        PE,
        "add_positions",
        "visible",
        """
        def add_positions(token_embeddings, position_table):
            seq_len, dim = token_embeddings.shape[-2:]
            if seq_len > position_table.shape[0] or dim != position_table.shape[1]:
                raise ValueError("table does not fit")
            token_embeddings += position_table[:seq_len]
            return token_embeddings
    """,
    ),
    _m(
        "add-positions-whole-table",
        PE,
        "add_positions",
        "visible",
        """
        def add_positions(token_embeddings, position_table):
            return token_embeddings + position_table
    """,
    ),
    _m(
        "add-positions-trusts-broadcasting",
        PE,
        "add_positions",
        "hidden",
        """
        def add_positions(token_embeddings, position_table):
            return token_embeddings + position_table[:token_embeddings.shape[-2]]
    """,
    ),
    _m(
        "add-positions-off-by-one-length",
        PE,
        "add_positions",
        "hidden",
        """
        def add_positions(token_embeddings, position_table):
            seq_len, dim = token_embeddings.shape[-2:]
            if seq_len >= position_table.shape[0] or dim != position_table.shape[1]:
                raise ValueError("table does not fit")
            return token_embeddings + position_table[:seq_len]
    """,
    ),
    _m(
        "rope-half-split-pairs",
        PE,
        "apply_rope",
        "visible",
        """
        def apply_rope(x, positions, base=10000.0):
            dim = x.shape[-1]
            if dim % 2:
                raise ValueError("odd D")
            theta = np.asarray(positions)[:, None] * base ** (-np.arange(0, dim, 2) / dim)
            a, b = x[..., : dim // 2], x[..., dim // 2:]
            return np.concatenate([a * np.cos(theta) - b * np.sin(theta), a * np.sin(theta) + b * np.cos(theta)],
                                  axis=-1).astype(x.dtype)
    """,
    ),
    _m(
        "rope-wrong-sign",
        PE,
        "apply_rope",
        "visible",
        """
        def apply_rope(x, positions, base=10000.0):
            dim = x.shape[-1]
            if dim % 2:
                raise ValueError("odd D")
            theta = -np.asarray(positions)[:, None] * base ** (-np.arange(0, dim, 2) / dim)
            a, b = x[..., 0::2], x[..., 1::2]
            out = np.empty_like(x)
            out[..., 0::2], out[..., 1::2] = a * np.cos(theta) - b * np.sin(theta), a * np.sin(theta) + b * np.cos(theta)
            return out
    """,
    ),
    _m(
        "rope-exponent-i-over-d",
        PE,
        "apply_rope",
        "visible",
        """
        def apply_rope(x, positions, base=10000.0):
            dim = x.shape[-1]
            if dim % 2:
                raise ValueError("odd D")
            theta = np.asarray(positions)[:, None] * base ** (-np.arange(dim // 2) / dim)
            a, b = x[..., 0::2], x[..., 1::2]
            out = np.empty_like(x)
            out[..., 0::2], out[..., 1::2] = a * np.cos(theta) - b * np.sin(theta), a * np.sin(theta) + b * np.cos(theta)
            return out
    """,
    ),
    _m(
        "rope-float64-output",
        PE,
        "apply_rope",
        "visible",
        """
        def apply_rope(x, positions, base=10000.0):
            dim = x.shape[-1]
            if dim % 2:
                raise ValueError("odd D")
            theta = np.asarray(positions)[:, None] * base ** (-np.arange(0, dim, 2) / dim)
            a, b = x[..., 0::2], x[..., 1::2]
            out = np.empty(x.shape)
            out[..., 0::2], out[..., 1::2] = a * np.cos(theta) - b * np.sin(theta), a * np.sin(theta) + b * np.cos(theta)
            return out
    """,
    ),
    _m(
        "rope-in-place",
        PE,
        "apply_rope",
        "visible",
        """
        def apply_rope(x, positions, base=10000.0):
            dim = x.shape[-1]
            if dim % 2:
                raise ValueError("odd D")
            theta = np.asarray(positions)[:, None] * base ** (-np.arange(0, dim, 2) / dim)
            a, b = x[..., 0::2].copy(), x[..., 1::2].copy()
            x[..., 0::2], x[..., 1::2] = a * np.cos(theta) - b * np.sin(theta), a * np.sin(theta) + b * np.cos(theta)
            return x
    """,
    ),
    _m(
        "rope-positions-ignored",
        PE,
        "apply_rope",
        "hidden",
        """
        def apply_rope(x, positions, base=10000.0):
            dim = x.shape[-1]
            if dim % 2:
                raise ValueError("odd D")
            theta = np.arange(x.shape[-2])[:, None] * base ** (-np.arange(0, dim, 2) / dim)
            a, b = x[..., 0::2], x[..., 1::2]
            out = np.empty_like(x)
            out[..., 0::2], out[..., 1::2] = a * np.cos(theta) - b * np.sin(theta), a * np.sin(theta) + b * np.cos(theta)
            return out
    """,
    ),
    _m(
        "rope-base-ignored",
        PE,
        "apply_rope",
        "hidden",
        """
        def apply_rope(x, positions, base=10000.0):
            dim = x.shape[-1]
            if dim % 2:
                raise ValueError("odd D")
            theta = np.asarray(positions)[:, None] * 10000.0 ** (-np.arange(0, dim, 2) / dim)
            a, b = x[..., 0::2], x[..., 1::2]
            out = np.empty_like(x)
            out[..., 0::2], out[..., 1::2] = a * np.cos(theta) - b * np.sin(theta), a * np.sin(theta) + b * np.cos(theta)
            return out
    """,
    ),
    _m(
        "layout-odd-then-even",
        PE,
        "interleaved_to_half",
        "visible",
        """
        def interleaved_to_half(x):
            if x.shape[-1] % 2:
                raise ValueError("odd D")
            return np.concatenate([x[..., 1::2], x[..., 0::2]], axis=-1)
    """,
    ),
    _m(
        "layout-the-inverse-permutation",
        PE,
        "interleaved_to_half",
        "visible",
        """
        def interleaved_to_half(x):
            d = x.shape[-1]
            if d % 2:
                raise ValueError("odd D")
            return x.reshape(*x.shape[:-1], 2, d // 2).swapaxes(-1, -2).reshape(x.shape)
    """,
    ),
    _m(
        "layout-float64-output",
        PE,
        "interleaved_to_half",
        "visible",
        """
        def interleaved_to_half(x):
            if x.shape[-1] % 2:
                raise ValueError("odd D")
            return np.concatenate([x[..., 0::2], x[..., 1::2]], axis=-1).astype(np.float64)
    """,
    ),
    _m(
        "layout-empty-axis-accepted",
        PE,
        "interleaved_to_half",
        "hidden",
        """
        def interleaved_to_half(x):
            if x.shape[-1] % 2:
                raise ValueError("odd D")
            return np.concatenate([x[..., 0::2], x[..., 1::2]], axis=-1)
    """,
    ),
    _m(
        "llama3-blend-swapped",
        PE,
        "llama3_inv_freq",
        "visible",
        """
        def llama3_inv_freq(dim, base, factor, original_max_positions, low_freq_factor=1.0, high_freq_factor=4.0):
            if dim % 2:
                raise ValueError("odd dim")
            f = base ** (-np.arange(0, dim, 2) / dim)
            w = 2 * np.pi / f
            s = (original_max_positions / w - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out = s * f / factor + (1 - s) * f
            out = np.where(w < original_max_positions / high_freq_factor, f, out)
            return np.where(w > original_max_positions / low_freq_factor, f / factor, out)
    """,
    ),
    _m(
        "llama3-exponent-i-over-dim",
        PE,
        "llama3_inv_freq",
        "visible",
        """
        def llama3_inv_freq(dim, base, factor, original_max_positions, low_freq_factor=1.0, high_freq_factor=4.0):
            if dim % 2:
                raise ValueError("odd dim")
            f = base ** (-np.arange(dim // 2) / dim)
            w = 2 * np.pi / f
            s = (original_max_positions / w - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out = (1 - s) * f / factor + s * f
            out = np.where(w < original_max_positions / high_freq_factor, f, out)
            return np.where(w > original_max_positions / low_freq_factor, f / factor, out)
    """,
    ),
    _m(
        "llama3-thresholds-swapped",
        PE,
        "llama3_inv_freq",
        "visible",
        """
        def llama3_inv_freq(dim, base, factor, original_max_positions, low_freq_factor=1.0, high_freq_factor=4.0):
            if dim % 2:
                raise ValueError("odd dim")
            f = base ** (-np.arange(0, dim, 2) / dim)
            w = 2 * np.pi / f
            s = (original_max_positions / w - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out = (1 - s) * f / factor + s * f
            out = np.where(w < original_max_positions / low_freq_factor, f, out)
            return np.where(w > original_max_positions / high_freq_factor, f / factor, out)
    """,
    ),
    _m(
        "llama3-no-argument-checks",
        PE,
        "llama3_inv_freq",
        "hidden",
        """
        def llama3_inv_freq(dim, base, factor, original_max_positions, low_freq_factor=1.0, high_freq_factor=4.0):
            if dim % 2:
                raise ValueError("odd dim")
            f = base ** (-np.arange(0, dim, 2) / dim)
            w = 2 * np.pi / f
            s = (original_max_positions / w - low_freq_factor) / (high_freq_factor - low_freq_factor)
            out = (1 - s) * f / factor + s * f
            out = np.where(w < original_max_positions / high_freq_factor, f, out)
            return np.where(w > original_max_positions / low_freq_factor, f / factor, out)
    """,
    ),
    _m(
        "module-sinusoidal-as-parameter",
        PE,
        "TokenPositionEmbedding",
        "visible",
        """
        class TokenPositionEmbedding(nn.Module):
            def __init__(self, vocab_size, dim, max_len, positions="learned"):
                super().__init__()
                self.token = nn.Embedding(vocab_size, dim)
                if positions == "learned":
                    self.position = nn.Parameter(torch.randn(max_len, dim))
                else:
                    table = torch.from_numpy(sinusoidal_positions(max_len, dim))
                    self.position = nn.Parameter(table, requires_grad=False)

            def forward(self, ids):
                return self.token(ids) + self.position[: ids.shape[-1]]
    """,
    ),
    _m(
        "module-learned-as-buffer",
        PE,
        "TokenPositionEmbedding",
        "visible",
        """
        class TokenPositionEmbedding(nn.Module):
            def __init__(self, vocab_size, dim, max_len, positions="learned"):
                super().__init__()
                self.token = nn.Embedding(vocab_size, dim)
                if positions == "learned":
                    self.register_buffer("position", torch.randn(max_len, dim))
                else:
                    self.register_buffer("position", torch.from_numpy(sinusoidal_positions(max_len, dim)))

            def forward(self, ids):
                return self.token(ids) + self.position[: ids.shape[-1]]
    """,
    ),
    _m(
        "module-sinusoidal-plain-attribute",
        PE,
        "TokenPositionEmbedding",
        "visible",
        """
        class TokenPositionEmbedding(nn.Module):
            def __init__(self, vocab_size, dim, max_len, positions="learned"):
                super().__init__()
                self.token = nn.Embedding(vocab_size, dim)
                self.learned = positions == "learned"
                if self.learned:
                    self.position = nn.Embedding(max_len, dim)
                else:
                    self.table = torch.from_numpy(sinusoidal_positions(max_len, dim))

            def forward(self, ids):
                table = self.position.weight if self.learned else self.table
                return self.token(ids) + table[: ids.shape[-1]]
    """,
    ),
    _m(
        "module-positions-from-1",
        PE,
        "TokenPositionEmbedding",
        "visible",
        """
        class TokenPositionEmbedding(nn.Module):
            def __init__(self, vocab_size, dim, max_len, positions="learned"):
                super().__init__()
                self.token = nn.Embedding(vocab_size, dim)
                self.position = nn.Embedding(max_len + 1, dim)
                if positions == "sinusoidal":
                    del self.position
                    self.register_buffer("position_table", torch.from_numpy(sinusoidal_positions(max_len + 1, dim)[1:]))
                self.kind = positions

            def forward(self, ids):
                t = ids.shape[-1]
                table = self.position.weight[1 : t + 1] if self.kind == "learned" else self.position_table[:t]
                return self.token(ids) + table
    """,
    ),
    _m(
        "module-positions-looked-up-by-token-id",
        PE,
        "TokenPositionEmbedding",
        "visible",
        """
        class TokenPositionEmbedding(nn.Module):
            def __init__(self, vocab_size, dim, max_len, positions="learned"):
                super().__init__()
                self.token = nn.Embedding(vocab_size, dim)
                self.kind = positions
                if positions == "learned":
                    self.position = nn.Embedding(max_len, dim)
                else:
                    self.register_buffer("position_table", torch.from_numpy(sinusoidal_positions(max_len, dim)))

            def forward(self, ids):
                table = self.position.weight if self.kind == "learned" else self.position_table
                return self.token(ids) + table[ids % table.shape[0]]
    """,
    ),
    # ------------------------------------------------------------------------------------- memory-scaling
    _m(
        "params-sum",
        MS,
        "embedding_parameters",
        "visible",
        """
        def embedding_parameters(vocab_size, dim):
            return vocab_size + dim
    """,
    ),
    _m(
        "params-counted-in-bytes",
        MS,
        "embedding_parameters",
        "visible",
        """
        def embedding_parameters(vocab_size, dim):
            return 4 * vocab_size * dim
    """,
    ),
    _m(
        "params-float",
        MS,
        "embedding_parameters",
        "visible",
        """
        def embedding_parameters(vocab_size, dim):
            return float(vocab_size) * dim
    """,
    ),
    _m(
        "int4-rounded-down",
        MS,
        "tensor_bytes",
        "visible",
        """
        def tensor_bytes(n_elements, dtype):
            if dtype == "int4":
                return n_elements // 2
            if dtype not in BYTES_PER_VALUE:
                raise ValueError(dtype)
            return n_elements * BYTES_PER_VALUE[dtype]
    """,
    ),
    _m(
        "int4-half-a-byte-float",
        MS,
        "tensor_bytes",
        "visible",
        """
        def tensor_bytes(n_elements, dtype):
            sizes = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "int4": 0.5}
            if dtype not in sizes:
                raise ValueError(dtype)
            return n_elements * sizes[dtype]
    """,
    ),
    _m(
        "bfloat16-four-bytes",
        MS,
        "tensor_bytes",
        "visible",
        """
        def tensor_bytes(n_elements, dtype):
            sizes = {"float32": 4, "float16": 2, "bfloat16": 4, "int8": 1}
            if dtype == "int4":
                return (n_elements + 1) // 2
            if dtype not in sizes:
                raise ValueError(dtype)
            return n_elements * sizes[dtype]
    """,
    ),
    _m(
        "unknown-dtype-costs-zero",
        MS,
        "tensor_bytes",
        "visible",
        """
        def tensor_bytes(n_elements, dtype):
            if dtype == "int4":
                return (n_elements + 1) // 2
            return n_elements * BYTES_PER_VALUE.get(dtype, 0)
    """,
    ),
    _m(
        "unknown-dtype-key-error",
        MS,
        "tensor_bytes",
        "visible",
        """
        def tensor_bytes(n_elements, dtype):
            if dtype == "int4":
                return (n_elements + 1) // 2
            return n_elements * BYTES_PER_VALUE[dtype]
    """,
    ),
    _m(
        "int32-overflow",
        MS,
        "tensor_bytes",
        "hidden",
        """
        def tensor_bytes(n_elements, dtype):
            n = np.int32(n_elements)
            if dtype == "int4":
                return int((n + 1) // 2)
            if dtype not in BYTES_PER_VALUE:
                raise ValueError(dtype)
            return int(n * BYTES_PER_VALUE[dtype])
    """,
    ),
    _m(
        "training-forgets-master-copy",
        MS,
        "training_bytes",
        "visible",
        """
        def training_bytes(n_params, dtype="float32", optimizer="adam"):
            if optimizer not in OPTIMIZER_STATES:
                raise ValueError(optimizer)
            return 2 * tensor_bytes(n_params, dtype) + OPTIMIZER_STATES[optimizer] * tensor_bytes(n_params, "float32")
    """,
    ),
    _m(
        "training-adam-one-state",
        MS,
        "training_bytes",
        "visible",
        """
        def training_bytes(n_params, dtype="float32", optimizer="adam"):
            states = {"sgd": 0, "momentum": 1, "adam": 1}
            if optimizer not in states:
                raise ValueError(optimizer)
            master = 0 if dtype == "float32" else tensor_bytes(n_params, "float32")
            return 2 * tensor_bytes(n_params, dtype) + states[optimizer] * tensor_bytes(n_params, "float32") + master
    """,
    ),
    _m(
        "training-state-in-training-dtype",
        MS,
        "training_bytes",
        "visible",
        """
        def training_bytes(n_params, dtype="float32", optimizer="adam"):
            if optimizer not in OPTIMIZER_STATES:
                raise ValueError(optimizer)
            master = 0 if dtype == "float32" else tensor_bytes(n_params, "float32")
            return (2 + OPTIMIZER_STATES[optimizer]) * tensor_bytes(n_params, dtype) + master
    """,
    ),
    _m(
        "training-master-copy-always",
        MS,
        "training_bytes",
        "visible",
        """
        def training_bytes(n_params, dtype="float32", optimizer="adam"):
            if optimizer not in OPTIMIZER_STATES:
                raise ValueError(optimizer)
            return (2 * tensor_bytes(n_params, dtype) + OPTIMIZER_STATES[optimizer] * tensor_bytes(n_params, "float32")
                    + tensor_bytes(n_params, "float32"))
    """,
    ),
    _m(
        "training-wrong-default-optimizer",
        MS,
        "training_bytes",
        "visible",
        """
        def training_bytes(n_params, dtype="float32", optimizer="sgd"):
            if optimizer not in OPTIMIZER_STATES:
                raise ValueError(optimizer)
            master = 0 if dtype == "float32" else tensor_bytes(n_params, "float32")
            return 2 * tensor_bytes(n_params, dtype) + OPTIMIZER_STATES[optimizer] * tensor_bytes(n_params, "float32") + master
    """,
    ),
    _m(
        "training-unknown-optimizer-free",
        MS,
        "training_bytes",
        "visible",
        """
        def training_bytes(n_params, dtype="float32", optimizer="adam"):
            master = 0 if dtype == "float32" else tensor_bytes(n_params, "float32")
            return (2 * tensor_bytes(n_params, dtype) + OPTIMIZER_STATES.get(optimizer, 0) * tensor_bytes(n_params, "float32")
                    + master)
    """,
    ),
    _m(
        "training-own-dtype-table-accepts-float64",
        MS,
        "training_bytes",
        "hidden",
        """
        def training_bytes(n_params, dtype="float32", optimizer="adam"):
            if optimizer not in OPTIMIZER_STATES or dtype in ("int8", "int4"):
                raise ValueError(optimizer)
            width = {"float32": 4}.get(dtype, 2)
            master = 0 if dtype == "float32" else 4 * n_params
            return 2 * width * n_params + 4 * OPTIMIZER_STATES[optimizer] * n_params + master
    """,
    ),
    _m(
        "training-accepts-integer-dtypes",
        MS,
        "training_bytes",
        "visible",
        """
        def training_bytes(n_params, dtype="float32", optimizer="adam"):
            if optimizer not in OPTIMIZER_STATES:
                raise ValueError(optimizer)
            master = 0 if dtype == "float32" else tensor_bytes(n_params, "float32")
            return 2 * tensor_bytes(n_params, dtype) + OPTIMIZER_STATES[optimizer] * 4 * n_params + master
    """,
    ),
    _m(
        "training-refuses-int8-only",
        MS,
        "training_bytes",
        "hidden",
        """
        def training_bytes(n_params, dtype="float32", optimizer="adam"):
            if optimizer not in OPTIMIZER_STATES or dtype == "int8":
                raise ValueError(optimizer)
            master = 0 if dtype == "float32" else tensor_bytes(n_params, "float32")
            return 2 * tensor_bytes(n_params, dtype) + OPTIMIZER_STATES[optimizer] * 4 * n_params + master
    """,
    ),
    _m(
        "lookup-always-four-bytes",
        MS,
        "lookup_bytes",
        "visible",
        """
        def lookup_bytes(n_tokens, dim, dtype):
            return 4 * n_tokens * dim
    """,
    ),
    _m(
        "lookup-int4-float",
        MS,
        "lookup_bytes",
        "visible",
        """
        def lookup_bytes(n_tokens, dim, dtype):
            return n_tokens * dim * {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "int4": 0.5}[dtype]
    """,
    ),
    _m(
        "lookup-unknown-dtype-unchecked",
        MS,
        "lookup_bytes",
        "hidden",
        """
        def lookup_bytes(n_tokens, dim, dtype):
            if dtype == "int4":
                return n_tokens * ((dim + 1) // 2)
            return n_tokens * dim * {"float32": 4, "int8": 1}.get(dtype, 2)
    """,
    ),
    _m(
        "kv-keys-only",
        MS,
        "kv_cache_bytes",
        "visible",
        """
        def kv_cache_bytes(n_layers, n_kv_heads, head_dim, n_tokens, dtype="bfloat16", batch_size=1):
            return n_layers * batch_size * n_tokens * tensor_bytes(n_kv_heads * head_dim, dtype)
    """,
    ),
    _m(
        "kv-ignores-batch",
        MS,
        "kv_cache_bytes",
        "visible",
        """
        def kv_cache_bytes(n_layers, n_kv_heads, head_dim, n_tokens, dtype="bfloat16", batch_size=1):
            return 2 * n_layers * n_tokens * tensor_bytes(n_kv_heads * head_dim, dtype)
    """,
    ),
    _m(
        "kv-default-float32",
        MS,
        "kv_cache_bytes",
        "visible",
        """
        def kv_cache_bytes(n_layers, n_kv_heads, head_dim, n_tokens, dtype="float32", batch_size=1):
            return 2 * n_layers * batch_size * n_tokens * tensor_bytes(n_kv_heads * head_dim, dtype)
    """,
    ),
    _m(
        "kv-int4-rounded-once-for-the-whole-cache",
        MS,
        "kv_cache_bytes",
        "hidden",
        """
        def kv_cache_bytes(n_layers, n_kv_heads, head_dim, n_tokens, dtype="bfloat16", batch_size=1):
            if min(n_layers, n_kv_heads, head_dim, batch_size) < 1 or n_tokens < 0:
                raise ValueError("sizes")
            return tensor_bytes(2 * n_layers * batch_size * n_tokens * n_kv_heads * head_dim, dtype)
    """,
    ),
    _m(
        "kv-sizes-unchecked",
        MS,
        "kv_cache_bytes",
        "hidden",
        """
        def kv_cache_bytes(n_layers, n_kv_heads, head_dim, n_tokens, dtype="bfloat16", batch_size=1):
            return 2 * n_layers * batch_size * n_tokens * tensor_bytes(n_kv_heads * head_dim, dtype)
    """,
    ),
    # ------------------------------------------------------------------------------------- backprop
    _m(
        "backward-fancy-add-drops-repeats",
        BP,
        "embedding_backward",
        "visible",
        """
        def embedding_backward(grad_out, ids, vocab_size):
            grad = np.zeros((vocab_size, grad_out.shape[-1]), dtype=grad_out.dtype)
            grad[ids] += grad_out
            return grad
    """,
    ),
    _m(
        "backward-loop-over-first-axis",
        BP,
        "embedding_backward",
        "visible",
        """
        def embedding_backward(grad_out, ids, vocab_size):
            grad = np.zeros((vocab_size, grad_out.shape[-1]), dtype=grad_out.dtype)
            for i, row in enumerate(ids):
                grad[row] += grad_out[i]
            return grad
    """,
    ),
    _m(
        "backward-reshape-fails-on-empty",
        BP,
        "embedding_backward",
        "hidden",
        """
        def embedding_backward(grad_out, ids, vocab_size):
            grad = np.zeros((vocab_size, grad_out.shape[-1]), dtype=grad_out.dtype)
            np.add.at(grad, ids.reshape(-1), grad_out.reshape(ids.size, -1))
            return grad
    """,
    ),
    _m(
        "sparse-first-appearance-order",
        BP,
        "sparse_embedding_backward",
        "visible",
        """
        def sparse_embedding_backward(grad_out, ids):
            rows = {}
            for i, g in zip(ids.reshape(-1), grad_out.reshape(-1, grad_out.shape[-1])):
                rows[int(i)] = rows.get(int(i), 0) + g
            return np.array(list(rows), dtype=np.int64), np.array(list(rows.values()))
    """,
    ),
    _m(
        "sparse-fancy-add-drops-repeats",
        BP,
        "sparse_embedding_backward",
        "visible",
        """
        def sparse_embedding_backward(grad_out, ids):
            dim = grad_out.shape[-1]
            unique_ids, inverse = np.unique(ids.reshape(-1), return_inverse=True)
            rows = np.zeros((unique_ids.size, dim), dtype=grad_out.dtype)
            rows[inverse] += grad_out.reshape(-1, dim)
            return unique_ids, rows
    """,
    ),
    _m(
        "sparse-returns-dense",
        BP,
        "sparse_embedding_backward",
        "visible",
        """
        def sparse_embedding_backward(grad_out, ids):
            dim = grad_out.shape[-1]
            grad = np.zeros((ids.max() + 1, dim), dtype=grad_out.dtype)
            np.add.at(grad, ids.reshape(-1), grad_out.reshape(-1, dim))
            return np.arange(ids.max() + 1), grad
    """,
    ),
    _m(
        "sparse-reshape-fails-on-empty",
        BP,
        "sparse_embedding_backward",
        "hidden",
        """
        def sparse_embedding_backward(grad_out, ids):
            unique_ids, inverse = np.unique(ids.reshape(-1), return_inverse=True)
            g = grad_out.reshape(ids.size, -1)
            rows = np.zeros((unique_ids.size, g.shape[1]), dtype=grad_out.dtype)
            np.add.at(rows, inverse, g)
            return unique_ids, rows
    """,
    ),
    _m(
        "softmax-overflows",
        BP,
        "softmax_cross_entropy",
        "visible",
        """
        def softmax_cross_entropy(logits, targets):
            n = logits.shape[0]
            probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            loss = -np.log(probs[np.arange(n), targets]).mean()
            dlogits = probs.copy()
            dlogits[np.arange(n), targets] -= 1
            return float(loss), dlogits / n
    """,
    ),
    _m(
        "softmax-sum-not-mean",
        BP,
        "softmax_cross_entropy",
        "visible",
        """
        def softmax_cross_entropy(logits, targets):
            n = logits.shape[0]
            shifted = logits - logits.max(axis=1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            dlogits = np.exp(logp)
            dlogits[np.arange(n), targets] -= 1
            return float(-logp[np.arange(n), targets].sum()), dlogits
    """,
    ),
    _m(
        "softmax-gradient-not-divided-by-n",
        BP,
        "softmax_cross_entropy",
        "visible",
        """
        def softmax_cross_entropy(logits, targets):
            n = logits.shape[0]
            shifted = logits - logits.max(axis=1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            dlogits = np.exp(logp)
            dlogits[np.arange(n), targets] -= 1
            return float(-logp[np.arange(n), targets].mean()), dlogits
    """,
    ),
    _m(
        "softmax-gradient-sign-flipped",
        BP,
        "softmax_cross_entropy",
        "visible",
        """
        def softmax_cross_entropy(logits, targets):
            n = logits.shape[0]
            shifted = logits - logits.max(axis=1, keepdims=True)
            logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            onehot = np.zeros_like(logp)
            onehot[np.arange(n), targets] = 1
            return float(-logp[np.arange(n), targets].mean()), (onehot - np.exp(logp)) / n
    """,
    ),
    _m(
        "softmax-log-of-underflowed-probability",
        BP,
        "softmax_cross_entropy",
        "hidden",
        """
        def softmax_cross_entropy(logits, targets):
            n = logits.shape[0]
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = e / e.sum(axis=1, keepdims=True)
            loss = -np.log(probs[np.arange(n), targets]).mean()
            dlogits = probs.copy()
            dlogits[np.arange(n), targets] -= 1
            return float(loss), dlogits / n
    """,
    ),
    _m(
        "chunked-full-logits",
        BP,
        "chunked_cross_entropy",
        "visible",
        """
        def chunked_cross_entropy(hidden, weight, targets, chunk_size):
            if chunk_size < 1:
                raise ValueError(chunk_size)
            loss, dz = softmax_cross_entropy(hidden @ weight.T, targets)   # all N x V logits at once
            return loss, dz @ weight, dz.T @ hidden
    """,
    ),
    _m(
        "chunked-full-logits-in-torch",
        BP,
        "chunked_cross_entropy",
        "visible",
        """
        def chunked_cross_entropy(hidden, weight, targets, chunk_size):
            if int(chunk_size) != chunk_size or chunk_size < 1 or hidden.shape[1] != weight.shape[1]:
                raise ValueError("bad chunk_size or shapes")
            h = torch.tensor(hidden, dtype=torch.float64)
            w = torch.tensor(weight, dtype=torch.float64)
            t = torch.tensor(targets, dtype=torch.long)
            n, rows = h.shape[0], torch.arange(h.shape[0])
            logp = torch.log_softmax(h @ w.T, dim=1)  # all N x V logits at once, in PyTorch
            loss = -logp[rows, t].mean()
            dz = logp.exp()
            dz[rows, t] -= 1.0
            dz /= n
            kind = hidden.dtype if np.issubdtype(hidden.dtype, np.floating) else np.float64
            return float(loss), (dz @ w).to(torch.float32 if kind == np.float32 else torch.float64).numpy(), (
                (dz.T @ h).to(torch.float32 if kind == np.float32 else torch.float64).numpy()
            )
    """,
    ),
    _m(
        "chunked-mean-of-chunk-means",
        BP,
        "chunked_cross_entropy",
        "visible",
        """
        def chunked_cross_entropy(hidden, weight, targets, chunk_size):
            if chunk_size < 1:
                raise ValueError(chunk_size)
            n = hidden.shape[0]
            losses, dh, dw = [], np.empty(hidden.shape), np.zeros(weight.shape)
            for s in range(0, n, chunk_size):
                l, dz = softmax_cross_entropy(hidden[s:s + chunk_size] @ weight.T, targets[s:s + chunk_size])
                losses.append(l)
                dh[s:s + chunk_size] = dz @ weight
                dw += dz.T @ hidden[s:s + chunk_size]
            return float(np.mean(losses)), dh, dw
    """,
    ),
    _m(
        "chunked-dweight-overwritten",
        BP,
        "chunked_cross_entropy",
        "visible",
        """
        def chunked_cross_entropy(hidden, weight, targets, chunk_size):
            if chunk_size < 1:
                raise ValueError(chunk_size)
            n = hidden.shape[0]
            loss, dh, dw = 0.0, np.empty(hidden.shape), None
            for s in range(0, n, chunk_size):
                h = hidden[s:s + chunk_size]
                l, dz = softmax_cross_entropy(h @ weight.T, targets[s:s + chunk_size])
                loss += l * h.shape[0] / n
                dz = dz * h.shape[0] / n
                dh[s:s + chunk_size] = dz @ weight
                dw = dz.T @ h                              # keeps only the last chunk's contribution
            return loss, dh, dw
    """,
    ),
    _m(
        "chunked-unstable-exp",
        BP,
        "chunked_cross_entropy",
        "hidden",
        """
        def chunked_cross_entropy(hidden, weight, targets, chunk_size):
            if int(chunk_size) != chunk_size or chunk_size < 1 or hidden.shape[1] != weight.shape[1]:
                raise ValueError(chunk_size)
            n = hidden.shape[0]
            loss, dh, dw = 0.0, np.empty(hidden.shape), np.zeros(weight.shape)
            for s in range(0, n, chunk_size):
                h, t = hidden[s:s + chunk_size], targets[s:s + chunk_size]
                e = np.exp(h @ weight.T)                   # no max subtracted: overflows for large logits
                p = e / e.sum(axis=1, keepdims=True)
                loss -= np.log(p[np.arange(len(t)), t]).sum() / n
                p[np.arange(len(t)), t] -= 1.0
                p /= n
                dh[s:s + chunk_size] = p @ weight
                dw += p.T @ h
            return float(loss), dh.astype(hidden.dtype), dw.astype(hidden.dtype)
    """,
    ),
    _m(
        "chunked-negative-chunk-unchecked",
        BP,
        "chunked_cross_entropy",
        "hidden",
        """
        def chunked_cross_entropy(hidden, weight, targets, chunk_size):
            if chunk_size == 0 or hidden.shape[1] != weight.shape[1]:
                raise ValueError(chunk_size)
            n = hidden.shape[0]
            loss, dh, dw = 0.0, np.zeros(hidden.shape), np.zeros(weight.shape)
            for s in range(0, n, chunk_size):
                h = hidden[s:s + chunk_size]
                l, dz = softmax_cross_entropy(h @ weight.T, targets[s:s + chunk_size])
                loss += l * h.shape[0] / n
                dz = dz * h.shape[0] / n
                dh[s:s + chunk_size] = dz @ weight
                dw += dz.T @ h
            return loss, dh, dw
    """,
    ),
    _m(
        "numgrad-one-sided",
        BP,
        "numerical_gradient",
        "visible",
        """
        def numerical_gradient(f, x, eps=1e-5):
            grad = np.zeros(x.shape)
            f0 = f(x)
            for index in np.ndindex(x.shape):
                old = x[index]
                x[index] = old + eps
                grad[index] = (f(x) - f0) / eps
                x[index] = old
            return grad
    """,
    ),
    _m(
        "numgrad-leaves-x-modified",
        BP,
        "numerical_gradient",
        "visible",
        """
        def numerical_gradient(f, x, eps=1e-5):
            grad = np.zeros(x.shape)
            for index in np.ndindex(x.shape):
                x[index] += eps
                f_plus = f(x)
                x[index] -= 2 * eps
                grad[index] = (f_plus - f(x)) / (2 * eps)
            return grad
    """,
    ),
    _m(
        "numgrad-perturbs-a-copy",
        BP,
        "numerical_gradient",
        "visible",
        """
        def numerical_gradient(f, x, eps=1e-5):
            flat = x.flatten()
            grad = np.zeros(flat.shape)
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + eps
                f_plus = f(x)
                flat[i] = old - eps
                f_minus = f(x)
                flat[i] = old
                grad[i] = (f_plus - f_minus) / (2 * eps)
            return grad.reshape(x.shape)
    """,
    ),
    _m(
        "numgrad-ignores-eps",
        BP,
        "numerical_gradient",
        "hidden",
        """
        def numerical_gradient(f, x, eps=1e-5):
            grad = np.zeros(x.shape)
            for index in np.ndindex(x.shape):
                old = x[index]
                x[index] = old + 1e-5
                f_plus = f(x)
                x[index] = old - 1e-5
                f_minus = f(x)
                x[index] = old
                grad[index] = (f_plus - f_minus) / 2e-5
            return grad
    """,
    ),
    _m(
        "autograd-backward-fancy-add",
        BP,
        "EmbeddingFunction",
        "visible",
        """
        class EmbeddingFunction(torch.autograd.Function):
            @staticmethod
            def forward(ctx, weight, ids):
                if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= weight.shape[0]):
                    raise IndexError("id out of range")
                ctx.save_for_backward(ids)
                ctx.vocab_size = weight.shape[0]
                return weight[ids]

            @staticmethod
            def backward(ctx, grad_out):
                (ids,) = ctx.saved_tensors
                grad_weight = grad_out.new_zeros(ctx.vocab_size, grad_out.shape[-1])
                grad_weight[ids] += grad_out
                return grad_weight, None
    """,
    ),
    _m(
        "autograd-gradient-for-ids",
        BP,
        "EmbeddingFunction",
        "visible",
        """
        class EmbeddingFunction(torch.autograd.Function):
            @staticmethod
            def forward(ctx, weight, ids):
                if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= weight.shape[0]):
                    raise IndexError("id out of range")
                ctx.save_for_backward(ids)
                ctx.vocab_size = weight.shape[0]
                return weight[ids]

            @staticmethod
            def backward(ctx, grad_out):
                (ids,) = ctx.saved_tensors
                dim = grad_out.shape[-1]
                grad_weight = grad_out.new_zeros(ctx.vocab_size, dim)
                grad_weight.index_add_(0, ids.reshape(-1), grad_out.reshape(-1, dim))
                return grad_weight, torch.zeros_like(ids, dtype=grad_out.dtype)
    """,
    ),
    _m(
        "autograd-negative-ids-wrap",
        BP,
        "EmbeddingFunction",
        "hidden",
        """
        class EmbeddingFunction(torch.autograd.Function):
            @staticmethod
            def forward(ctx, weight, ids):
                ctx.save_for_backward(ids)
                ctx.vocab_size = weight.shape[0]
                return weight[ids]

            @staticmethod
            def backward(ctx, grad_out):
                (ids,) = ctx.saved_tensors
                dim = grad_out.shape[-1]
                grad_weight = grad_out.new_zeros(ctx.vocab_size, dim)
                grad_weight.index_add_(0, ids.reshape(-1), grad_out.reshape(-1, dim))
                return grad_weight, None
    """,
    ),
    # ------------------------------------------------------------------------------------- issue 20: stated contracts
    _m(
        "neighbors-zero-row-divides-by-zero",
        TE,
        "nearest_neighbors",
        "hidden",
        """
        def nearest_neighbors(weight, query_id, k):
            rows = np.asarray(weight, dtype=np.float64)
            if not 0 <= query_id < rows.shape[0]:
                raise IndexError(query_id)
            if not 1 <= k <= rows.shape[0] - 1:
                raise ValueError(k)
            unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
            similarity = unit @ unit[query_id]
            similarity[query_id] = -np.inf
            return np.argsort(-similarity, kind="stable")[:k]
    """,
    ),
    _m(
        "neighbors-bad-arguments-unchecked",
        TE,
        "nearest_neighbors",
        "hidden",
        """
        def nearest_neighbors(weight, query_id, k):
            rows = np.asarray(weight, dtype=np.float64)
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            unit = rows / np.where(norms == 0, 1.0, norms)
            similarity = unit @ unit[query_id]
            similarity[query_id] = -np.inf
            return np.argsort(-similarity, kind="stable")[:k]
    """,
    ),
    _m(
        "params-sizes-unchecked",
        MS,
        "embedding_parameters",
        "hidden",
        """
        def embedding_parameters(vocab_size, dim):
            return vocab_size * dim
    """,
    ),
    _m(
        "lookup-int4-rounds-the-whole-batch",
        MS,
        "lookup_bytes",
        "hidden",
        """
        def lookup_bytes(n_tokens, dim, dtype):
            return tensor_bytes(n_tokens * dim, dtype)
    """,
    ),
    # ------------------------------------------------------------------------------------- issue 21: accounting
    _m(
        "cost-one-hot-read-once",
        TE,
        "lookup_cost",
        "visible",
        """
        def lookup_cost(n_tokens, vocab_size, dim):
            if n_tokens < 0 or vocab_size < 1 or dim < 1:
                raise ValueError("sizes")
            return 2 * n_tokens * dim * 4, n_tokens * vocab_size * 4 + (vocab_size + n_tokens) * dim * 4, 2 * n_tokens * vocab_size * dim
    """,
    ),
    _m(
        "cost-only-the-vocabulary-checked",
        TE,
        "lookup_cost",
        "hidden",
        """
        def lookup_cost(n_tokens, vocab_size, dim):
            if vocab_size < 1:
                raise ValueError("empty vocabulary")
            rows = n_tokens * dim * 4
            return 2 * rows, 2 * n_tokens * vocab_size * 4 + vocab_size * dim * 4 + rows, 2 * n_tokens * vocab_size * dim
    """,
    ),
    _m(
        "cost-int32-overflow",
        TE,
        "lookup_cost",
        "hidden",
        """
        def lookup_cost(n_tokens, vocab_size, dim):
            if n_tokens < 0 or vocab_size < 1 or dim < 1:
                raise ValueError("sizes")
            n, v, d = np.int32(n_tokens), np.int32(vocab_size), np.int32(dim)
            rows = n * d * 4
            return 2 * rows, 2 * n * v * 4 + v * d * 4 + rows, 2 * n * v * d
    """,
    ),
    _m(
        "rope-cost-multiplies-only",
        PE,
        "rope_cost",
        "visible",
        """
        def rope_cost(seq_len, dim, batch=1, n_heads=1):
            if dim < 1 or dim % 2 or seq_len < 0 or batch < 1 or n_heads < 1:
                raise ValueError("sizes")
            return seq_len * dim, 4 * batch * n_heads * seq_len * (dim // 2)
    """,
    ),
    _m(
        "rope-cost-only-odd-dim-checked",
        PE,
        "rope_cost",
        "hidden",
        """
        def rope_cost(seq_len, dim, batch=1, n_heads=1):
            if dim % 2:
                raise ValueError("odd dim")
            return seq_len * dim, 3 * batch * n_heads * seq_len * dim
    """,
    ),
    _m(
        "step-forgets-the-low-precision-copy",
        MS,
        "optimizer_step_bytes",
        "visible",
        """
        def optimizer_step_bytes(n_params, dtype="float32", optimizer="adam"):
            if optimizer not in OPTIMIZER_STATES or dtype in ("int8", "int4"):
                raise ValueError("no")
            state = OPTIMIZER_STATES[optimizer] * tensor_bytes(n_params, "float32")
            weights = tensor_bytes(n_params, "float32")
            return tensor_bytes(n_params, dtype) + 2 * weights + 2 * state
    """,
    ),
    _m(
        "step-default-sgd",
        MS,
        "optimizer_step_bytes",
        "hidden",
        """
        def optimizer_step_bytes(n_params, dtype="float32", optimizer="sgd"):
            if optimizer not in OPTIMIZER_STATES or dtype in ("int8", "int4"):
                raise ValueError("no")
            state = OPTIMIZER_STATES[optimizer] * tensor_bytes(n_params, "float32")
            weights = tensor_bytes(n_params, "float32")
            copy = 0 if dtype == "float32" else tensor_bytes(n_params, dtype)
            return tensor_bytes(n_params, dtype) + 2 * weights + 2 * state + copy
    """,
    ),
    _m(
        "elements-sparse-counts-every-id",
        BP,
        "backward_elements",
        "visible",
        """
        def backward_elements(ids, vocab_size, dim):
            ids = np.asarray(ids)
            if not np.issubdtype(ids.dtype, np.integer):
                raise TypeError("ids")
            if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
                raise IndexError("ids")
            n = ids.size
            return vocab_size * dim + n * dim, 2 * n * dim + n, n * dim
    """,
    ),
    _m(
        "elements-only-negative-ids-checked",
        BP,
        "backward_elements",
        "hidden",
        """
        def backward_elements(ids, vocab_size, dim):
            ids = np.asarray(ids)
            if ids.size and ids.min() < 0:
                raise IndexError("negative id")
            n, unique = ids.size, np.unique(ids).size
            return vocab_size * dim + n * dim, unique * dim + n * dim + unique, n * dim
    """,
    ),
    # ------------------------------------------------------------------------------------- issue 21: records
    _m(
        "record-nan-time",
        TE,
        "lookup_measurements",
        "visible",
        """
        lookup_measurements[0]["op"]["median_s"] = float("nan")
    """,
    ),
    _m(
        "record-without-device",
        PE,
        "rope_measurements",
        "visible",
        """
        for record in rope_measurements:
            record.pop("device")
    """,
    ),
    _m(
        "record-only-the-last-run",
        MS,
        "optimizer_measurements",
        "visible",
        """
        optimizer_measurements = optimizer_measurements[-1:]
    """,
    ),
    _m(
        "record-zero-sample",
        BP,
        "backward_measurements",
        "visible",
        """
        backward_measurements[0]["samples_s"][0] = 0.0
    """,
    ),
]
