"""Checks of the ``backprop`` assignment: ``embedding_backward``, ``sparse_embedding_backward``,
``softmax_cross_entropy``, ``numerical_gradient`` and the PyTorch ``EmbeddingFunction``.

Expected gradients come from the NumPy references and from PyTorch (``torch.autograd`` through
``F.embedding``, ``nn.Embedding(sparse=True)``, ``F.cross_entropy``). Groups: ``<function>`` (visible) and
``<function>_hidden`` (seeded at grading time).
"""
from __future__ import annotations

import numpy as np
import torch

from autograder.reference import numpy_ref as N, torch_ref as T

from .compare import (Case, arrays, case_checks, custom_check, describe, expect_array, expect_number,
                      references_agree, show_array, torch_ids)
from .core import CheckFailed, Raised, call

A = "backprop"

ACCUMULATE_HINT = ("repeated ids must add up: `G[ids] += g` keeps only one of them; use np.add.at(G, ids, g) "
                   "(flatten ids to (n,) and grad_out to (n, D))")
SPARSE_HINT = "unique ids sorted ascending (np.unique), each row the sum of that id's gradients"
STABLE_HINT = "subtract each row's maximum before exponentiating, and take log-softmax without log(0)"
MEAN_HINT = "the loss is the mean over the N rows, so dlogits = (softmax - onehot) / N"


def _grad_label(g, ids, vocab=None):
    ids = np.asarray(ids)
    ids_text = show_array(ids, 40) if ids.size <= 12 else f"of shape {ids.shape}"
    return f"grad_out {g.shape} {g.dtype}, ids {ids_text}" + ("" if vocab is None else f", vocab_size={vocab}")


# ------------------------------------------------------------------------------------------------ embedding_backward
def _torch_backward(grad_out, ids, vocab_size):
    return T.embedding_backward(torch.from_numpy(grad_out), torch_ids(ids), vocab_size).numpy()


def _back_case(rng, ids, vocab, dim, dtype=np.float64):
    ids = np.asarray(ids)
    g = rng.standard_normal(ids.shape + (dim,)).astype(dtype)
    return Case(_grad_label(g, ids, vocab), (g, ids, vocab), hint=ACCUMULATE_HINT)


def _back_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [_back_case(rng, [[1, 3, 1], [0, 1, 3]], 5, 2), _back_case(rng, [4, 4, 4, 0], 6, 3)]


def _back_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    v = int(rng.integers(3, 12))
    return [_back_case(rng, rng.integers(0, v, size=(3, 4, 5)), v, 4),
            _back_case(rng, np.zeros((0,), dtype=np.int64), v, 3),
            _back_case(rng, np.array(v - 1), v, 3),
            _back_case(rng, np.zeros((6,), dtype=np.int64), 1, 2),
            _back_case(rng, rng.integers(0, v, size=(50,)).astype(np.int32), v, 8, np.float32)]


case_checks(A, "embedding_backward", "embedding_backward", results_name="dense (V, D) gradient, repeated ids accumulate",
            cases=_back_cases_visible, numpy_ref=N.embedding_backward, torch_ref=_torch_backward,
            compare=arrays(atol=1e-5, rtol=1e-5, dtype=None), arg_names=("grad_out", "ids"))
case_checks(A, "embedding_backward_hidden", "embedding_backward",
            results_name="3-d, empty, scalar and narrow-integer ids; V = 1; float32",
            cases=_back_cases_hidden, numpy_ref=N.embedding_backward, torch_ref=_torch_backward,
            compare=arrays(atol=1e-5, rtol=1e-5, dtype=None), seeded=True, arg_names=("grad_out", "ids"))


# ------------------------------------------------------------------------------------------------ sparse
def _torch_sparse(grad_out, ids):
    uniq, rows = T.sparse_embedding_backward(torch.from_numpy(grad_out), torch_ids(ids))  # V: max id + 1
    return uniq.numpy(), rows.numpy()


def _compare_sparse(got, ref_np, ref_torch, where, case):
    references_agree(ref_np, ref_torch, where, atol=1e-6)
    if isinstance(got, Raised) or not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(f"{where}: expected a pair (unique_ids, row_grads), got {describe(got)}")
    expect_array(got[0], ref_np[0], where + ", unique_ids", rtol=0, atol=0, integer_kind=True, hint=SPARSE_HINT)
    expect_array(got[1], ref_np[1], where + ", row_grads", atol=1e-5, rtol=1e-5, dtype=None, hint=ACCUMULATE_HINT)


def _sparse_case(rng, ids, dim, dtype=np.float64):
    ids = np.asarray(ids)
    g = rng.standard_normal(ids.shape + (dim,)).astype(dtype)
    return Case(_grad_label(g, ids), (g, ids))


