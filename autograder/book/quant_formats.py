"""llama.cpp's block quantization formats and the per-tensor choices of its ``Q4_K_M`` mixture, as byte counts.

**Block layouts.** ggml stores a quantized row as consecutive *blocks*; each block holds ``block_values`` weights
and the scales needed to decode them. The layouts below restate the ``block_q*`` structs of ggml's
``ggml/src/ggml-common.h`` (github.com/ggml-org/llama.cpp) field by field -- ``ggml_half`` is 2 bytes,
``QK_K = 256`` values per super-block, ``K_SCALE_SIZE = 12`` -- and bits per weight are *computed* from them:

======  ======  ==========================================================  =====
format  values  fields (bytes)                                              bytes
======  ======  ==========================================================  =====
Q8_0    32      d (2), qs (32)                                              34
Q4_0    32      d (2), qs (16)                                              18
Q5_0    32      d (2), qh (4), qs (16)                                      22
Q5_1    32      d (2), m (2), qh (4), qs (16)                               24
MXFP4   32      e (1: E8M0 shared exponent), qs (16: E2M1 codes)            17
NVFP4   64      d (4: one UE4M3 scale per 16 values), qs (32: E2M1 codes)   36
Q4_K    256     d (2), dmin (2), scales (12), qs (128)                      144
Q5_K    256     d (2), dmin (2), scales (12), qh (32), qs (128)             176
Q6_K    256     ql (128), qh (64), scales (16), d (2)                       210
======  ======  ==========================================================  =====

**The Q4_K_M mixture.** ``Q4_K_M`` is not "every weight in 4 bits": llama.cpp's quantizer
(``src/llama-quant.cpp``, ``llama_tensor_get_type_impl``) picks a type per tensor. With Q4_K as the default it keeps
1-D tensors (norms, biases) in float32, gives the output matrix Q6_K (and the token table too when the model ties
them, since the shared tensor is then the output), quantizes an *untied* ``token_embd`` with the default Q4_K,
gives ``attn_v`` and ``ffn_down`` Q6_K in the layers its ``use_more_bits`` rule selects (the first and last eighth
of the layers and every third layer between), Q5_K to a fused ``attn_qkv``, and Q5_K to the other ``attn_v`` of a
70B Llama; a tensor whose rows are not a multiple of the block size falls back (Q4_K -> Q5_0, Q5_K -> Q5_1,
Q6_K -> Q8_0, then F16 if even that block does not divide the row; an output whose rows do not fit Q6_K -> Q8_0).
:func:`q4_k_m_tensor_types` applies those rules to the course's model table; nothing of llama.cpp's code is
copied, only the rules as stated here.

**Microscaling 4-bit formats.** MXFP4 (OCP Microscaling Formats specification v1.0, 2023: 32 FP4 E2M1 elements
sharing one 8-bit E8M0 power-of-two scale) and NVIDIA's NVFP4 (16 E2M1 elements sharing an FP8 E4M3 scale, plus one
FP32 scale per tensor) are the 4-bit formats accelerators now multiply natively; ggml stores them as ``block_mxfp4``
(32 values) and ``block_nvfp4`` (64 values in four 16-value sub-blocks, without the per-tensor scale).
:func:`microscaling_bits_per_weight` computes their bits per weight from the block structure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from autograder.models import ModelConfig

__all__ = [
    "BlockFormat",
    "FORMATS",
    "QK_K",
    "quantized_bytes",
    "GgufTensor",
    "gguf_tensors",
    "use_more_bits",
    "q4_k_m_tensor_types",
    "mixture_bytes",
    "FUSED_QKV_MODELS",
    "FALLBACK",
    "microscaling_bits_per_weight",
]

HALF = 2  # sizeof(ggml_half)
QK_K = 256  # values per K-quant super-block
K_SCALE_SIZE = 12
QK = 32  # values per block of the legacy formats (QK4_0, QK5_0, QK5_1, QK8_0) and of QK_MXFP4
QK_NVFP4, QK_NVFP4_SUB = 64, 16


@dataclass(frozen=True)
class BlockFormat:
    """One storage format: ``block_values`` weights stored in the byte fields ``fields`` ``((name, bytes), ...)``."""

    name: str
    block_values: int
    fields: tuple[tuple[str, int], ...]

    @property
    def block_bytes(self) -> int:
        return sum(size for _, size in self.fields)

    @property
    def bits_per_weight(self) -> float:
        """``8 * block_bytes / block_values``: the weights' bits plus their share of the block's scales."""
        return 8 * self.block_bytes / self.block_values


FORMATS: dict[str, BlockFormat] = {
    f.name: f
    for f in (
        BlockFormat("F32", 1, (("value", 4),)),
        BlockFormat("F16", 1, (("value", HALF),)),
        BlockFormat("Q8_0", QK, (("d", HALF), ("qs", QK))),
        BlockFormat("Q4_0", QK, (("d", HALF), ("qs", QK // 2))),
        BlockFormat("Q5_0", QK, (("d", HALF), ("qh", 4), ("qs", QK // 2))),
        BlockFormat("Q5_1", QK, (("d", HALF), ("m", HALF), ("qh", 4), ("qs", QK // 2))),
        BlockFormat("MXFP4", QK, (("e", 1), ("qs", QK // 2))),
        BlockFormat("NVFP4", QK_NVFP4, (("d", QK_NVFP4 // QK_NVFP4_SUB), ("qs", QK_NVFP4 // 2))),
        BlockFormat("Q4_K", QK_K, (("d", HALF), ("dmin", HALF), ("scales", K_SCALE_SIZE), ("qs", QK_K // 2))),
        BlockFormat(
            "Q5_K", QK_K, (("d", HALF), ("dmin", HALF), ("scales", K_SCALE_SIZE), ("qh", QK_K // 8), ("qs", QK_K // 2))
        ),
        BlockFormat("Q6_K", QK_K, (("ql", QK_K // 2), ("qh", QK_K // 4), ("scales", QK_K // 16), ("d", HALF))),
    )
}

#: models whose llama.cpp conversion keeps the attention projections fused in one ``attn_qkv`` tensor and the
#: gate and up projections in one ``ffn_up`` (Phi-3's ``qkv_proj`` and ``gate_up_proj``)
FUSED_QKV_MODELS = frozenset({"Phi-3-mini (128k)"})
#: llama.cpp's fallback when a row is not a multiple of a K-quant's 256-value block (``llama-quant.cpp``)
FALLBACK = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}


def microscaling_bits_per_weight(
    element_bits: int, block_values: int, scale_bits: int, tensor_scale_bits: int = 0, n_elements: int = 0
) -> float:
    """Bits per weight of a block-scaled format: ``element_bits + scale_bits / block_values``, plus a per-tensor
    scale spread over ``n_elements`` values when ``tensor_scale_bits`` is given (NVFP4's FP32 scale).

    MXFP4: ``(4, 32, 8)`` -> 4.25; NVFP4: ``(4, 16, 8)`` -> 4.5 (+ ``32 / n_elements``). Raises ``ValueError``
    for non-positive sizes, or a per-tensor scale without ``n_elements``.
    """
    if min(element_bits, block_values) < 1 or scale_bits < 0 or tensor_scale_bits < 0:
        raise ValueError("element_bits and block_values must be positive, scale bits non-negative")
    if tensor_scale_bits and n_elements < 1:
        raise ValueError("a per-tensor scale needs n_elements, the tensor's size, to spread it over")
    return element_bits + scale_bits / block_values + (tensor_scale_bits / n_elements if tensor_scale_bits else 0.0)


def quantized_bytes(rows: int, cols: int, fmt: str) -> int:
    """Bytes of a ``(rows, cols)`` matrix stored row by row in format ``fmt`` (a key of :data:`FORMATS`).

    Raises ``ValueError`` for an unknown format, non-positive sizes, or ``cols`` not a multiple of the block.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {sorted(FORMATS)}")
    if int(rows) != rows or int(cols) != cols or rows < 1 or cols < 1:
        raise ValueError(f"rows and cols must be positive integers, got {rows!r} and {cols!r}")
    block = FORMATS[fmt]
    if cols % block.block_values:
        raise ValueError(f"{fmt} stores rows in blocks of {block.block_values} values; {cols} is not a multiple")
    return int(rows) * (int(cols) // block.block_values) * block.block_bytes


@dataclass(frozen=True)
class GgufTensor:
    """A tensor as llama.cpp names and shapes it: ``rows`` x ``cols`` (``cols`` = ``ne[0]``, the row length that
    blocks divide), ``layer`` (``None`` outside the blocks), ``kind`` (the name without ``blk.N.``)."""

    name: str
    kind: str
    rows: int
    cols: int
    layer: int | None

    @property
    def n_elements(self) -> int:
        return self.rows * self.cols

    @property
    def is_matrix(self) -> bool:
        return self.rows > 1


def gguf_tensors(cfg: ModelConfig) -> list[GgufTensor]:
    """Every tensor of ``cfg`` in a GGUF file, in file order (``llama``, ``gemma`` and ``qwen2`` families).

    1-D tensors (norms, biases) have ``rows = 1``. Raises ``ValueError`` for the ``gpt2`` and ``bert`` families,
    whose llama.cpp layouts are not modelled here. The element count equals ``cfg.total_params`` (tested).
    """
    if cfg.family not in ("llama", "gemma", "qwen2"):
        raise ValueError(f"{cfg.model}: GGUF layouts are modelled for the llama, gemma and qwen2 families only")
    D, F, V = cfg.d_model, cfg.d_ff, cfg.vocab_size
    q, kv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    tensors = [GgufTensor("token_embd.weight", "token_embd", V, D, None)]
    for i in range(cfg.n_layers):

        def add(kind: str, rows: int, cols: int, layer: int = i) -> None:
            tensors.append(GgufTensor(f"blk.{layer}.{kind}", kind, rows, cols, layer))

        add("attn_norm.weight", 1, D)
        if cfg.model in FUSED_QKV_MODELS:
            add("attn_qkv.weight", q + 2 * kv, D)
        else:
            add("attn_q.weight", q, D)
            add("attn_k.weight", kv, D)
            add("attn_v.weight", kv, D)
            if cfg.family == "qwen2":
                add("attn_q.bias", 1, q)
                add("attn_k.bias", 1, kv)
                add("attn_v.bias", 1, kv)
        add("attn_output.weight", D, q)
        add("ffn_norm.weight", 1, D)
        if cfg.model in FUSED_QKV_MODELS:
            add("ffn_up.weight", 2 * F, D)
        else:
            add("ffn_gate.weight", F, D)
            add("ffn_up.weight", F, D)
        add("ffn_down.weight", D, F)
    tensors.append(GgufTensor("output_norm.weight", "output_norm.weight", 1, D, None))
    if not cfg.tied_embeddings:
        tensors.append(GgufTensor("output.weight", "output", V, D, None))
    return tensors


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    """llama.cpp's rule for the layers that get more bits: the first and last eighth, and every third between."""
    eighth = n_layers // 8
    return i_layer < eighth or i_layer >= 7 * n_layers // 8 or (i_layer - eighth) % 3 == 2


def _fits(fmt: str, cols: int) -> str:
    """``fmt``, or its fallback when ``cols`` is not a multiple of its block (then F16 as a last resort)."""
    if cols % FORMATS[fmt].block_values == 0:
        return fmt
    fallback = FALLBACK.get(fmt, "F16")
    return fallback if cols % FORMATS[fallback].block_values == 0 else "F16"


def q4_k_m_tensor_types(cfg: ModelConfig) -> list[tuple[GgufTensor, str]]:
    """``(tensor, format)`` for every tensor of ``cfg`` under llama.cpp's ``Q4_K_M`` mixture (module docstring)."""
    is_70b = cfg.family == "llama" and cfg.n_layers == 80 and cfg.n_kv_heads != cfg.n_heads
    out = []
    for t in gguf_tensors(cfg):
        if not t.is_matrix:
            fmt = "F32"
        elif t.kind == "output" or (t.kind == "token_embd" and cfg.tied_embeddings):
            fmt = "Q6_K" if t.cols % QK_K == 0 else "Q8_0"
        elif t.kind == "attn_v.weight":
            fmt = "Q6_K" if use_more_bits(t.layer, cfg.n_layers) else ("Q5_K" if is_70b else "Q4_K")
        elif t.kind == "ffn_down.weight":
            fmt = "Q6_K" if use_more_bits(t.layer, cfg.n_layers) else "Q4_K"
        elif t.kind == "attn_qkv.weight":
            fmt = "Q5_K"
        else:  # token_embd (untied), attn_q, attn_k, attn_output, ffn_gate, ffn_up
            fmt = "Q4_K"
        out.append((t, _fits(fmt, t.cols)))
    return out


def mixture_bytes(assignment: list[tuple[GgufTensor, str]]) -> dict[str, int]:
    """Bytes per format of a ``(tensor, format)`` list, plus ``"total"``."""
    by_format: Counter[str] = Counter()
    for t, fmt in assignment:
        by_format[fmt] += quantized_bytes(t.rows, t.cols, fmt)
    return {**dict(by_format), "total": sum(by_format.values())}
