"""Grading mode: what runs in the student's kernel inside the grading sandbox.

The grader starts the kernel with :data:`SPEC_ENV` naming a JSON file::

    {"assignment": "token-embeddings", "groups": ["embedding_forward", ...], "hidden_seed": 1234,
     "probe_modules": ["grading_fixture_probes"]}

``probe_modules`` are extra modules that register probes (the grader's test fixture); they are imported before the
first probe runs. Each test cell's :func:`autograder.student.run_checks` then probes its group with ``hidden_seed``
(visible checks: ``VISIBLE_SEED``), encodes the data at once (later changes to the student's arrays cannot reach
it) and keeps it in memory. After the last cell the grader executes :func:`emit` in the same kernel: it probes the
groups no test cell probed (deleted or edited cells) and publishes **one** display-data message whose
:data:`MIME` entry is the base64 text of ``encode({group: {check name: data}})``. The grader reads it back with
:func:`decode_emitted` and judges it outside the sandbox, with the seed it chose itself.

Nothing here imports a judge or a reference, and nothing here is trusted: the kernel's code may rewrite any of it.
What it can forge is only its own outputs; the judge takes no input from them.
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import os
import sys
from typing import Any

from . import registry
from .transport import Raised, decode, encode

__all__ = ["SPEC_ENV", "MIME", "spec_path", "load_spec", "probe_cell", "emit", "decode_emitted"]

SPEC_ENV = "AUTOGRADER_GRADING_SPEC"
MIME = "application/vnd.autograder.probes+base64"

_SPEC: dict[str, Any] = {}  # path -> the spec read from it (read once per kernel)
_PROBED: dict[str, bytes] = {}  # group -> encoded {check name: data}
_IMPORTED: set[str] = set()  # probe modules already imported


def spec_path() -> str | None:
    """The grading spec's path when this kernel runs under the grader, else ``None``."""
    path = os.environ.get(SPEC_ENV)
    return path or None


def load_spec(path: str | None = None) -> dict:
    """The grading spec (validated; ``ValueError`` with a one-line reason if malformed) and its probe modules
    imported. ``path`` defaults to :data:`SPEC_ENV`'s value."""
    path = path or spec_path()
    if path is None:
        raise ValueError(f"{SPEC_ENV} is not set: not grading")
    if path not in _SPEC:
        try:
            with open(path, encoding="utf-8") as fh:
                spec = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ValueError(f"the grading spec {path} cannot be read: {exc}") from None
        _validate(spec, path)
        _SPEC[path] = spec
    spec = _SPEC[path]
    for module in spec["probe_modules"]:
        if module not in _IMPORTED:
            importlib.import_module(module)
            _IMPORTED.add(module)
    return spec


def _validate(spec: Any, path: str) -> None:
    kinds = {"assignment": str, "groups": list, "hidden_seed": int, "probe_modules": list}
    if not isinstance(spec, dict):
        raise ValueError(f"the grading spec {path} is not a JSON object")
    for key, kind in kinds.items():
        if not isinstance(spec.get(key), kind) or isinstance(spec.get(key), bool):
            raise ValueError(f"the grading spec {path} needs {key!r} ({kind.__name__})")
    for key in ("groups", "probe_modules"):
        if not all(isinstance(item, str) for item in spec[key]):
            raise ValueError(f"the grading spec {path}: {key!r} must be a list of strings")


def _probe(spec: dict, group: str, namespace: dict) -> None:
    try:
        results = registry.probe_group(spec["assignment"], group, namespace, spec["hidden_seed"])
    except KeyError:  # no probes registered: the judge reports every check of the group as missing
        results = {}
    except Exception as exc:  # a probe module broken by the kernel's code: every check of the group has no result
        results = {"__error__": Raised.from_exc(exc)}
    _PROBED[group] = encode(results)


def probe_cell(assignment: str, group: str, namespace: dict) -> str:
    """Grading mode's :func:`~autograder.student.run_checks`: probe ``group`` (if the spec asks for it) and keep the
    encoded data; returns the one line the test cell prints. Never raises."""
    try:
        spec = load_spec()
        if assignment != spec["assignment"] or group not in spec["groups"]:
            return f"{assignment}/{group}: not part of this grading run (nothing recorded)"
        _probe(spec, group, namespace)
    except Exception as exc:  # never fail a cell while grading: emit() reports what is missing
        return f"{assignment}/{group}: not probed ({type(exc).__name__}: {exc}); the grader judges the submission"[:300]
    return f"{assignment}/{group}: checks recorded, to be judged by the grader after the notebook has run"


def _kernel_namespace() -> dict:
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        return shell.user_ns
    return vars(sys.modules["__main__"])


def emit() -> None:
    """After the last cell: probe every group of the spec not probed yet (from the kernel's user namespace) and
    publish one display-data message ``{MIME: base64 of encode({group: {check name: data}})}``. ``ValueError`` if
    not grading or the spec is malformed."""
    spec = load_spec()
    namespace = _kernel_namespace()
    for group in spec["groups"]:
        if group not in _PROBED:
            _probe(spec, group, namespace)
    payload = encode({group: decode(_PROBED[group]) for group in spec["groups"]})
    from IPython.display import publish_display_data

    publish_display_data({MIME: base64.b64encode(payload).decode("ascii")})


def decode_emitted(text: str) -> dict:
    """The grader's side of :func:`emit`: ``{group: {check name: data}}`` from the MIME entry's text.
    ``ValueError`` for anything that is not such a payload."""
    if not isinstance(text, str):
        raise ValueError(f"the probe payload must be text, got {type(text).__name__}")
    try:
        blob = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"the probe payload is not base64: {exc}") from None
    data = decode(blob)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError("the probe payload is not a {group: {check name: data}} mapping")
    return data
