"""Probes and inputs of the ``memory-scaling`` assignment: ``embedding_parameters``, ``tensor_bytes``,
``training_bytes``, ``lookup_bytes``, ``kv_cache_bytes``, ``optimizer_step_bytes`` and the record of the
measured part, ``optimizer_measurements``.

Groups: ``<function>`` (visible) and ``<function>_hidden`` (inputs from the hidden seed). The judges are in
:mod:`autograder.checks.memory_scaling`.
"""

from __future__ import annotations

import numpy as np

from ..cases import Case
from ..measured import register_record
from ..registry import case_probes

A = "memory-scaling"

INT4_HINT = "int4 packs two values into a byte: round up, e.g. 7 values need 4 bytes"
DTYPE_HINT = "only float32, float16, bfloat16, int8 and int4 are known: raise ValueError for anything else"
TRAIN_DTYPE_HINT = (
    "int8 and int4 store weights for inference; training needs floating-point gradients: raise ValueError for them"
)
KV_HINT = (
    "every layer caches one key AND one value vector of n_kv_heads * head_dim values per token and sequence: "
    "2 * n_layers * batch_size * n_tokens * tensor_bytes(n_kv_heads * head_dim, dtype)"
)
PARAMS_HINT = "raise ValueError for a vocab_size or dim that is not a positive integer"
LOOKUP_ROW_HINT = "each token reads one whole row: an int4 row of an odd dim rounds up on its own, per row"
KV_ROW_HINT = "each cached vector is stored whole: an int4 vector of an odd length rounds up on its own"
KV_SIZE_HINT = "raise ValueError for n_layers, n_kv_heads, head_dim or batch_size < 1, or n_tokens < 0"
MIXED_HINT = (
    "weights and gradients in dtype, optimizer state in float32 (sgd 0, momentum 1, adam 2 values per "
    "parameter), plus a float32 master copy of the weights when dtype is not float32"
)


def _label(args, kwargs):
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _case(*args, raises=None, hint="", **kwargs):
    return Case(_label(args, kwargs), args, kwargs, raises=raises, hint=hint)


# ------------------------------------------------------------------------------------------------ cases
def params_cases_visible(seed):
    return [_case(50257, 768), _case(30522, 768), _case(10, 3)]


def params_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    return [
        _case(1, 1),
        _case(128256, 4096),
        _case(int(rng.integers(1000, 300_000)), int(rng.integers(64, 16_384))),
        _case(0, 768, raises=ValueError, hint=PARAMS_HINT),
        _case(50257, -int(rng.integers(1, 100)), raises=ValueError, hint=PARAMS_HINT),
        _case(2.5, 4, raises=ValueError, hint=PARAMS_HINT),
    ]


def tensor_cases_visible(seed):
    return [
        *(_case(10, d) for d in ("float32", "float16", "bfloat16", "int8", "int4")),
        _case(7, "int4", hint=INT4_HINT),
        _case(10, "float64", raises=ValueError, hint=DTYPE_HINT),
    ]


def tensor_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10**9, 10**10)) | 1  # odd, and beyond int32
    return [
        *(_case(0, d) for d in ("float32", "int4")),
        _case(1, "int4", hint=INT4_HINT),
        *(_case(n, d, hint=INT4_HINT if d == "int4" else "") for d in ("float32", "bfloat16", "int8", "int4")),
        _case(2**31, "float32", hint="use Python ints: 2**31 * 4 overflows int32"),
        *(_case(10, d, raises=ValueError, hint=DTYPE_HINT) for d in ("fp8", "int2", "float")),
    ]


def training_cases_visible(seed):
    return [
        _case(1000, "float32", "adam"),
        _case(1000, "bfloat16", "adam", hint="bfloat16 + Adam is 16 bytes per parameter: " + MIXED_HINT),
        _case(1000, "float16", "sgd", hint=MIXED_HINT),
        _case(1000, "float32", "momentum", hint=MIXED_HINT),
        _case(1000, hint="defaults: dtype='float32', optimizer='adam'"),
        _case(1000, "float32", "adagrad", raises=ValueError, hint="raise ValueError for an unknown optimizer"),
        _case(1000, "int8", "adam", raises=ValueError, hint=TRAIN_DTYPE_HINT),
    ]


