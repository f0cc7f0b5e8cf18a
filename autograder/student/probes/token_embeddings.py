"""Probes and inputs of the ``token-embeddings`` assignment: ``xavier_uniform``, ``embedding_forward``,
``one_hot``, ``nearest_neighbors``, ``lookup_cost`` and the record of the measured part, ``lookup_measurements``.

Groups (= nbgrader ``grade_id`` of the test cell): ``<function>`` (visible, fixed inputs) and ``<function>_hidden``
(inputs drawn from the hidden seed: random shapes, empty and scalar ids, size-1 tables, every error of the
contract). The judges are in :mod:`autograder.checks.token_embeddings`.
"""

from __future__ import annotations

import numpy as np

from ..cases import Case
from ..describe import show_array
from ..measured import register_record
from ..registry import case_probes, register
from ..transport import call

A = "token-embeddings"

NEGATIVE_HINT = "NumPy silently wraps a negative id to the end of the table: check ids < 0 yourself"
FLOAT_HINT = "check np.issubdtype(ids.dtype, np.integer) before indexing"
NEIGHBOR_HINT = "rank by cosine similarity, most similar first, leave the query out, break ties to the lower id"

ID_ERRORS = {IndexError: "ids < 0 or >= vocab_size raise IndexError", TypeError: "non-integer ids raise TypeError"}
ID_ERRORS_HIDDEN = {
    IndexError: "more out-of-range ids raise IndexError",
    TypeError: "float and bool ids raise TypeError",
}


def _ids_label(ids: np.ndarray) -> str:
    return f"ids {show_array(ids, 40)} {ids.dtype}" if ids.size <= 12 else f"ids of shape {ids.shape} {ids.dtype}"


# ------------------------------------------------------------------------------------------------ xavier_uniform
def xavier_sizes(seed: int, hidden: bool) -> list[tuple[int, int]]:
    """``[(vocab_size, dim)]`` of the tables drawn."""
    if not hidden:
        return [(400, 100), (50, 1000)]
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(500, 3000)), int(rng.integers(16, 80))), (3, 5), (1, 1), (1, 40_000)]


def xavier_rng_seed(seed: int, i: int) -> int:
    """The seed of the generator passed for table ``i`` (the one seeded differently adds 500)."""
    return seed * 1000 + i


def _xavier_probe(hidden: bool):
    def probe(fn, seed):
        out = []
        for i, (v, d) in enumerate(xavier_sizes(seed, hidden)):
            s = xavier_rng_seed(seed, i)
            out.append(
                {
                    "a": call(fn, v, d, np.random.default_rng(s)),
                    "same_state": call(fn, v, d, np.random.default_rng(s)),
                    "other_state": call(fn, v, d, np.random.default_rng(s + 500)),
                }
            )
        return out

    return probe


XAVIER_VALUES = "float32 (V, D) values filling [-a, a], a = sqrt(6 / (V + D))"
XAVIER_RNG = "drawn from rng: same generator state, same table"
XAVIER_HIDDEN = "random sizes and size-1 tables"
register(A, "xavier_uniform", XAVIER_VALUES, "xavier_uniform")(_xavier_probe(False))
register(A, "xavier_uniform", XAVIER_RNG, "xavier_uniform")(_xavier_probe(False))
register(A, "xavier_uniform_hidden", XAVIER_HIDDEN, "xavier_uniform", hidden=True)(_xavier_probe(True))


# ------------------------------------------------------------------------------------------------ embedding_forward
def _table(rng, v, d, dtype=np.float32):
    return rng.standard_normal((v, d)).astype(dtype)


def _forward_case(weight, ids, raises=None, hint=""):
    return Case(
        f"weight {weight.shape} {weight.dtype}, {_ids_label(np.asarray(ids))}", (weight, ids), raises=raises, hint=hint
    )


