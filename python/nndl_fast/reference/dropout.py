"""NumPy reference of dropout (1.65) and its Philox4x32-10 masks, line for line with
nndl_fast.dropout: the oracle of tests/test_dropout.py. Slow on purpose (uint64 arrays).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "noise_dropout",
    "dropout",
    "dropout_backward",
    "mask",
    "philox4x32_10",
    "threshold",
    "uniform_words",
    "variational_dropout",
]

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = 0x9E3779B9, 0xBB67AE85
LO = np.uint64(0xFFFFFFFF)


def philox4x32_10(ctr: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """ctr: (4, n) uint32 counters; key: two uint32 words. Returns (4, n) uint32 words."""
    c = [np.asarray(w, np.uint64) for w in ctr]
    k0, k1 = int(key[0]), int(key[1])
    for _ in range(10):
        p0 = M0 * c[0]  # (hi0, lo0) = M0·c0
        p1 = M1 * c[2]  # (hi1, lo1) = M1·c2
        c = [
            (p1 >> np.uint64(32)) ^ c[1] ^ np.uint64(k0),  # hi1 ^ c1 ^ k0
            p1 & LO,  # lo1
            (p0 >> np.uint64(32)) ^ c[3] ^ np.uint64(k1),  # hi0 ^ c3 ^ k1
            p0 & LO,  # lo0
        ]
        k0, k1 = (k0 + W0) & 0xFFFFFFFF, (k1 + W1) & 0xFFFFFFFF
    return np.stack(c).astype(np.uint32)


def uniform_words(n: int, seed: int, offset: int) -> np.ndarray:
    """u_i for i < n: i = 64·b + 16·w + l draws word w of counter j = 16·b + l."""
    blocks = -(-n // 64)
    j = np.arange(16 * blocks, dtype=np.uint64)
    ctr = np.stack(
        [
            j & LO,
            j >> np.uint64(32),
            np.full_like(j, offset & 0xFFFFFFFF),
            np.full_like(j, offset >> 32),
        ]
    )
    words = philox4x32_10(ctr, (seed & 0xFFFFFFFF, seed >> 32))  # (4, 16·blocks)
    return words.reshape(4, blocks, 16).transpose(1, 0, 2).reshape(-1)[:n]


def threshold(keep: float) -> int:
    """kept ⇔ u ≤ threshold, threshold = round(p·2³²) − 1."""
    return min(max(int(math.floor(keep * 2.0**32 + 0.5)), 1), 2**32) - 1


def mask(n: int, keep: float, seed: int, offset: int) -> np.ndarray:
    """m_i ~ Bernoulli(p): the bool mask of n elements."""
    return uniform_words(n, seed, offset) <= np.uint32(threshold(keep))


def dropout(x: np.ndarray, keep: float, convention: str, training: bool, seed: int, offset: int):
    """(1.65): training y = m ⊙ x (chapter) or m ⊙ x / p (torch); test y = p·x or x.

    Returns (y, m) — m is None at test time. y = x·(m·s) in x's dtype, s rounded once.
    """
    if not training:
        return x * x.dtype.type(keep if convention == "chapter" else 1.0), None
    m = mask(x.size, keep, seed, offset).reshape(x.shape)
    s = x.dtype.type(1.0 if convention == "chapter" else 1.0 / keep)
    with np.errstate(invalid="ignore"):  # a dropped ±Inf gives NaN (Inf·0), as the kernel
        return x * np.where(m, s, x.dtype.type(0)), m


def dropout_backward(dy: np.ndarray, m: np.ndarray | None, keep: float, convention: str) -> np.ndarray:
    """∂L/∂x = dy · m · s in training; dy · (p or 1) at test time (m is None); dy = ∂L/∂y."""
    t = dy.dtype.type
    if m is None:
        return dy * t(keep if convention == "chapter" else 1.0)
    with np.errstate(invalid="ignore"):
        return dy * np.where(m, t(1.0 if convention == "chapter" else 1.0 / keep), t(0))


def variational_dropout(x: np.ndarray, keep: float, convention: str, layout: str, seed: int, offset: int):
    """One mask m[n, f] for all t: y[t, n, f] (TNF) or y[n, t, f] (NTF) = x·m[n, f]·s."""
    n_, f_ = (x.shape[1], x.shape[2]) if layout == "TNF" else (x.shape[0], x.shape[2])
    m = mask(n_ * f_, keep, seed, offset).reshape(n_, f_)
    s = x.dtype.type(1.0 if convention == "chapter" else 1.0 / keep)
    mult = np.where(m, s, x.dtype.type(0))
    with np.errstate(invalid="ignore"):
        y = x * (mult[None, :, :] if layout == "TNF" else mult[:, None, :])
    return y, m


def noise_dropout(x: np.ndarray, keep: float, convention: str, noise_shape: tuple[int, ...], seed: int, offset: int):
    """A mask m of ``noise_shape`` (each entry x's size or 1), broadcast to x: y = x·m·s.

    Mask element k, in C order over noise_shape, is element k of the stream (Keras's
    noise_shape; torch's Dropout2d is (N, C, 1, 1)). Returns (y, m) with m of noise_shape.
    """
    m = mask(math.prod(noise_shape), keep, seed, offset).reshape(noise_shape)
    s = x.dtype.type(1.0 if convention == "chapter" else 1.0 / keep)
    with np.errstate(invalid="ignore"):
        return x * np.where(m, s, x.dtype.type(0)), m
