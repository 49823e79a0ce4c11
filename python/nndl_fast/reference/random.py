"""NumPy reference of the random fills (nndl_fast.random), line for line with its docstring:
the counter → element map, the uniforms built from the Philox words, Box–Muller and the
inverse normal CDF, all in float64 and rounded once. The oracle of tests/test_random.py.

Uniform fills give the kernels' bits exactly; the normal fills use libm's log, sin and cos
in double (the kernels use their own, simd/vmath.hpp, and float32 lanes for float32), so they
agree to the ulps that nndl_fast.random states; the truncated normal uses libm's log in Wichura's AS241.
"""

from __future__ import annotations

import math

import numpy as np

from .dropout import philox4x32_10

__all__ = [
    "normal",
    "sincos2pi",
    "truncated_normal",
    "uniform",
    "words",
]

LO = np.uint64(0xFFFFFFFF)


def words(blocks: int, seed: int, offset: int) -> np.ndarray:
    """(4, 16·blocks) uint32: column j is Philox4x32-10 of counter (lo32(j), hi32(j),
    lo32(offset), hi32(offset)) under key (lo32(seed), hi32(seed))."""
    j = np.arange(16 * blocks, dtype=np.uint64)
    ctr = np.stack([j & LO, j >> np.uint64(32), np.full_like(j, offset & 0xFFFFFFFF), np.full_like(j, offset >> 32)])
    return philox4x32_10(ctr, (seed & 0xFFFFFFFF, seed >> 32))