def _sparse_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [_sparse_case(rng, [[4, 1, 4], [9, 1, 1]], 3), _sparse_case(rng, [2, 2, 2], 2)]


def _sparse_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    return [_sparse_case(rng, rng.integers(0, 50_000, size=(4, 6)), 5),         # large, scattered ids
            _sparse_case(rng, rng.integers(0, 4, size=(2, 3, 5)), 3),            # many repeats
            _sparse_case(rng, np.zeros((0,), dtype=np.int64), 4),
            _sparse_case(rng, np.array(7), 2),
            _sparse_case(rng, rng.integers(0, 20, size=(30,)).astype(np.int16), 6, np.float32)]


case_checks(A, "sparse_embedding_backward", "sparse_embedding_backward",
            results_name="sorted unique ids and their summed rows", cases=_sparse_cases_visible,
            numpy_ref=N.sparse_embedding_backward, torch_ref=_torch_sparse, compare=_compare_sparse,
            arg_names=("grad_out", "ids"))
case_checks(A, "sparse_embedding_backward_hidden", "sparse_embedding_backward",
            results_name="scattered, repeated, empty and scalar ids", cases=_sparse_cases_hidden,
            numpy_ref=N.sparse_embedding_backward, torch_ref=_torch_sparse, compare=_compare_sparse,
            seeded=True, arg_names=("grad_out", "ids"))


# ------------------------------------------------------------------------------------------------ softmax
def _torch_softmax(logits, targets):
    loss, grad = T.softmax_cross_entropy(torch.from_numpy(logits), torch_ids(targets))
    return loss, grad.numpy()


def _compare_softmax(got, ref_np, ref_torch, where, case):
    tight = case.args[0].dtype == np.float64
    references_agree(ref_np, ref_torch, where, atol=1e-9 if tight else 1e-5)
    if isinstance(got, Raised) or not isinstance(got, (tuple, list)) or len(got) != 2:
        raise CheckFailed(f"{where}: expected a pair (loss, dlogits), got {describe(got)}")
    expect_number(got[0], ref_np[0], where + ", loss", rtol=1e-7 if tight else 1e-5, atol=1e-9 if tight else 1e-6,
                  hint=case.hint)
    expect_array(got[1], ref_np[1], where + ", dlogits", atol=1e-9 if tight else 1e-6, rtol=1e-6, dtype=None,
                 hint=case.hint)


def _softmax_case(logits, targets, hint=MEAN_HINT):
    logits, targets = np.asarray(logits), np.asarray(targets)
    text = show_array(logits, 60) if logits.size <= 6 else f"{logits.shape} {logits.dtype}"
    return Case(f"logits {text}, targets {show_array(targets, 30)}", (logits, targets), hint=hint)


def _softmax_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [_softmax_case(rng.standard_normal((3, 4)), [0, 3, 1]),
            _softmax_case(np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 5e3]]), [0, 1], STABLE_HINT)]


def _softmax_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(5, 40)), int(rng.integers(2, 30))
    return [_softmax_case(rng.standard_normal((n, c)) * 3, rng.integers(0, c, size=n)),
            _softmax_case(rng.standard_normal((1, 5)), [4]),
            _softmax_case(np.zeros((2, 1)), [0, 0]),
            _softmax_case(rng.standard_normal((6, 7)).astype(np.float32), rng.integers(0, 7, size=6)),
            _softmax_case(np.array([[1e4, -1e4, 0.0]]), [1], STABLE_HINT + " (the target's probability underflows to 0)"),
            _softmax_case(np.array([[-1e4, -1e4 + 1.0], [-3e3, -1e4]]), [0, 1], STABLE_HINT),
            _softmax_case(np.full((3, 4), 7.0), [0, 1, 2])]


case_checks(A, "softmax_cross_entropy", "softmax_cross_entropy", results_name="mean loss and its gradient; stable at 1e4",
            cases=_softmax_cases_visible, numpy_ref=N.softmax_cross_entropy, torch_ref=_torch_softmax,
            compare=_compare_softmax, arg_names=("logits", "targets"))
case_checks(A, "softmax_cross_entropy_hidden", "softmax_cross_entropy",
            results_name="N = 1, C = 1, float32, underflowing targets, equal logits", cases=_softmax_cases_hidden,
            numpy_ref=N.softmax_cross_entropy, torch_ref=_torch_softmax, compare=_compare_softmax, seeded=True,
            arg_names=("logits", "targets"))


# ------------------------------------------------------------------------------------------------ numerical_gradient
def _f_sin(x):
    return float(np.sum(np.sin(x) * x))


def _f_cubic(x):
    return float(np.sum(x ** 3) + np.sum(np.exp(x)))


