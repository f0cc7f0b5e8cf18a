"""Reference implementations of every graded function in the course contract.

``numpy_ref`` holds the NumPy versions the students reproduce; ``torch_ref`` holds independent PyTorch
versions (built on ``torch.nn.functional``, ``torch.nn.Embedding`` and ``torch.autograd``) that the tests
and the graders use to cross-check the NumPy ones. Each is imported on first use (``from autograder.reference
import numpy_ref`` does not load PyTorch).
"""

import importlib

__all__ = ["numpy_ref", "torch_ref"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
