"""Checks of the ``positional-encodings`` assignment: ``sinusoidal_positions``, ``add_positions``, ``apply_rope``
and the PyTorch module ``TokenPositionEmbedding``.

Groups (= nbgrader ``grade_id``): ``<function>`` (visible) and ``<function>_hidden`` (seeded at grading time).
"""
from __future__ import annotations

import numpy as np
import torch

from autograder.reference import numpy_ref as N, torch_ref as T

from .compare import Case, arrays, case_checks, custom_check, describe, expect_array, references_agree, show_array
from .core import CheckFailed, Raised, call

A = "positional-encodings"

SINUSOID_HINT = "PE[p, 2i] = sin(p / base**(2i/dim)) in even columns, cos in odd columns"
ROPE_HINT = ("rotate each interleaved pair (x[..., 2i], x[..., 2i+1]) by +positions[t] * base**(-2i/D): "
             "(a, b) -> (a cos - b sin, a sin + b cos)")


# ------------------------------------------------------------------------------------------------ sinusoidal
def _torch_sinusoidal(max_len, dim, base=10000.0):
    return T.sinusoidal_positions(max_len, dim, base).numpy()


def _sin_case(max_len, dim, base=None, raises=None, hint=SINUSOID_HINT):
    kwargs = {} if base is None else {"base": base}
    label = f"max_len={max_len}, dim={dim}" + ("" if base is None else f", base={base}")
    return Case(label, (max_len, dim), kwargs, raises=raises, hint=hint)


def _sin_cases_visible(seed):
    return [_sin_case(6, 8), _sin_case(4, 4, 100.0),
            _sin_case(10, 7, raises=ValueError, hint="sin/cos pairs need an even dim")]


def _sin_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    return [_sin_case(1, 2), _sin_case(int(rng.integers(100, 200)), 2 * int(rng.integers(8, 33))),
            _sin_case(17, 6, float(rng.integers(50, 1000))), _sin_case(3, 2, 2.0),
            _sin_case(5, 9, raises=ValueError, hint="sin/cos pairs need an even dim"),
            _sin_case(0, 4, raises=ValueError, hint="sizes must be positive"),
            _sin_case(4, 0, raises=ValueError, hint="sizes must be positive"),
            _sin_case(-1, 4, raises=ValueError, hint="sizes must be positive")]


SIN_ERRORS = {ValueError: "odd dim raises ValueError"}
case_checks(A, "sinusoidal_positions", "sinusoidal_positions", results_name="float32 table, sin in even and cos in odd columns",
            error_names=SIN_ERRORS, cases=_sin_cases_visible, numpy_ref=N.sinusoidal_positions,
            torch_ref=_torch_sinusoidal, compare=arrays(atol=5e-5, rtol=0, dtype=np.float32))
case_checks(A, "sinusoidal_positions_hidden", "sinusoidal_positions", results_name="long tables, other bases, dim = 2",
            error_names={ValueError: "odd or non-positive sizes raise ValueError"}, cases=_sin_cases_hidden,
            numpy_ref=N.sinusoidal_positions, torch_ref=_torch_sinusoidal,
            compare=arrays(atol=5e-5, rtol=0, dtype=np.float32), seeded=True)


# ------------------------------------------------------------------------------------------------ add_positions
def _torch_add(x, table):
    return T.add_positions(torch.from_numpy(x), torch.from_numpy(table)).numpy()


def _add_case(x, table, raises=None, hint=""):
    return Case(f"token_embeddings {x.shape} {x.dtype}, position_table {table.shape}", (x, table),
                raises=raises, hint=hint)


def _add_cases_visible(seed):
    rng = np.random.default_rng(seed)
    table = N.sinusoidal_positions(8, 4)
    too_long = "T is longer than the table: raise ValueError instead of adding fewer rows"
    return [_add_case(rng.standard_normal((5, 4)).astype(np.float32), table),
            _add_case(rng.standard_normal((3, 5, 4)).astype(np.float32), table),
            _add_case(rng.standard_normal((9, 4)).astype(np.float32), table, ValueError, too_long),
            _add_case(rng.standard_normal((5, 6)).astype(np.float32), table, ValueError,
                      "the embedding dimensions differ: raise ValueError")]


