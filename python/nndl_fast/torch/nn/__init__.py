"""torch.nn modules over nndl_fast's kernels, and :func:`convert` to swap them into a model.

``BatchNorm1d``, ``BatchNorm2d``, ``BatchNorm3d``, ``LayerNorm``, ``LocalResponseNorm``,
``Dropout``, ``Dropout2d`` and ``Dropout3d`` subclass the ``torch.nn`` classes of the same names: torch's constructors,
parameters, buffers, ``state_dict`` keys and ``train()``/``eval()`` behaviour, with a
``forward`` whose forward and backward passes run our kernels inside
``torch.autograd.Function``\\ s (torch tensors cross zero-copy). Each module's docstring says
which layouts it reads in place and which inputs it leaves to torch's own forward.
``CrossEntropyLoss`` subclasses ``torch.nn.CrossEntropyLoss`` the same way, on the fused softmax
cross-entropy (loss and gradient in one pass); a loss is not part of a model, so
:func:`convert` leaves it alone: construct it instead of torch's.
"""

from __future__ import annotations

from .batch_norm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .convert import ConvertReport, convert
from .dropout import Dropout, Dropout2d, Dropout3d
from .layer_norm import LayerNorm
from .local_response_norm import LocalResponseNorm
from .loss import CrossEntropyLoss

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "ConvertReport",
    "CrossEntropyLoss",
    "Dropout",
    "Dropout2d",
    "Dropout3d",
    "LayerNorm",
    "LocalResponseNorm",
    "convert",
]