def forward_cases_visible(seed):
    rng = np.random.default_rng(seed)
    w = _table(rng, 6, 4)
    return [
        _forward_case(w, np.array([[0, 5, 2], [2, 2, 1]])),
        _forward_case(_table(rng, 6, 3, np.float64), np.array([3], dtype=np.int32)),
        _forward_case(w, np.array([0, -1]), IndexError, NEGATIVE_HINT),
        _forward_case(w, np.array([1, 6]), IndexError, "an id must be < vocab_size"),
        _forward_case(w, np.array([0.0, 2.0]), TypeError, FLOAT_HINT),
    ]


def forward_cases_hidden(seed):
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


case_probes(
    A,
    "embedding_forward",
    "embedding_forward",
    results_name="rows, shape and dtype of the lookup",
    error_names=ID_ERRORS,
    cases=forward_cases_visible,
)
case_probes(
    A,
    "embedding_forward_hidden",
    "embedding_forward",
    results_name="random, empty, scalar and narrow-integer ids",
    error_names=ID_ERRORS_HIDDEN,
    cases=forward_cases_hidden,
    hidden=True,
)


# ------------------------------------------------------------------------------------------------ one_hot
def _one_hot_case(ids, v, raises=None, hint=""):
    return Case(f"{_ids_label(np.asarray(ids))}, vocab_size={v}", (ids, v), raises=raises, hint=hint)


def one_hot_cases_visible(seed):
    return [
        _one_hot_case(np.array([[1, 0], [3, 3]]), 4),
        _one_hot_case(np.array([2], dtype=np.int32), 3),
        _one_hot_case(np.array([0, -1]), 3, IndexError, NEGATIVE_HINT + " (np.eye(V)[ids] wraps too)"),
    ]


def one_hot_cases_hidden(seed):
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


case_probes(
    A,
    "one_hot",
    "one_hot",
    results_name="float32 codes of shape ids.shape + (vocab_size,)",
    error_names=ID_ERRORS,
    cases=one_hot_cases_visible,
)
case_probes(
    A,
    "one_hot_hidden",
    "one_hot",
    results_name="random, empty, scalar and size-1 cases",
    error_names=ID_ERRORS_HIDDEN,
    cases=one_hot_cases_hidden,
    hidden=True,
)


# ------------------------------------------------------------------------------------------------ nearest_neighbors
def _nn_case(weight, q, k, note="", raises=None, hint=NEIGHBOR_HINT):
    label = f"weight {show_array(weight, 70) if weight.size <= 16 else weight.shape}, query_id={q}, k={k}"
    return Case(label + (f" [{note}]" if note else ""), (weight, q, k), raises=raises, hint=hint)


ZERO_ROW_HINT = "an all-zero row has cosine similarity 0 to every row (divide by the norm only where it is not 0)"
NN_QUERY_HINT = "raise IndexError for a query_id outside [0, V)"
NN_K_HINT = "raise ValueError for k outside [1, V - 1]: there are only V - 1 other rows"


#: a table where cosine and dot-product rankings differ, rows 4 and 6 tie with each other (parallel to row 0,
#: scaled by powers of two, so their cosines are exactly equal) and the query itself would rank first if kept
NN_TABLE = np.array([[1.0, 0.0], [10.0, 9.0], [0.9, 0.1], [0.0, 1.0], [2.0, 0.0], [-1.0, 0.0], [0.5, 0.0]])


def nn_cases_visible(seed):
    rng = np.random.default_rng(seed)
    return [
        _nn_case(NN_TABLE.copy(), 0, 4),
        _nn_case(NN_TABLE.copy(), 3, 2),
        _nn_case(rng.standard_normal((8, 5)), 5, 7),
    ]


