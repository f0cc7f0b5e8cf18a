"""Ship the ``autograder`` package to Dask workers, so grading machines need no shared disk and no checkout.

:func:`package_zip` packs the package directory this process imports ``autograder`` from into a zip (bytes,
deterministic: same files, same bytes, same digest). :class:`ShipPackage` is a Dask ``WorkerPlugin`` that carries
those bytes; on every worker -- including workers that join or are restarted later -- it extracts them into a
content-addressed folder under the worker's local directory, puts that folder first on ``sys.path`` **and** on
``PYTHONPATH`` (the Jupyter kernels and sandbox processes that grading starts are child processes: they must import
the same checks), and forgets any ``autograder`` modules the worker had already imported from elsewhere.

This module imports only the standard library, ``distributed`` and :mod:`.worker_pool` (standard library only) at
top level: the plugin is pickled *by value* with both modules (:func:`register_by_value`), so a worker can unpickle
it before it has any copy of ``autograder``. The grading pool it stops on teardown is owned by :mod:`.worker_pool`.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import sys
import zipfile
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from . import worker_pool
from .worker_pool import stop_pool  # pickled by value with the plugin (see register_by_value): stdlib only

__all__ = ["package_zip", "ShipPackage", "register_by_value", "PACKAGE"]

PACKAGE = "autograder"
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}
_FIXED_DATE = (2020, 1, 1, 0, 0, 0)  # zip entries carry this date so the archive's bytes depend on content only


def package_dir() -> Path:
    """The directory this process imports ``autograder`` from (a checkout or site-packages)."""
    import autograder

    return Path(autograder.__file__).resolve().parent


def module_source(name: str) -> Path:
    """The file (plain module) or directory (package) this process imports the top-level module ``name`` from."""
    import importlib.util

    top = name.split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        raise ModuleNotFoundError(
            f"cannot ship module {top!r} to the workers: it is not importable here as a "
            "Python source file or package (put its folder on PYTHONPATH)"
        )
    if spec.submodule_search_locations:
        return Path(spec.origin).resolve().parent
    return Path(spec.origin).resolve()


def _add(archive: zipfile.ZipFile, path: Path, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, path.read_bytes())


def package_zip(root: Path | None = None, extra_modules: tuple[str, ...] | list[str] = ()) -> bytes:
    """The ``autograder`` package under ``root`` (default: :func:`package_dir`), plus the top-level modules or
    packages named in ``extra_modules`` (e.g. an assignment's ``--checks-module``), as zip bytes.

    Entries are ``autograder/...`` (and ``<module>.py`` or ``<package>/...``) paths, sorted, dated
    :data:`_FIXED_DATE`; ``__pycache__`` and ``*.pyc`` are left out; data files (``autograder/data/*.csv``) are in.
    """
    root = Path(root) if root is not None else package_dir()
    if not (root / "__init__.py").is_file():
        raise FileNotFoundError(
            f"{root} is not a Python package (no __init__.py): pass the autograder package directory"
        )
    sources = {PACKAGE: root}
    for name in extra_modules:
        top = name.split(".")[0]
        if top != PACKAGE:
            sources[top] = module_source(top)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for top, source in sorted(sources.items()):
            if source.is_file():
                _add(archive, source, source.name)
                continue
            for path in sorted(source.rglob("*")):
                relative = path.relative_to(source)
                if not path.is_file() or _SKIP_DIRS.intersection(relative.parts) or path.suffix in _SKIP_SUFFIXES:
                    continue
                _add(archive, path, f"{top}/{relative.as_posix()}")
    return buffer.getvalue()


class ShipPackage(WorkerPlugin):
    """Worker plugin: make the client's ``autograder`` package (and any extra modules shipped with it) the one every
    worker and its children import.

    ``data`` is :func:`package_zip` output. ``name`` is fixed, so registering a new version replaces the old one.
    After ``setup``, ``autograder.__file__`` on the worker lies under ``<worker local dir>/autograder-<digest>/``.
    """

    name = "autograder-package"

    def __init__(self, data: bytes):
        self.data = data
        self.digest = hashlib.sha256(data).hexdigest()[:16]

    def setup(self, worker) -> None:
        target = Path(worker.local_directory) / f"{PACKAGE}-{self.digest}"
        if not (target / PACKAGE / "__init__.py").is_file():
            staging = target.with_name(target.name + f".tmp{os.getpid()}")
            with zipfile.ZipFile(io.BytesIO(self.data)) as archive:
                archive.extractall(staging)
            try:
                staging.rename(target)  # atomic: a half-extracted package is never importable
            except OSError:  # another process of this worker got there first
                import shutil

                shutil.rmtree(staging, ignore_errors=True)
        entry = str(target)
        sys.path[:] = [entry] + [p for p in sys.path if not Path(p).name.startswith(f"{PACKAGE}-")]
        inherited = [
            p
            for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
            if p and not Path(p).name.startswith(f"{PACKAGE}-")
        ]
        os.environ["PYTHONPATH"] = os.pathsep.join([entry] + inherited)
        with zipfile.ZipFile(io.BytesIO(self.data)) as archive:
            shipped = {name.split("/")[0].removesuffix(".py") for name in archive.namelist()}
        for module in [m for m in sys.modules if m.split(".")[0] in shipped]:
            del sys.modules[module]
        importlib.invalidate_caches()

    def teardown(self, worker) -> None:
        """The worker closes or gets another package: stop its grading pool (processes started from this one)."""
        stop_pool(worker)


def register_by_value() -> None:
    """Pickle this module's objects (and :mod:`.worker_pool`'s, which the plugin's teardown calls) by value, so
    workers without ``autograder`` can unpickle :class:`ShipPackage`."""
    import cloudpickle

    for module in (sys.modules[__name__], worker_pool):
        if module.__name__ not in cloudpickle.list_registry_pickle_by_value():
            cloudpickle.register_pickle_by_value(module)
