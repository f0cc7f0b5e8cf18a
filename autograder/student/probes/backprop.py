"""Probes and inputs of the ``backprop`` assignment: ``embedding_backward``, ``sparse_embedding_backward``,
``softmax_cross_entropy``, ``numerical_gradient``, the PyTorch ``EmbeddingFunction``, ``chunked_cross_entropy``,
``backward_elements`` and the record of the measured part, ``backward_measurements``.

Groups: ``<function>`` (visible) and ``<function>_hidden`` (inputs from the hidden seed). The judges are in
:mod:`autograder.checks.backprop`.
"""

from __future__ import annotations

import tracemalloc
import weakref

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ..cases import Case, torch_ids
from ..describe import describe, show_array
from ..measured import register_record
from ..registry import case_probes, register
from ..transport import Raised, call

A = "backprop"

ACCUMULATE_HINT = (
    "repeated ids must add up: `G[ids] += g` keeps only one of them; use np.add.at(G, ids, g) "
    "(flatten ids to (n,) and grad_out to (n, D))"
)
SPARSE_HINT = "unique ids sorted ascending (np.unique), each row the sum of that id's gradients"
STABLE_HINT = "subtract each row's maximum before exponentiating, and take log-softmax without log(0)"
MEAN_HINT = "the loss is the mean over the N rows, so dlogits = (softmax - onehot) / N"
CHUNK_HINT = (
    "per chunk c: dz_c = (softmax(h_c @ weight.T) - onehot) / N with N ALL rows, dhidden_c = dz_c @ weight, "
    "dweight += dz_c.T @ h_c (accumulate over chunks); the loss is the sum over all rows divided by N"
)
CHUNK_SIZE_HINT = "raise ValueError for a chunk_size that is not a positive integer, or mismatched shapes"


def _grad_label(g, ids, vocab=None):
    ids = np.asarray(ids)
    ids_text = show_array(ids, 40) if ids.size <= 12 else f"of shape {ids.shape}"
    return f"grad_out {g.shape} {g.dtype}, ids {ids_text}" + ("" if vocab is None else f", vocab_size={vocab}")


def _grad_label(g, ids, vocab=None):
    ids = np.asarray(ids)
    ids_text = show_array(ids, 40) if ids.size <= 12 else f"of shape {ids.shape}"
    return f"grad_out {g.shape} {g.dtype}, ids {ids_text}" + ("" if vocab is None else f", vocab_size={vocab}")


# ------------------------------------------------------------------------------------------------ inputs
def _back_case(rng, ids, vocab, dim, dtype=np.float64):
    ids = np.asarray(ids)
    g = rng.standard_normal(ids.shape + (dim,)).astype(dtype)
    return Case(_grad_label(g, ids, vocab), (g, ids, vocab), hint=ACCUMULATE_HINT)


def back_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [_back_case(rng, [[1, 3, 1], [0, 1, 3]], 5, 2), _back_case(rng, [4, 4, 4, 0], 6, 3)]


def back_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    v = int(rng.integers(3, 12))
    return [
        _back_case(rng, rng.integers(0, v, size=(3, 4, 5)), v, 4),
        _back_case(rng, np.zeros((0,), dtype=np.int64), v, 3),
        _back_case(rng, np.array(v - 1), v, 3),
        _back_case(rng, np.zeros((6,), dtype=np.int64), 1, 2),
        _back_case(rng, rng.integers(0, v, size=(50,)).astype(np.int32), v, 8, np.float32),
    ]


def _sparse_case(rng, ids, dim, dtype=np.float64):
    ids = np.asarray(ids)
    g = rng.standard_normal(ids.shape + (dim,)).astype(dtype)
    return Case(_grad_label(g, ids), (g, ids))


def sparse_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [_sparse_case(rng, [[4, 1, 4], [9, 1, 1]], 3), _sparse_case(rng, [2, 2, 2], 2)]


