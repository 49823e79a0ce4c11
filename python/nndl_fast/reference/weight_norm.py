"""Weight normalisation (1.55), NumPy float64 reference of :mod:`nndl_fast.norm.weight_norm`.

    W_i = g_i · v_i / ‖v_i‖                                   (1.55), row i = v[i]
    v̂_i = v_i / ‖v_i‖
    dg_i = dy_i · v̂_i                                         dy = ∂L/∂W, dg = ∂L/∂g
    dv_i = (g_i / ‖v_i‖) · (dy_i − dg_i v̂_i)                 dv = ∂L/∂v

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


def weight_norm_backward(dy: np.ndarray, v: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dv shaped like v, dg of shape (rows,)) from dy = ∂L/∂W, in float64."""
    v = np.asarray(v, dtype=np.float64)
    rows = v.shape[0]
    v2 = _rows(v, rows)
    dy2 = _rows(dy, rows)
    g = np.asarray(g, dtype=np.float64).reshape(rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = np.sqrt(np.sum(v2 * v2, axis=1))  # ‖v_i‖
        v_hat = v2 / norm[:, None]  # v̂_i
        dg = np.sum(dy2 * v_hat, axis=1)  # dy_i · v̂_i
        dv = (g / norm)[:, None] * (dy2 - dg[:, None] * v_hat)
    return dv.reshape(v.shape), dg
