"""Judges of the ``token-embeddings`` assignment: ``xavier_uniform``, ``embedding_forward``, ``one_hot``,
``nearest_neighbors``.

The probes and their inputs are in :mod:`autograder.student.probes.token_embeddings`. Every judge takes the seed
from its caller and rebuilds the inputs with the probes' builders (``P.xavier_sizes``, ``P.forward_cases_hidden``,
...); probe data supplies only the student's outputs.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from autograder.reference import numpy_ref as N
from autograder.reference import torch_ref as T
from autograder.student.probes import token_embeddings as P

from .compare import arrays, case_judges, describe, expect_finite, torch_ids
from .core import CheckFailed, Raised, judge

A = P.A


# ------------------------------------------------------------------------------------------------ xavier_uniform
def _xavier_judge(hidden: bool, aspects=("values", "rng")):
    def decide(data, seed):
        for i, ((v, d), got) in enumerate(zip(P.xavier_sizes(seed, hidden), data, strict=True)):
            where = f"xavier_uniform({v}, {d}, rng)"
            table = got["a"]
            if isinstance(table, Raised):
                raise CheckFailed(f"{where}: expected a float32 array, but {describe(table)}")
            if not isinstance(table, np.ndarray) or table.shape != (v, d):
                raise CheckFailed(
                    f"{where}: expected an array of shape {(v, d)}, got "
                    f"{table.shape if isinstance(table, np.ndarray) else type(table).__name__}"
                )
            if "rng" in aspects:
                _judge_reproducible(where, v, d, got)
            if "values" not in aspects:
                continue
            if table.dtype != np.float32:
                raise CheckFailed(f"{where}: expected dtype float32, got {table.dtype} (use .astype(np.float32))")
            expect_finite(table, where, "draw from rng.uniform(-a, a, ...)")
            s = P.xavier_rng_seed(seed, i)
            ref_np = N.xavier_uniform(v, d, np.random.default_rng(s))
            ref_t = T.xavier_uniform(v, d, torch.Generator().manual_seed(s)).numpy()
            bound = math.sqrt(6.0 / (v + d))  # the contract's a; both references stay inside it
            for ref in (ref_np, ref_t):
                if np.abs(ref).max() > bound * (1 + 1e-6):
                    raise RuntimeError("internal error: a reference table leaves [-a, a]")
            top = float(np.abs(table).max())
            if top > bound * (1 + 1e-6):
                raise CheckFailed(
                    f"{where}: a value reaches {top:.4g}, outside [-a, a] with a = sqrt(6 / (vocab_size + dim)) "
                    f"= {bound:.4g}"
                )
            if table.size >= 20_000:  # large enough for the sample statistics to be sharp
                ref_top = min(np.abs(ref_np).max(), np.abs(ref_t).max())
                if top < 0.99 * ref_top:
                    raise CheckFailed(
                        f"{where}: the largest |value| is {top:.4g}, but the reference tables reach "
                        f"{ref_top:.4g}: draw uniformly from [-a, a] with a = sqrt(6 / (vocab_size + dim))"
                    )
                if abs(float(table.mean()) - float(ref_np.mean())) > 0.05 * bound:
                    raise CheckFailed(
                        f"{where}: the mean is {table.mean():.4g}, expected about 0 like the references "
                        f"({ref_np.mean():.2g}): draw from [-a, a], not [0, a]"
                    )
                ratio = float(table.astype(np.float64).var() / ref_np.astype(np.float64).var())
                ratio_t = float(ref_t.astype(np.float64).var() / ref_np.astype(np.float64).var())
                if abs(ratio_t - 1) > 0.05:
                    raise RuntimeError("internal error: the NumPy and PyTorch xavier tables have different spreads")
                if abs(ratio - 1) > 0.05:
                    raise CheckFailed(
                        f"{where}: the variance is {ratio:.3f} x the references' (a uniform draw on "
                        f"[-a, a] has variance a^2/3): use rng.uniform(-a, a, size=(vocab_size, dim))"
                    )

    return decide


def _judge_reproducible(where: str, v: int, d: int, got: dict) -> None:
    """Same generator state -> same table; different states -> different tables (the values come from ``rng``)."""
    table, same, other = got["a"], got["same_state"], got["other_state"]
    if not (isinstance(same, np.ndarray) and same.shape == table.shape and np.array_equal(same, table)):
        raise CheckFailed(
            f"{where}: two generators in the same state gave different tables: draw every "
            f"value from the `rng` argument (not np.random.* or a new default_rng())"
        )
    if v * d > 1 and isinstance(other, np.ndarray) and np.array_equal(other, table):
        raise CheckFailed(
            f"{where}: generators seeded differently gave the same table: draw from the "
            f"`rng` argument instead of a fixed seed"
        )


judge(A, "xavier_uniform", P.XAVIER_VALUES)(_xavier_judge(False, ("values",)))
judge(A, "xavier_uniform", P.XAVIER_RNG)(_xavier_judge(False, ("rng",)))
judge(A, "xavier_uniform_hidden", P.XAVIER_HIDDEN)(_xavier_judge(True))


# ------------------------------------------------------------------------------------------------ embedding_forward
def _torch_forward(weight, ids):
    return T.embedding_forward(torch.from_numpy(weight), torch_ids(ids)).numpy()


for _group in ("embedding_forward", "embedding_forward_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.embedding_forward,
        torch_ref=_torch_forward,
        compare=arrays(rtol=0, atol=0),
        arg_names=("weight", "ids"),
    )


# ------------------------------------------------------------------------------------------------ one_hot
def _torch_one_hot(ids, vocab_size):
    return T.one_hot(torch_ids(ids), vocab_size).numpy()


for _group in ("one_hot", "one_hot_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.one_hot,
        torch_ref=_torch_one_hot,
        compare=arrays(rtol=0, atol=0, dtype=np.float32),
        arg_names=("ids",),
    )


# ------------------------------------------------------------------------------------------------ nearest_neighbors
def _torch_neighbors(weight, query_id, k):
    return T.nearest_neighbors(torch.from_numpy(np.asarray(weight, dtype=np.float64)), query_id, k).numpy()


for _group in ("nearest_neighbors", "nearest_neighbors_hidden"):
    case_judges(
        A,
        _group,
        numpy_ref=N.nearest_neighbors,
        torch_ref=_torch_neighbors,
        compare=arrays(rtol=0, atol=0, integer_kind=True),
        arg_names=("weight",),
    )
