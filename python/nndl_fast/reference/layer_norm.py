"""Layer normalisation (1.49–1.52) in plain NumPy float64: the oracle of nndl_fast.norm.layer_norm.

x has shape (*lead, *block, *trail); statistics per index of the other axes over a contiguous
block of axes: the trailing ``normalized_ndim`` ones (torch), or ``axes`` (Keras's axis, ONNX's
axis..ndim − 1). γ and β have the block's shape or one that broadcasts to it (NumPy's rule).
"""

from __future__ import annotations

import numpy as np

__all__ = ["layer_norm_backward", "layer_norm_forward"]


def _axes(x: np.ndarray, normalized_ndim: int | None, axes) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(x.ndim - int(normalized_ndim or 0), x.ndim))
    return tuple(sorted(a % x.ndim for a in np.atleast_1d(axes)))


def _param(p, x: np.ndarray, ax: tuple[int, ...]) -> np.ndarray:
    """γ or β broadcast to the block, with 1s for the axes after it."""
    block = tuple(x.shape[a] for a in ax)
    return np.broadcast_to(np.asarray(p, np.float64), block).reshape(block + (1,) * (x.ndim - 1 - ax[-1]))


def layer_norm_forward(x, normalized_ndim=None, gamma=None, beta=None, *, eps=1e-5, axes=None):
    """Returns (y, mean, rstd), float64; mean and rstd have the shape of x without the block.

    μ = mean(z)                 (1.50)
    σ² = mean((z − μ)²)         (1.51)
    ẑ = (z − μ)/sqrt(σ² + ε) ⊙ γ + β   (1.52)
    """
    x = np.asarray(x, np.float64)
    ax = _axes(x, normalized_ndim, axes)
    mu = x.mean(axis=ax, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=ax, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    y = (x - mu) * rstd
    if gamma is not None:
        y = y * _param(gamma, x, ax)
    if beta is not None:
        y = y + _param(beta, x, ax)
    return y, mu.squeeze(ax), rstd.squeeze(ax)


def _sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """g (the block's shape) summed over the axes along which `shape` broadcasts to it."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    return g.sum(axis=tuple(i for i, s in enumerate(shape) if s == 1), keepdims=True).reshape(shape)


def layer_norm_backward(dy, x, mean, rstd, normalized_ndim=None, gamma=None, *, axes=None):
    """Returns (dx, dgamma, dbeta), float64, by the chain rule through (1.50)–(1.52); dgamma
    has gamma's shape (the block's without gamma), dbeta the block's.

    g = dy ⊙ γ;  dσ² = Σ g ⊙ (z − μ) · (−½) rstd³;  dμ = −Σ g · rstd + dσ² · mean(−2(z − μ));
    dz = g · rstd + dσ² · 2(z − μ)/D + dμ/D;  dγ = Σ_rows dy ⊙ ẑ;  dβ = Σ_rows dy.
    """
    dy = np.asarray(dy, np.float64)
    x = np.asarray(x, np.float64)
    ax = _axes(x, normalized_ndim, axes)
    other = tuple(i for i in range(x.ndim) if i not in ax)
    d = int(np.prod([x.shape[a] for a in ax]))
    mu = np.expand_dims(np.asarray(mean, np.float64), ax)
    rs = np.expand_dims(np.asarray(rstd, np.float64), ax)
    xmu = x - mu
    x_hat = xmu * rs
    g = dy if gamma is None else dy * _param(gamma, x, ax)
    dvar = (g * xmu).sum(axis=ax, keepdims=True) * -0.5 * rs**3
    dmu = (-g * rs).sum(axis=ax, keepdims=True) + dvar * (-2.0 * xmu).mean(axis=ax, keepdims=True)
    dx = g * rs + dvar * 2.0 * xmu / d + dmu / d
    dgamma = (dy * x_hat).sum(axis=other)
    dbeta = dy.sum(axis=other)
    if gamma is not None:
        dgamma = _sum_to(dgamma, np.shape(gamma))
    return dx, dgamma, dbeta