def sparse_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    return [
        _sparse_case(rng, rng.integers(0, 50_000, size=(4, 6)), 5),  # large, scattered ids
        _sparse_case(rng, rng.integers(0, 4, size=(2, 3, 5)), 3),  # many repeats
        _sparse_case(rng, np.zeros((0,), dtype=np.int64), 4),
        _sparse_case(rng, np.array(7), 2),
        _sparse_case(rng, rng.integers(0, 20, size=(30,)).astype(np.int16), 6, np.float32),
    ]


def _softmax_case(logits, targets, hint=MEAN_HINT):
    logits, targets = np.asarray(logits), np.asarray(targets)
    text = show_array(logits, 60) if logits.size <= 6 else f"{logits.shape} {logits.dtype}"
    return Case(f"logits {text}, targets {show_array(targets, 30)}", (logits, targets), hint=hint)


def softmax_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [
        _softmax_case(rng.standard_normal((3, 4)), [0, 3, 1]),
        _softmax_case(np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 5e3]]), [0, 1], STABLE_HINT),
    ]


def softmax_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(5, 40)), int(rng.integers(2, 30))
    return [
        _softmax_case(rng.standard_normal((n, c)) * 3, rng.integers(0, c, size=n)),
        _softmax_case(rng.standard_normal((1, 5)), [4]),
        _softmax_case(np.zeros((2, 1)), [0, 0]),
        _softmax_case(rng.standard_normal((6, 7)).astype(np.float32), rng.integers(0, 7, size=6)),
        _softmax_case(np.array([[1e4, -1e4, 0.0]]), [1], STABLE_HINT + " (the target's probability underflows to 0)"),
        _softmax_case(np.array([[-1e4, -1e4 + 1.0], [-3e3, -1e4]]), [0, 1], STABLE_HINT),
        _softmax_case(np.full((3, 4), 7.0), [0, 1, 2]),
    ]


def f_sin(x):
    return float(np.sum(np.sin(x) * x))


def f_cubic(x):
    return float(np.sum(x**3) + np.sum(np.exp(x)))


M = np.array([[2.0, -1.0, 0.5, 0.0], [-1.0, 3.0, 0.0, 1.0], [0.5, 0.0, 1.0, -0.5], [0.0, 1.0, -0.5, 4.0]])


def f_quadratic(x):
    return float(0.5 * x @ M @ x)


F_TEXT = {f_sin: "sum(sin(x) * x)", f_cubic: "sum(x**3 + exp(x))", f_quadratic: "0.5 x^T M x"}


def _num_case(f, x, eps=None):
    kwargs = {} if eps is None else {"eps": eps}
    return Case(f"f(x) = {F_TEXT[f]}, x {x.shape}" + ("" if eps is None else f", eps={eps}"), (f, x), kwargs)


def num_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [_num_case(f_sin, rng.standard_normal((3, 2))), _num_case(f_quadratic, rng.standard_normal(4))]


def num_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    return [
        _num_case(f_cubic, rng.standard_normal((2, 2, 2))),
        _num_case(f_sin, rng.standard_normal(1) * 3),
        _num_case(f_cubic, rng.standard_normal(3), eps=0.1),
        _num_case(f_quadratic, rng.standard_normal(4), 1e-4),
    ]


def ef_configs(seed: int, hidden: bool) -> list[tuple[int, int, np.ndarray]]:
    if not hidden:
        return [(7, 3, np.array([[1, 1, 4], [6, 0, 1]]))]
    rng = np.random.default_rng(seed)
    v = int(rng.integers(3, 9))
    return [
        (v, 4, rng.integers(0, v, size=(12,))),
        (v, 2, rng.integers(0, v, size=(2, 2, 3))),
        (v, 3, np.array(v - 1)),
        (v, 3, np.zeros((0,), dtype=np.int64)),
    ]


def ef_inputs(seed, i, vocab, dim, ids):
    rng = np.random.default_rng(seed * 100 + i)
    return rng.standard_normal((vocab, dim)), rng.standard_normal(ids.shape + (dim,))