def training_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10**9, 10**10))
    return [
        _case(0, "bfloat16", "adam"),
        _case(1, "bfloat16", "momentum", hint=MIXED_HINT),
        _case(int(rng.integers(1000, 100_000)), "float16", "adam", hint=MIXED_HINT),
        _case(n, "bfloat16", "adam", hint=MIXED_HINT),
        _case(n, "float32", "sgd", hint=MIXED_HINT),
        _case(1234, optimizer="momentum", hint="default dtype='float32'"),
        _case(4321, "bfloat16", hint="default optimizer='adam'"),
        _case(1000, "bfloat16", "rmsprop", raises=ValueError, hint="raise ValueError for an unknown optimizer"),
        _case(1000, "float64", "adam", raises=ValueError, hint=DTYPE_HINT),
        _case(1000, "int4", "sgd", raises=ValueError, hint=TRAIN_DTYPE_HINT),
    ]


def lookup_cases_visible(seed):
    return [
        _case(2048, 4096, "bfloat16"),
        _case(10, 768, "float32"),
        _case(3, 4096, "int4", hint="each token reads one row of dim values"),
    ]


def lookup_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    return [
        _case(0, 768, "float32"),
        _case(1, 1, "int8"),
        _case(int(rng.integers(10**5, 10**6)), 5120, "float16", hint="each token reads one row of dim values"),
        _case(7, 2 * int(rng.integers(64, 4096)), "int4", hint="each token reads one row of dim values"),
        _case(7, 2 * int(rng.integers(64, 4096)) + 1, "int4", hint=LOOKUP_ROW_HINT),
        _case(2, 3, "int4", hint=LOOKUP_ROW_HINT),
        _case(4, 8, "float64", raises=ValueError, hint=DTYPE_HINT),
    ]


def kv_cases_visible(seed):
    return [
        _case(32, 8, 128, 1, "bfloat16", hint=KV_HINT),  # Llama 3.1 8B, one token
        _case(32, 8, 128, 8192, hint="default dtype='bfloat16', batch_size=1; " + KV_HINT),
        _case(12, 12, 64, 1024, "float32", 4, hint=KV_HINT),  # GPT-2 small, 4 sequences
        _case(18, 1, 256, 8192, "int8", batch_size=2, hint=KV_HINT),  # Gemma 2B: one kv head
        _case(2, 2, 4, 3, "fp8", raises=ValueError, hint=DTYPE_HINT),
    ]


def kv_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    layers, heads = int(rng.integers(1, 128)), int(rng.integers(1, 16))
    return [
        _case(1, 1, 3, 5, "int4", hint=KV_ROW_HINT),
        _case(layers, heads, 2 * int(rng.integers(16, 128)), 0, "float16", hint=KV_HINT),
        _case(126, 8, 128, 131072, "bfloat16", int(rng.integers(8, 64)), hint="use Python ints; " + KV_HINT),
        _case(layers, heads, 64, int(rng.integers(1, 10**5)), "int4", hint=KV_HINT),
        _case(0, 8, 128, 10, raises=ValueError, hint=KV_SIZE_HINT),
        _case(32, 8, 128, -1, raises=ValueError, hint=KV_SIZE_HINT),
        _case(32, 8, 128, 10, "bfloat16", 0, raises=ValueError, hint=KV_SIZE_HINT),
    ]