def _add_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    length, dim = int(rng.integers(4, 20)), 2 * int(rng.integers(1, 9))
    table = rng.standard_normal((length, dim)).astype(np.float32)
    emb = lambda *shape: rng.standard_normal(shape).astype(np.float32)  # noqa: E731
    return [_add_case(emb(length, dim), table),                        # T == max_len exactly
            _add_case(emb(1, 1, dim), table),
            _add_case(emb(0, 3, dim), table),                          # empty batch
            _add_case(emb(4, length - 2, dim), table),
            _add_case(emb(3, dim), table[:1], ValueError,
                      "T = 3 exceeds a 1-row table; broadcasting would silently add row 0 to every token"),
            _add_case(emb(3, dim), table[:, :1], ValueError,
                      "a table of dim 1 broadcasts silently: compare the dimensions yourself"),
            _add_case(emb(2, length + 1, dim), table, ValueError, "T exceeds the table's rows")]


ADD_ERRORS = {ValueError: "too long or wrong dim raises ValueError"}
case_checks(A, "add_positions", "add_positions", results_name="adds rows 0..T-1 to (T, D) and (B, T, D)",
            error_names=ADD_ERRORS, cases=_add_cases_visible, numpy_ref=N.add_positions, torch_ref=_torch_add,
            compare=arrays(), arg_names=("token_embeddings", "position_table"))
case_checks(A, "add_positions_hidden", "add_positions", results_name="T == max_len, T = 1, empty batch",
            error_names={ValueError: "mismatches that would broadcast silently raise ValueError"},
            cases=_add_cases_hidden, numpy_ref=N.add_positions, torch_ref=_torch_add, compare=arrays(),
            seeded=True, arg_names=("token_embeddings", "position_table"))


# ------------------------------------------------------------------------------------------------ apply_rope
def _torch_rope(x, positions, base=10000.0):
    return T.apply_rope(torch.from_numpy(x), torch.from_numpy(np.asarray(positions)), base).numpy()


def _rope_case(x, positions, base=None, raises=None, hint=ROPE_HINT):
    positions = np.asarray(positions)
    kwargs = {} if base is None else {"base": base}
    label = f"x {x.shape} {x.dtype}, positions {show_array(positions, 40)}" + ("" if base is None else f", base={base}")
    return Case(label, (x, positions), kwargs, raises=raises, hint=hint)


def _rope_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [_rope_case(rng.standard_normal((3, 4)), [0, 1, 2]),
            _rope_case(rng.standard_normal((2, 3, 6)).astype(np.float32), [0, 1, 2]),
            _rope_case(rng.standard_normal((2, 5)), [0, 1], raises=ValueError, hint="rotary pairs need an even D")]


def _rope_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    d = 2 * int(rng.integers(2, 9))
    return [_rope_case(rng.standard_normal((3, d)), rng.permutation(20)[:3]),          # not 0..T-1
            _rope_case(rng.standard_normal((2, d)), [4096, int(rng.integers(5000, 20000))]),
            _rope_case(rng.standard_normal((4, d)), np.arange(4), base=float(rng.integers(100, 1000))),
            _rope_case(rng.standard_normal((5, 2)), np.arange(5)),
            _rope_case(rng.standard_normal((1, d)), [7]),
            _rope_case(rng.standard_normal((2, 2, 3, d)).astype(np.float32), [3, 1, 2]),
            _rope_case(rng.standard_normal((2, 3, 7)), [0, 1, 2], raises=ValueError, hint="rotary pairs need an even D")]


ROPE_ERRORS = {ValueError: "odd D raises ValueError"}
case_checks(A, "apply_rope", "apply_rope", results_name="interleaved pairs rotated by +theta; shape and dtype kept",
            error_names=ROPE_ERRORS, cases=_rope_cases_visible, numpy_ref=N.apply_rope, torch_ref=_torch_rope,
            compare=arrays(atol=1e-5, rtol=1e-5), arg_names=("x", "positions"))
