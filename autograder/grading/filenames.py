"""File-name sanitising for the grader: one rule for every name built from a student or assignment id."""

from __future__ import annotations

__all__ = ["safe_filename"]

_KEEP = frozenset("-_.@")


def safe_filename(name: str) -> str:
    """``name`` with every character but letters, digits and ``-_.@`` replaced by ``_`` (``"_"`` for ``""``).

    A student id (often an e-mail address) or an assignment id becomes one path component: no ``/``, no ``..``
    traversal (``"../x"`` -> ``".._x"``, a plain name), no whitespace or shell metacharacters. The mapping is not
    injective (``"a b"`` and ``"a_b"`` collide); callers that store per-student files keep the original id inside
    the file. The stored results and feedback paths depend on it: changing the rule moves them.
    """
    return "".join(ch if ch.isalnum() or ch in _KEEP else "_" for ch in name) or "_"
