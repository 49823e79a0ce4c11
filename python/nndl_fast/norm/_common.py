"""Small helpers shared by the normalisation modules (argument checks done in Python)."""

from __future__ import annotations

import numbers

import numpy as np


def require_ndarray(a: object, name: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    return a


def check_eps(eps: float) -> float:
    if (
        isinstance(eps, bool)
        or not isinstance(eps, numbers.Real)
        or not (eps >= 0.0)
        or eps == float("inf")
    ):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


def out_or_new(out: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The caller's buffer (checked later, in the compiled call) or a fresh one."""
    return np.empty(shape, dtype) if out is None else out


def kernel_dtype(x: np.ndarray) -> np.dtype:
    """dtype for fresh outputs: x's when the kernels take it, else float64 (the call then
    rejects x with a TypeError naming it, before anything is written)."""
    return x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
