"""Batch normalisation (1.43–1.48) in plain NumPy float64: the oracle of nndl_fast.norm.batch_norm.

Every function takes x as (N, C), (N, C, spatial...) or, with channels_last, (N, spatial..., C);
per-channel arrays have shape (C,). Statistics are taken over every axis but the channel axis.
"""

from __future__ import annotations

import numpy as np

__all__ = ["batch_norm_backward", "batch_norm_forward"]


def _channel_axis(x: np.ndarray, channels_last: bool) -> int:
    return x.ndim - 1 if (channels_last and x.ndim > 2) else 1


def _bcast(v: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * x.ndim
    shape[axis] = -1
    return np.asarray(v, np.float64).reshape(shape)


def batch_norm_forward(
    x,
    gamma=None,
    beta=None,
    running_mean=None,
    running_var=None,
    *,
    training=True,
    factor=0.1,
    eps=1e-5,
    channels_last=False,
    unbiased=True,
):
    """Returns (y, mean, rstd, new_running_mean, new_running_var), all float64.

    training:  μ_B = mean(x)            (1.44)
               σ²_B = mean((x − μ_B)²)  (1.45, biased)
               x̂ = (x − μ_B)/sqrt(σ²_B + ε)   (1.46)
               y = γ ⊙ x̂ + β           (1.47–1.48)
               running ← (1 − f)·running + f·batch, the variance σ²_B·m/(m − 1) if unbiased
    inference: μ, σ² are the running averages.
    """
    x = np.asarray(x, np.float64)
    ax = _channel_axis(x, channels_last)
    red = tuple(i for i in range(x.ndim) if i != ax)
    c = x.shape[ax]
    gamma = np.ones(c) if gamma is None else np.asarray(gamma, np.float64)
    beta = np.zeros(c) if beta is None else np.asarray(beta, np.float64)
    new_rm = None if running_mean is None else np.asarray(running_mean, np.float64).copy()
    new_rv = None if running_var is None else np.asarray(running_var, np.float64).copy()
    if training:
        m = x.size // c
        mu = x.mean(axis=red)
        var = ((x - _bcast(mu, x, ax)) ** 2).mean(axis=red)
        if new_rm is not None:
            new_rm = (1 - factor) * new_rm + factor * mu
            new_rv = (1 - factor) * new_rv + factor * (var * m / (m - 1) if unbiased else var)
    else:
        mu = np.asarray(running_mean, np.float64)
        var = np.asarray(running_var, np.float64)
    rstd = 1.0 / np.sqrt(var + eps)
    x_hat = (x - _bcast(mu, x, ax)) * _bcast(rstd, x, ax)
    y = _bcast(gamma, x, ax) * x_hat + _bcast(beta, x, ax)
    return y, mu, rstd, new_rm, new_rv


def batch_norm_backward(dy, x, mean, rstd, gamma=None, *, training=True, channels_last=False):
    """Returns (dx, dgamma, dbeta) by the chain rule through (1.44)–(1.48), float64.

    dβ = Σ dy,  dγ = Σ dy ⊙ x̂,  dx̂ = dy ⊙ γ.
    training (μ_B, σ²_B depend on x):
        dσ² = Σ dx̂ ⊙ (x − μ) · (−½)(σ² + ε)^(−3/2)
        dμ  = Σ dx̂ · (−1/sqrt(σ² + ε)) + dσ² · mean(−2(x − μ))
        dx  = dx̂ / sqrt(σ² + ε) + dσ² · 2(x − μ)/m + dμ/m
    inference (fixed statistics): dx = dx̂ / sqrt(σ² + ε).
    """
    dy = np.asarray(dy, np.float64)
    x = np.asarray(x, np.float64)
    ax = _channel_axis(x, channels_last)
    red = tuple(i for i in range(x.ndim) if i != ax)
    c = x.shape[ax]
    m = x.size // c if c else 0
    gamma = np.ones(c) if gamma is None else np.asarray(gamma, np.float64)
    xmu = x - _bcast(mean, x, ax)
    inv = _bcast(rstd, x, ax)
    x_hat = xmu * inv
    dbeta = dy.sum(axis=red)
    dgamma = (dy * x_hat).sum(axis=red)
    dx_hat = dy * _bcast(gamma, x, ax)
    if not training:
        return dx_hat * inv, dgamma, dbeta
    dvar = (dx_hat * xmu).sum(axis=red) * -0.5 * np.asarray(rstd, np.float64) ** 3
    dmu = (dx_hat * -inv).sum(axis=red) + dvar * (-2.0 * xmu).mean(axis=red)
    dx = dx_hat * inv + _bcast(dvar, x, ax) * 2.0 * xmu / m + _bcast(dmu, x, ax) / m
    return dx, dgamma, dbeta
