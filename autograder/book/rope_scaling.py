"""RoPE frequencies as released models compute them, and the context-extension methods that rescale them.

Every function returns the ``rotary_dim / 2`` inverse frequencies ``inv_freq[i]`` (radians per position) of one head,
float64 ``(rotary_dim // 2,)``; pair ``i`` of a query or key at position ``m`` is rotated by ``m * inv_freq[i]``.
Unscaled RoPE (Su et al. 2021) has ``inv_freq[i] = theta ** (-2i / rotary_dim)``: the exponent runs over the
*rotated head dimension* (``head_dim``, or ``head_dim * partial_rotary_factor``), never over ``d_model``, and
``theta`` is each model's ``rope_theta``.

The context-extension methods, each written as Hugging Face Transformers' ``modeling_rope_utils`` computes it for
the ``rope_scaling`` type named in brackets:

* :func:`position_interpolation` [``linear``] -- Chen et al. 2023: divide every frequency by the factor ``s``.
* :func:`ntk_aware` [the static form of ``dynamic``] -- bloc97 2023: raise the base to ``theta * s**(d / (d - 2))``,
  which leaves the fastest pair alone and divides the slowest by ``s``.
* :func:`yarn` [``yarn``] -- Peng et al. 2023: interpolate only the pairs that turn fewer than ``beta_slow`` times
  over the original context, keep those that turn more than ``beta_fast`` times, ramp linearly between, and scale
  the attention logits by ``(0.1 ln s + 1) ** 2`` (returned as the factor on ``cos``/``sin``, ``0.1 ln s + 1``).
* :func:`llama3` [``llama3``] -- Llama 3.1: divide the frequencies whose wavelength exceeds
  ``original / low_freq_factor`` by ``s``, keep those shorter than ``original / high_freq_factor``, blend smoothly
  between.
* :func:`longrope` [``longrope``] -- Ding et al. 2024 (Phi-3): divide frequency ``i`` by its own searched factor,
  ``short_factor[i]`` up to the original context and ``long_factor[i]`` beyond it, and scale ``cos``/``sin`` by
  ``sqrt(1 + ln(s) / ln(original))``.

:func:`model_inv_freq` applies whichever of these a row of the course's model table (``autograder.models``) names.
LongRoPE's factor lists are shipped in ``data/longrope_factors.json`` (:func:`longrope_factors`), with their source:
the table's Phi-3-mini (128k) row uses Phi-3.5-mini-instruct's lists (same architecture and contexts), because
Phi-3-mini-128k's own could not be retrieved offline; the file and every page that shows them say so.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import numpy as np

from autograder.reference import numpy_ref

__all__ = [
    "inv_freq",
    "position_interpolation",
    "ntk_aware",
    "yarn",
    "llama3",
    "longrope",
    "longrope_factors",
    "LONGROPE_FACTORS_JSON",
    "model_inv_freq",
    "wavelengths",
]

LONGROPE_FACTORS_JSON = Path(__file__).resolve().parents[1] / "data" / "longrope_factors.json"


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
    """NTK-aware scaling: unscaled RoPE with the base raised to ``theta * factor ** (d / (d - 2))``.

    The fastest pair (``i = 0``) keeps its frequency; the slowest (``i = d/2 - 1``) is divided by exactly ``factor``.
    """
    _check_factor(factor)
    _check_dim(rotary_dim)
    if rotary_dim == 2:
        raise ValueError("NTK-aware scaling needs rotary_dim > 2 (its exponent is d / (d - 2))")
    return inv_freq(rotary_dim, theta * factor ** (rotary_dim / (rotary_dim - 2)))


def yarn(
    rotary_dim: int,
    theta: float,
    factor: float,
    original_max_positions: int,
    *,
    beta_fast: float = 32.0,
    beta_slow: float = 1.0,
) -> tuple[np.ndarray, float]:
    """YaRN ("NTK-by-parts" frequencies plus an attention temperature): ``(inv_freq, attention_factor)``.

    A pair that turns ``r = original_max_positions / wavelength`` times over the original context is kept when
    ``r > beta_fast``, interpolated (divided by ``factor``) when ``r < beta_slow``, and blended linearly between, with
    the boundaries rounded to whole pair indices as Transformers does. ``attention_factor = 0.1 ln(factor) + 1``
    multiplies ``cos`` and ``sin``, so the logits grow by its square.
    """
    _check_factor(factor)
    base = inv_freq(rotary_dim, theta)

    def correction_dim(rotations: float) -> float:  # the (fractional) pair index that turns `rotations` times
        return rotary_dim * math.log(original_max_positions / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low = max(math.floor(correction_dim(beta_fast)), 0)
    high = min(math.ceil(correction_dim(beta_slow)), rotary_dim - 1)
    if low == high:
        high += 0.001  # Transformers' guard against a zero-width ramp
    ramp = np.clip((np.arange(rotary_dim // 2, dtype=np.float64) - low) / (high - low), 0, 1)
    keep = 1 - ramp  # 1: keep the original frequency, 0: interpolate
    freqs = base / factor * (1 - keep) + base * keep
    return freqs, 0.1 * math.log(factor) + 1.0


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
    max_positions: int,
    original_max_positions: int,
    seq_len: int,
) -> tuple[np.ndarray, float]:
    """LongRoPE: ``(inv_freq / factors, attention_factor)`` with the ``short_factor`` list while ``seq_len`` is at
    most ``original_max_positions`` and the ``long_factor`` list beyond it.

    ``attention_factor = sqrt(1 + ln(s) / ln(original_max_positions))``, ``s = max_positions /
    original_max_positions`` (1 when ``s <= 1``), multiplies ``cos`` and ``sin`` at every length.
    ``ValueError`` when a list does not hold one factor per pair.
    """
    base = inv_freq(rotary_dim, theta)
    short, long = np.asarray(short_factor, np.float64), np.asarray(long_factor, np.float64)
    for name, factors in (("short_factor", short), ("long_factor", long)):
        if factors.shape != base.shape:
            raise ValueError(f"{name} must hold one factor per pair, {base.shape[0]}, got {factors.shape}")
    if seq_len < 1:
        raise ValueError(f"seq_len must be positive, got {seq_len}")
    factors = long if seq_len > original_max_positions else short
    scale = max_positions / original_max_positions
    attention = 1.0 if scale <= 1 else math.sqrt(1 + math.log(scale) / math.log(original_max_positions))
    return base / factors, attention


@cache
def _factors_file(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def longrope_factors(model: str) -> dict:
    """The shipped LongRoPE lists for ``model``, a model of the file or a row of the model table:
    ``{"short_factor": [...], "long_factor": [...], "source": str, "model": str}``, plus ``"note"`` when a table
    row borrows another model's lists (the file says why). ``KeyError`` naming what the file holds.
    """
    data = _factors_file(str(LONGROPE_FACTORS_JSON))
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


def model_inv_freq(cfg, seq_len: int | None = None) -> tuple[np.ndarray, float]:
    """``(inv_freq, attention_factor)`` of a RoPE row of the model table, as the model computes them for a sequence
    of ``seq_len`` tokens (default: its full context ``max_positions``; only LongRoPE depends on it).

    ``ValueError`` for a model with learned positions.
    """
    if cfg.position_encoding != "rope":
        raise ValueError(f"{cfg.model} has {cfg.position_encoding} positions, not RoPE")
    dim, theta = cfg.rotary_dim, cfg.rope_theta
    if cfg.rope_scaling == "none":
        return inv_freq(dim, theta), 1.0
    if cfg.rope_scaling == "llama3":
        return llama3(
            dim,
            theta,
            cfg.rope_factor,
            cfg.rope_original_max_positions,
            cfg.rope_low_freq_factor,
            cfg.rope_high_freq_factor,
        ), 1.0
    if cfg.rope_scaling == "longrope":
        lists = longrope_factors(cfg.model)
        return longrope(
            dim,
            theta,
            lists["short_factor"],
            lists["long_factor"],
            cfg.max_positions,
            cfg.rope_original_max_positions,
            cfg.max_positions if seq_len is None else seq_len,
        )
    raise ValueError(f"{cfg.model}: unknown rope_scaling {cfg.rope_scaling!r}")
