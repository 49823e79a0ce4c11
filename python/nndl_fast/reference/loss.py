"""NumPy float64 reference of nndl_fast.loss, line for line with its docstring's formulas.

Written for clarity: the oracle of tests/test_loss.py and the benchmark's NumPy baseline.
Each function returns (loss, gradient): the gradient of the returned loss (for
reduction="none", of the sum of the row losses) with respect to the (student's) logits.
"""

from __future__ import annotations

import numpy as np

__all__ = ["distillation_loss", "log_softmax", "smoothed_targets", "softmax_cross_entropy"]


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax of each row, shifted by the row max (−inf entries give −inf)."""
    z = np.asarray(z, np.float64)
    m = np.max(z, axis=1, keepdims=True)
    return (z - m) - np.log(np.sum(np.exp(z - m), axis=1, keepdims=True))


def smoothed_targets(target: np.ndarray, K: int, label_smoothing: float, convention: str) -> np.ndarray:
    """q̃ (N, K): a class index y (one-hot) or a probability row q, smoothed by ε.

    chapter: (1 − ε)·q + ε·(1 − q)/(K − 1) (no other class when K = 1); torch: (1 − ε)·q + ε/K.
    """
    eps = float(label_smoothing)
    target = np.asarray(target)
    if target.ndim == 1:
        q = np.zeros((target.shape[0], K))
        q[np.arange(target.shape[0]), np.clip(target, 0, K - 1)] = 1.0
    else:
        q = np.asarray(target, np.float64)
    if convention == "chapter":
        off = eps / (K - 1) if K > 1 else 0.0
        return (1.0 - eps) * q + off * (1.0 - q)
    return (1.0 - eps) * q + eps / K


def _weighted_ce(logp: np.ndarray, a: np.ndarray) -> np.ndarray:
    """−Σ_j a_j·log p_j per row, a zero a_j adding 0 even against log p_j = −inf."""
    with np.errstate(invalid="ignore"):
        return -np.sum(np.where(a != 0, a * logp, 0.0), axis=1)


def softmax_cross_entropy(
    logits: np.ndarray,
    target: np.ndarray,
    *,
    label_smoothing: float = 0.0,
    convention: str = "chapter",
    reduction: str = "mean",
    ignore_index: int = -100,
    weight: np.ndarray | None = None,
) -> tuple[float | np.ndarray, np.ndarray]:
    z = np.asarray(logits, np.float64)
    N, K = z.shape
    w = np.ones(K) if weight is None else np.asarray(weight, np.float64)
    target = np.asarray(target)
    index = target.ndim == 1
    keep = target != ignore_index if index else np.ones(N, bool)
    a = smoothed_targets(target, K, label_smoothing, convention) * w  # a_j = w_j·q̃_j
    a[~keep] = 0.0
    logp = log_softmax(z)
    rows = _weighted_ce(logp, a)  # ℓ = −Σ a_j log p_j
    grad = a.sum(axis=1, keepdims=True) * np.exp(logp) - a  # ∂ℓ/∂z = S·p − a
    grad[~keep] = 0.0
    if reduction == "none":
        return rows, grad
    if reduction == "sum":
        return float(rows.sum()), grad
    denom = float(np.sum(w[target[keep]])) if index else float(N)  # torch's mean
    if denom == 0:
        return 0.0, np.zeros_like(grad)
    return float(rows.sum()) / denom, grad / denom


def distillation_loss(
    student_logits: np.ndarray,
    teacher_logits: np.ndarray,
    target: np.ndarray | None = None,
    *,
    temperature: float,
    alpha: float = 0.5,
    label_smoothing: float = 0.0,
    convention: str = "chapter",
    reduction: str = "batchmean",
) -> tuple[float | np.ndarray, np.ndarray]:
    s = np.asarray(student_logits, np.float64)
    t = np.asarray(teacher_logits, np.float64)
    N, K = s.shape
    T = float(temperature)
    log_ps, log_pt = log_softmax(s / T), log_softmax(t / T)
    pt = np.exp(log_pt)
    with np.errstate(invalid="ignore"):
        kl = np.sum(np.where(pt != 0, pt * (log_pt - log_ps), 0.0), axis=1)  # KL(p_t ‖ p_s)
    rows = alpha * T * T * kl
    grad = alpha * T * (np.exp(log_ps) - pt)  # ∂/∂s of α·T²·KL
    if target is not None:
        a = smoothed_targets(target, K, label_smoothing, convention)
        logp = log_softmax(s)
        rows = rows + (1 - alpha) * _weighted_ce(logp, a)
        grad = grad + (1 - alpha) * (a.sum(axis=1, keepdims=True) * np.exp(logp) - a)
    if reduction == "none":
        return rows, grad
    if reduction == "sum":
        return float(rows.sum()), grad
    return float(rows.sum()) / N, grad / N  # batchmean
