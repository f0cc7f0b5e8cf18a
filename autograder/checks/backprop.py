"""Judges of the ``backprop`` assignment: ``embedding_backward``, ``sparse_embedding_backward``,
``softmax_cross_entropy``, ``numerical_gradient``, the PyTorch ``EmbeddingFunction`` and ``chunked_cross_entropy``.

Expected gradients come from the NumPy references and from PyTorch (``torch.autograd`` through ``F.embedding``,
``nn.Embedding(sparse=True)``, ``F.cross_entropy``). The inputs are rebuilt from the caller's seed by
:mod:`autograder.student.probes.backprop`; probe data supplies only the student's outputs.
"""

from __future__ import annotations

import numpy as np
import torch

from autograder.reference import numpy_ref as N
from autograder.reference import torch_ref as T
from autograder.student.probes import backprop as P

from .compare import (
    arrays,
    case_judges,
    describe,
    expect_array,
    expect_number,
    integer,
    references_agree,
    show_array,
    torch_ids,
)
from .core import CheckFailed, Raised, judge
from .records import record_judge

A = P.A


def _torch_backward(grad_out, ids, vocab_size):
    return T.embedding_backward(torch.from_numpy(grad_out), torch_ids(ids), vocab_size).numpy()


def _torch_sparse(grad_out, ids):
    uniq, rows = T.sparse_embedding_backward(torch.from_numpy(grad_out), torch_ids(ids))  # V: max id + 1
    return uniq.numpy(), rows.numpy()


def _compare_sparse(got, ref_np, ref_torch, where, case):
    references_agree(ref_np, ref_torch, where, atol=1e-6)
    if isinstance(got, Raised) or not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(f"{where}: expected a pair (unique_ids, row_grads), got {describe(got)}")
    expect_array(got[0], ref_np[0], where + ", unique_ids", rtol=0, atol=0, integer_kind=True, hint=P.SPARSE_HINT)
    expect_array(got[1], ref_np[1], where + ", row_grads", atol=1e-5, rtol=1e-5, dtype=None, hint=P.ACCUMULATE_HINT)


def _torch_softmax(logits, targets):
    loss, grad = T.softmax_cross_entropy(torch.from_numpy(logits), torch_ids(targets))
    return loss, grad.numpy()


def _compare_softmax(got, ref_np, ref_torch, where, case):
    tight = case.args[0].dtype == np.float64
    references_agree(ref_np, ref_torch, where, atol=1e-9 if tight else 1e-5)
    if isinstance(got, Raised) or not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(f"{where}: expected a pair (loss, dlogits), got {describe(got)}")
    expect_number(
        got[0], ref_np[0], where + ", loss", rtol=1e-7 if tight else 1e-5, atol=1e-9 if tight else 1e-6, hint=case.hint
    )
    expect_array(
        got[1], ref_np[1], where + ", dlogits", atol=1e-9 if tight else 1e-6, rtol=1e-6, dtype=None, hint=case.hint
    )


#: the scalar functions of the numerical-gradient cases written for torch tensors (the PyTorch reference
#: differentiates these); keyed by the probes' own functions, which the rebuilt cases hold
_TORCH_F = {
    P.f_sin: lambda x: (torch.sin(x) * x).sum(),
    P.f_cubic: lambda x: (x**3).sum() + torch.exp(x).sum(),
    P.f_quadratic: lambda x: 0.5 * x @ torch.from_numpy(P.M) @ x,
}


def _torch_numerical(f, x, eps=1e-5):
    """Central differences evaluated by torch, all coordinates at once: an independent implementation."""
    xt = torch.from_numpy(np.array(x, dtype=np.float64)).reshape(-1)
    steps = torch.eye(xt.numel(), dtype=torch.float64) * eps
    ft = _TORCH_F[f]
    shape = np.shape(x)
    plus = torch.stack([ft((xt + s).reshape(shape)) for s in steps]) if xt.numel() else torch.zeros(0)
    minus = torch.stack([ft((xt - s).reshape(shape)) for s in steps]) if xt.numel() else torch.zeros(0)
    return ((plus - minus) / (2 * eps)).reshape(shape).numpy()


def _compare_numerical(got, ref_np, ref_torch, where, case):
    references_agree(ref_np, ref_torch, where, atol=1e-7)
    f, x = case.args
    if case.kwargs.get("eps", 1e-5) < 1e-3:  # for a small step both must also match the exact gradient
        xt = torch.from_numpy(np.array(x, dtype=np.float64)).requires_grad_(True)
        _TORCH_F[f](xt).backward()
        references_agree(ref_np, xt.grad.numpy(), where, atol=1e-6)
    expect_array(
        got,
        ref_np,
        where,
        atol=1e-7,
        rtol=1e-7,
        dtype=None,
        hint="central differences (f(x + eps) - f(x - eps)) / (2 eps), one entry of x at a time, "
        "using the eps argument",
    )