_M = np.array([[2.0, -1.0, 0.5, 0.0], [-1.0, 3.0, 0.0, 1.0], [0.5, 0.0, 1.0, -0.5], [0.0, 1.0, -0.5, 4.0]])


def _f_quadratic(x):
    return float(0.5 * x @ _M @ x)


#: the same scalar functions written for torch tensors (the PyTorch reference differentiates these)
_TORCH_F = {_f_sin: lambda x: (torch.sin(x) * x).sum(),
            _f_cubic: lambda x: (x ** 3).sum() + torch.exp(x).sum(),
            _f_quadratic: lambda x: 0.5 * x @ torch.from_numpy(_M) @ x}
_F_TEXT = {_f_sin: "sum(sin(x) * x)", _f_cubic: "sum(x**3 + exp(x))", _f_quadratic: "0.5 x^T M x"}


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
    if case.kwargs.get("eps", 1e-5) < 1e-3:     # for a small step both must also match the exact gradient
        xt = torch.from_numpy(np.array(x, dtype=np.float64)).requires_grad_(True)
        _TORCH_F[f](xt).backward()
        references_agree(ref_np, xt.grad.numpy(), where, atol=1e-6)
    expect_array(got, ref_np, where, atol=1e-7, rtol=1e-7, dtype=None,
                 hint="central differences (f(x + eps) - f(x - eps)) / (2 eps), one entry of x at a time, "
                      "using the eps argument")


def _num_case(f, x, eps=None):
    kwargs = {} if eps is None else {"eps": eps}
    return Case(f"f(x) = {_F_TEXT[f]}, x {x.shape}" + ("" if eps is None else f", eps={eps}"), (f, x), kwargs)


def _num_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [_num_case(_f_sin, rng.standard_normal((3, 2))), _num_case(_f_quadratic, rng.standard_normal(4))]


def _num_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    return [_num_case(_f_cubic, rng.standard_normal((2, 2, 2))), _num_case(_f_sin, rng.standard_normal(1) * 3),
            _num_case(_f_cubic, rng.standard_normal(3), eps=0.1), _num_case(_f_quadratic, rng.standard_normal(4), 1e-4)]


NUM_MUTATION = "restore each entry after nudging it, so x is left as it was"
case_checks(A, "numerical_gradient", "numerical_gradient", results_name="central differences; x left as it was",
            cases=_num_cases_visible, numpy_ref=N.numerical_gradient, torch_ref=_torch_numerical,
            compare=_compare_numerical, arg_names=("f", "x"), mutation_hint=NUM_MUTATION)
case_checks(A, "numerical_gradient_hidden", "numerical_gradient", results_name="3-d and 1-element x; the eps argument",
            cases=_num_cases_hidden, numpy_ref=N.numerical_gradient, torch_ref=_torch_numerical,
            compare=_compare_numerical, seeded=True, arg_names=("f", "x"), mutation_hint=NUM_MUTATION)


# ------------------------------------------------------------------------------------------------ EmbeddingFunction
def _ef_configs(seed: int, hidden: bool) -> list[tuple[int, int, np.ndarray]]:
    if not hidden:
        return [(7, 3, np.array([[1, 1, 4], [6, 0, 1]]))]
    rng = np.random.default_rng(seed)
    v = int(rng.integers(3, 9))
    return [(v, 4, rng.integers(0, v, size=(12,))), (v, 2, rng.integers(0, v, size=(2, 2, 3))),
            (v, 3, np.array(v - 1)), (v, 3, np.zeros((0,), dtype=np.int64))]


def _ef_inputs(seed, i, vocab, dim, ids):
    rng = np.random.default_rng(seed * 100 + i)
    return rng.standard_normal((vocab, dim)), rng.standard_normal(ids.shape + (dim,))


def _ef_probe(hidden):
    def probe(cls, seed):
        out = []
        for i, (vocab, dim, ids) in enumerate(_ef_configs(seed, hidden)):
            weight_np, g_np = _ef_inputs(seed, i, vocab, dim, ids)
            weight = torch.from_numpy(weight_np).requires_grad_(True)
            ids_t = torch_ids(ids)
            y = call(cls.apply, weight, ids_t)
            rec = {"out": y.detach().clone() if isinstance(y, torch.Tensor) else y}
            if isinstance(y, torch.Tensor) and y.grad_fn is not None:
                g = torch.from_numpy(g_np)
                raw = call(y.grad_fn.apply, g)
                rec["raw"] = raw if isinstance(raw, Raised) else [
                    None if r is None else describe(r) for r in (raw if isinstance(raw, tuple) else (raw,))]
                backward = call(y.backward, g)
                rec["grad"] = backward if isinstance(backward, Raised) else weight.grad
                if ids.size:
                    rec["gradcheck"] = call(torch.autograd.gradcheck, lambda w: cls.apply(w, ids_t),
                                            (torch.from_numpy(weight_np).requires_grad_(True),), raise_exception=False)
            if hidden and i == 0:
                rec["negative"] = call(cls.apply, torch.from_numpy(weight_np), torch.tensor([0, -1]))
            out.append(rec)
        return out
    return probe


