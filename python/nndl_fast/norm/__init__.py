"""Layer-wise normalisation (chapter section 1.5): fused forward and backward kernels.

Batch norm (1.43–1.48), layer norm (1.49–1.54), weight norm (1.55) and local response
norm (1.56); each module's docstring carries its formulas and the PyTorch differences.
"""

from __future__ import annotations

from .batch_norm import (
    BatchNorm,
    BatchNormBackward,
    BatchNormForward,
    batch_norm_backward,
    batch_norm_forward,
    batch_norm_workspace,
)
from .layer_norm import (
    LayerNorm,
    LayerNormBackward,
    LayerNormForward,
    layer_norm_backward,
    layer_norm_forward,
    layer_norm_workspace,
)
from .local_response_norm import local_response_norm, local_response_norm_backward
from .weight_norm import WeightNorm, WeightNormBackward, weight_norm, weight_norm_backward

__all__ = [
    "BatchNorm",
    "BatchNormBackward",
    "BatchNormForward",
    "LayerNorm",
    "LayerNormBackward",
    "LayerNormForward",
    "WeightNorm",
    "WeightNormBackward",
    "batch_norm_backward",
    "batch_norm_forward",
    "batch_norm_workspace",
    "layer_norm_backward",
    "layer_norm_forward",
    "layer_norm_workspace",
    "local_response_norm",
    "local_response_norm_backward",
    "weight_norm",
    "weight_norm_backward",
]