NUM_MUTATION = "restore each entry after nudging it, so x is left as it was"


def _ef_judge(hidden, aspects=("forward", "backward", "gradcheck", "negative")):
    def decide(data, seed):
        for i, ((vocab, dim, ids), rec) in enumerate(zip(P.ef_configs(seed, hidden), data, strict=True)):
            weight_np, g_np = P.ef_inputs(seed, i, vocab, dim, ids)
            where = f"EmbeddingFunction.apply(weight ({vocab}, {dim}) float64, ids {show_array(ids, 40)})"
            weight = torch.from_numpy(weight_np).requires_grad_(True)
            ref_out = T.EmbeddingFunction.apply(weight, torch_ids(ids))
            expected = N.embedding_forward(weight_np, ids)
            references_agree(expected, ref_out.detach().numpy(), where)
            if "forward" in aspects:
                expect_array(
                    rec["out"],
                    expected,
                    where,
                    atol=1e-12,
                    rtol=0,
                    dtype=np.float64,
                    hint="forward returns weight[ids] with shape ids.shape + (dim,)",
                )
            if "raw" not in rec and {"backward", "gradcheck"} & set(aspects):
                if isinstance(rec["out"], Raised):
                    raise CheckFailed(f"{where}: forward failed, so backward cannot run: {describe(rec['out'])}")
                raise CheckFailed(
                    f"{where}: the output has no grad_fn: return a tensor from forward and let "
                    f"EmbeddingFunction.apply wrap it"
                )
            if "backward" in aspects:
                _judge_backward(rec, where, ref_out, weight, ids, vocab, g_np)
            if "gradcheck" in aspects and ids.size:
                verdict = rec.get("gradcheck")
                if verdict is not True:
                    detail = (
                        describe(verdict)
                        if isinstance(verdict, Raised)
                        else "analytical and numerical Jacobians differ"
                    )
                    raise CheckFailed(f"{where}: torch.autograd.gradcheck in float64 failed: {detail}")
            # the probe calls with ids [0 -1] on the first hidden configuration (P.ef_negative_probed); the judge
            # decides from that rule, not from whether the data holds the record
            if (
                "negative" in aspects
                and P.ef_negative_probed(hidden, i)
                and not isinstance(rec.get("negative"), Raised)
            ):
                raise CheckFailed(
                    f"{where[: where.index('ids')]}ids [0 -1]): returned rows, but torch indexing wraps "
                    f"-1 to the last row like NumPy: raise IndexError for ids < 0 or >= vocab_size"
                )

    return decide


def _judge_backward(rec, where, ref_out, weight, ids, vocab, g_np) -> None:
    """The gradients backward returns: (dense scatter-added weight gradient, None for the integer ids)."""
    raw = rec["raw"]
    if isinstance(raw, Raised):
        raise CheckFailed(f"{where}: calling backward, {describe(raw)}")
    if len(raw) != 2:
        raise CheckFailed(f"{where}: backward must return one gradient per forward input (weight, ids), got {len(raw)}")
    if raw[1] is not None:
        raise CheckFailed(
            f"{where}: backward returned {raw[1]} for ids; integer ids have no gradient: return (grad_weight, None)"
        )
    if raw[0] is None:
        raise CheckFailed(
            f"{where}: backward returned None for weight: return the dense (V, D) gradient of weight "
            f"(a scatter-add of grad_out), then None for ids"
        )
    ref_out.backward(torch.from_numpy(g_np))
    expected_grad = N.embedding_backward(g_np, ids, vocab)
    references_agree(expected_grad, weight.grad.numpy(), where, atol=1e-10)
    grad = rec["grad"]
    if isinstance(grad, Raised):
        raise CheckFailed(f"{where}: out.backward(grad_out): {describe(grad)}")
    expect_array(
        grad,
        expected_grad,
        where + ", weight.grad after backward",
        atol=1e-10,
        rtol=1e-10,
        dtype=np.float64,
        hint="scatter-add grad_out into a zero (V, D) tensor: index_add_(0, ids, ...)",
    )


for _group in ("embedding_backward", "embedding_backward_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.embedding_backward,
        torch_ref=_torch_backward,
        compare=arrays(atol=1e-5, rtol=1e-5, dtype=None),
        arg_names=("grad_out", "ids"),
    )
