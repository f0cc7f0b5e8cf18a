"""How probe results cross from a student's kernel to the judge: plain data as JSON plus one ``.npz``, never pickle.

A probe result is built from numpy arrays (or torch tensors, sent as arrays), numpy scalars, Python scalars,
strings, ``None``, lists, tuples and string-keyed dicts of those, and :class:`Raised` records. Anything else is sent
as an :class:`Unsupported` marker naming its type, which every judge treats as a wrong answer.

:func:`decode` runs on the trusted side on bytes the student's process produced: it never unpickles, refuses
compressed ``.npz`` members (so memory stays bounded by the blob's size) and raises ``ValueError`` for anything
malformed.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Raised", "Unsupported", "call", "encode", "decode"]


@dataclass(frozen=True)
class Raised:
    """An exception raised by student code, recorded as data: its class name, its MRO names and message."""

    type: str
    bases: tuple[str, ...]
    message: str

    @classmethod
    def from_exc(cls, exc: BaseException, message: str | None = None) -> Raised:
        """The record of ``exc``; ``message`` (default ``str(exc)``) is cut to 500 characters."""
        return cls(
            type(exc).__name__,
            tuple(c.__name__ for c in type(exc).__mro__),
            (str(exc) if message is None else message)[:500],
        )

    def is_a(self, exc_type: type[BaseException]) -> bool:
        return exc_type.__name__ in self.bases

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(frozen=True)
class Unsupported:
    """A value of a type the transport does not carry (an object array, a module, a student-defined class...)."""

    type_name: str


def call(fn: Callable, *args, **kwargs) -> Any:
    """Call student code; return its result, or a :class:`Raised` record if it raised an ``Exception``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # any student exception becomes data
        return Raised.from_exc(exc)


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    return value.detach().cpu().numpy()  # a torch.Tensor


def encode(results: Any) -> bytes:
    """``results`` as bytes: an 8-byte little-endian header length, the JSON header, then an uncompressed ``.npz``
    holding the arrays (copied now: later changes to the student's arrays do not reach the blob)."""
    arrays: dict[str, np.ndarray] = {}

    def enc(value):
        if isinstance(value, Raised):
            return {"__raised__": [value.type, list(value.bases), value.message]}
        if isinstance(value, Unsupported):
            return {"__unsupported__": value.type_name}
        if isinstance(value, np.ndarray) or (
            type(value).__module__ == "torch" and type(value).__name__ in ("Tensor", "Parameter")
        ):
            try:
                arr = _to_numpy(value)
            except Exception as exc:  # a tensor numpy cannot take (e.g. a sparse or a meta tensor)
                return {"__unsupported__": f"{type(value).__name__} ({type(exc).__name__})"}
            if arr.dtype == object or arr.dtype.kind == "V":
                return {"__unsupported__": "an object array"}
            key = f"a{len(arrays)}"
            arrays[key] = np.array(arr, copy=True)
            return {"__array__": key}
        if isinstance(value, np.generic):
            if value.dtype == object or value.dtype.kind == "V":
                return {"__unsupported__": type(value).__name__}
            return {"__scalar__": enc(value.item()), "dtype": value.dtype.str}
        if isinstance(value, dict):
            return {"__dict__": [[str(k), enc(v)] for k, v in value.items()]}
        if isinstance(value, (list, tuple)):
            return {"__list__": [enc(v) for v in value], "tuple": isinstance(value, tuple)}
        if isinstance(value, float):
            return value if np.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, complex):
            return {"__complex__": [enc(value.real), enc(value.imag)]}
        if value is None or isinstance(value, (bool, int, str)):
            return value
        return {"__unsupported__": type(value).__name__}

    header = json.dumps(enc(results)).encode()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return len(header).to_bytes(8, "little") + header + buffer.getvalue()


def decode(blob: bytes) -> Any:
    """The data :func:`encode` wrote. Raises ``ValueError`` for anything else (truncated, forged or garbage bytes)."""
    try:
        return _decode(bytes(blob))
    except ValueError:
        raise
    except Exception as exc:  # json, zip, npy and structure errors all mean: not an encoded probe result
        raise ValueError(f"not an encoded probe result: {type(exc).__name__}: {exc}"[:300]) from None


def _decode(blob: bytes) -> Any:
    if len(blob) < 8:
        raise ValueError("not an encoded probe result: shorter than its 8-byte header length")
    size = int.from_bytes(blob[:8], "little")
    if size > len(blob) - 8:
        raise ValueError("not an encoded probe result: the header is cut short")
    header = json.loads(blob[8 : 8 + size])
    with zipfile.ZipFile(io.BytesIO(blob[8 + size :])) as archive:
        if any(info.compress_type != zipfile.ZIP_STORED for info in archive.infolist()):
            raise ValueError("not an encoded probe result: compressed arrays are refused")
    with np.load(io.BytesIO(blob[8 + size :]), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}

    def dec(value):
        if isinstance(value, list):
            raise ValueError("not an encoded probe result: a bare JSON list")
        if not isinstance(value, dict):
            if value is None or isinstance(value, (bool, int, float, str)):
                return value
            raise ValueError(f"not an encoded probe result: {type(value).__name__}")
        if "__raised__" in value:
            t, bases, message = value["__raised__"]
            return Raised(str(t), tuple(map(str, bases)), str(message))
        if "__array__" in value:
            return arrays[str(value["__array__"])]
        if "__scalar__" in value:
            dtype = np.dtype(str(value["dtype"]))
            if dtype.kind in "OV":
                raise ValueError("not an encoded probe result: an object scalar")
            return dtype.type(dec(value["__scalar__"]))
        if "__dict__" in value:
            return {str(k): dec(v) for k, v in value["__dict__"]}
        if "__list__" in value:
            items = [dec(v) for v in value["__list__"]]
            return tuple(items) if value.get("tuple") else items
        if "__float__" in value:
            return float(str(value["__float__"]))
        if "__complex__" in value:
            real, imag = (dec(v) for v in value["__complex__"])
            return complex(real, imag)
        if "__unsupported__" in value:
            return Unsupported(str(value["__unsupported__"]))
        raise ValueError("not an encoded probe result: an unknown record")

    return dec(header)
