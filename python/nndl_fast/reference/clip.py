"""NumPy float64 reference of gradient clipping (1.24–1.25), line for line with nndl_fast.clip.

Written for clarity: the oracle of tests/test_clip.py and the benchmark's NumPy baseline.
Updates are written back in each array's own dtype, with the coefficient rounded to that
dtype once, as the kernels do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["clip_coefficient", "clip_grad_norm_", "clip_grad_value_", "clip_per_tensor_", "global_norm"]


def global_norm(grads: Sequence[np.ndarray], norm_type: float = 2.0) -> float:
    """‖g‖_p over all arrays together, in float64."""
    p = float(norm_type)
    if not grads:
        return 0.0
    g = np.concatenate([np.asarray(x, np.float64).ravel() for x in grads])
    if g.size == 0:
        return 0.0
    if math.isinf(p):
        return float(np.max(np.abs(g)))  # NaN propagates
    return float(np.sum(np.abs(g) ** p) ** (1.0 / p))


def clip_coefficient(total_norm: float, max_norm: float, *, convention: str = "chapter") -> float:
    """chapter (1.25): b/‖g‖ if ‖g‖ > b else 1; torch: min(b/(‖g‖ + 1e-6), 1), NaN kept."""
    if convention == "chapter":
        return max_norm / total_norm if total_norm > max_norm else 1.0
    c = max_norm / (total_norm + 1e-6)
    return c if (c < 1.0 or math.isnan(c)) else 1.0


def clip_grad_norm_(
    grads: Sequence[np.ndarray],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    *,
    convention: str = "chapter",
) -> float:
    total = global_norm(grads, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError("non-finite total norm")
    c = clip_coefficient(total, max_norm, convention=convention)
    for g in grads:
        g[...] = g.dtype.type(c) * g  # g ← c·g
    return total


def clip_per_tensor_(
    grads: Sequence[np.ndarray | None], max_norm: float, norm_type: float = 2.0, *, convention: str = "chapter"
) -> np.ndarray:
    """Clip each array by its own norm (Keras's ``clipnorm``; an optimizer's
    ``step(clip_per_tensor=True)``): gₖ ← cₖ·gₖ with cₖ the coefficient of ‖gₖ‖. Returns the
    norms before clipping (NaN for a None item, which is skipped)."""
    norms = np.full(len(grads), np.nan)
    for k, g in enumerate(grads):
        if g is not None:
            norms[k] = global_norm([g], norm_type)
            g[...] = g.dtype.type(clip_coefficient(norms[k], max_norm, convention=convention)) * g
    return norms


def clip_grad_value_(grads: Sequence[np.ndarray], lower: float, upper: float) -> None:
    for g in grads:
        g[...] = np.maximum(np.minimum(g, g.dtype.type(upper)), g.dtype.type(lower))  # (1.24)
