"""Probes and inputs of the ``positional-encodings`` assignment: ``sinusoidal_positions``, ``add_positions``,
``apply_rope``, ``interleaved_to_half``, ``llama3_inv_freq``, the PyTorch module ``TokenPositionEmbedding``,
``rope_cost`` and the record of the measured part, ``rope_measurements``.

Groups (= nbgrader ``grade_id``): ``<function>`` (visible) and ``<function>_hidden`` (inputs from the hidden seed).
The judges are in :mod:`autograder.checks.positional_encodings`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..cases import Case
from ..describe import show_array
from ..measured import register_record
from ..registry import case_probes, register
from ..transport import Raised, call

A = "positional-encodings"

SINUSOID_HINT = "PE[p, 2i] = sin(p / base**(2i/dim)) in even columns, cos in odd columns"
ROPE_HINT = (
    "rotate each interleaved pair (x[..., 2i], x[..., 2i+1]) by +positions[t] * base**(-2i/D): "
    "(a, b) -> (a cos - b sin, a sin + b cos)"
)


# ------------------------------------------------------------------------------------------------ sinusoidal
def _sin_case(max_len, dim, base=None, raises=None, hint=SINUSOID_HINT):
    kwargs = {} if base is None else {"base": base}
    label = f"max_len={max_len}, dim={dim}" + ("" if base is None else f", base={base}")
    return Case(label, (max_len, dim), kwargs, raises=raises, hint=hint)


def sin_cases_visible(seed):
    return [
        _sin_case(6, 8),
        _sin_case(4, 4, 100.0),
        _sin_case(10, 7, raises=ValueError, hint="sin/cos pairs need an even dim"),
    ]


def sin_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    return [
        _sin_case(1, 2),
        _sin_case(int(rng.integers(100, 200)), 2 * int(rng.integers(8, 33))),
        _sin_case(17, 6, float(rng.integers(50, 1000))),
        _sin_case(3, 2, 2.0),
        _sin_case(5, 9, raises=ValueError, hint="sin/cos pairs need an even dim"),
        _sin_case(0, 4, raises=ValueError, hint="sizes must be positive"),
        _sin_case(4, 0, raises=ValueError, hint="sizes must be positive"),
        _sin_case(-1, 4, raises=ValueError, hint="sizes must be positive"),
    ]


case_probes(
    A,
    "sinusoidal_positions",
    "sinusoidal_positions",
    results_name="float32 table, sin in even and cos in odd columns",
    error_names={ValueError: "odd dim raises ValueError"},
    cases=sin_cases_visible,
)
case_probes(
    A,
    "sinusoidal_positions_hidden",
    "sinusoidal_positions",
    results_name="long tables, other bases, dim = 2",
    error_names={ValueError: "odd or non-positive sizes raise ValueError"},
    cases=sin_cases_hidden,
    hidden=True,
)


# ------------------------------------------------------------------------------------------------ add_positions
def _add_case(x, table, raises=None, hint=""):
    return Case(
        f"token_embeddings {x.shape} {x.dtype}, position_table {table.shape}", (x, table), raises=raises, hint=hint
    )


def add_cases_visible(seed):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((8, 4)).astype(np.float32)  # any (max_len, D) table: adding does not care
    too_long = "T is longer than the table: raise ValueError instead of adding fewer rows"
    return [
        _add_case(rng.standard_normal((5, 4)).astype(np.float32), table),
        _add_case(rng.standard_normal((3, 5, 4)).astype(np.float32), table),
        _add_case(rng.standard_normal((9, 4)).astype(np.float32), table, ValueError, too_long),
        _add_case(
            rng.standard_normal((5, 6)).astype(np.float32),
            table,
            ValueError,
            "the embedding dimensions differ: raise ValueError",
        ),
    ]


def add_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    length, dim = int(rng.integers(4, 20)), 2 * int(rng.integers(1, 9))
    table = rng.standard_normal((length, dim)).astype(np.float32)

    def emb(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    return [
        _add_case(emb(length, dim), table),  # T == max_len exactly
        _add_case(emb(1, 1, dim), table),
        _add_case(emb(0, 3, dim), table),  # empty batch
        _add_case(emb(4, length - 2, dim), table),
        _add_case(
            emb(3, dim),
            table[:1],
            ValueError,
            "T = 3 exceeds a 1-row table; broadcasting would silently add row 0 to every token",
        ),
        _add_case(
            emb(3, dim),
            table[:, :1],
            ValueError,
            "a table of dim 1 broadcasts silently: compare the dimensions yourself",
        ),
        _add_case(emb(2, length + 1, dim), table, ValueError, "T exceeds the table's rows"),
    ]


case_probes(
    A,
    "add_positions",
    "add_positions",
    results_name="adds rows 0..T-1 to (T, D) and (B, T, D)",
    error_names={ValueError: "too long or wrong dim raises ValueError"},
    cases=add_cases_visible,
)
case_probes(
    A,
    "add_positions_hidden",
    "add_positions",
    results_name="T == max_len, T = 1, empty batch",
    error_names={ValueError: "mismatches that would broadcast silently raise ValueError"},
    cases=add_cases_hidden,
    hidden=True,
)


# ------------------------------------------------------------------------------------------------ apply_rope
def _rope_case(x, positions, base=None, raises=None, hint=ROPE_HINT):
    positions = np.asarray(positions)
    kwargs = {} if base is None else {"base": base}
    label = f"x {x.shape} {x.dtype}, positions {show_array(positions, 40)}" + ("" if base is None else f", base={base}")
    return Case(label, (x, positions), kwargs, raises=raises, hint=hint)


def rope_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [
        _rope_case(rng.standard_normal((3, 4)), [0, 1, 2]),
        _rope_case(rng.standard_normal((2, 3, 6)).astype(np.float32), [0, 1, 2]),
        _rope_case(rng.standard_normal((2, 5)), [0, 1], raises=ValueError, hint="rotary pairs need an even D"),
    ]


def rope_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    d = 2 * int(rng.integers(2, 9))
    return [
        _rope_case(rng.standard_normal((3, d)), rng.permutation(20)[:3]),  # not 0..T-1
        _rope_case(rng.standard_normal((2, d)), [4096, int(rng.integers(5000, 20000))]),
        _rope_case(rng.standard_normal((4, d)), np.arange(4), base=float(rng.integers(100, 1000))),
        _rope_case(rng.standard_normal((5, 2)), np.arange(5)),
        _rope_case(rng.standard_normal((1, d)), [7]),
        _rope_case(rng.standard_normal((2, 2, 3, d)).astype(np.float32), [3, 1, 2]),
        _rope_case(rng.standard_normal((2, 3, 7)), [0, 1, 2], raises=ValueError, hint="rotary pairs need an even D"),
    ]


ROPE_ERRORS = {ValueError: "odd D raises ValueError"}
case_probes(
    A,
    "apply_rope",
    "apply_rope",
    results_name="interleaved pairs rotated by +theta; shape and dtype kept",
    error_names=ROPE_ERRORS,
    cases=rope_cases_visible,
)
case_probes(
    A,
    "apply_rope_hidden",
    "apply_rope",
    results_name="arbitrary and large positions, other bases, 4-d x",
    error_names=ROPE_ERRORS,
    cases=rope_cases_hidden,
    hidden=True,
)


# ------------------------------------------------------------------------------------------------ interleaved_to_half
LAYOUT_HINT = "the even dimensions first, then the odd ones: pair (2i, 2i+1) moves to (i, i + D/2)"


def _layout_case(x, raises=None, hint=LAYOUT_HINT):
    return Case(
        f"x {x.shape} {x.dtype}" + (f" {show_array(x, 40)}" if x.size <= 8 else ""), (x,), raises=raises, hint=hint
    )


def layout_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [
        _layout_case(np.arange(8.0)),
        _layout_case(rng.standard_normal((2, 3, 6)).astype(np.float32)),
        _layout_case(np.ones((2, 5)), ValueError, "an odd last axis has no pairs"),
    ]


def layout_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    d = 2 * int(rng.integers(2, 17))
    return [
        _layout_case(rng.standard_normal(d)),
        _layout_case(np.array([3.0, -1.0])),  # D = 2: nothing moves
        _layout_case(rng.integers(-50, 50, size=(3, d))),  # integers keep their dtype
        _layout_case(rng.standard_normal((2, 2, 3, d)).astype(np.float32)),
        _layout_case(rng.standard_normal((0, d))),  # no rows at all
        _layout_case(np.ones((3, 2 * int(rng.integers(1, 9)) + 1)), ValueError, "an odd last axis has no pairs"),
        _layout_case(np.ones((2, 0)), ValueError, "an empty last axis has no pairs"),
    ]


LAYOUT_ERRORS = {ValueError: "odd or empty last axis raises ValueError"}
case_probes(
    A,
    "interleaved_to_half",
    "interleaved_to_half",
    results_name="even dimensions, then odd; shape and dtype kept",
    error_names=LAYOUT_ERRORS,
    cases=layout_cases_visible,
)
case_probes(
    A,
    "interleaved_to_half_hidden",
    "interleaved_to_half",
    results_name="any D, D = 2, integers, 4-d, no rows",
    error_names=LAYOUT_ERRORS,
    cases=layout_cases_hidden,
    hidden=True,
)


# ------------------------------------------------------------------------------------------------ llama3_inv_freq
LLAMA3_HINT = (
    "f_i = base**(-2i/dim); keep f_i when its wavelength 2 pi / f_i < original / high_freq_factor, use "
    "f_i / factor when it exceeds original / low_freq_factor, else (1 - s) f_i / factor + s f_i with "
    "s = (original / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)"
)


def _llama3_case(dim, base, factor, original, low=None, high=None, raises=None, hint=LLAMA3_HINT):
    kwargs = {k: v for k, v in (("low_freq_factor", low), ("high_freq_factor", high)) if v is not None}
    label = f"dim={dim}, base={base}, factor={factor}, original_max_positions={original}" + "".join(
        f", {k}={v}" for k, v in kwargs.items()
    )
    return Case(label, (dim, base, factor, original), kwargs, raises=raises, hint=hint)


def llama3_cases_visible(seed):
    return [
        _llama3_case(128, 500000.0, 8.0, 8192),  # Llama 3.1 8B's config.json
        _llama3_case(16, 10000.0, 4.0, 64, 1.0, 4.0),
        _llama3_case(32, 10000.0, 2.0, 512, 2.0, 8.0),
        _llama3_case(7, 10000.0, 4.0, 64, raises=ValueError, hint="an odd dim has no pairs"),
    ]


def llama3_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    dim = 2 * int(rng.integers(4, 65))
    low = float(rng.uniform(0.5, 2.0))
    bad = "raise ValueError for a factor below 1, a base of 1 or less, or high_freq_factor <= low_freq_factor"
    return [
        _llama3_case(
            dim,
            float(rng.integers(1000, 2_000_000)),
            float(rng.uniform(1.5, 40)),
            int(rng.integers(256, 200_000)),
            low,
            low + float(rng.uniform(0.5, 6)),
        ),
        _llama3_case(64, 10000.0, 1.0, 4096),  # factor 1: every frequency kept
        _llama3_case(2, 10000.0, 8.0, 8192),  # one pair (wavelength 2 pi): kept
        _llama3_case(dim, 10000.0, 8.0, 10**9),  # a huge context: everything kept
        _llama3_case(dim, 500000.0, 16.0, 1),  # a tiny one: everything divided
        _llama3_case(64, 10000.0, 0.5, 4096, raises=ValueError, hint=bad),
        _llama3_case(64, 1.0, 4.0, 4096, raises=ValueError, hint=bad),
        _llama3_case(64, 10000.0, 4.0, 4096, 4.0, 1.0, raises=ValueError, hint=bad),
    ]


LLAMA3_ERRORS = {ValueError: "bad arguments raise ValueError"}
case_probes(
    A,
    "llama3_inv_freq",
    "llama3_inv_freq",
    results_name="float64 (dim/2,): kept, divided and blended pairs",
    error_names=LLAMA3_ERRORS,
    cases=llama3_cases_visible,
)
case_probes(
    A,
    "llama3_inv_freq_hidden",
    "llama3_inv_freq",
    results_name="random settings, factor 1, extreme contexts",
    error_names=LLAMA3_ERRORS,
    cases=llama3_cases_hidden,
    hidden=True,
)


# ----------------------------------------------------------------------------------------------- TokenPositionEmbedding
def tpe_configs(seed: int, hidden: bool, kind: str) -> list[tuple[str, int, int, int, int, int]]:
    """``(positions, V, D, L, B, T)`` with V, D and L distinct, so each table is known by its shape."""
    return [c for c in _tpe_all_configs(seed, hidden) if c[0] == kind]


def _tpe_all_configs(seed: int, hidden: bool) -> list[tuple[str, int, int, int, int, int]]:
    if not hidden:
        return [("learned", 11, 6, 9, 2, 5), ("sinusoidal", 11, 6, 9, 2, 5)]
    rng = np.random.default_rng(seed)
    vocab, length = int(rng.integers(20, 40)), int(rng.integers(5, 16))
    dim = next(d for d in (4, 6, 8, 10, 12, 16, 18) if d not in (vocab, length))
    return [
        ("learned", vocab, dim, length, 1, 1),
        ("learned", vocab, dim, length, 3, length),
        ("sinusoidal", vocab, dim, length, 1, 1),
        ("sinusoidal", vocab, dim, length, 3, length),
    ]


def tpe_inputs(seed, i, vocab, dim, batch, seq_len):
    """``(ids (B, T) int64, grad_out (B, T, D) float64)`` of configuration ``i``."""
    rng = np.random.default_rng(seed * 100 + i)
    return rng.integers(0, vocab, size=(batch, seq_len)), rng.standard_normal((batch, seq_len, dim))


def _tpe_probe(hidden, kind_wanted):
    def probe(cls, seed):
        out = []
        for i, (kind, vocab, dim, length, batch, seq_len) in enumerate(tpe_configs(seed, hidden, kind_wanted)):
            torch.manual_seed(seed + i)
            module = call(cls, vocab, dim, length, positions=kind)
            if isinstance(module, Raised):
                out.append({"error": module})
                continue
            ids, g = tpe_inputs(seed, i, vocab, dim, batch, seq_len)
            record = {
                "params": [[n, list(p.shape)] for n, p in module.named_parameters()],
                "buffers": [[n, list(b.shape)] for n, b in module.named_buffers()],
                "values": {n: t.detach().clone() for n, t in [*module.named_parameters(), *module.named_buffers()]},
            }
            y = call(module, torch.from_numpy(ids))
            record["out"] = y.detach().clone() if isinstance(y, torch.Tensor) else y
            if isinstance(y, torch.Tensor) and y.requires_grad and y.shape == g.shape:
                (y * torch.from_numpy(g).to(y.dtype)).sum().backward()
                record["grads"] = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
            out.append(record)
        return out

    return probe


def tpe_check_name(hidden: bool, kind: str) -> str:
    more = "batch 1 with T = 1, and T = max_len: " if hidden else ""
    what = "learned positions are a parameter" if kind == "learned" else "sinusoidal positions are a buffer"
    return f"{more}{what}; output and gradients"


TPE_GROUPS = ((False, "token_position_embedding"), (True, "token_position_embedding_hidden"))
for _hidden, _group in TPE_GROUPS:
    for _kind in ("learned", "sinusoidal"):
        register(A, _group, tpe_check_name(_hidden, _kind), "TokenPositionEmbedding", hidden=_hidden)(
            _tpe_probe(_hidden, _kind)
        )


# ------------------------------------------------------------------------------------------------ rope_cost
ROPE_COST_HINT = (
    "the cache holds cos and sin of seq_len x dim/2 angles (seq_len * dim values, whatever the batch); applying "
    "it costs 6 FLOPs (4 multiplies, 2 additions) per pair: 3 * batch * n_heads * seq_len * dim"
)
ROPE_COST_SIZE_HINT = "raise ValueError for an odd dim, seq_len < 0, and dim, batch or n_heads < 1"


def _rope_cost_case(*args, raises=None, hint=ROPE_COST_HINT, **kwargs):
    label = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    return Case(label, args, kwargs, raises=raises, hint=hint if raises is None else ROPE_COST_SIZE_HINT)


def rope_cost_cases_visible(seed):
    return [
        _rope_cost_case(256, 64),
        _rope_cost_case(128, 128, batch=2, n_heads=8),
        _rope_cost_case(10, 6, 3, 1),
        _rope_cost_case(16, 7, raises=ValueError),
    ]


def rope_cost_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    return [
        _rope_cost_case(
            int(rng.integers(1, 9000)),
            2 * int(rng.integers(1, 128)),
            int(rng.integers(1, 64)),
            int(rng.integers(1, 64)),
        ),
        _rope_cost_case(0, 2 * int(rng.integers(1, 64)), n_heads=int(rng.integers(1, 32))),
        _rope_cost_case(1, 2),
        _rope_cost_case(131072, 128, 64, 32, hint="use Python ints: these counts pass 2**31; " + ROPE_COST_HINT),
        _rope_cost_case(int(rng.integers(1, 100)), 2 * int(rng.integers(1, 64)), n_heads=int(rng.integers(2, 9))),
        _rope_cost_case(-1, 8, raises=ValueError),
        _rope_cost_case(8, 8, batch=0, raises=ValueError),
    ]


case_probes(
    A,
    "rope_cost",
    "rope_cost",
    results_name="values of the cos/sin cache and FLOPs of applying it",
    error_names={ValueError: "an odd dim raises ValueError"},
    cases=rope_cost_cases_visible,
)
case_probes(
    A,
    "rope_cost_hidden",
    "rope_cost",
    results_name="random sizes, empty sequences, long contexts, the defaults",
    error_names={ValueError: "negative seq_len or batch 0 raise ValueError"},
    cases=rope_cost_cases_hidden,
    hidden=True,
)

# ------------------------------------------------------------------------------------------------ measured part
#: the measurement cell times building the cache and applying RoPE to this many vectors of each sequence
MEASURED_VECTORS = (1, 8, 64)
MEASURED_RECORDS = 2 * len(MEASURED_VECTORS)
register_record(A, "rope_measurements")
