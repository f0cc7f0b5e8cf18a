"""Course package: reference implementations, the checks that assignment test cells call, timing helpers,
benchmarks and the instructor grading command (``python -m autograder grade ...``).

``autograder.numpy_ref`` and ``autograder.torch_ref`` are loaded on first use, so commands that need no PyTorch
(``python -m autograder --help``, ``release``) start without importing it.
"""
import importlib

__all__ = ["numpy_ref", "torch_ref"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"autograder.reference.{name}")
    raise AttributeError(f"module 'autograder' has no attribute {name!r}")
