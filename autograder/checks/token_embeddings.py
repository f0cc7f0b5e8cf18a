"""Checks of the ``token-embeddings`` assignment: ``xavier_uniform``, ``embedding_forward``, ``one_hot``,
``nearest_neighbors``.

Groups (= nbgrader ``grade_id`` of the test cell): ``<function>`` (visible, fixed inputs) and
``<function>_hidden`` (seeded by :func:`~autograder.checks.core.grading_seed`: random shapes, empty and scalar
ids, size-1 tables, every error of the contract).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from autograder.reference import numpy_ref as N, torch_ref as T

from .compare import Case, arrays, case_checks, custom_check, describe, show_array, torch_ids
from .core import CheckFailed, Raised, call

A = "token-embeddings"

NEGATIVE_HINT = "NumPy silently wraps a negative id to the end of the table: check ids < 0 yourself"
FLOAT_HINT = "check np.issubdtype(ids.dtype, np.integer) before indexing"
NEIGHBOR_HINT = "rank by cosine similarity, most similar first, leave the query out, break ties to the lower id"


ID_ERRORS = {IndexError: "ids < 0 or >= vocab_size raise IndexError", TypeError: "non-integer ids raise TypeError"}
ID_ERRORS_HIDDEN = {IndexError: "more out-of-range ids raise IndexError", TypeError: "float and bool ids raise TypeError"}


def _ids_label(ids: np.ndarray) -> str:
    return f"ids {show_array(ids, 40)} {ids.dtype}" if ids.size <= 12 else f"ids of shape {ids.shape} {ids.dtype}"


# ------------------------------------------------------------------------------------------------ xavier_uniform
def _xavier_sizes(seed: int, hidden: bool) -> list[tuple[int, int]]:
    if not hidden:
        return [(400, 100), (50, 1000)]
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(500, 3000)), int(rng.integers(16, 80))), (3, 5), (1, 1), (1, 40_000)]


def _xavier_probe(hidden: bool):
    def probe(fn, seed):
        out = []
        for i, (v, d) in enumerate(_xavier_sizes(seed, hidden)):
            s = seed * 1000 + i
            out.append({"a": call(fn, v, d, np.random.default_rng(s)),
                        "same_state": call(fn, v, d, np.random.default_rng(s)),
                        "other_state": call(fn, v, d, np.random.default_rng(s + 500))})
        return out
    return probe


def _xavier_judge(hidden: bool, aspects=("values", "rng")):
    def judge(data, seed):
        for i, ((v, d), got) in enumerate(zip(_xavier_sizes(seed, hidden), data, strict=True)):
            where = f"xavier_uniform({v}, {d}, rng)"
            table = got["a"]
            if isinstance(table, Raised):
                raise CheckFailed(f"{where}: expected a float32 array, but {describe(table)}")
            if not isinstance(table, np.ndarray) or table.shape != (v, d):
                raise CheckFailed(f"{where}: expected an array of shape {(v, d)}, got "
                                  f"{table.shape if isinstance(table, np.ndarray) else type(table).__name__}")
            if "rng" in aspects:
                _judge_reproducible(where, v, d, got)
            if "values" not in aspects:
                continue
            if table.dtype != np.float32:
                raise CheckFailed(f"{where}: expected dtype float32, got {table.dtype} (use .astype(np.float32))")
            s = seed * 1000 + i
            ref_np = N.xavier_uniform(v, d, np.random.default_rng(s))
            ref_t = T.xavier_uniform(v, d, torch.Generator().manual_seed(s)).numpy()
            bound = math.sqrt(6.0 / (v + d))          # the contract's a; both references stay inside it
            for ref in (ref_np, ref_t):
                if np.abs(ref).max() > bound * (1 + 1e-6):
                    raise RuntimeError("internal error: a reference table leaves [-a, a]")
            top = float(np.abs(table).max())
            if top > bound * (1 + 1e-6):
                raise CheckFailed(f"{where}: a value reaches {top:.4g}, outside [-a, a] with a = sqrt(6 / (vocab_size + dim)) "
                                  f"= {bound:.4g}")
            if table.size >= 20_000:  # large enough for the sample statistics to be sharp
                ref_top = min(np.abs(ref_np).max(), np.abs(ref_t).max())
                if top < 0.99 * ref_top:
                    raise CheckFailed(f"{where}: the largest |value| is {top:.4g}, but the reference tables reach "
                                      f"{ref_top:.4g}: draw uniformly from [-a, a] with a = sqrt(6 / (vocab_size + dim))")
                if abs(float(table.mean()) - float(ref_np.mean())) > 0.05 * bound:
                    raise CheckFailed(f"{where}: the mean is {table.mean():.4g}, expected about 0 like the references "
                                      f"({ref_np.mean():.2g}): draw from [-a, a], not [0, a]")
                ratio = float(table.astype(np.float64).var() / ref_np.astype(np.float64).var())
                ratio_t = float(ref_t.astype(np.float64).var() / ref_np.astype(np.float64).var())
                if abs(ratio_t - 1) > 0.05:
                    raise RuntimeError("internal error: the NumPy and PyTorch xavier tables have different spreads")
                if abs(ratio - 1) > 0.05:
                    raise CheckFailed(f"{where}: the variance is {ratio:.3f} x the references' (a uniform draw on "
                                      f"[-a, a] has variance a^2/3): use rng.uniform(-a, a, size=(vocab_size, dim))")
    return judge


def _judge_reproducible(where: str, v: int, d: int, got: dict) -> None:
    """Same generator state -> same table; different states -> different tables (the values come from ``rng``)."""
    table, same, other = got["a"], got["same_state"], got["other_state"]
    if not (isinstance(same, np.ndarray) and same.shape == table.shape and np.array_equal(same, table)):
        raise CheckFailed(f"{where}: two generators in the same state gave different tables: draw every "
                          f"value from the `rng` argument (not np.random.* or a new default_rng())")
    if v * d > 1 and isinstance(other, np.ndarray) and np.array_equal(other, table):
        raise CheckFailed(f"{where}: generators seeded differently gave the same table: draw from the "
                          f"`rng` argument instead of a fixed seed")


custom_check(A, "xavier_uniform", "float32 (V, D) values filling [-a, a], a = sqrt(6 / (V + D))", "xavier_uniform",
             probe=_xavier_probe(False), judge=_xavier_judge(False, ("values",)))
custom_check(A, "xavier_uniform", "drawn from rng: same generator state, same table", "xavier_uniform",
             probe=_xavier_probe(False), judge=_xavier_judge(False, ("rng",)))
custom_check(A, "xavier_uniform_hidden", "random sizes and size-1 tables", "xavier_uniform",
             probe=_xavier_probe(True), judge=_xavier_judge(True), seeded=True)


# ------------------------------------------------------------------------------------------------ embedding_forward
def _torch_forward(weight, ids):
    return T.embedding_forward(torch.from_numpy(weight), torch_ids(ids)).numpy()


def _table(rng, v, d, dtype=np.float32):
    return rng.standard_normal((v, d)).astype(dtype)


def _forward_case(weight, ids, raises=None, hint=""):
    return Case(f"weight {weight.shape} {weight.dtype}, {_ids_label(np.asarray(ids))}", (weight, ids),
                raises=raises, hint=hint)


def _forward_cases_visible(seed):
    rng = np.random.default_rng(seed)
    w = _table(rng, 6, 4)
    return [
        _forward_case(w, np.array([[0, 5, 2], [2, 2, 1]])),
        _forward_case(_table(rng, 6, 3, np.float64), np.array([3], dtype=np.int32)),
        _forward_case(w, np.array([0, -1]), IndexError, NEGATIVE_HINT),
        _forward_case(w, np.array([1, 6]), IndexError, "an id must be < vocab_size"),
        _forward_case(w, np.array([0.0, 2.0]), TypeError, FLOAT_HINT),
    ]


def _forward_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    v, d = int(rng.integers(2, 60)), int(rng.integers(1, 9))
    w = _table(rng, v, d)
    shape = tuple(int(s) for s in rng.integers(1, 5, size=3))
    return [
        _forward_case(w, rng.integers(0, v, size=shape)),
        _forward_case(w, rng.integers(0, v, size=(7,)).astype(np.uint8 if v < 256 else np.int64)),
        _forward_case(w, rng.integers(0, v, size=(2, 5)).astype(np.int8 if v < 128 else np.int64)),
        _forward_case(w, np.zeros((0,), dtype=np.int64)),
        _forward_case(w, np.zeros((2, 0), dtype=np.int64)),
        _forward_case(w, np.array(v - 1)),
        _forward_case(_table(rng, 1, d), np.zeros((3,), dtype=np.int64)),
        _forward_case(_table(rng, v, d, np.float16), rng.integers(0, v, size=(4,))),
        _forward_case(w, np.array([[0, 1], [v - 1, -1]]), IndexError, NEGATIVE_HINT),
        _forward_case(w, np.array([-v]), IndexError, NEGATIVE_HINT),
        _forward_case(w, np.array(v), IndexError, "an id must be < vocab_size"),
        _forward_case(w, np.array([0, 1], dtype=np.float32), TypeError, FLOAT_HINT),
        _forward_case(w, np.array([True, False]), TypeError, "booleans are not token ids: " + FLOAT_HINT),
    ]


case_checks(A, "embedding_forward", "embedding_forward", results_name="rows, shape and dtype of the lookup",
           error_names=ID_ERRORS, cases=_forward_cases_visible, numpy_ref=N.embedding_forward, torch_ref=_torch_forward,
           compare=arrays(rtol=0, atol=0), arg_names=("weight", "ids"))
case_checks(A, "embedding_forward_hidden", "embedding_forward", results_name="random, empty, scalar and narrow-integer ids",
           error_names=ID_ERRORS_HIDDEN, cases=_forward_cases_hidden, numpy_ref=N.embedding_forward, torch_ref=_torch_forward,
           compare=arrays(rtol=0, atol=0), seeded=True, arg_names=("weight", "ids"))


# ------------------------------------------------------------------------------------------------ one_hot
def _torch_one_hot(ids, vocab_size):
    return T.one_hot(torch_ids(ids), vocab_size).numpy()


def _one_hot_case(ids, v, raises=None, hint=""):
    return Case(f"{_ids_label(np.asarray(ids))}, vocab_size={v}", (ids, v), raises=raises, hint=hint)


def _one_hot_cases_visible(seed):
    return [
        _one_hot_case(np.array([[1, 0], [3, 3]]), 4),
        _one_hot_case(np.array([2], dtype=np.int32), 3),
        _one_hot_case(np.array([0, -1]), 3, IndexError, NEGATIVE_HINT + " (np.eye(V)[ids] wraps too)"),
    ]


def _one_hot_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    v = int(rng.integers(2, 40))
    return [
        _one_hot_case(rng.integers(0, v, size=(2, 3, 4)), v),
        _one_hot_case(np.zeros((0,), dtype=np.int64), v),
        _one_hot_case(np.array(v - 1), v),
        _one_hot_case(np.zeros((5,), dtype=np.uint8), 1),
        _one_hot_case(np.array([v]), v, IndexError, "an id must be < vocab_size"),
        _one_hot_case(np.array([[1, -2]]), v, IndexError, NEGATIVE_HINT),
        _one_hot_case(np.array([1.0]), v, TypeError, FLOAT_HINT),
    ]


case_checks(A, "one_hot", "one_hot", results_name="float32 codes of shape ids.shape + (vocab_size,)",
           error_names=ID_ERRORS, cases=_one_hot_cases_visible, numpy_ref=N.one_hot, torch_ref=_torch_one_hot,
           compare=arrays(rtol=0, atol=0, dtype=np.float32), arg_names=("ids",))
case_checks(A, "one_hot_hidden", "one_hot", results_name="random, empty, scalar and size-1 cases",
           error_names=ID_ERRORS_HIDDEN, cases=_one_hot_cases_hidden, numpy_ref=N.one_hot, torch_ref=_torch_one_hot,
           compare=arrays(rtol=0, atol=0, dtype=np.float32), seeded=True, arg_names=("ids",))


# ------------------------------------------------------------------------------------------------ nearest_neighbors
def _torch_neighbors(weight, query_id, k):
    return T.nearest_neighbors(torch.from_numpy(np.asarray(weight, dtype=np.float64)), query_id, k).numpy()


def _nn_case(weight, q, k, note=""):
    label = f"weight {show_array(weight, 70) if weight.size <= 16 else weight.shape}, query_id={q}, k={k}"
    return Case(label + (f" [{note}]" if note else ""), (weight, q, k), hint=NEIGHBOR_HINT)


#: a table where cosine and dot-product rankings differ, rows 4 and 6 tie with each other (parallel to row 0,
#: scaled by powers of two, so their cosines are exactly equal) and the query itself would rank first if kept
_NN_TABLE = np.array([[1.0, 0.0], [10.0, 9.0], [0.9, 0.1], [0.0, 1.0], [2.0, 0.0], [-1.0, 0.0], [0.5, 0.0]])


def _nn_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [
        _nn_case(_NN_TABLE, 0, 4),
        _nn_case(_NN_TABLE, 3, 2),
        _nn_case(rng.standard_normal((8, 5)), 5, 7),
    ]


def _nn_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    v, d = int(rng.integers(10, 60)), int(rng.integers(4, 17))
    w = rng.standard_normal((v, d))
    # planted exact ties: the query is (1, 1, 1, 1, 0, ...), and rows q-1, V-2, V-1 are it scaled by 3, 2 and 1/4.
    # Every cosine among them is exactly 1 in any floating-point evaluation order (all the arithmetic is exact), so
    # the order among them is decided by the id alone.
    tied = w.copy()
    q = int(rng.integers(1, v - 3))
    pattern = np.zeros(d)
    pattern[:4] = 1.0
    tied[q], tied[q - 1], tied[v - 2], tied[v - 1] = pattern, 3.0 * pattern, 2.0 * pattern, 0.25 * pattern
    return [
        _nn_case(w, 0, 1),
        _nn_case(w, v - 1, v - 1, "k = V - 1"),
        _nn_case(w.astype(np.float32), int(rng.integers(0, v)), 5, "float32 table"),
        _nn_case(tied, q, 4, "rows parallel to the query tie exactly"),
        _nn_case(rng.standard_normal((2, 3)), 1, 1),
        _nn_case(rng.standard_normal((30, 2)), 3, 29, "2-d vectors, k = V - 1"),
    ]


case_checks(A, "nearest_neighbors", "nearest_neighbors", results_name="cosine ranking, query excluded, ties to the lower id",
           cases=_nn_cases_visible, numpy_ref=N.nearest_neighbors, torch_ref=_torch_neighbors,
           compare=arrays(rtol=0, atol=0, integer_kind=True), arg_names=("weight",))
case_checks(A, "nearest_neighbors_hidden", "nearest_neighbors", results_name="random tables, k = 1 and V - 1, planted ties",
           cases=_nn_cases_hidden, numpy_ref=N.nearest_neighbors, torch_ref=_torch_neighbors,
           compare=arrays(rtol=0, atol=0, integer_kind=True), seeded=True, arg_names=("weight",))
