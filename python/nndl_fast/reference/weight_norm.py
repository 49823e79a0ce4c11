"""Weight normalisation (1.55), NumPy float64 reference of :mod:`nndl_fast.norm.weight_norm`.

    W_i = g_i · v_i / ‖v_i‖                                   (1.55), row i = v[i]
    v̂_i = v_i / ‖v_i‖
    ∂L/∂g_i = ∂L/∂W_i · v̂_i
    ∂L/∂v_i = (g_i / ‖v_i‖) · (∂L/∂W_i − (∂L/∂W_i · v̂_i) v̂_i)

A zero row (‖v_i‖ = 0) gives NaN, as 0/0 does.
"""

from __future__ import annotations

import numpy as np

__all__ = ["weight_norm", "weight_norm_backward"]


def _rows(a: np.ndarray, rows: int) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(rows, -1)


def weight_norm(v: np.ndarray, g: np.ndarray) -> np.ndarray:
    """W = g_i v_i / ‖v_i‖ per row of v, in float64, shaped like v."""
    v = np.asarray(v, dtype=np.float64)
    rows = v.shape[0]
    v2 = _rows(v, rows)
    g = np.asarray(g, dtype=np.float64).reshape(rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.sqrt(np.sum(v2 * v2, axis=1))  # ‖v_i‖
        w = g[:, None] * v2 / norm[:, None]  # (1.55)
    return w.reshape(v.shape)


def weight_norm_backward(
    grad_w: np.ndarray, v: np.ndarray, g: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(∂L/∂v shaped like v, ∂L/∂g of shape (rows,)), in float64."""
    v = np.asarray(v, dtype=np.float64)
    rows = v.shape[0]
    v2 = _rows(v, rows)
    dw = _rows(grad_w, rows)
    g = np.asarray(g, dtype=np.float64).reshape(rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.sqrt(np.sum(v2 * v2, axis=1))  # ‖v_i‖
        v_hat = v2 / norm[:, None]  # v̂_i
        grad_g = np.sum(dw * v_hat, axis=1)  # ∂L/∂W_i · v̂_i
        grad_v = (g / norm)[:, None] * (dw - grad_g[:, None] * v_hat)
    return grad_v.reshape(v.shape), grad_g
