"""How probe results cross from a student's kernel to the judge: plain data as JSON plus one ``.npz``, never pickle.

A probe result is built from numpy arrays (or torch tensors, sent as arrays), numpy scalars, Python scalars,
strings, ``None``, lists, tuples and string-keyed dicts of those, and :class:`Raised` records. Anything else is sent
as an :class:`Unsupported` marker naming its type, which every judge treats as a wrong answer.

:func:`decode` runs on the trusted side on bytes the student's process produced: it never unpickles, refuses
compressed ``.npz`` members (so memory stays bounded by the blob's size) and raises ``ValueError`` for anything
malformed.

It expands nothing: the ``.npz`` must hold at most :data:`MAX_MEMBERS` stored (never compressed) members whose byte
ranges do not overlap (Python's :mod:`zipfile` does not check that: overlapping members are the classic "zip bomb"
of stored entries) and whose sizes add up to no more than the archive; each member's ``.npy`` header must describe
exactly the bytes that follow it (:func:`numpy.lib.format.read_array` would allocate what a forged header claims
before reading anything). The JSON header is at most :data:`MAX_HEADER_BYTES` and :data:`MAX_JSON_DEPTH` deep
(:func:`json_depth`, linear time, no recursion). So decoding a blob of ``n`` bytes allocates ``O(n)``.

An exception is recorded by the names of its class and MRO (``module.qualname``), never as an object; the judge
believes only the raised class itself, looked up among the classes it has loaded from Python, NumPy and PyTorch
(:meth:`Raised.is_a`), so a class the notebook defines to inherit from every error type a check expects matches
none of them.
"""

from __future__ import annotations

import io
import json
import re
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Raised",
    "Unsupported",
    "call",
    "encode",
    "decode",
    "json_depth",
    "loads_limited",
    "resolve_exception",
    "TRUSTED_EXCEPTION_MODULES",
    "MAX_MEMBERS",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
]

MAX_MEMBERS = 4096  # arrays in one probe payload (a whole assignment sends a few hundred)
MAX_HEADER_BYTES = 32 << 20  # the payload's JSON header
MAX_JSON_DEPTH = 64  # nesting of any JSON the grader parses from a student (a notebook nests about 8 deep)
#: modules whose exception classes the judge accepts by name (the raised class is looked up, never trusted)
TRUSTED_EXCEPTION_MODULES = ("builtins", "numpy", "torch")


def _qualified(cls: type) -> str:
    module = getattr(cls, "__module__", None)
    name = getattr(cls, "__qualname__", None)
    return f"{module if isinstance(module, str) else '?'}.{name if isinstance(name, str) else '?'}"


def resolve_exception(name: str) -> type[BaseException] | None:
    """The exception class recorded as ``name`` (``module.qualname``; a bare name means ``builtins``) when it is one
    the judge's own process has loaded from :data:`TRUSTED_EXCEPTION_MODULES`, else ``None``. Never imports: a
    name from the student's kernel only looks up what is already in :data:`sys.modules`."""
    if not isinstance(name, str):
        return None
    # the longest loaded module prefix: "numpy.exceptions.AxisError" -> numpy.exceptions + AxisError
    parts = name.split(".") if "." in name else ["builtins", name]
    for cut in range(len(parts) - 1, 0, -1):
        module, qualname = ".".join(parts[:cut]), parts[cut:]
        if module in sys.modules:
            break
    else:
        return None
    if not any(module == m or module.startswith(m + ".") for m in TRUSTED_EXCEPTION_MODULES):
        return None
    obj: Any = sys.modules[module]
    for part in qualname:
        if not part.isidentifier():
            return None
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, type) and issubclass(obj, BaseException) else None


@dataclass(frozen=True)
class Raised:
    """An exception raised by student code, recorded as data: its class name, its MRO (``module.qualname`` of each
    class, the raised class first) and its message."""

    type: str
    bases: tuple[str, ...]
    message: str

    @classmethod
    def from_exc(cls, exc: BaseException, message: str | None = None) -> Raised:
        """The record of ``exc``; ``message`` (default ``str(exc)``) is cut to 500 characters."""
        kind = type(exc)
        name = getattr(kind, "__name__", "?")
        return cls(
            name if isinstance(name, str) else "?",
            tuple(_qualified(c) for c in kind.__mro__),
            (str(exc) if message is None else message)[:500],
        )

    def is_a(self, exc_type: type[BaseException]) -> bool:
        """Whether the raised class is ``exc_type`` or one of its subclasses *that the judge knows*: Python's,
        NumPy's or PyTorch's own (:func:`resolve_exception`). A class defined in the notebook never is, whatever
        it inherits from (one class deriving from ``IndexError``, ``TypeError`` and ``ValueError`` would
        otherwise pass every check that expects an error)."""
        raised = resolve_exception(self.bases[0]) if self.bases else None
        return raised is not None and issubclass(raised, exc_type)

    def claims(self, exc_type: type[BaseException]) -> bool:
        """Whether the recorded MRO *names* ``exc_type`` (for messages only: the MRO is the student's word)."""
        return any(b.rpartition(".")[2] == exc_type.__name__ for b in self.bases)

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


