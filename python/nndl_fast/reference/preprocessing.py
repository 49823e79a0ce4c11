"""Data pre-processing (1.38–1.41, PCA and ZCA whitening) in plain NumPy float64, line for
line with the docstrings of :mod:`nndl_fast.preprocessing`: fit on the whole of x, then map.

Each function returns the map of x and the fitted quantities (scikit-learn's names).
"""

from __future__ import annotations

import numpy as np


def min_max_scale(x: np.ndarray, feature_range: tuple[float, float] = (0.0, 1.0)) -> tuple:
    """(1.38): x̂ = (x − min)/(max − min)·(b − a) + a; a zero range counts as 1.
    Returns (x̂, data_min, data_max)."""
    x = np.asarray(x, np.float64)
    a, b = feature_range
    data_min = x.min(axis=0)
    data_max = x.max(axis=0)
    data_range = data_max - data_min
    data_range = np.where(data_range == 0, 1.0, data_range)
    return (x - data_min) / data_range * (b - a) + a, data_min, data_max


def standardize(x: np.ndarray) -> tuple:
    """(1.39) μ = mean of x, (1.40) σ² = mean of (x − μ)², (1.41) x̂ = (x − μ)/σ; σ = 0 counts
    as 1. Returns (x̂, mean, var)."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    mean = x.sum(axis=0) / n
    var = ((x - mean) ** 2).sum(axis=0) / n
    sigma = np.where(var == 0, 1.0, np.sqrt(var))
    return (x - mean) / sigma, mean, var


def _eigen(x: np.ndarray) -> tuple:
    """Mean, and the covariance's eigenvalues (descending) and eigenvectors (columns, the
    largest |entry| of each positive)."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    mean = x.mean(axis=0)
    xc = x - mean
    cov = xc.T @ xc / (n - 1)
    lam, u = np.linalg.eigh(cov)
    lam, u = lam[::-1], u[:, ::-1]
    big = np.argmax(np.abs(u), axis=0)
    u = u * np.sign(u[big, np.arange(u.shape[1])])
    return mean, np.maximum(lam, 0.0), u


def pca_whiten(x: np.ndarray, n_components: int | None = None, eps: float = 1e-5) -> tuple:
    """x̂ = (x − μ)·U_k·diag(1/√(λ_k + ε)). Returns (x̂, mean, λ_k, U_k)."""
    mean, lam, u = _eigen(x)
    k = lam.size if n_components is None else n_components
    w = u[:, :k] / np.sqrt(lam[:k] + eps)
    return (np.asarray(x, np.float64) - mean) @ w, mean, lam[:k], u[:, :k]


def zca_whiten(x: np.ndarray, eps: float = 1e-5) -> tuple:
    """x̂ = (x − μ)·W, W = U·diag(1/√(λ + ε))·Uᵀ. Returns (x̂, mean, W)."""
    mean, lam, u = _eigen(x)
    w = u @ np.diag(1.0 / np.sqrt(lam + eps)) @ u.T
    return (np.asarray(x, np.float64) - mean) @ w, mean, w
