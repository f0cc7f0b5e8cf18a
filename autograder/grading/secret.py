"""The course secret and the hidden seeds drawn from it.

The hidden checks' inputs must be unknown in advance to anyone who reads the public repository, yet the same on a
rerun. So they come from a secret that is not in the repository: 32 random bytes, created on first use beside the
gradebook (``--out/course-secret``, mode 0600) or read from ``--secret-file PATH``. For each submission,

    hidden_seed = int(HMAC-SHA256(secret, assignment + "\\0" + student)[:4])      (32 bits, big-endian)

so two students get different inputs and a rerun the same ones. The secret is never printed, never written into
feedback or ``grades.csv``, and never enters the sandbox (only the one student's seed does, in the grading spec).
:func:`fingerprint` is a public one-way tag of the secret for the result cache: a new secret regrades everyone.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["SECRET_NAME", "SecretError", "load_or_create", "hidden_seed", "fingerprint"]

SECRET_NAME = "course-secret"
_BYTES = 32


class SecretError(RuntimeError):
    """The secret file is unusable; ``str(exc)`` says why in one line (never its content)."""


def load_or_create(path: str | os.PathLike, *, create: bool = True) -> bytes:
    """The secret in ``path``; with ``create``, a new random one is written there (mode 0600) when the file does
    not exist. Raises :class:`SecretError` for a file that is too short, or readable by others."""
    path = Path(path)
    if not path.exists():
        if not create:
            raise SecretError(f"--secret-file {path}: no such file")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(_BYTES) + "\n")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecretError(f"the course secret {path} is readable by other users (mode {mode:o}): chmod 600 {path}")
    data = path.read_bytes().strip()
    if len(data) < 32:
        raise SecretError(f"the course secret {path} is too short (at least 32 characters; delete it to get a new one)")
    return data


def hidden_seed(secret: bytes, assignment: str, student: str) -> int:
    """The seed of ``student``'s hidden inputs for ``assignment``: 32 bits of HMAC-SHA256(secret, ...)."""
    digest = hmac.new(secret, f"{assignment}\0{student}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big")


def fingerprint(secret: bytes) -> str:
    """A public 16-hex-digit tag of ``secret`` (for cache keys): reveals nothing usable about it."""
    return hmac.new(secret, b"autograder result cache", hashlib.sha256).hexdigest()[:16]