def _ef_judge(hidden, aspects=("forward", "backward", "gradcheck", "negative")):
    def judge(data, seed):
        for i, ((vocab, dim, ids), rec) in enumerate(zip(_ef_configs(seed, hidden), data, strict=True)):
            weight_np, g_np = _ef_inputs(seed, i, vocab, dim, ids)
            where = f"EmbeddingFunction.apply(weight ({vocab}, {dim}) float64, ids {show_array(ids, 40)})"
            weight = torch.from_numpy(weight_np).requires_grad_(True)
            ref_out = T.EmbeddingFunction.apply(weight, torch_ids(ids))
            expected = N.embedding_forward(weight_np, ids)
            references_agree(expected, ref_out.detach().numpy(), where)
            if "forward" in aspects:
                expect_array(rec["out"], expected, where, atol=1e-12, rtol=0, dtype=np.float64,
                             hint="forward returns weight[ids] with shape ids.shape + (dim,)")
            if "raw" not in rec and {"backward", "gradcheck"} & set(aspects):
                if isinstance(rec["out"], Raised):
                    raise CheckFailed(f"{where}: forward failed, so backward cannot run: {describe(rec['out'])}")
                raise CheckFailed(f"{where}: the output has no grad_fn: return a tensor from forward and let "
                                  f"EmbeddingFunction.apply wrap it")
            if "backward" in aspects:
                _judge_backward(rec, where, ref_out, weight, ids, vocab, g_np)
            if "gradcheck" in aspects and ids.size:
                verdict = rec.get("gradcheck")
                if verdict is not True:
                    detail = describe(verdict) if isinstance(verdict, Raised) else "analytical and numerical Jacobians differ"
                    raise CheckFailed(f"{where}: torch.autograd.gradcheck in float64 failed: {detail}")
            if "negative" in aspects and "negative" in rec and not isinstance(rec["negative"], Raised):
                raise CheckFailed(f"{where[:where.index('ids')]}ids [0 -1]): returned rows, but torch indexing wraps "
                                  f"-1 to the last row like NumPy: raise IndexError for ids < 0 or >= vocab_size")
    return judge


def _judge_backward(rec, where, ref_out, weight, ids, vocab, g_np) -> None:
    """The gradients backward returns: (dense scatter-added weight gradient, None for the integer ids)."""
    raw = rec["raw"]
    if isinstance(raw, Raised):
        raise CheckFailed(f"{where}: calling backward, {describe(raw)}")
    if len(raw) != 2:
        raise CheckFailed(f"{where}: backward must return one gradient per forward input (weight, ids), "
                          f"got {len(raw)}")
    if raw[1] is not None:
        raise CheckFailed(f"{where}: backward returned {raw[1]} for ids; integer ids have no gradient: "
                          f"return (grad_weight, None)")
    if raw[0] is None:
        raise CheckFailed(f"{where}: backward returned None for weight: return the dense (V, D) gradient of weight "
                          f"(a scatter-add of grad_out), then None for ids")
    ref_out.backward(torch.from_numpy(g_np))
    expected_grad = N.embedding_backward(g_np, ids, vocab)
    references_agree(expected_grad, weight.grad.numpy(), where, atol=1e-10)
    grad = rec["grad"]
    if isinstance(grad, Raised):
        raise CheckFailed(f"{where}: out.backward(grad_out): {describe(grad)}")
    expect_array(grad, expected_grad, where + ", weight.grad after backward", atol=1e-10, rtol=1e-10,
                 dtype=np.float64, hint="scatter-add grad_out into a zero (V, D) tensor: index_add_(0, ids, ...)")


custom_check(A, "embedding_function", "forward returns weight[ids]", "EmbeddingFunction",
             probe=_ef_probe(False), judge=_ef_judge(False, ("forward",)))
custom_check(A, "embedding_function", "backward: scatter-add gradient for weight, None for ids", "EmbeddingFunction",
             probe=_ef_probe(False), judge=_ef_judge(False, ("backward",)))
custom_check(A, "embedding_function", "passes torch.autograd.gradcheck in float64", "EmbeddingFunction",
             probe=_ef_probe(False), judge=_ef_judge(False, ("gradcheck",)))
custom_check(A, "embedding_function_hidden", "1-d, 3-d, scalar and empty ids; negative ids rejected",
             "EmbeddingFunction", probe=_ef_probe(True), judge=_ef_judge(True), seeded=True)
