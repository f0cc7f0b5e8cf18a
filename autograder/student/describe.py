"""One-line phrases for inputs and results, shared by the probes (case labels) and the judges (messages)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .transport import Raised, Unsupported

__all__ = ["describe", "show_array", "one_line"]


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe(value: Any) -> str:
    """A short one-line phrase for what the student's code produced: ``an array of shape (2, 3) float64``."""
    if isinstance(value, Raised):
        if value.type == "NotImplementedError" and not value.message:
            return "it raised NotImplementedError (replace `raise NotImplementedError()` with your code)"
        return f"it raised {value.type}" + (f": {one_line(value.message)[:160]}" if value.message else "")
    if isinstance(value, Unsupported):
        return f"a {value.type_name} (not a value the checks can read)"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} {value.dtype}"
    if type(value).__module__ == "torch" and hasattr(value, "shape"):
        return f"a tensor of shape {tuple(value.shape)} {value.dtype}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    if value is None:
        return "None (did you forget `return`?)"
    return f"{type(value).__name__} {one_line(repr(value))[:60]}"


def show_array(a: Any, limit: int = 60) -> str:
    """A compact one-line rendering of a small array, for case labels."""
    text = np.array2string(np.asarray(a), threshold=12, separator=" ", max_line_width=10_000).replace("\n", "")
    return text if len(text) <= limit else text[: limit - 3] + "..."
