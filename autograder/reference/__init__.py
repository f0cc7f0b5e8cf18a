"""Reference implementations of every graded function in the course contract.

``numpy_ref`` holds the NumPy versions the students reproduce; ``torch_ref`` holds independent PyTorch
versions (built on ``torch.nn.functional``, ``torch.nn.Embedding`` and ``torch.autograd``) that the tests
and the graders use to cross-check the NumPy ones.
"""
from . import numpy_ref, torch_ref  # noqa: F401