case_checks(A, "apply_rope_hidden", "apply_rope", results_name="arbitrary and large positions, other bases, 4-d x",
            error_names=ROPE_ERRORS, cases=_rope_cases_hidden, numpy_ref=N.apply_rope, torch_ref=_torch_rope,
            compare=arrays(atol=1e-5, rtol=1e-5), seeded=True, arg_names=("x", "positions"))


# ------------------------------------------------------------------------------------------------ TokenPositionEmbedding
def _tpe_configs(seed: int, hidden: bool, kind: str) -> list[tuple[str, int, int, int, int, int]]:
    """``(positions, V, D, L, B, T)`` with V, D and L distinct, so each table is known by its shape."""
    return [c for c in _tpe_all_configs(seed, hidden) if c[0] == kind]


def _tpe_all_configs(seed: int, hidden: bool) -> list[tuple[str, int, int, int, int, int]]:
    if not hidden:
        return [("learned", 11, 6, 9, 2, 5), ("sinusoidal", 11, 6, 9, 2, 5)]
    rng = np.random.default_rng(seed)
    vocab, length = int(rng.integers(20, 40)), int(rng.integers(5, 16))
    dim = next(d for d in (4, 6, 8, 10, 12, 16, 18) if d not in (vocab, length))
    return [("learned", vocab, dim, length, 1, 1), ("learned", vocab, dim, length, 3, length),
            ("sinusoidal", vocab, dim, length, 1, 1), ("sinusoidal", vocab, dim, length, 3, length)]


def _tpe_inputs(seed, i, vocab, dim, batch, seq_len):
    rng = np.random.default_rng(seed * 100 + i)
    return rng.integers(0, vocab, size=(batch, seq_len)), rng.standard_normal((batch, seq_len, dim))


def _tpe_probe(hidden, kind_wanted):
    def probe(cls, seed):
        out = []
        for i, (kind, vocab, dim, length, batch, seq_len) in enumerate(_tpe_configs(seed, hidden, kind_wanted)):
            torch.manual_seed(seed + i)
            module = call(cls, vocab, dim, length, positions=kind)
            if isinstance(module, Raised):
                out.append({"error": module})
                continue
            ids, g = _tpe_inputs(seed, i, vocab, dim, batch, seq_len)
            record = {"params": [[n, list(p.shape)] for n, p in module.named_parameters()],
                      "buffers": [[n, list(b.shape)] for n, b in module.named_buffers()],
                      "values": {n: t.detach().clone() for n, t in [*module.named_parameters(), *module.named_buffers()]}}
            y = call(module, torch.from_numpy(ids))
            record["out"] = y.detach().clone() if isinstance(y, torch.Tensor) else y
            if isinstance(y, torch.Tensor) and y.requires_grad and y.shape == g.shape:
                (y * torch.from_numpy(g).to(y.dtype)).sum().backward()
                record["grads"] = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
            out.append(record)
        return out
    return probe




