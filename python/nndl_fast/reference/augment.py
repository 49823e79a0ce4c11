"""NumPy reference of nndl_fast.augment, line for line with its docstrings: the oracle of
tests/test_augment.py. Plain NumPy (one image at a time, whole-image index arithmetic).

Coordinates: x the column, y the row, pixel (x, y) sampled at its centre, the integer point
(x, y). A matrix maps an output pixel to the input point it samples:
    xs = m00·x + (m01·y + m02),   ys = m10·x + (m11·y + m12)     (in float64)
"""

from __future__ import annotations

import math

import numpy as np

from .dropout import uniform_words

__all__ = ["affine", "erase", "gather", "integer_map", "noise", "remap"]

FAR = 2.0**30  # coordinates are clamped to ±2^30 before indexing


def remap(i: np.ndarray, n: int, padding_mode: str) -> np.ndarray:
    """An index array under edge ("edge") or mirror ("reflect": … 1 0 | 0 1 … | n−1 n−2 …) padding."""
    if padding_mode == "edge":
        return np.clip(i, 0, n - 1)
    r = np.mod(i, 2 * n)
    return np.where(r < n, r, 2 * n - 1 - r)


def _to_pixel(v: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float32 values to the image dtype: uint8 rounds half to even and saturates."""
    if dtype == np.uint8:
        return np.rint(np.clip(v, 0, 255)).astype(np.uint8)
    return v.astype(np.float32)


def integer_map(m: np.ndarray) -> bool:
    """True for a flip and/or integer shift (every output pixel is exactly one input pixel)."""
    return bool(
        abs(m[0, 0]) == 1
        and abs(m[1, 1]) == 1
        and m[0, 1] == 0
        and m[1, 0] == 0
        and abs(m[0, 2]) < FAR
        and abs(m[1, 2]) < FAR
        and m[0, 2] == np.floor(m[0, 2])
        and m[1, 2] == np.floor(m[1, 2])
    )


def _sample(img: np.ndarray, cx: np.ndarray, cy: np.ndarray, fill: np.ndarray, padding_mode: str) -> np.ndarray:
    """img (C, H, W) float32 at integer points (cx, cy): (C, ...) with the padding rule."""
    _, h, w = img.shape
    if padding_mode == "constant":
        inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        v = img[:, np.clip(cy, 0, h - 1), np.clip(cx, 0, w - 1)]
        return np.where(inside, v, fill.reshape((-1,) + (1,) * cx.ndim))
    return img[:, remap(cy, h, padding_mode), remap(cx, w, padding_mode)]


def affine(
    images: np.ndarray,
    matrices: np.ndarray,
    *,
    interpolation: str = "bilinear",
    fill=0.0,
    padding_mode: str = "constant",
    layout: str = "NCHW",
) -> np.ndarray:
    """Each image warped by its 2×3 matrix (output pixel → input point)."""
    cl = layout == "NHWC"
    x_in = np.moveaxis(images, 3, 1) if cl else images
    n, c, h, w = x_in.shape
    fill_c = np.broadcast_to(np.asarray(fill, np.float32), (c,))
    out = np.empty_like(x_in)
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    for i in range(n):
        m = np.asarray(matrices[i], np.float64)
        img = x_in[i].astype(np.float32)
        if integer_map(m):
            cx = (m[0, 0] * xx + m[0, 2]).astype(np.int64)
            cy = (m[1, 1] * yy + m[1, 2]).astype(np.int64)
            v = _sample(img, cx, cy, fill_c, padding_mode)
            out[i] = _to_pixel(v, images.dtype)
            continue
        xs = np.clip(m[0, 0] * xx + (m[0, 1] * yy + m[0, 2]), -FAR, FAR)
        ys = np.clip(m[1, 0] * xx + (m[1, 1] * yy + m[1, 2]), -FAR, FAR)
        if interpolation == "nearest":
            v = _sample(img, np.rint(xs).astype(np.int64), np.rint(ys).astype(np.int64), fill_c, padding_mode)
        else:
            x0, y0 = np.floor(xs), np.floor(ys)
            fx, fy = (xs - x0).astype(np.float32), (ys - y0).astype(np.float32)
            ix, iy = x0.astype(np.int64), y0.astype(np.int64)
            one = np.float32(1)
            w00, w01, w10, w11 = (one - fy) * (one - fx), (one - fy) * fx, fy * (one - fx), fy * fx
            p00 = _sample(img, ix, iy, fill_c, padding_mode)
            p01 = _sample(img, ix + 1, iy, fill_c, padding_mode)
            p10 = _sample(img, ix, iy + 1, fill_c, padding_mode)
            p11 = _sample(img, ix + 1, iy + 1, fill_c, padding_mode)
            v = ((w00 * p00 + w01 * p01) + w10 * p10) + w11 * p11
        out[i] = _to_pixel(v, images.dtype)
    return np.moveaxis(out, 1, 3) if cl else out


def gather(
    images: np.ndarray,
    maps: np.ndarray,
    size: tuple[int, int],
    *,
    fill=0.0,
    padding_mode: str = "constant",
    layout: str = "NCHW",
) -> np.ndarray:
    """out[i, y, x] = images[i, sy0 + sdy·y, sx0 + sdx·x], maps[i] = (sx0, sdx, sy0, sdy)."""
    cl = layout == "NHWC"
    x_in = np.moveaxis(images, 3, 1) if cl else images
    n, c, _, _ = x_in.shape
    oh, ow = size
    fill_c = np.broadcast_to(np.asarray(fill, np.float32), (c,))
    out = np.empty((n, c, oh, ow), images.dtype)
    yy, xx = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    for i in range(n):
        sx0, sdx, sy0, sdy = (int(v) for v in maps[i])
        v = _sample(x_in[i].astype(np.float32), sx0 + sdx * xx, sy0 + sdy * yy, fill_c, padding_mode)
        out[i] = _to_pixel(v, images.dtype)
    return np.moveaxis(out, 1, 3) if cl else out


def erase(images: np.ndarray, boxes: np.ndarray, *, fill=0.0, layout: str = "NCHW") -> np.ndarray:
    """A copy of images with boxes[i] = (top, left, height, width) set to fill (per channel)."""
    out = np.moveaxis(images.copy(), 3, 1) if layout == "NHWC" else images.copy()
    c = out.shape[1]
    fill_c = _to_pixel(np.broadcast_to(np.asarray(fill, np.float32), (c,)), images.dtype)
    for i, (top, left, hh, ww) in enumerate(np.asarray(boxes, np.int64)):
        out[i, :, top : top + hh, left : left + ww] = fill_c[:, None, None]
    return np.moveaxis(out, 1, 3) if layout == "NHWC" else out


def noise(shape: tuple[int, ...], kind: str, seed: int, offset: int, *, std: float = 0.0) -> np.ndarray:
    """The float32 noise n_i of element i (C order): the words of the float32 random fills
    (i = 64·b + 16·w + l ↔ word w of counter 16·b + l). Uniform: loc + scale·(w >> 8)·2⁻²⁴
    with (loc, scale) = (−a, 2a), a = std·√3. Gaussian: Box–Muller on the words (2p, 2p + 1)
    of each counter (u1 = 1 − w·2⁻³², u2 = (w' >> 8)·2⁻²⁴), the cosine to element 32p + l and
    the sine to 32p + 16 + l, times std rounded to float32, with NumPy's log/sin/cos in double
    (the kernel's float32 transform agrees to 2 ulp, nndl_fast.random)."""
    n = math.prod(shape)
    blocks = -(-n // 64)
    w = uniform_words(64 * blocks, seed, offset).astype(np.float64).reshape(blocks, 4, 16)
    if kind == "uniform":
        half = std * math.sqrt(3.0)
        u = np.floor(w / 256.0) * 2.0**-24
        z = (-half + 2.0 * half * u).reshape(-1)
    else:
        z = np.empty((blocks, 4, 16))
        for p in range(2):
            u1 = 1.0 - w[:, 2 * p] * 2.0**-32
            u2 = np.floor(w[:, 2 * p + 1] / 256.0) * 2.0**-24
            r = np.sqrt(-2.0 * np.log(u1))
            std32 = float(np.float32(std))
            z[:, 2 * p] = std32 * (r * np.cos(2 * np.pi * u2))
            z[:, 2 * p + 1] = std32 * (r * np.sin(2 * np.pi * u2))
        z = z.reshape(-1)
    return z[:n].astype(np.float32).reshape(shape)


def add_noise(images: np.ndarray, n: np.ndarray) -> np.ndarray:
    """images + n in float32; uint8 rounds half to even and saturates."""
    return _to_pixel(images.astype(np.float32) + n, images.dtype)


def salt_pepper(images: np.ndarray, amount: float, seed: int, offset: int) -> np.ndarray:
    """Pepper (0) where the element's word w < round(amount/2·2³²), salt (255 or 1.0) where
    w ≥ 2³² − that, else the pixel."""
    w = uniform_words(images.size, seed, offset).astype(np.int64).reshape(images.shape)
    pepper = min(int(math.floor(amount / 2 * 2.0**32 + 0.5)), 2**31)
    top = 255 if images.dtype == np.uint8 else 1.0
    return np.where(w < pepper, 0, np.where(w >= 2**32 - pepper, top, images)).astype(images.dtype)
