"""Course package: reference implementations, the checks that assignment test cells call, timing helpers,
benchmarks and the instructor grading command (``python -m autograder grade ...``)."""
from .reference import numpy_ref, torch_ref  # noqa: F401

__all__ = ["numpy_ref", "torch_ref"]