def _tpe_judge(hidden, kind_wanted):
    def judge(data, seed):
        for i, ((kind, vocab, dim, length, batch, seq_len), rec) in enumerate(
                zip(_tpe_configs(seed, hidden, kind_wanted), data, strict=True)):
            where = f"TokenPositionEmbedding({vocab}, {dim}, {length}, positions={kind!r})"
            if "error" in rec:
                raise CheckFailed(f"{where}: constructing the module, {describe(rec['error'])}")
            params = [(n, tuple(s)) for n, s in rec["params"]]
            buffers = [(n, tuple(s)) for n, s in rec["buffers"]]
            token = [n for n, s in params if s == (vocab, dim)]
            if len(token) != 1:
                raise CheckFailed(f"{where}: expected one parameter of shape {(vocab, dim)} for the token table "
                                  f"(nn.Embedding(vocab_size, dim)), found parameters {params}")
            pos_params = [n for n, s in params if s == (length, dim)]
            pos_buffers = [n for n, s in buffers if s == (length, dim)]
            n_params = sum(int(np.prod(s)) for _, s in params)
            if kind == "learned":
                if len(pos_params) != 1:
                    where_found = f"a buffer {pos_buffers}" if pos_buffers else f"parameters {params}"
                    raise CheckFailed(f"{where}: learned positions must be a trainable parameter of shape "
                                      f"{(length, dim)} (nn.Embedding(max_len, dim)); found {where_found}")
                expected_params = vocab * dim + length * dim
            else:
                if pos_params:
                    raise CheckFailed(f"{where}: the sinusoidal table is a parameter ({pos_params[0]}): it is fixed, "
                                      f"so store it with self.register_buffer(...) instead")
                if len(pos_buffers) != 1:
                    raise CheckFailed(f"{where}: expected one buffer of shape {(length, dim)} holding the sinusoidal "
                                      f"table (self.register_buffer), found buffers {buffers}")
                expected_params = vocab * dim
                ref_np, ref_t = N.sinusoidal_positions(length, dim), T.sinusoidal_positions(length, dim).numpy()
                references_agree(ref_np, ref_t, where)
                expect_array(rec["values"][pos_buffers[0]], ref_np, f"{where}, buffer {pos_buffers[0]}",
                             atol=5e-5, rtol=0, dtype=None, hint="the sinusoidal table of sinusoidal_positions")
            if n_params != expected_params:
                raise CheckFailed(f"{where}: expected {expected_params} trainable values, found {n_params} in {params}")
            token_w = np.asarray(rec["values"][token[0]], dtype=np.float32)
            pos_w = np.asarray(rec["values"][(pos_params or pos_buffers)[0]], dtype=np.float32)
            ids, g = _tpe_inputs(seed, i, vocab, dim, batch, seq_len)
            expected = N.add_positions(N.embedding_forward(token_w, ids), pos_w)
            ref = T.TokenPositionEmbedding(vocab, dim, length, positions=kind)
            with torch.no_grad():
                ref.token.weight.copy_(torch.from_numpy(token_w))
                if kind == "learned":
                    ref.position.weight.copy_(torch.from_numpy(pos_w))
            ref_out = ref(torch.from_numpy(ids))
            references_agree(expected, ref_out.detach().numpy(), where, atol=1e-5)
            call_where = f"{where}(ids of shape {ids.shape})"
            expect_array(rec["out"], expected, call_where, atol=1e-5, rtol=1e-5, dtype=np.float32,
                         hint="token rows plus position rows 0..T-1")
            # gradients of sum(out * g): the token rows receive g (scatter-added), position row t the batch sum
            (ref_out * torch.from_numpy(g).float()).sum().backward()
            grads = rec.get("grads", {})
            expected_token = N.embedding_backward(g.astype(np.float32), ids, vocab)
            references_agree(expected_token, ref.token.weight.grad.numpy(), where, atol=1e-4)
            expect_array(grads.get(token[0]), expected_token, f"{call_where}, gradient of the token table",
                         atol=1e-4, rtol=1e-4, dtype=None)
            if kind == "learned":
                expected_pos = np.zeros((length, dim))
                expected_pos[:seq_len] = g.sum(axis=0)
                references_agree(expected_pos, ref.position.weight.grad.numpy(), where, atol=1e-4)
                expect_array(grads.get(pos_params[0]), expected_pos, f"{call_where}, gradient of the position table",
                             atol=1e-4, rtol=1e-4, dtype=None)
    return judge


for _hidden, _group in ((False, "token_position_embedding"), (True, "token_position_embedding_hidden")):
    _more = "batch 1 with T = 1, and T = max_len: " if _hidden else ""
    custom_check(A, _group, _more + "learned positions are a parameter; output and gradients", "TokenPositionEmbedding",
                 probe=_tpe_probe(_hidden, "learned"), judge=_tpe_judge(_hidden, "learned"), seeded=_hidden)
    custom_check(A, _group, _more + "sinusoidal positions are a buffer; output and gradients", "TokenPositionEmbedding",
                 probe=_tpe_probe(_hidden, "sinusoidal"), judge=_tpe_judge(_hidden, "sinusoidal"), seeded=_hidden)
