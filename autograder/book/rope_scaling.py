"""RoPE frequencies as released models compute them, and the context-extension methods that rescale them.

Every function returns the ``rotary_dim / 2`` inverse frequencies ``inv_freq[i]`` (radians per position) of one head,
float64 ``(rotary_dim // 2,)``; pair ``i`` of a query or key at position ``m`` is rotated by ``m * inv_freq[i]``.
Unscaled RoPE (Su et al. 2021) has ``inv_freq[i] = theta ** (-2i / rotary_dim)``: the exponent runs over the
*rotated head dimension* (``head_dim``, or ``head_dim * partial_rotary_factor``, or DeepSeek's ``qk_rope_head_dim``),
never over ``d_model``, and ``theta`` is each model's ``rope_theta``.

This module is a twin of Hugging Face Transformers' ``modeling_rope_utils.ROPE_INIT_FUNCTIONS`` (version 5.24, pinned
in ``requirements.txt``): ``tests/test_book_rope.py`` builds real configurations with Transformers' own config
classes, offline, and checks every ``rope_type`` here against Transformers' function, frequencies and attention factor
to a relative difference below 1e-6. The methods, each with the ``rope_type`` it implements:

* :func:`inv_freq` [``default``] -- no scaling.
* :func:`position_interpolation` [``linear``] -- Chen et al. 2023: divide every frequency by the factor ``s``.
* :func:`ntk_aware` [no ``rope_type``] -- bloc97 2023, the static rule: raise the base to
  ``theta * s**(d / (d - 2))``, which leaves the fastest pair alone and divides the slowest by ``s``.
* :func:`dynamic_ntk` [``dynamic``] -- emozilla 2023: the NTK-aware base, recomputed for the current sequence length
  ``T``: unchanged up to the trained length ``L`` (``max_position_embeddings``), then raised with the effective factor
  ``f * T / L - (f - 1)`` (1 at ``T = L``, ``f`` only at ``T = (2f - 1) L / f``, growing without bound beyond).
* :func:`yarn` [``yarn``] -- Peng et al. 2023: interpolate only the pairs that turn fewer than ``beta_slow`` times
  over the original context, keep those that turn more than ``beta_fast`` times, ramp linearly between, and multiply
  ``cos``/``sin`` by an attention factor: the config's ``attention_factor``, else ``0.1 ln s + 1``, or with DeepSeek's
  ``mscale``/``mscale_all_dim`` the ratio ``(0.1 mscale ln s + 1) / (0.1 mscale_all_dim ln s + 1)``.
  ``truncate=False`` (gpt-oss) keeps the ramp's ends fractional instead of rounding them to whole pairs.
* :func:`llama3` [``llama3``] -- Llama 3.1: divide the frequencies whose wavelength exceeds
  ``original / low_freq_factor`` by ``s``, keep those shorter than ``original / high_freq_factor``, blend smoothly
  between.
* :func:`longrope` [``longrope``] -- Ding et al. 2024 (Phi-3, Phi-3.5): divide frequency ``i`` by its own searched
  factor, ``short_factor[i]`` while the sequence is at most ``original_max_position_embeddings`` (and at
  construction, when no length is known) and ``long_factor[i]`` beyond it, and multiply ``cos``/``sin`` by the
  config's ``attention_factor``, else ``sqrt(1 + ln(s) / ln(original))`` with ``s`` the config's ``factor`` or, when it
  has none, ``max_position_embeddings / original``.

:func:`rope_parameters` turns a ``config.json`` (as a dict: ``rope_theta`` and ``rope_scaling``, as released models
ship them, or Transformers v5's ``rope_parameters``) into the v5 ``rope_parameters`` form; :func:`init_from_parameters`
computes ``(inv_freq, attention_factor)`` from that form, whatever its ``rope_type``; :func:`config_inv_freq` does both.
Real configurations live in ``data/rope_configs.json`` (:func:`rope_config`); :func:`model_inv_freq` serves a RoPE row
of the course's model table (``autograder.models``). LongRoPE's factor lists are shipped in
``data/longrope_factors.json`` (:func:`longrope_factors`), with their source: they are Phi-3.5-mini-instruct's lists,
which the table's Phi-3-mini (128k) row borrows (same architecture and contexts) because Phi-3-mini-128k's own could
not be retrieved offline; the file and every page that shows them say so.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import numpy as np

from autograder.reference import numpy_ref

__all__ = [
    "inv_freq",
    "position_interpolation",
    "ntk_aware",
    "dynamic_ntk",
    "dynamic_effective_factor",
    "yarn",
    "yarn_mscale",
    "llama3",
    "longrope",
    "longrope_factors",
    "LONGROPE_FACTORS_JSON",
    "ROPE_CONFIGS_JSON",
    "ROPE_TYPES",
    "rope_config",
    "rope_config_names",
    "nope_layer_config",
    "nope_layer_names",
    "rope_layer_mask",
    "rope_parameters",
    "rotary_dim_of",
    "init_from_parameters",
    "config_inv_freq",
    "table_rope_parameters",
    "model_inv_freq",
    "wavelengths",
]

_DATA = Path(__file__).resolve().parents[1] / "data"
LONGROPE_FACTORS_JSON = _DATA / "longrope_factors.json"
ROPE_CONFIGS_JSON = _DATA / "rope_configs.json"
#: the ``rope_type`` values :func:`init_from_parameters` computes (Transformers' ROPE_INIT_FUNCTIONS keys plus default)
ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "longrope", "llama3")
#: a value in ``data/rope_configs.json`` that stands for the list of the same name in ``longrope_factors.json``
_LISTS_MARKER = "longrope_factors.json:"


def _check_dim(rotary_dim: int) -> None:
    if (
        isinstance(rotary_dim, bool)
        or not isinstance(rotary_dim, (int, np.integer))
        or rotary_dim < 2
        or rotary_dim % 2
    ):
        raise ValueError(f"rotary_dim must be an even integer >= 2, got {rotary_dim!r}")


def _check_factor(factor: float) -> None:
    if not factor >= 1:
        raise ValueError(f"the scaling factor must be >= 1 (the new context over the original), got {factor!r}")


def inv_freq(rotary_dim: int, theta: float = 10000.0) -> np.ndarray:
    """Unscaled RoPE: float64 ``(rotary_dim // 2,)`` with ``inv_freq[i] = theta ** (-2i / rotary_dim)``.

    ``ValueError`` for an odd or too small ``rotary_dim`` or a ``theta`` not above 1.
    """
    _check_dim(rotary_dim)
    if not theta > 1:
        raise ValueError(f"theta (rope_theta) must exceed 1, got {theta!r}")
    return float(theta) ** (-np.arange(0, rotary_dim, 2, dtype=np.float64) / rotary_dim)


def wavelengths(freqs: np.ndarray) -> np.ndarray:
    """Positions per full turn of each pair, ``2 pi / inv_freq``."""
    return 2 * math.pi / np.asarray(freqs, dtype=np.float64)


def position_interpolation(rotary_dim: int, theta: float, factor: float) -> np.ndarray:
    """Position interpolation: every frequency divided by ``factor`` (positions squeezed into the trained range)."""
    _check_factor(factor)
    return inv_freq(rotary_dim, theta) / factor


def ntk_aware(rotary_dim: int, theta: float, factor: float) -> np.ndarray:
    """NTK-aware scaling, the static rule: unscaled RoPE with the base raised to ``theta * factor ** (d / (d - 2))``.

    The fastest pair (``i = 0``) keeps its frequency; the slowest (``i = d/2 - 1``) is divided by exactly ``factor``.
    No ``rope_type`` of Transformers computes it at a fixed factor: ``dynamic`` (:func:`dynamic_ntk`) applies the same
    base rule with a factor that follows the sequence length.
    """
    _check_factor(factor)
    _check_dim(rotary_dim)
    if rotary_dim == 2:
        raise ValueError("NTK-aware scaling needs rotary_dim > 2 (its exponent is d / (d - 2))")
    return inv_freq(rotary_dim, theta * factor ** (rotary_dim / (rotary_dim - 2)))


def dynamic_effective_factor(factor: float, max_positions: int, seq_len: int | None) -> float:
    """The factor ``dynamic`` NTK scaling applies for a sequence of ``seq_len`` tokens: ``f * T / L - (f - 1)`` with
    ``T = max(seq_len, L)`` (``seq_len`` None: ``T = L``) and ``L = max_positions``; 1 up to the trained length."""
    _check_factor(factor)
    if max_positions < 1:
        raise ValueError(f"max_positions must be positive, got {max_positions}")
    length = max_positions if seq_len is None else max(int(seq_len), max_positions)
    return factor * length / max_positions - (factor - 1)


def dynamic_ntk(
    rotary_dim: int, theta: float, factor: float, max_positions: int, seq_len: int | None = None
) -> np.ndarray:
    """Dynamic NTK scaling (Transformers' ``dynamic``) for a sequence of ``seq_len`` tokens: the NTK-aware base with
    the factor :func:`dynamic_effective_factor`, so unscaled RoPE up to ``max_positions`` (the trained length) and an
    ever larger base beyond. ``seq_len`` None is the model at construction (``T = max_positions``).

    A model running it recomputes the frequencies as the sequence grows, while the keys already in its KV cache keep
    the rotation they were given with the old frequencies.
    """
    _check_dim(rotary_dim)
    if rotary_dim == 2:
        raise ValueError("dynamic NTK scaling needs rotary_dim > 2 (its exponent is d / (d - 2))")
    effective = dynamic_effective_factor(factor, max_positions, seq_len)
    return inv_freq(rotary_dim, theta * effective ** (rotary_dim / (rotary_dim - 2)))


def yarn_mscale(factor: float, mscale: float = 1.0) -> float:
    """YaRN's temperature term ``0.1 * mscale * ln(factor) + 1`` (1 for ``factor <= 1``)."""
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def yarn(
    rotary_dim: int,
    theta: float,
    factor: float,
    original_max_positions: int,
    *,
    beta_fast: float | None = 32.0,
    beta_slow: float | None = 1.0,
    attention_factor: float | None = None,
    mscale: float | None = None,
    mscale_all_dim: float | None = None,
    truncate: bool = True,
) -> tuple[np.ndarray, float]:
    """YaRN ("NTK-by-parts" frequencies plus an attention temperature): ``(inv_freq, attention_factor)``.

    A pair that turns ``r = original_max_positions / wavelength`` times over the original context is kept when
    ``r > beta_fast``, interpolated (divided by ``factor``) when ``r < beta_slow``, and blended linearly between. The
    ramp runs between the fractional pair indices where ``r`` equals ``beta_fast`` and ``beta_slow``, rounded outwards
    to whole indices unless ``truncate`` is False, clipped to ``[0, rotary_dim - 1]`` (Transformers' bound).
    ``beta_fast`` / ``beta_slow`` None (or 0) mean the defaults 32 and 1, as in Transformers.

    The attention factor multiplies ``cos`` and ``sin`` (so the logits grow by its square): ``attention_factor`` when
    given; else, when both ``mscale`` and ``mscale_all_dim`` are set (DeepSeek),
    ``yarn_mscale(factor, mscale) / yarn_mscale(factor, mscale_all_dim)``; else ``yarn_mscale(factor)``.
    """
    _check_factor(factor)
    _check_dim(rotary_dim)
    beta_fast, beta_slow = beta_fast or 32.0, beta_slow or 1.0
    if attention_factor is None:
        if mscale and mscale_all_dim:
            attention_factor = yarn_mscale(factor, mscale) / yarn_mscale(factor, mscale_all_dim)
        else:
            attention_factor = yarn_mscale(factor)
    base = inv_freq(rotary_dim, theta)

    def correction_dim(rotations: float) -> float:  # the (fractional) pair index that turns `rotations` times
        return rotary_dim * math.log(original_max_positions / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, rotary_dim - 1)
    if low == high:
        high += 0.001  # Transformers' guard against a zero-width ramp
    ramp = np.clip((np.arange(rotary_dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
    keep = 1 - ramp  # 1: keep the original frequency, 0: interpolate
    freqs = base / factor * (1 - keep) + base * keep
    return freqs, float(attention_factor)


def llama3(
    rotary_dim: int,
    theta: float,
    factor: float,
    original_max_positions: int,
    low_freq_factor: float,
    high_freq_factor: float,
) -> np.ndarray:
    """Llama 3.1's ``llama3`` scaling: long wavelengths divided by ``factor``, short ones kept, a smooth blend between.

    The positional-encodings assignment grades this function, so it lives in the reference
    (``numpy_ref.llama3_inv_freq``, where its formula is documented) and is called from here.
    """
    return numpy_ref.llama3_inv_freq(
        rotary_dim, theta, factor, original_max_positions, low_freq_factor, high_freq_factor
    )


def longrope(
    rotary_dim: int,
    theta: float,
    short_factor,
    long_factor,
    original_max_positions: int,
    *,
    seq_len: int | None = None,
    factor: float | None = None,
    max_positions: int | None = None,
    attention_factor: float | None = None,
) -> tuple[np.ndarray, float]:
    """LongRoPE: ``(inv_freq / factors, attention_factor)``, with the ``long_factor`` list when ``seq_len`` exceeds
    ``original_max_positions`` and the ``short_factor`` list otherwise, including ``seq_len`` None (what a model
    computes at construction, before it has seen a sequence; it switches lists in its forward pass).

    The attention factor multiplies ``cos`` and ``sin`` at every length: ``attention_factor`` when given, else
    ``sqrt(1 + ln(s) / ln(original_max_positions))`` (1 when ``s <= 1``), with ``s = factor`` when given and
    ``max_positions / original_max_positions`` otherwise. ``ValueError`` when a list does not hold one factor per
    pair, for a non-positive ``seq_len``, or when neither ``factor`` nor ``max_positions`` is given.
    """
    base = inv_freq(rotary_dim, theta)
    short, long = np.asarray(short_factor, np.float64), np.asarray(long_factor, np.float64)
    for name, factors in (("short_factor", short), ("long_factor", long)):
        if factors.shape != base.shape:
            raise ValueError(f"{name} must hold one factor per pair, {base.shape[0]}, got {factors.shape}")
    if seq_len is not None and seq_len < 1:
        raise ValueError(f"seq_len must be positive, got {seq_len}")
    if factor is None:
        if max_positions is None:
            raise ValueError("longrope needs factor or max_positions (the context over the original)")
        factor = max_positions / original_max_positions
    if attention_factor is None:
        attention_factor = 1.0 if factor <= 1 else math.sqrt(1 + math.log(factor) / math.log(original_max_positions))
    factors = long if seq_len is not None and seq_len > original_max_positions else short
    return base / factors, float(attention_factor)


@cache
def _json_file(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def longrope_factors(model: str) -> dict:
    """The shipped LongRoPE lists for ``model``, a model of the file or a row of the model table:
    ``{"short_factor": [...], "long_factor": [...], "source": str, "model": str}``, plus ``"note"`` when a table
    row borrows another model's lists (the file says why). ``KeyError`` naming what the file holds.
    """
    data = _json_file(str(LONGROPE_FACTORS_JSON))
    note = None
    if model in data["table_rows"]:
        row = data["table_rows"][model]
        model, note = row["lists"], row["note"]
    if model not in data["models"]:
        raise KeyError(
            f"no LongRoPE factors for {model!r} in {LONGROPE_FACTORS_JSON.name}; it holds "
            f"{sorted(data['models'])} and the table rows {sorted(data['table_rows'])}"
        )
    out = dict(data["models"][model], model=model)
    if note:
        out["note"] = note
    return out


def rope_config_names() -> list[str]:
    """The models of ``data/rope_configs.json``, in file order."""
    return list(_json_file(str(ROPE_CONFIGS_JSON))["models"])


def rope_config(name: str) -> dict:
    """One model of ``data/rope_configs.json``: ``{"config_class": str, "config": dict, "source": str, ...}``, where
    ``config`` holds the fields of the model's ``config.json`` that RoPE reads (LongRoPE lists filled in from
    ``longrope_factors.json``). A fresh copy: changing it changes nothing else. ``KeyError`` listing the names.
    """
    models = _json_file(str(ROPE_CONFIGS_JSON))["models"]
    if name not in models:
        raise KeyError(f"no model {name!r} in {ROPE_CONFIGS_JSON.name}; it holds {list(models)}")
    entry = copy.deepcopy(models[name])
    scaling = entry["config"].get("rope_scaling") or {}
    for key, value in scaling.items():
        if isinstance(value, str) and value.startswith(_LISTS_MARKER):
            scaling[key] = longrope_factors(value[len(_LISTS_MARKER) :])[key]
    return entry


def nope_layer_names() -> list[str]:
    """The models of ``data/rope_configs.json``'s ``nope_layers`` section (attention layers without RoPE)."""
    return list(_json_file(str(ROPE_CONFIGS_JSON))["nope_layers"])


def nope_layer_config(name: str) -> dict:
    """One model of the ``nope_layers`` section: ``{"config_class", "config": {"num_hidden_layers",
    "no_rope_layer_interval"}, "source"}`` (a fresh copy). ``KeyError`` listing the names."""
    models = _json_file(str(ROPE_CONFIGS_JSON))["nope_layers"]
    if name not in models:
        raise KeyError(f"no model {name!r} in the nope_layers of {ROPE_CONFIGS_JSON.name}; it holds {list(models)}")
    return copy.deepcopy(models[name])


def rope_layer_mask(n_layers: int, interval: int) -> list[int]:
    """Which of ``n_layers`` layers rotate queries and keys (1) and which use no positions at all (0), with a NoPE
    layer every ``interval`` layers: layer ``i`` is NoPE when ``(i + 1) % interval == 0`` (Transformers'
    ``no_rope_layers`` for SmolLM3 and Llama 4). ``ValueError`` for non-positive sizes."""
    if n_layers < 1 or interval < 1:
        raise ValueError(f"n_layers and interval must be positive, got {n_layers} and {interval}")
    return [int((i + 1) % interval != 0) for i in range(n_layers)]


def rope_parameters(config: Mapping) -> dict:
    """Transformers v5's ``rope_parameters`` for a ``config.json`` given as a dict: a flat
    ``{"rope_type", "rope_theta", ...}``, or, for a model with two kinds of layers (Gemma 3's ``rope_local_base_freq``),
    ``{"sliding_attention": {...}, "full_attention": {...}}``.

    Reads ``rope_parameters`` when the config has it (v5), else ``rope_theta`` (default 10,000) and ``rope_scaling``
    (its ``type`` or ``rope_type``; none: ``default``); carries ``partial_rotary_factor`` and, for ``llama3``,
    ``yarn`` and ``longrope``, ``original_max_position_embeddings`` (a top-level one, as in Phi-3, wins; none: the
    config's ``max_position_embeddings``). The input is not modified.
    """
    if config.get("rope_parameters"):
        params = copy.deepcopy(dict(config["rope_parameters"]))
        if "rope_type" in params or "rope_theta" in params:
            params.setdefault("rope_type", "default")
        return params
    scaling = dict(config.get("rope_scaling") or {})
    rope_type = scaling.pop("rope_type", None) or scaling.pop("type", None) or "default"
    scaling.pop("type", None)
    params = {"rope_type": rope_type, "rope_theta": float(config.get("rope_theta", 10000.0)), **scaling}
    if config.get("partial_rotary_factor") is not None:
        params["partial_rotary_factor"] = config["partial_rotary_factor"]
    if rope_type in ("llama3", "yarn", "longrope"):
        if config.get("original_max_position_embeddings") is not None:
            params["original_max_position_embeddings"] = config["original_max_position_embeddings"]
        else:
            params.setdefault("original_max_position_embeddings", config["max_position_embeddings"])
    if config.get("rope_local_base_freq") is not None:
        local = {"rope_type": "default", "rope_theta": float(config["rope_local_base_freq"])}
        return {"sliding_attention": local, "full_attention": params}
    return params


def rotary_dim_of(config: Mapping, partial_rotary_factor: float = 1.0) -> int:
    """Dimensions of each head that RoPE rotates: ``qk_rope_head_dim`` (DeepSeek's decoupled RoPE part) when the
    config has one, else ``head_dim`` (else ``hidden_size // num_attention_heads``), times ``partial_rotary_factor``."""
    head_dim = (
        config.get("qk_rope_head_dim")
        or config.get("head_dim")
        or config["hidden_size"] // config["num_attention_heads"]
    )
    return int(head_dim * partial_rotary_factor)


def init_from_parameters(
    params: Mapping, head_dim: int, max_positions: int, seq_len: int | None = None
) -> tuple[np.ndarray, float]:
    """``(inv_freq, attention_factor)`` for one flat ``rope_parameters`` dict (see :func:`rope_parameters`), for heads
    of ``head_dim`` dimensions (before ``partial_rotary_factor``), a config whose ``max_position_embeddings`` is
    ``max_positions``, and a sequence of ``seq_len`` tokens (None: at construction; only ``dynamic`` and
    ``longrope`` depend on it). ``ValueError`` for an unknown ``rope_type`` or a nested dict.
    """
    rope_type = params.get("rope_type", "default")
    if rope_type not in ROPE_TYPES:
        raise ValueError(
            f"unknown rope_type {rope_type!r} (keys {sorted(params)}); expected one of {ROPE_TYPES}, "
            "or pass one layer type's entry of a nested rope_parameters"
        )
    dim = int(head_dim * params.get("partial_rotary_factor", 1.0))
    theta = params["rope_theta"]
    if rope_type == "default":
        return inv_freq(dim, theta), 1.0
    if rope_type == "linear":
        return position_interpolation(dim, theta, params["factor"]), 1.0
    if rope_type == "dynamic":
        return dynamic_ntk(dim, theta, params["factor"], max_positions, seq_len), 1.0
    original = params["original_max_position_embeddings"]
    if rope_type == "llama3":
        freqs = llama3(dim, theta, params["factor"], original, params["low_freq_factor"], params["high_freq_factor"])
        return freqs, 1.0
    if rope_type == "yarn":
        factor = params.get("factor")
        return yarn(
            dim,
            theta,
            max_positions / original if factor is None else factor,
            original,
            beta_fast=params.get("beta_fast"),
            beta_slow=params.get("beta_slow"),
            attention_factor=params.get("attention_factor"),
            mscale=params.get("mscale"),
            mscale_all_dim=params.get("mscale_all_dim"),
            truncate=params.get("truncate", True),
        )
    return longrope(
        dim,
        theta,
        params["short_factor"],
        params["long_factor"],
        original,
        seq_len=seq_len,
        factor=params.get("factor"),
        max_positions=max_positions,
        attention_factor=params.get("attention_factor"),
    )


def config_inv_freq(
    config: Mapping, seq_len: int | None = None, layer_type: str | None = None
) -> tuple[np.ndarray, float]:
    """``(inv_freq, attention_factor)`` of a ``config.json`` given as a dict (see :func:`rope_parameters`), for a
    sequence of ``seq_len`` tokens; ``layer_type`` picks one entry of a nested ``rope_parameters`` (Gemma 3:
    ``"sliding_attention"`` or ``"full_attention"``). ``ValueError`` when a nested config gets no ``layer_type``.
    """
    params = rope_parameters(config)
    if "rope_theta" not in params:
        if layer_type not in params:
            raise ValueError(f"this config has one RoPE per layer type; pass layer_type, one of {sorted(params)}")
        params = params[layer_type]
    return init_from_parameters(params, rotary_dim_of(config), config["max_position_embeddings"], seq_len)


def table_rope_parameters(cfg) -> dict:
    """The v5 ``rope_parameters`` of a RoPE row of the model table (LongRoPE lists from ``longrope_factors.json``).

    ``ValueError`` for a model with learned positions.
    """
    if cfg.position_encoding != "rope":
        raise ValueError(f"{cfg.model} has {cfg.position_encoding} positions, not RoPE")
    params: dict = {"rope_type": "default" if cfg.rope_scaling == "none" else cfg.rope_scaling}
    params["rope_theta"] = cfg.rope_theta
    if cfg.partial_rotary_factor != 1.0:
        params["partial_rotary_factor"] = cfg.partial_rotary_factor
    if cfg.rope_scaling == "llama3":
        params.update(
            factor=cfg.rope_factor,
            low_freq_factor=cfg.rope_low_freq_factor,
            high_freq_factor=cfg.rope_high_freq_factor,
            original_max_position_embeddings=cfg.rope_original_max_positions,
        )
    elif cfg.rope_scaling == "longrope":
        lists = longrope_factors(cfg.model)
        params.update(
            short_factor=lists["short_factor"],
            long_factor=lists["long_factor"],
            original_max_position_embeddings=cfg.rope_original_max_positions,
        )
    return params


def model_inv_freq(cfg, seq_len: int | None = None) -> tuple[np.ndarray, float]:
    """``(inv_freq, attention_factor)`` of a RoPE row of the model table, as the model computes them for a sequence
    of ``seq_len`` tokens (None: at construction, which for LongRoPE means the short list, as in Transformers).

    ``ValueError`` for a model with learned positions.
    """
    return init_from_parameters(table_rope_parameters(cfg), cfg.head_dim, cfg.max_positions, seq_len)
