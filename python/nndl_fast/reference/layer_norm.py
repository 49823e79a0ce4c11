"""Layer normalisation (1.49–1.52) in plain NumPy float64: the oracle of nndl_fast.norm.layer_norm.

x has shape (*lead, *normalized_shape); statistics per lead index over the trailing dimensions.
"""

from __future__ import annotations

import numpy as np

__all__ = ["layer_norm_backward", "layer_norm_forward"]


def _axes(x: np.ndarray, normalized_ndim: int) -> tuple[int, ...]:
    return tuple(range(x.ndim - normalized_ndim, x.ndim))


def layer_norm_forward(x, normalized_ndim, gamma=None, beta=None, *, eps=1e-5):
    """Returns (y, mean, rstd), float64; mean and rstd have shape x.shape[:-normalized_ndim].

    μ = mean(z)                 (1.50)
    σ² = mean((z − μ)²)         (1.51)
    ẑ = (z − μ)/sqrt(σ² + ε) ⊙ γ + β   (1.52)
    """
    x = np.asarray(x, np.float64)
    ax = _axes(x, normalized_ndim)
    mu = x.mean(axis=ax, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=ax, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    y = (x - mu) * rstd
    if gamma is not None:
        y = y * np.asarray(gamma, np.float64)
    if beta is not None:
        y = y + np.asarray(beta, np.float64)
    lead = x.shape[: x.ndim - normalized_ndim]
    return y, mu.reshape(lead), rstd.reshape(lead)


def layer_norm_backward(dy, x, mean, rstd, normalized_ndim, gamma=None):
    """Returns (dx, dgamma, dbeta), float64, by the chain rule through (1.50)–(1.52).

    g = dy ⊙ γ;  dσ² = Σ g ⊙ (z − μ) · (−½) rstd³;  dμ = −Σ g · rstd + dσ² · mean(−2(z − μ));
    dz = g · rstd + dσ² · 2(z − μ)/D + dμ/D;  dγ = Σ_rows dy ⊙ ẑ;  dβ = Σ_rows dy.
    """
    dy = np.asarray(dy, np.float64)
    x = np.asarray(x, np.float64)
    ax = _axes(x, normalized_ndim)
    lead_axes = tuple(range(x.ndim - normalized_ndim))
    d = int(np.prod(x.shape[x.ndim - normalized_ndim :]))
    shape = x.shape[: x.ndim - normalized_ndim] + (1,) * normalized_ndim
    mu = np.asarray(mean, np.float64).reshape(shape)
    rs = np.asarray(rstd, np.float64).reshape(shape)
    xmu = x - mu
    x_hat = xmu * rs
    g = dy if gamma is None else dy * np.asarray(gamma, np.float64)
    dvar = (g * xmu).sum(axis=ax, keepdims=True) * -0.5 * rs**3
    dmu = (-g * rs).sum(axis=ax, keepdims=True) + dvar * (-2.0 * xmu).mean(axis=ax, keepdims=True)
    dx = g * rs + dvar * 2.0 * xmu / d + dmu / d
    dgamma = (dy * x_hat).sum(axis=lead_axes)
    dbeta = dy.sum(axis=lead_axes)
    return dx, dgamma, dbeta