def _blocks(n: int, dtype) -> tuple[int, int]:
    per = 64 if np.dtype(dtype) == np.float32 else 32
    return per, -(-n // per)


def _f32_words(n: int, seed: int, offset: int) -> np.ndarray:
    """(blocks, 4, 16) words: [b, w, l] is word w of counter 16·b + l, element 64·b + 16·w + l."""
    _, blocks = _blocks(n, np.float32)
    return words(blocks, seed, offset).reshape(4, blocks, 16).transpose(1, 0, 2)


def _f64_pairs(n: int, seed: int, offset: int) -> np.ndarray:
    """(blocks, 4, 16) float64 words as uint64, for the float64 layout (element 32·b + 16·h + l)."""
    _, blocks = _blocks(n, np.float64)
    return words(blocks, seed, offset).reshape(4, blocks, 16).transpose(1, 0, 2).astype(np.uint64)


def _bits53(a, b):
    return ((a >> np.uint64(5)) * np.uint64(2**26) + (b >> np.uint64(6))).astype(np.float64)


def _bits52(a, b):
    return ((a >> np.uint64(6)) * np.uint64(2**26) + (b >> np.uint64(6))).astype(np.float64)


def sincos2pi(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sin(2πu), cos(2πu) in double, reduced exactly in quarter turns: t = 4u, k = round(t),
    x = (t − k)·π/2, then the quadrant k mod 4 (as the kernels do, so the reference's own
    error stays under an ulp where cos or sin is near 0)."""
    t = 4.0 * u
    k = np.rint(t)
    x = (t - k) * (math.pi / 2)
    q = k.astype(np.int64) & 3
    s, c = np.sin(x), np.cos(x)
    sin = np.choose(q, [s, c, -s, -c])
    cos = np.choose(q, [c, -s, -c, s])
    return sin, cos


def uniform(n: int, dtype, low: float, high: float, seed: int, offset: int) -> np.ndarray:
    """x_i = low + (high − low)·u_i, u_i = (w >> 8)·2⁻²⁴ (float32) or 53 bits·2⁻⁵³ (float64)."""
    if np.dtype(dtype) == np.float32:
        w = _f32_words(n, seed, offset).reshape(-1)[:n]
        u = (w >> np.uint32(8)).astype(np.float64) * 2.0**-24
    else:
        w = _f64_pairs(n, seed, offset)  # element 16·h + l of a block: words (2h, 2h + 1)
        u = np.stack([_bits53(w[:, 0], w[:, 1]), _bits53(w[:, 2], w[:, 3])], axis=1).reshape(-1)[:n] * 2.0**-53
    return (low + (high - low) * u).astype(dtype)


def _box_muller(u1: np.ndarray, u2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = np.sqrt(-2.0 * np.log(u1))
    s, c = sincos2pi(u2)
    return r * c, r * s


def normal(n: int, dtype, mean: float, std: float, seed: int, offset: int) -> np.ndarray:
    """Box–Muller: z = √(−2 ln u1)·cos(2π u2) and √(−2 ln u1)·sin(2π u2), x = mean + std·z.

    float32: u1 = 1 − w·2⁻³² and u2 = (w' >> 8)·2⁻²⁴ from words (w & 2, w | 1) of the element's counter;
    float64: u1 = 1 − k·2⁻⁵³ and u2 = k'·2⁻⁵³ from words (0, 1) and (2, 3). float32 takes mean
    and std rounded to float32 (the kernel computes x = fma(std, z, mean) in float32).
    """
    if np.dtype(dtype) == np.float32:
        w = _f32_words(n, seed, offset)  # (blocks, 4, 16)
        u1 = 1.0 - w[:, 0::2].astype(np.float64) * 2.0**-32
        u2 = (w[:, 1::2] >> np.uint32(8)).astype(np.float64) * 2.0**-24
        zc0, zs0 = _box_muller(u1[:, 0], u2[:, 0])
        zc1, zs1 = _box_muller(u1[:, 1], u2[:, 1])
        z = np.stack([zc0, zs0, zc1, zs1], axis=1).reshape(-1)[:n]
    else:
        w = _f64_pairs(n, seed, offset)
        zc, zs = _box_muller(1.0 - _bits53(w[:, 0], w[:, 1]) * 2.0**-53, _bits53(w[:, 2], w[:, 3]) * 2.0**-53)
        z = np.stack([zc, zs], axis=1).reshape(-1)[:n]
    if np.dtype(dtype) == np.float32:  # the kernel's fma(std, z, mean) in float32, here on z in double
        mean, std = float(np.float32(mean)), float(np.float32(std))
    return (mean + std * z).astype(dtype)


def ndtri(p: np.ndarray) -> np.ndarray:
    """Φ⁻¹(p) by Wichura's AS241 (PPND16)."""
    q = p - 0.5
    r = 0.180625 - q * q
    num = (
        (
            (
                (
                    (
                        ((2.5090809287301226727e3 * r + 3.3430575583588128105e4) * r + 6.7265770927008700853e4) * r
                        + 4.5921953931549871457e4
                    )
                    * r
                    + 1.3731693765509461125e4
                )
                * r
                + 1.9715909503065514427e3
            )
            * r
            + 1.3314166789178437745e2
        )
        * r
        + 3.3871328727963666080e0
    ) * q
    den = (
        (
            (
                (
                    ((5.2264952788528545610e3 * r + 2.8729085735721942674e4) * r + 3.9307895800092710610e4) * r
                    + 2.1213794301586595867e4
                )
                * r
                + 5.3941960214247511077e3
            )
            * r
            + 6.8718700749205790830e2
        )
        * r
        + 4.2313330701600911252e1
    ) * r + 1.0
    central = num / den
    tp = np.minimum(np.where(q <= 0, p, 1.0 - p), 0.5)
    rt = np.sqrt(-np.log(tp))
    near = rt <= 5.0
    t = np.where(near, rt - 1.6, rt - 5.0)
    nn = [
        7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
        1.27045825245236838258e0, 3.64784832476320460504e0, 5.76949722146069140550e0,
        4.63033784615654529590e0, 1.42343711074968357734e0,
    ]  # fmt: skip
    nf = [
        2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
        2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e0,
        5.46378491116411436990e0, 6.65790464350110377720e0,
    ]  # fmt: skip
    dn = [
        1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
        1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e0,
        2.05319162663775882187e0, 1.0,
    ]  # fmt: skip
    df = [
        2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
        7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
        5.99832206555887937690e-1, 1.0,
    ]  # fmt: skip
    num1 = np.zeros_like(t)
    den1 = np.zeros_like(t)
    for a, b, c, d in zip(nn, nf, dn, df):
        num1 = num1 * t + np.where(near, a, b)
        den1 = den1 * t + np.where(near, c, d)
    tail = num1 / den1
    return np.where(np.abs(q) <= 0.425, central, np.where(q < 0, -tail, tail))


def normal_cdf(z: float) -> float:
    """Φ(z) = erfc(−z/√2)/2 (1/√2 as the driver rounds it, so p is the kernels' to the bit)."""
    return 0.5 * math.erfc(-z * 0.70710678118654752440)


def truncated_normal(
    n: int, dtype, mean: float, std: float, low: float, high: float, seed: int, offset: int
) -> np.ndarray:
    """Inverse CDF: z = Φ⁻¹(Φ(a) + u·(Φ(b) − Φ(a))) clamped to [a, b], x = mean + std·z, with
    (a, b) = (low, high), or (−high, −low) and x = mean − std·z when low > 0 (the mirror);
    u = (w + ½)·2⁻³² (float32, word w) or (k + ½)·2⁻⁵² (float64, 52 bits of two words)."""
    mirror = low > 0.0
    a, b = (-high, -low) if mirror else (low, high)
    scale = -std if mirror else std
    p_lo = normal_cdf(a)
    p_range = normal_cdf(b) - p_lo
    if np.dtype(dtype) == np.float32:
        w = _f32_words(n, seed, offset).reshape(-1)[:n]
        u = (w.astype(np.float64) + 0.5) * 2.0**-32
    else:
        w = _f64_pairs(n, seed, offset)
        u = (np.stack([_bits52(w[:, 0], w[:, 1]), _bits52(w[:, 2], w[:, 3])], axis=1).reshape(-1)[:n] + 0.5) * 2.0**-52
    z = np.clip(ndtri(p_lo + u * p_range), a, b)
    return (mean + scale * z).astype(dtype)
