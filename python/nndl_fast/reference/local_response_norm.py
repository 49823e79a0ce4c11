"""Local response normalisation (1.56), NumPy float64 reference of
:mod:`nndl_fast.norm.local_response_norm`.

    d_p = k + a · Σ_{j = max(0, p−lo)}^{min(C−1, p+hi)} (x_j)²
    y_p = x_p / d_p^β                                                     (1.56)
    dx_q = dy_q · d_q^{−β} − 2aβ · x_q · Σ_{p = q−hi}^{q+lo} dy_p · y_p / d_p     (dy = ∂L/∂y)

over the channel axis 1 of x (N, C, spatial...); the window and a by convention:
    "chapter": lo = hi = ⌊n/2⌋, a = α                         (eq. 1.56)
    "torch":   lo = ⌊n/2⌋, hi = ⌊(n−1)/2⌋, a = α/n            (torch.nn.LocalResponseNorm)
    "onnx":    lo = ⌊(n−1)/2⌋, hi = ⌈(n−1)/2⌉, a = α/n        (ONNX LRN; k is its bias)
"""

from __future__ import annotations

import numpy as np

__all__ = ["local_response_norm", "local_response_norm_backward", "window"]


def window(size: int, alpha: float, convention: str) -> tuple[int, int, float]:
    """(lo, hi, a): channels p−lo .. p+hi are summed, with weight a."""
    if convention == "chapter":
        return size // 2, size // 2, alpha
    if convention == "torch":
        return size // 2, (size - 1) // 2, alpha / size
    if convention == "onnx":
        return (size - 1) // 2, size // 2, alpha / size
    raise ValueError(f"convention must be 'chapter', 'torch' or 'onnx', got {convention!r}")


def _denominator(x: np.ndarray, lo: int, hi: int, a: float, k: float) -> np.ndarray:
    """d_p for every channel p, shaped like x."""
    channels = x.shape[1]
    d = np.empty_like(x)
    for p in range(channels):
        j0, j1 = max(0, p - lo), min(channels - 1, p + hi)
        d[:, p] = k + a * np.sum(x[:, j0 : j1 + 1] ** 2, axis=1)
    return d


def local_response_norm(
    x: np.ndarray,
    size: int = 5,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 2.0,
    convention: str = "chapter",
) -> np.ndarray:
    """y = x / d^β over channel windows, in float64."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi, a = window(size, alpha, convention)
    d = _denominator(x, lo, hi, a, k)
    return x / d**beta  # (1.56)


def local_response_norm_backward(
    dy: np.ndarray,
    x: np.ndarray,
    size: int = 5,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 2.0,
    convention: str = "chapter",
) -> np.ndarray:
    """dx = ∂L/∂x from dy = ∂L/∂y, in float64."""
    x = np.asarray(x, dtype=np.float64)
    dy = np.asarray(dy, dtype=np.float64)
    lo, hi, a = window(size, alpha, convention)
    channels = x.shape[1]
    d = _denominator(x, lo, hi, a, k)
    y = x / d**beta
    r = dy * y / d  # dy_p · y_p / d_p
    dx = dy * d ** (-beta)  # direct term
    for q in range(channels):
        p0, p1 = max(0, q - hi), min(channels - 1, q + lo)  # every p whose window holds q
        dx[:, q] -= 2 * a * beta * x[:, q] * np.sum(r[:, p0 : p1 + 1], axis=1)
    return dx
