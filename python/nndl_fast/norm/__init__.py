"""Layer-wise normalisation (chapter section 1.5): fused forward / backward kernels."""

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

__all__ = [
    "BatchNorm",
    "BatchNormBackward",
    "BatchNormForward",
    "LayerNorm",
    "LayerNormBackward",
    "LayerNormForward",
    "batch_norm_backward",
    "batch_norm_forward",
    "batch_norm_workspace",
    "layer_norm_backward",
    "layer_norm_forward",
    "layer_norm_workspace",
]