def json_depth(text: bytes | str) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON ``text``, outside strings. Linear time, no recursion: every
    string literal is removed by one possessive regular expression, then the brackets are counted with a cumulative
    sum. Unbalanced or invalid JSON gives a number too (the parser rejects it next)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    if b"[" not in data and b"{" not in data:
        return 0
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    steps = np.frombuffer(brackets, dtype=np.uint8)
    depth = np.cumsum(np.where((steps == 0x5B) | (steps == 0x7B), 1, -1), dtype=np.int64)
    return int(depth.max()) if depth.size else 0


_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def loads_limited(text: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads(text)`` after checking that it nests at most ``max_depth`` deep (``ValueError`` otherwise), so
    that neither the parser nor anything that walks the result recursively (nbformat, a judge) can run out of
    stack on it."""
    depth = json_depth(text)
    if depth > max_depth:
        raise ValueError(f"the JSON nests {depth} levels deep (at most {max_depth} accepted)")
    return json.loads(text)


def _npz_arrays(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an uncompressed ``.npz`` written by :func:`numpy.savez`, read without expanding anything (see
    the module docstring): ``ValueError`` for compressed, overlapping, oversized or malformed members."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ValueError(f"not an encoded probe result: {len(infos)} arrays (at most {MAX_MEMBERS})")
        spans, total = [], 0
        for info in infos:
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                raise ValueError("not an encoded probe result: compressed arrays are refused")
            if info.flag_bits & 0x1:
                raise ValueError("not an encoded probe result: an encrypted member")
            start = info.header_offset
            local = data[start : start + 30]
            if len(local) != 30 or local[:4] != b"PK\x03\x04":
                raise ValueError("not an encoded probe result: a member without its local header")
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            end = start + 30 + name_len + extra_len + info.compress_size
            if end > len(data):
                raise ValueError("not an encoded probe result: a member runs past the archive")
            spans.append((start, end))
            total += info.file_size
        spans.sort()
        if any(a_end > b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False)):
            raise ValueError("not an encoded probe result: overlapping archive members")
        if total > len(data):
            raise ValueError("not an encoded probe result: the members are larger than the archive")
        arrays: dict[str, np.ndarray] = {}
        for info in infos:
            if not info.filename.endswith(".npy") or info.filename[:-4] in arrays:
                raise ValueError("not an encoded probe result: an unexpected archive member")
            arrays[info.filename[:-4]] = _npy(archive.read(info))
    return arrays


def _npy(raw: bytes) -> np.ndarray:
    """One ``.npy`` file's array; its header must describe exactly the bytes after it."""
    from numpy.lib import format as npy

    fp = io.BytesIO(raw)
    version = npy.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = npy.read_array_header_1_0(fp, max_header_size=10_000)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = npy.read_array_header_2_0(fp, max_header_size=10_000)
    else:
        raise ValueError(f"not an encoded probe result: .npy version {version}")
    if dtype.hasobject or dtype.kind == "V":
        raise ValueError("not an encoded probe result: an object or structured array")
    count = 1
    for n in shape:
        count *= int(n)
    offset = fp.tell()
    if offset + count * dtype.itemsize != len(raw):
        raise ValueError("not an encoded probe result: an array header that does not match its data")
    flat = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).copy()
    return flat.reshape(shape, order="F" if fortran else "C")


def _decode(blob: bytes) -> Any:
    if len(blob) < 8:
        raise ValueError("not an encoded probe result: shorter than its 8-byte header length")
    size = int.from_bytes(blob[:8], "little")
    if size > len(blob) - 8:
        raise ValueError("not an encoded probe result: the header is cut short")
    if size > MAX_HEADER_BYTES:
        raise ValueError(f"not an encoded probe result: a header of {size} bytes (at most {MAX_HEADER_BYTES})")
    header = loads_limited(blob[8 : 8 + size])
    arrays = _npz_arrays(blob[8 + size :])

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
