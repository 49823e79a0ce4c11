"""nndl_fast for PyTorch users: change one import.

- :mod:`nndl_fast.torch.optim`: the nine update rules as ``torch.optim.Optimizer`` subclasses,
  with torch's defaults, formulas and ``state_dict`` format.
- :mod:`nndl_fast.torch.nn`: normalisation and dropout modules with torch's constructor
  signatures, buffers and ``state_dict`` keys, running our kernels inside
  ``torch.autograd.Function``\\ s, and ``CrossEntropyLoss`` on the fused softmax
  cross-entropy.
- :func:`convert`: swap the supported modules of a model in place, with their state.

torch stays an optional dependency of nndl_fast: importing this subpackage imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch as _torch  # noqa: F401  (a clear ImportError here when torch is absent)

__all__ = ["convert", "nn", "optim"]


def __getattr__(name: str) -> Any:
    # Submodules load on first use, so `import nndl_fast.torch` stays cheap.
    if name in ("nn", "optim"):
        return importlib.import_module(f".{name}", __name__)
    if name == "convert":
        return importlib.import_module(".nn", __name__).convert
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