def ef_negative_probed(hidden: bool, i: int) -> bool:
    """Whether configuration ``i`` also calls ``apply`` with the negative ids ``[0 -1]`` (the first hidden one)."""
    return hidden and i == 0


def _ef_probe(hidden):
    def probe(cls, seed):
        out = []
        for i, (vocab, dim, ids) in enumerate(ef_configs(seed, hidden)):
            weight_np, g_np = ef_inputs(seed, i, vocab, dim, ids)
            weight = torch.from_numpy(weight_np).requires_grad_(True)
            ids_t = torch_ids(ids)
            y = call(cls.apply, weight, ids_t)
            rec = {"out": y.detach().clone() if isinstance(y, torch.Tensor) else y}
            if isinstance(y, torch.Tensor) and y.grad_fn is not None:
                g = torch.from_numpy(g_np)
                raw = call(y.grad_fn.apply, g)
                rec["raw"] = (
                    raw
                    if isinstance(raw, Raised)
                    else [None if r is None else describe(r) for r in (raw if isinstance(raw, tuple) else (raw,))]
                )
                backward = call(y.backward, g)
                rec["grad"] = backward if isinstance(backward, Raised) else weight.grad
                if ids.size:
                    rec["gradcheck"] = call(
                        torch.autograd.gradcheck,
                        lambda w, ids_t=ids_t: cls.apply(w, ids_t),
                        (torch.from_numpy(weight_np).requires_grad_(True),),
                        raise_exception=False,
                    )
            if ef_negative_probed(hidden, i):
                rec["negative"] = call(cls.apply, torch.from_numpy(weight_np), torch.tensor([0, -1]))
            out.append(rec)
        return out

    return probe


case_probes(
    A,
    "embedding_backward",
    "embedding_backward",
    results_name="dense (V, D) gradient, repeated ids accumulate",
    cases=back_cases_visible,
)
case_probes(
    A,
    "embedding_backward_hidden",
    "embedding_backward",
    results_name="3-d, empty, scalar and narrow-integer ids; V = 1; float32",
    cases=back_cases_hidden,
    hidden=True,
)
case_probes(
    A,
    "sparse_embedding_backward",
    "sparse_embedding_backward",
    results_name="sorted unique ids and their summed rows",
    cases=sparse_cases_visible,
)
case_probes(
    A,
    "sparse_embedding_backward_hidden",
    "sparse_embedding_backward",
    results_name="scattered, repeated, empty and scalar ids",
    cases=sparse_cases_hidden,
    hidden=True,
)
case_probes(
    A,
    "softmax_cross_entropy",
    "softmax_cross_entropy",
    results_name="mean loss and its gradient; stable at 1e4",
    cases=softmax_cases_visible,
)
case_probes(
    A,
    "softmax_cross_entropy_hidden",
    "softmax_cross_entropy",
    results_name="N = 1, C = 1, float32, underflowing targets, equal logits",
    cases=softmax_cases_hidden,
    hidden=True,
)
case_probes(
    A,
    "numerical_gradient",
    "numerical_gradient",
    results_name="central differences; x left as it was",
    cases=num_cases_visible,
)
case_probes(
    A,
    "numerical_gradient_hidden",
    "numerical_gradient",
    results_name="3-d and 1-element x; the eps argument",
    cases=num_cases_hidden,
    hidden=True,
)

EF_VISIBLE = {
    "forward": "forward returns weight[ids]",
    "backward": "backward: scatter-add gradient for weight, None for ids",
    "gradcheck": "passes torch.autograd.gradcheck in float64",
}
EF_HIDDEN = "1-d, 3-d, scalar and empty ids; negative ids rejected"
for _name in EF_VISIBLE.values():
    register(A, "embedding_function", _name, "EmbeddingFunction")(_ef_probe(False))
register(A, "embedding_function_hidden", EF_HIDDEN, "EmbeddingFunction", hidden=True)(_ef_probe(True))