for _group in ("sparse_embedding_backward", "sparse_embedding_backward_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.sparse_embedding_backward,
        torch_ref=_torch_sparse,
        compare=_compare_sparse,
        arg_names=("grad_out", "ids"),
    )
for _group in ("softmax_cross_entropy", "softmax_cross_entropy_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.softmax_cross_entropy,
        torch_ref=_torch_softmax,
        compare=_compare_softmax,
        arg_names=("logits", "targets"),
    )
for _group in ("numerical_gradient", "numerical_gradient_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.numerical_gradient,
        torch_ref=_torch_numerical,
        compare=_compare_numerical,
        arg_names=("f", "x"),
        mutation_hint=NUM_MUTATION,
    )

for _aspect, _name in P.EF_VISIBLE.items():
    judge(A, "embedding_function", _name)(_ef_judge(False, (_aspect,)))
judge(A, "embedding_function_hidden", P.EF_HIDDEN)(_ef_judge(True))


def _torch_chunked(hidden, weight, targets, chunk_size):
    loss, dh, dw = T.chunked_cross_entropy(
        torch.from_numpy(hidden), torch.from_numpy(weight), torch_ids(targets), chunk_size
    )
    return loss, dh.numpy(), dw.numpy()


def _compare_chunked(got, ref_np, ref_torch, where, case):
    tight = case.args[0].dtype == np.float64
    references_agree(ref_np, ref_torch, where, atol=1e-9 if tight else 1e-4)
    if isinstance(got, Raised) or not isinstance(got, (tuple, list)) or len(got) != 3:
        raise CheckFailed(f"{where}: expected a triple (loss, dhidden, dweight), got {describe(got)}")
    tol = dict(rtol=1e-7, atol=1e-9) if tight else dict(rtol=1e-4, atol=1e-6)
    expect_number(got[0], ref_np[0], where + ", loss", hint=case.hint, **tol)
    expect_array(got[1], ref_np[1], where + ", dhidden", dtype=None, hint=case.hint, **tol)
    expect_array(got[2], ref_np[2], where + ", dweight", dtype=None, hint=case.hint, **tol)


for _group in ("chunked_cross_entropy", "chunked_cross_entropy_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.chunked_cross_entropy,
        torch_ref=_torch_chunked,
        compare=_compare_chunked,
        arg_names=("hidden", "weight", "targets"),
    )


@judge(A, "chunked_cross_entropy", P.CHUNK_MEMORY)
def _chunk_memory_judge(data, seed):
    where = (
        f"chunked_cross_entropy(hidden ({P.CHUNK_MEMORY_N}, {P.CHUNK_MEMORY_D}) float32, weight "
        f"({P.CHUNK_MEMORY_V}, {P.CHUNK_MEMORY_D}), chunk_size={P.CHUNK_MEMORY_CHUNK})"
    )
    if data["raised"] is not None:
        raise CheckFailed(f"{where}: {describe(data['raised'])}")
    full_logits = P.CHUNK_MEMORY_N * P.CHUNK_MEMORY_V * 4
    numpy_peak, torch_peak = int(data["peak"]), int(data["torch_peak"])
    if numpy_peak + torch_peak >= full_logits // 2:
        raise CheckFailed(
            f"{where}: NumPy allocated up to {numpy_peak / 2**20:.1f} MiB and PyTorch up to "
            f"{torch_peak / 2**20:.1f} MiB at once, but all the float32 logits are only "
            f"{full_logits / 2**20:.0f} MiB: compute the logits, their softmax and gradient one "
            f"chunk of rows at a time, in any library, and never keep more than chunk_size rows of them"
        )


# ------------------------------------------------------------------------------------------------ backward_elements
def _torch_elements(ids, vocab_size, dim):
    return T.backward_elements(torch_ids(ids), vocab_size, dim)


def _compare_elements(got, ref_np, ref_torch, where, case):
    if tuple(ref_np) != tuple(ref_torch):
        raise RuntimeError(f"internal error: the NumPy and PyTorch references disagree on {where}")
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        raise CheckFailed(f"{where}: expected a triple (dense, sparse, index_add), got {describe(got)}")
    for part, g, e in zip(("dense", "sparse", "index_add"), got, ref_np, strict=True):
        integer()(g, e, None, f"{where}, {part}", case)


for _group in ("backward_elements", "backward_elements_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.backward_elements,
        torch_ref=_torch_elements,
        compare=_compare_elements,
        arg_names=("ids",),
    )

record_judge(A, "backward_measurements", P.MEASURED_RECORDS)
