"""Layer-wise normalisation (chapter section 1.5): fused forward and backward kernels."""

from __future__ import annotations

from .local_response_norm import local_response_norm, local_response_norm_backward
from .weight_norm import WeightNorm, weight_norm, weight_norm_backward

__all__ = [
    "WeightNorm",
    "local_response_norm",
    "local_response_norm_backward",
    "weight_norm",
    "weight_norm_backward",
]