# ------------------------------------------------------------------------------------------------ chunked loss
def _chunk_case(rng, n, d, v, chunk, dtype=np.float64, scale=1.0, hint=CHUNK_HINT, raises=None, weight_d=None):
    hidden = (scale * rng.standard_normal((n, d))).astype(dtype)
    weight = rng.standard_normal((v, d if weight_d is None else weight_d)).astype(dtype)
    targets = rng.integers(0, v, size=n)
    label = f"hidden ({n}, {d}) {np.dtype(dtype).name}, weight {weight.shape}, targets ({n},), chunk_size={chunk}"
    return Case(label, (hidden, weight, targets, chunk), raises=raises, hint=hint)


def chunk_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [
        _chunk_case(rng, 6, 3, 5, 4),
        _chunk_case(rng, 5, 2, 7, 1),
        _chunk_case(rng, 4, 3, 6, 10),
        _chunk_case(rng, 4, 3, 6, 0, raises=ValueError, hint=CHUNK_SIZE_HINT),
    ]


def chunk_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 60))
    return [
        _chunk_case(rng, n, int(rng.integers(2, 8)), int(rng.integers(5, 40)), int(rng.integers(1, n))),
        _chunk_case(rng, 1, 4, 9, 3),
        _chunk_case(rng, 12, 5, 11, 12),
        _chunk_case(rng, 20, 6, 30, 7, np.float32),
        _chunk_case(rng, 9, 4, 8, 2, scale=300.0, hint=STABLE_HINT + " (in each chunk)"),
        _chunk_case(rng, 4, 3, 6, -2, raises=ValueError, hint=CHUNK_SIZE_HINT),
        _chunk_case(rng, 4, 3, 6, 2, raises=ValueError, hint=CHUNK_SIZE_HINT, weight_d=4),
    ]


#: the memory check: float32 inputs whose full logits would be CHUNK_MEMORY_N x CHUNK_MEMORY_V x 4 bytes
CHUNK_MEMORY_N, CHUNK_MEMORY_D, CHUNK_MEMORY_V, CHUNK_MEMORY_CHUNK = 2048, 8, 2048, 64
CHUNK_MEMORY = (
    f"holds at most chunk_size rows of logits (traced peak below half of the {CHUNK_MEMORY_N} x "
    f"{CHUNK_MEMORY_V} float32 logits)"
)


def chunk_memory_inputs(seed):
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((CHUNK_MEMORY_N, CHUNK_MEMORY_D)).astype(np.float32)
    weight = (0.1 * rng.standard_normal((CHUNK_MEMORY_V, CHUNK_MEMORY_D))).astype(np.float32)
    return hidden, weight, rng.integers(0, CHUNK_MEMORY_V, size=CHUNK_MEMORY_N)


