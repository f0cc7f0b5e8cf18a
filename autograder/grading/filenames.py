"""File names for the grader: one rule for every name built from a student or assignment id.

Two students must never share a file (a feedback page, a stored result, a log), so the rule is a collision-free,
reversible encoding, not a lossy sanitiser: ASCII letters, digits and ``-_.@`` stay as they are; every other
character becomes ``~XX`` for each byte of its UTF-8 encoding (``carol+smith`` -> ``carol~2Bsmith``, ``carol_smith``
stays); ``~`` itself is always encoded, so :func:`original_name` gives back the id. (``~`` rather than ``%``: these
names end up in SQLite URLs, where ``%2B`` would be decoded.) A leading ``.`` is encoded too (no hidden file, no
``..``). An id whose encoding would be longer than :data:`MAX_NAME` keeps its first characters and ends with ``~~``
and the SHA-256 of the id (``~~`` never appears in an encoding, so such a name collides with none).
Ids made only of the kept characters -- nearly every real id -- are unchanged, so the files of earlier runs stay
where they were.
"""

from __future__ import annotations

import hashlib

__all__ = ["safe_filename", "original_name", "MAX_NAME"]

_KEEP = frozenset("-_.@")
MAX_NAME = 200  # bytes of a file name (most file systems allow 255)


def _encode(ch: str) -> str:
    return "".join(f"~{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


def safe_filename(name: str) -> str:
    """``name`` as one path component, collision-free (see the module docstring); ``"~"`` for ``""``.

    ``"../x"`` -> ``"~2E.~2Fx"``, ``"a b"`` -> ``"a~20b"`` and ``"a_b"`` -> ``"a_b"``: distinct ids give distinct
    names. Non-ASCII letters are encoded too (a file system may normalise them)."""
    if not name:
        return "~"
    out = "".join(
        ch if (ch.isascii() and (ch.isalnum() or ch in _KEEP)) and not (i == 0 and ch == ".") else _encode(ch)
        for i, ch in enumerate(name)
    )
    if len(out.encode()) > MAX_NAME:
        cut = MAX_NAME - 66
        cut -= 1 if out[cut - 1] == "~" else 2 if out[cut - 2] == "~" else 0  # never inside a ~XX
        out = out[:cut] + "~~" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return out


def original_name(filename: str) -> str | None:
    """The id :func:`safe_filename` encoded as ``filename``; ``None`` for a shortened (hashed) name."""
    if "~~" in filename:
        return None
    if filename == "~":
        return ""
    raw, i = bytearray(), 0
    while i < len(filename):
        if filename[i] == "~":
            raw.append(int(filename[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(filename[i].encode())
            i += 1
    return raw.decode("utf-8", "surrogatepass")
