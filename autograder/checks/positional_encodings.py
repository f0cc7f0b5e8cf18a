"""Judges of the ``positional-encodings`` assignment: ``sinusoidal_positions``, ``add_positions``, ``apply_rope``,
``interleaved_to_half``, ``llama3_inv_freq`` and the PyTorch module ``TokenPositionEmbedding``.

The probes and inputs are in :mod:`autograder.student.probes.positional_encodings`. Every judge takes the seed from
its caller and rebuilds the inputs with the probes' builders; probe data supplies only the student's outputs (for
``TokenPositionEmbedding``: the module's parameter and buffer shapes and values, its output and gradients; the
expected output is computed from the student's own initial tables, which are outputs of the student's constructor,
while the ids and output gradient are rebuilt here).
"""

from __future__ import annotations

import numpy as np
import torch

from autograder.reference import numpy_ref as N
from autograder.reference import torch_ref as T
from autograder.student.probes import positional_encodings as P

from .compare import arrays, case_judges, describe, expect_array, integer, references_agree
from .core import CheckFailed, judge
from .records import record_judge

A = P.A


# ------------------------------------------------------------------------------------------------ sinusoidal
def _torch_sinusoidal(max_len, dim, base=10000.0):
    return T.sinusoidal_positions(max_len, dim, base).numpy()


for _group in ("sinusoidal_positions", "sinusoidal_positions_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.sinusoidal_positions,
        torch_ref=_torch_sinusoidal,
        compare=arrays(atol=5e-5, rtol=0, dtype=np.float32),
    )


# ------------------------------------------------------------------------------------------------ add_positions
def _torch_add(x, table):
    return T.add_positions(torch.from_numpy(x), torch.from_numpy(table)).numpy()


for _group in ("add_positions", "add_positions_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.add_positions,
        torch_ref=_torch_add,
        compare=arrays(),
        arg_names=("token_embeddings", "position_table"),
    )


# ------------------------------------------------------------------------------------------------ apply_rope
def _torch_rope(x, positions, base=10000.0):
    return T.apply_rope(torch.from_numpy(x), torch.from_numpy(np.asarray(positions)), base).numpy()


for _group in ("apply_rope", "apply_rope_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.apply_rope,
        torch_ref=_torch_rope,
        compare=arrays(atol=1e-5, rtol=1e-5),
        arg_names=("x", "positions"),
    )


# ------------------------------------------------------------------------------------------------ interleaved_to_half
def _torch_layout(x):
    return T.interleaved_to_half(torch.from_numpy(np.asarray(x))).numpy()


for _group in ("interleaved_to_half", "interleaved_to_half_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.interleaved_to_half,
        torch_ref=_torch_layout,
        compare=arrays(atol=0, rtol=0),
        arg_names=("x",),
    )


# ------------------------------------------------------------------------------------------------ llama3_inv_freq
def _torch_llama3(*args, **kwargs):
    return T.llama3_inv_freq(*args, **kwargs).numpy()


for _group in ("llama3_inv_freq", "llama3_inv_freq_hidden"):
    case_judges(A, _group, numpy_ref=N.llama3_inv_freq, torch_ref=_torch_llama3, compare=arrays(atol=0, rtol=1e-9))