class TorchAllocations(TorchDispatchMode):
    """While active, the peak bytes of PyTorch storages alive at once that the ops dispatched inside it created
    (factories such as ``torch.empty`` included, on any device): every new storage an op returns is counted from its
    creation until the last tensor object holding it is freed. A storage kept alive only by C++ (autograd's saved
    tensors) is counted until its last Python tensor goes, so the peak is a lower bound -- but a single ``(N, V)``
    tensor, however short-lived, is always in it."""

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[int, list[int]] = {}  # data_ptr -> [bytes, Python tensors holding it]
        self.current = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        entry = self._live.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            self.current -= entry[0]
            del self._live[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if not isinstance(leaf, torch.Tensor):
                continue
            storage = leaf.untyped_storage()
            key = storage.data_ptr()
            if not key:
                continue
            if key not in self._live:
                self._live[key] = [storage.nbytes(), 0]
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
            self._live[key][1] += 1
            weakref.finalize(leaf, self._release, key)
        return out


def _chunk_memory_probe(fn, seed):
    """Peak bytes allocated during one call: ``tracemalloc`` sees NumPy's buffers (NumPy reports them to it), and
    :class:`TorchAllocations` sees PyTorch's, which ``tracemalloc`` does not."""
    hidden, weight, targets = chunk_memory_inputs(seed)
    with TorchAllocations():  # the first dispatch mode imports tens of MiB of PyTorch modules: not while tracing
        torch.empty(1)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        with TorchAllocations() as torch_memory:
            got = call(fn, hidden, weight, targets, CHUNK_MEMORY_CHUNK)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return {
        "raised": got if isinstance(got, Raised) else None,
        "peak": int(peak - before),
        "torch_peak": torch_memory.peak,
    }


case_probes(
    A,
    "chunked_cross_entropy",
    "chunked_cross_entropy",
    results_name="loss, dhidden and dweight, chunk by chunk",
    error_names={ValueError: "chunk_size 0 raises ValueError"},
    cases=chunk_cases_visible,
)
register(A, "chunked_cross_entropy", CHUNK_MEMORY, "chunked_cross_entropy")(_chunk_memory_probe)
case_probes(
    A,
    "chunked_cross_entropy_hidden",
    "chunked_cross_entropy",
    results_name="random sizes, N = 1, one chunk, float32, logits in the thousands",
    error_names={ValueError: "negative chunk_size or mismatched widths raise ValueError"},
    cases=chunk_cases_hidden,
    hidden=True,
)


# ------------------------------------------------------------------------------------------------ backward_elements
ELEMENTS_HINT = (
    "dense: V * D zeros + n * D added; sparse: U * D zeros + n * D added + U ids (U distinct ids); "
    "index_add_ into an existing gradient: n * D; n counts every id, repeats included"
)


def _elements_case(ids, vocab_size, dim, raises=None, hint=ELEMENTS_HINT):
    ids = np.asarray(ids)
    ids_text = show_array(ids, 40) if ids.size <= 12 else f"of shape {ids.shape}"
    return Case(
        f"ids {ids_text} {ids.dtype}, vocab_size={vocab_size}, dim={dim}",
        (ids, vocab_size, dim),
        raises=raises,
        hint=hint,
    )


def elements_cases_visible(seed):
    return [
        _elements_case(np.array([[1, 2, 2], [0, 9, 1]]), 10, 4),
        _elements_case(np.array([3, 3, 3, 3]), 1000, 64),
        _elements_case(np.array([0, -1]), 10, 4, raises=IndexError, hint="ids must lie in [0, vocab_size)"),
    ]


def elements_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    v, d = int(rng.integers(50, 100_000)), int(rng.integers(1, 1024))
    shape = tuple(int(s) for s in rng.integers(1, 6, size=3))
    return [
        _elements_case(rng.integers(0, v, size=shape), v, d),
        _elements_case(rng.integers(0, 5, size=(int(rng.integers(20, 200)),)).astype(np.int32), v, d),
        _elements_case(np.zeros((0,), dtype=np.int64), v, d),
        _elements_case(np.array(v - 1), v, d),
        _elements_case(rng.permutation(v)[:40], v, d),
        _elements_case(np.array([v]), v, d, raises=IndexError, hint="ids must lie in [0, vocab_size)"),
        _elements_case(np.array([1.0, 2.0]), v, d, raises=TypeError, hint="ids must be integers"),
    ]


case_probes(
    A,
    "backward_elements",
    "backward_elements",
    results_name="elements written by the dense, sparse and index_add_ gradients",
    error_names={IndexError: "a negative id raises IndexError"},
    cases=elements_cases_visible,
)
case_probes(
    A,
    "backward_elements_hidden",
    "backward_elements",
    results_name="random shapes, repeated, distinct, empty and scalar ids",
    error_names={IndexError: "an id >= vocab_size raises IndexError", TypeError: "float ids raise TypeError"},
    cases=elements_cases_hidden,
    hidden=True,
)

# ------------------------------------------------------------------------------------------------ measured part
#: the measurement cell times the three gradients for this many tokens at each of these vocabulary sizes
MEASURED_VOCAB_SIZES = (2_000, 20_000, 100_000)
MEASURED_RECORDS = 3 * len(MEASURED_VOCAB_SIZES)
register_record(A, "backward_measurements")
