"""Real model configurations (``data/model_configs.csv``) and their parameter counts, computed from the architecture.

Each row of the table holds a published model's shape (from its Hugging Face ``config.json`` or paper) and its
published parameter count. :func:`parameter_breakdown` rebuilds that count from the shape alone, weight matrix by
weight matrix, for five architecture families:

``gpt2``
    learned token and position tables, pre-LayerNorm blocks with biased fused ``qkv``, output projection and a
    ``D -> d_ff -> D`` MLP, final LayerNorm; the LM head is tied to the token table (GPT-2, GPT-3).
``bert``
    token, position and 2-row token-type tables with a LayerNorm, post-LayerNorm blocks with biased ``q, k, v, o``
    and MLP, and the ``D x D`` pooler (``BertModel``: an encoder, no output table).
``llama``
    RMSNorm blocks without biases, grouped-query attention (``n_kv_heads`` key/value heads of ``head_dim``) and a
    gated MLP (``gate``, ``up``: ``D x d_ff``; ``down``: ``d_ff x D``); RoPE, so no position table; the output
    table is tied or not (Llama, Mistral, Phi-3).
``gemma``
    the ``llama`` layout with ``head_dim`` set independently of ``D / n_heads`` (Gemma 7B: 16 x 256 > 3072).
``qwen2``
    the ``llama`` layout plus biases on the ``q``, ``k`` and ``v`` projections.

RoPE rows also carry their rotary settings, from the same ``config.json``: ``rope_theta`` (the base of the
frequencies ``rope_theta ** (-2i / head_dim)``), ``rope_scaling`` (``"none"``, ``"llama3"`` or ``"longrope"``: the
``rope_scaling`` entry's type), its ``rope_factor`` and ``rope_original_max_positions`` (the context the frequencies
were trained for before extension), Llama 3's ``rope_low_freq_factor`` / ``rope_high_freq_factor``, and
``partial_rotary_factor`` (the share of each head's dimensions that is rotated; 1.0 when the config has no such
field). Learned-position rows leave these fields empty (``None``). LongRoPE's per-frequency factor lists are too
long for a column: ``autograder.book.rope_scaling`` ships them in ``data/longrope_factors.json``.

``tests/test_models.py`` asserts that the computed total equals ``reported_params`` for every row (GPT-3's
175.0B is the paper's rounded figure: within 0.5% there). A typo in any of a row's numbers breaks that equality,
which is how the table was verified.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = [
    "ModelConfig",
    "FAMILIES",
    "CONFIGS_CSV",
    "load_model_configs",
    "get_model",
    "parameter_breakdown",
    "total_parameters",
    "embedding_parameters",
    "ROUNDED_REPORTS",
]

CONFIGS_CSV = Path(__file__).with_name("data") / "model_configs.csv"
FAMILIES = ("gpt2", "bert", "llama", "gemma", "qwen2")
#: rows whose ``reported_params`` is a rounded published figure, with the relative tolerance it allows
ROUNDED_REPORTS = {"GPT-3 175B": 0.005}

_INT_FIELDS = (
    "vocab_size",
    "d_model",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "head_dim",
    "d_ff",
    "max_positions",
    "reported_params",
)
_ROPE_FLOAT_FIELDS = (
    "rope_theta",
    "rope_factor",
    "rope_low_freq_factor",
    "rope_high_freq_factor",
    "partial_rotary_factor",
)
#: the ``rope_scaling`` types the table uses, and the fields each one requires
ROPE_SCALINGS = {
    "none": ("rope_theta", "partial_rotary_factor"),
    "llama3": (
        "rope_theta",
        "partial_rotary_factor",
        "rope_factor",
        "rope_original_max_positions",
        "rope_low_freq_factor",
        "rope_high_freq_factor",
    ),
    "longrope": ("rope_theta", "partial_rotary_factor", "rope_factor", "rope_original_max_positions"),
}
_BERT_TOKEN_TYPES = 2  # type_vocab_size in every BERT config.json


@dataclass(frozen=True)
class ModelConfig:
    """One published model: its shape, its reported parameter count and where both come from.

    ``head_dim`` is the width of one attention head (``D / n_heads`` except for Gemma); ``d_ff`` the MLP's hidden
    width; ``max_positions`` the rows of a learned position table (for RoPE models it is the context length and
    enters no count); ``tied_embeddings`` says the output projection reuses the token table (for BERT: there is
    no output table).
    """

    model: str
    family: str
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    max_positions: int
    position_encoding: str
    tied_embeddings: bool
    reported_params: int
    source: str
    rope_theta: float | None = None
    rope_scaling: str | None = None
    rope_factor: float | None = None
    rope_original_max_positions: int | None = None
    rope_low_freq_factor: float | None = None
    rope_high_freq_factor: float | None = None
    partial_rotary_factor: float | None = None

    @property
    def rotary_dim(self) -> int | None:
        """Dimensions of each head that RoPE rotates: ``head_dim * partial_rotary_factor`` (``None`` without RoPE)."""
        if self.partial_rotary_factor is None:
            return None
        return int(self.head_dim * self.partial_rotary_factor)

    @property
    def total_params(self) -> int:
        """Parameters computed from the architecture (see :func:`parameter_breakdown`)."""
        return total_parameters(self)

    @property
    def token_embedding_params(self) -> int:
        """``V * D``: the input table."""
        return self.vocab_size * self.d_model

    @property
    def embedding_params(self) -> int:
        """Parameters in vocabulary tables: ``V * D`` when tied, ``2 * V * D`` with a separate output table."""
        return embedding_parameters(self)


def _parse_row(row: dict[str, str], line: int) -> ModelConfig:
    try:
        values: dict[str, object] = {k: int(row[k]) for k in _INT_FIELDS}
    except (KeyError, ValueError) as exc:
        raise ValueError(
            f"{CONFIGS_CSV.name} line {line}: bad or missing integer field ({exc}); "
            f"fix the row so every one of {_INT_FIELDS} is a whole number"
        ) from None
    tied = row.get("tied_embeddings", "").strip().lower()
    if tied not in ("true", "false"):
        raise ValueError(f"{CONFIGS_CSV.name} line {line}: tied_embeddings must be true or false, got {tied!r}")
    if row["family"] not in FAMILIES:
        raise ValueError(
            f"{CONFIGS_CSV.name} line {line}: unknown family {row['family']!r}; expected one of {FAMILIES}"
        )
    if row["position_encoding"] not in ("learned", "rope"):
        raise ValueError(
            f"{CONFIGS_CSV.name} line {line}: position_encoding must be learned or rope, "
            f"got {row['position_encoding']!r}"
        )
    bad = [k for k in _INT_FIELDS if values[k] <= 0]
    if bad:
        raise ValueError(f"{CONFIGS_CSV.name} line {line}: fields {bad} must be positive")
    if values["n_heads"] % values["n_kv_heads"]:
        raise ValueError(f"{CONFIGS_CSV.name} line {line}: n_heads must be a multiple of n_kv_heads")
    values.update(_parse_rope(row, line, values["head_dim"]))
    return ModelConfig(
        model=row["model"],
        family=row["family"],
        position_encoding=row["position_encoding"],
        tied_embeddings=tied == "true",
        source=row["source"],
        **values,
    )


def _parse_rope(row: dict[str, str], line: int, head_dim: int) -> dict[str, object]:
    """The RoPE fields of one row: all empty for learned positions; for RoPE, the ones its scaling type needs."""
    fields = _ROPE_FLOAT_FIELDS + ("rope_scaling", "rope_original_max_positions")
    raw = {k: (row.get(k) or "").strip() for k in fields}
    if row["position_encoding"] == "learned":
        filled = [k for k, v in raw.items() if v]
        if filled:
            raise ValueError(f"{CONFIGS_CSV.name} line {line}: learned positions take no RoPE fields, got {filled}")
        return {}
    scaling = raw["rope_scaling"]
    if scaling not in ROPE_SCALINGS:
        raise ValueError(
            f"{CONFIGS_CSV.name} line {line}: rope_scaling must be one of {tuple(ROPE_SCALINGS)}, got {scaling!r}"
        )
    missing = [k for k in ROPE_SCALINGS[scaling] if not raw[k]]
    extra = [k for k in fields if raw[k] and k != "rope_scaling" and k not in ROPE_SCALINGS[scaling]]
    if missing or extra:
        raise ValueError(
            f"{CONFIGS_CSV.name} line {line}: rope_scaling {scaling} needs {list(ROPE_SCALINGS[scaling])}"
            f" (missing {missing}, unexpected {extra})"
        )
    out: dict[str, object] = {"rope_scaling": scaling}
    try:
        for k in _ROPE_FLOAT_FIELDS:
            out[k] = float(raw[k]) if raw[k] else None
        out["rope_original_max_positions"] = (
            int(raw["rope_original_max_positions"]) if raw["rope_original_max_positions"] else None
        )
    except ValueError as exc:
        raise ValueError(f"{CONFIGS_CSV.name} line {line}: bad RoPE number ({exc})") from None
    if out["rope_theta"] <= 1:
        raise ValueError(f"{CONFIGS_CSV.name} line {line}: rope_theta must exceed 1, got {out['rope_theta']}")
    rotary = head_dim * out["partial_rotary_factor"]
    if not 0 < out["partial_rotary_factor"] <= 1 or rotary != int(rotary) or int(rotary) % 2:
        raise ValueError(
            f"{CONFIGS_CSV.name} line {line}: partial_rotary_factor must be in (0, 1] and rotate an even "
            f"number of the {head_dim} head dimensions, got {out['partial_rotary_factor']}"
        )
    return out


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[ModelConfig, ...]:
    with open(path, newline="", encoding="utf-8") as f:
        return tuple(_parse_row(row, line) for line, row in enumerate(csv.DictReader(f), start=2))


def load_model_configs(path: str | Path | None = None) -> list[ModelConfig]:
    """All rows of the model table (default: the package's ``data/model_configs.csv``), in file order.

    Raises ``ValueError`` naming the line of a malformed row.
    """
    return list(_load(str(path or CONFIGS_CSV)))


def get_model(name: str) -> ModelConfig:
    """The row whose ``model`` is ``name``; ``KeyError`` listing the known names otherwise."""
    for cfg in load_model_configs():
        if cfg.model == name:
            return cfg
    raise KeyError(f"no model {name!r} in {CONFIGS_CSV.name}; known: {[c.model for c in load_model_configs()]}")


def _linear(n_in: int, n_out: int, bias: bool) -> int:
    """Parameters of a ``n_in -> n_out`` linear layer: the ``(n_out, n_in)`` weight and an optional bias."""
    return n_in * n_out + (n_out if bias else 0)


def parameter_breakdown(cfg: ModelConfig) -> dict[str, int]:
    """Parameters of ``cfg`` by part: ``token_embedding``, ``position_embedding``, ``output_embedding`` (0 when
    tied), ``attention``, ``mlp``, ``norms`` and ``other`` (BERT's token-type table and pooler), summed over layers.
    """
    V, D, L, F = cfg.vocab_size, cfg.d_model, cfg.n_layers, cfg.d_ff
    q_width, kv_width = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    parts = {
        "token_embedding": V * D,
        "position_embedding": 0,
        "output_embedding": 0,
        "attention": 0,
        "mlp": 0,
        "norms": 0,
        "other": 0,
    }
    if cfg.family == "gpt2":
        # c_attn: D -> 3D with bias (q, k, v fused), c_proj: D -> D; mlp c_fc: D -> F, c_proj: F -> D;
        # ln_1, ln_2 per layer and ln_f at the end: weight and bias of D each
        parts["position_embedding"] = cfg.max_positions * D
        parts["attention"] = L * (_linear(D, 3 * q_width, True) + _linear(q_width, D, True))
        parts["mlp"] = L * (_linear(D, F, True) + _linear(F, D, True))
        parts["norms"] = L * 2 * (2 * D) + 2 * D
    elif cfg.family == "bert":
        # embeddings: word, position, token type, then LayerNorm; per layer q, k, v, o with biases, LayerNorm after
        # attention and after the MLP; pooler: D -> D with bias
        parts["position_embedding"] = cfg.max_positions * D
        parts["attention"] = L * (3 * _linear(D, q_width, True) + _linear(q_width, D, True))
        parts["mlp"] = L * (_linear(D, F, True) + _linear(F, D, True))
        parts["norms"] = 2 * D + L * 2 * (2 * D)
        parts["other"] = _BERT_TOKEN_TYPES * D + _linear(D, D, True)
    else:  # llama, gemma, qwen2: RMSNorm (weight only), no biases except qwen2's q, k, v
        qkv_bias = cfg.family == "qwen2"
        parts["attention"] = L * (
            _linear(D, q_width, qkv_bias) + 2 * _linear(D, kv_width, qkv_bias) + _linear(q_width, D, False)
        )
        parts["mlp"] = L * (2 * _linear(D, F, False) + _linear(F, D, False))  # gate, up, down
        parts["norms"] = L * 2 * D + D
    parts["output_embedding"] = 0 if cfg.tied_embeddings else V * D
    return parts


def total_parameters(cfg: ModelConfig) -> int:
    """All parameters of ``cfg``, counted once (a tied output table adds nothing)."""
    return sum(parameter_breakdown(cfg).values())


def embedding_parameters(cfg: ModelConfig) -> int:
    """Parameters in ``cfg``'s vocabulary tables: the ``V x D`` token table, plus a second ``V x D`` output table
    when the embeddings are untied. Position tables are not included."""
    parts = parameter_breakdown(cfg)
    return parts["token_embedding"] + parts["output_embedding"]