# ----------------------------------------------------------------------------------------------- TokenPositionEmbedding
def _tpe_judge(hidden, kind_wanted):
    def decide(data, seed):
        for i, ((kind, vocab, dim, length, batch, seq_len), rec) in enumerate(
            zip(P.tpe_configs(seed, hidden, kind_wanted), data, strict=True)
        ):
            where = f"TokenPositionEmbedding({vocab}, {dim}, {length}, positions={kind!r})"
            if "error" in rec:
                raise CheckFailed(f"{where}: constructing the module, {describe(rec['error'])}")
            params = [(n, tuple(s)) for n, s in rec["params"]]
            buffers = [(n, tuple(s)) for n, s in rec["buffers"]]
            token = [n for n, s in params if s == (vocab, dim)]
            if len(token) != 1:
                raise CheckFailed(
                    f"{where}: expected one parameter of shape {(vocab, dim)} for the token table "
                    f"(nn.Embedding(vocab_size, dim)), found parameters {params}"
                )
            pos_params = [n for n, s in params if s == (length, dim)]
            pos_buffers = [n for n, s in buffers if s == (length, dim)]
            n_params = sum(int(np.prod(s)) for _, s in params)
            if kind == "learned":
                if len(pos_params) != 1:
                    where_found = f"a buffer {pos_buffers}" if pos_buffers else f"parameters {params}"
                    raise CheckFailed(
                        f"{where}: learned positions must be a trainable parameter of shape "
                        f"{(length, dim)} (nn.Embedding(max_len, dim)); found {where_found}"
                    )
                expected_params = vocab * dim + length * dim
            else:
                if pos_params:
                    raise CheckFailed(
                        f"{where}: the sinusoidal table is a parameter ({pos_params[0]}): it is fixed, "
                        f"so store it with self.register_buffer(...) instead"
                    )
                if len(pos_buffers) != 1:
                    raise CheckFailed(
                        f"{where}: expected one buffer of shape {(length, dim)} holding the sinusoidal "
                        f"table (self.register_buffer), found buffers {buffers}"
                    )
                expected_params = vocab * dim
                ref_np, ref_t = N.sinusoidal_positions(length, dim), T.sinusoidal_positions(length, dim).numpy()
                references_agree(ref_np, ref_t, where)
                expect_array(
                    rec["values"][pos_buffers[0]],
                    ref_np,
                    f"{where}, buffer {pos_buffers[0]}",
                    atol=5e-5,
                    rtol=0,
                    dtype=None,
                    hint="the sinusoidal table of sinusoidal_positions",
                )
            if n_params != expected_params:
                raise CheckFailed(f"{where}: expected {expected_params} trainable values, found {n_params} in {params}")
            token_w = np.asarray(rec["values"][token[0]], dtype=np.float32)
            pos_w = np.asarray(rec["values"][(pos_params or pos_buffers)[0]], dtype=np.float32)
            ids, g = P.tpe_inputs(seed, i, vocab, dim, batch, seq_len)
            expected = N.add_positions(N.embedding_forward(token_w, ids), pos_w)
            ref = T.TokenPositionEmbedding(vocab, dim, length, positions=kind)
            with torch.no_grad():
                ref.token.weight.copy_(torch.from_numpy(token_w))
                if kind == "learned":
                    ref.position.weight.copy_(torch.from_numpy(pos_w))
            ref_out = ref(torch.from_numpy(ids))
            references_agree(expected, ref_out.detach().numpy(), where, atol=1e-5)
            call_where = f"{where}(ids of shape {ids.shape})"
            expect_array(
                rec["out"],
                expected,
                call_where,
                atol=1e-5,
                rtol=1e-5,
                dtype=np.float32,
                hint="token rows plus position rows 0..T-1",
            )
            # gradients of sum(out * g): the token rows receive g (scatter-added), position row t the batch sum
            (ref_out * torch.from_numpy(g).float()).sum().backward()
            grads = rec.get("grads", {})
            expected_token = N.embedding_backward(g.astype(np.float32), ids, vocab)
            references_agree(expected_token, ref.token.weight.grad.numpy(), where, atol=1e-4)
            expect_array(
                grads.get(token[0]),
                expected_token,
                f"{call_where}, gradient of the token table",
                atol=1e-4,
                rtol=1e-4,
                dtype=None,
            )
            if kind == "learned":
                expected_pos = np.zeros((length, dim))
                expected_pos[:seq_len] = g.sum(axis=0)
                references_agree(expected_pos, ref.position.weight.grad.numpy(), where, atol=1e-4)
                expect_array(
                    grads.get(pos_params[0]),
                    expected_pos,
                    f"{call_where}, gradient of the position table",
                    atol=1e-4,
                    rtol=1e-4,
                    dtype=None,
                )

    return decide


for _hidden, _group in P.TPE_GROUPS:
    for _kind in ("learned", "sinusoidal"):
        judge(A, _group, P.tpe_check_name(_hidden, _kind))(_tpe_judge(_hidden, _kind))


# ------------------------------------------------------------------------------------------------ rope_cost
def _compare_rope_cost(got, ref_np, ref_torch, where, case):
    if tuple(ref_np) != tuple(ref_torch):
        raise RuntimeError(f"internal error: the NumPy and PyTorch references disagree on {where}")
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(f"{where}: expected a pair (cache_values, apply_flops), got {describe(got)}")
    for part, g, e in zip(("cache_values", "apply_flops"), got, ref_np, strict=True):
        integer()(g, e, None, f"{where}, {part}", case)


for _group in ("rope_cost", "rope_cost_hidden"):
    case_judges(A, _group, numpy_ref=N.rope_cost, torch_ref=T.rope_cost, compare=_compare_rope_cost)

record_judge(A, "rope_measurements", P.MEASURED_RECORDS)