case_probes(
    A,
    "embedding_parameters",
    "embedding_parameters",
    results_name="V * D for GPT-2, BERT and a small table",
    cases=params_cases_visible,
)
case_probes(
    A,
    "embedding_parameters_hidden",
    "embedding_parameters",
    results_name="1 x 1, Llama 3 and random tables",
    error_names={ValueError: "sizes that are not positive integers raise ValueError"},
    cases=params_cases_hidden,
    hidden=True,
)
case_probes(
    A,
    "tensor_bytes",
    "tensor_bytes",
    results_name="bytes per dtype, int4 rounded up",
    error_names={ValueError: "unknown dtype raises ValueError"},
    cases=tensor_cases_visible,
)
case_probes(
    A,
    "tensor_bytes_hidden",
    "tensor_bytes",
    results_name="0 and 1 elements, billions of elements",
    error_names={ValueError: "more unknown dtypes raise ValueError"},
    cases=tensor_cases_hidden,
    hidden=True,
)
case_probes(
    A,
    "training_bytes",
    "training_bytes",
    results_name="weights, gradients, optimizer state, master copy",
    error_names={ValueError: "unknown optimizer or an integer dtype raises ValueError"},
    cases=training_cases_visible,
)
case_probes(
    A,
    "training_bytes_hidden",
    "training_bytes",
    results_name="0, 1 and billions of parameters, mixed precision",
    error_names={ValueError: "unknown optimizer or dtype raises ValueError"},
    cases=training_cases_hidden,
    hidden=True,
)
case_probes(
    A, "lookup_bytes", "lookup_bytes", results_name="one row of dim values per token", cases=lookup_cases_visible
)
case_probes(
    A,
    "lookup_bytes_hidden",
    "lookup_bytes",
    results_name="0 and 1 tokens, long batches, int4 rows of odd dim",
    error_names={ValueError: "unknown dtype raises ValueError"},
    cases=lookup_cases_hidden,
    hidden=True,
)
case_probes(
    A,
    "kv_cache_bytes",
    "kv_cache_bytes",
    results_name="keys and values, every layer, token and sequence",
    error_names={ValueError: "unknown dtype raises ValueError"},
    cases=kv_cases_visible,
)
case_probes(
    A,
    "kv_cache_bytes_hidden",
    "kv_cache_bytes",
    results_name="odd int4 vectors, empty and 128k-token caches, large batches",
    error_names={ValueError: "non-positive sizes raise ValueError"},
    cases=kv_cases_hidden,
    hidden=True,
)


# ------------------------------------------------------------------------------------------------ optimizer_step_bytes
STEP_HINT = (
    "a fused step reads the gradient (dtype), the float32 weights and the float32 state once, and writes the "
    "weights and the state back, plus the dtype copy of the weights in mixed precision"
)


def step_cases_visible(seed):
    return [
        _case(1000, "float32", "adam", hint="float32 + Adam moves 28 bytes per parameter: " + STEP_HINT),
        _case(1000, "bfloat16", "adam", hint=STEP_HINT),
        _case(1000, "float32", "sgd", hint=STEP_HINT),
        _case(10, "float16", "momentum", hint=STEP_HINT),
        _case(1000, "int8", "adam", raises=ValueError, hint=TRAIN_DTYPE_HINT),
    ]


def step_cases_hidden(seed):
    rng = np.random.default_rng(seed)
    return [
        _case(0, "bfloat16", "adam"),
        _case(1, "float16", "sgd", hint=STEP_HINT),
        _case(int(rng.integers(1000, 100_000)), "bfloat16", "momentum", hint=STEP_HINT),
        _case(int(rng.integers(10**9, 10**10)), "bfloat16", "adam", hint="use Python ints; " + STEP_HINT),
        _case(4321, hint="defaults: dtype='float32', optimizer='adam'"),
        _case(1234, optimizer="momentum", hint="default dtype='float32'"),
        _case(1000, "float32", "adagrad", raises=ValueError, hint="raise ValueError for an unknown optimizer"),
        _case(1000, "int4", "sgd", raises=ValueError, hint=TRAIN_DTYPE_HINT),
        _case(1000, "float64", "adam", raises=ValueError, hint=DTYPE_HINT),
    ]


case_probes(
    A,
    "optimizer_step_bytes",
    "optimizer_step_bytes",
    results_name="bytes a fused sgd, momentum and adam step reads and writes",
    error_names={ValueError: "int8 raises ValueError"},
    cases=step_cases_visible,
)
case_probes(
    A,
    "optimizer_step_bytes_hidden",
    "optimizer_step_bytes",
    results_name="0, 1 and billions of parameters, the defaults",
    error_names={ValueError: "unknown optimizer, int4 or float64 raise ValueError"},
    cases=step_cases_hidden,
    hidden=True,
)

# ------------------------------------------------------------------------------------------------ measured part
#: the measurement cell steps each of these optimizers on a float32 parameter of MEASURED_PARAMS values
MEASURED_OPTIMIZERS = ("sgd", "momentum", "adam")
MEASURED_PARAMS = 2_000_000
MEASURED_RECORDS = len(MEASURED_OPTIMIZERS)
register_record(A, "optimizer_measurements")