def nn_cases_hidden(seed):
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
    zero_row = w.copy()
    zero_row[0] = 0.0
    return [
        _nn_case(w, 0, 1),
        _nn_case(w, v - 1, v - 1, "k = V - 1"),
        _nn_case(w.astype(np.float32), int(rng.integers(0, v)), 5, "float32 table"),
        _nn_case(tied, q, 4, "rows parallel to the query tie exactly"),
        _nn_case(rng.standard_normal((2, 3)), 1, 1),
        _nn_case(rng.standard_normal((30, 2)), 3, 29, "2-d vectors, k = V - 1"),
        _nn_case(zero_row, int(rng.integers(1, v)), v - 1, "row 0 is all zeros", hint=ZERO_ROW_HINT),
        _nn_case(zero_row, 0, 3, "the query is an all-zero row: every similarity is 0", hint=ZERO_ROW_HINT),
        _nn_case(w, v, 1, raises=IndexError, hint=NN_QUERY_HINT),
        _nn_case(w, -1, 1, raises=IndexError, hint=NN_QUERY_HINT),
        _nn_case(w, 0, 0, raises=ValueError, hint=NN_K_HINT),
        _nn_case(w, 0, v, raises=ValueError, hint=NN_K_HINT),
    ]


case_probes(
    A,
    "nearest_neighbors",
    "nearest_neighbors",
    results_name="cosine ranking, query excluded, ties to the lower id",
    cases=nn_cases_visible,
)
case_probes(
    A,
    "nearest_neighbors_hidden",
    "nearest_neighbors",
    results_name="random tables, k = 1 and V - 1, planted ties, all-zero rows",
    error_names={
        IndexError: "a query_id outside [0, V) raises IndexError",
        ValueError: "k outside [1, V - 1] raises ValueError",
    },
    cases=nn_cases_hidden,
    hidden=True,
)


# ------------------------------------------------------------------------------------------------ lookup_cost
COST_HINT = (
    "lookup: 2 * n * D * 4 (rows read, output written); one-hot: 2 * n * V * 4 (one-hot written, then read) "
    "+ V * D * 4 (table) + n * D * 4 (output); FLOPs: 2 * n * V * D"
)
COST_SIZE_HINT = "raise ValueError for n_tokens < 0 and for vocab_size or dim < 1"


def _cost_case(*args, raises=None, hint=COST_HINT):
    return Case(", ".join(repr(a) for a in args), args, raises=raises, hint=hint if raises is None else COST_SIZE_HINT)


def cost_cases_visible(seed):
    return [
        _cost_case(512, 1000, 64),
        _cost_case(1, 50257, 768),
        _cost_case(3, 7, 5),
        _cost_case(4, 0, 8, raises=ValueError),
    ]


def cost_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    return [
        _cost_case(int(rng.integers(1, 5000)), int(rng.integers(1000, 200_000)), int(rng.integers(16, 4096))),
        _cost_case(0, int(rng.integers(2, 100)), int(rng.integers(1, 64))),
        _cost_case(1, 1, 1),
        _cost_case(2048, 128256, 4096, hint="use Python ints: these counts pass 2**31 " + COST_HINT),
        _cost_case(-1, 10, 4, raises=ValueError),
        _cost_case(8, 10, 0, raises=ValueError),
    ]


case_probes(
    A,
    "lookup_cost",
    "lookup_cost",
    results_name="bytes of the lookup and of the one-hot product, and its FLOPs",
    error_names={ValueError: "an empty vocabulary raises ValueError"},
    cases=cost_cases_visible,
)
case_probes(
    A,
    "lookup_cost_hidden",
    "lookup_cost",
    results_name="random sizes, no tokens, a 1 x 1 table, Llama 3 sizes",
    error_names={ValueError: "negative n_tokens or dim 0 raise ValueError"},
    cases=cost_cases_hidden,
    hidden=True,
)

# ------------------------------------------------------------------------------------------------ measured part
#: the measurement cell times the lookup and the one-hot product at each of these vocabulary sizes
MEASURED_VOCAB_SIZES = (1_000, 3_000, 9_000)
MEASURED_RECORDS = 2 * len(MEASURED_VOCAB_SIZES)
register_record(A, "lookup_measurements")
