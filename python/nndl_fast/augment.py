r"""Data augmentation (section 1.7.5 of the chapter): rotation, flips, zoom, shift and added
noise, as batched kernels — one fused warp per image, parameters from a counter-based
generator.

**Batches.** Images are (N, C, H, W) (``layout="NCHW"``, the default) or channels-last
(N, H, W, C) (``layout="NHWC"``), of dtype uint8 or float32. Results go to ``out=`` or to
a new array of the same dtype and layout; ``out`` never aliases the input (erasing and
noise alone may work in place: ``out=images``).

**Coordinates (the pixel-centre convention, torchvision's).** x is the column, y the row;
pixel (x, y) is the unit square centred on the integer point (x, y), and is sampled there.
The image centre is ((W − 1)/2, (H − 1)/2). A warp matrix M (2×3) maps each **output**
pixel to the **input** point it samples (the inverse map, as
``scipy.ndimage.affine_transform`` takes it, in (x, y) order):

.. math::
   x_s = m_{00} x + (m_{01} y + m_{02}), \qquad y_s = m_{10} x + (m_{11} y + m_{12})

computed in float64. This is the grid torchvision builds for ``F.affine`` (``grid_sample``
with ``align_corners=False``): a rotation about the image centre, a 90° rotation of a square
image, flips and integer shifts all land exactly on pixel centres.

**Sampling.** ``interpolation="nearest"`` reads the pixel at (rint(x_s), rint(y_s)) (ties
to even, as torch's ``nearbyint``). ``"bilinear"`` reads the four pixels around
(x_s, y_s), with x0 = ⌊x_s⌋, f_x = x_s − x0 (rounded to float32) and likewise in y:

.. math::
   v = ((w_{00} p_{00} + w_{01} p_{01}) + w_{10} p_{10}) + w_{11} p_{11},\quad
   w_{00} = (1-f_y)(1-f_x),\ w_{01} = (1-f_y) f_x,\ w_{10} = f_y (1-f_x),\ w_{11} = f_y f_x

in float32. A pixel outside the image reads, by ``padding_mode``: ``"constant"`` the
``fill`` value (one number, or one per channel; each outside corner of a bilinear sample
contributes fill with its weight, as torchvision's fill does), ``"edge"`` the nearest edge
pixel, ``"reflect"`` the mirror image about the edge (… 1 0 | 0 1 … W−1 | W−1 W−2 …,
scipy's ``"reflect"``). uint8 results round half to even and saturate to [0, 255];
float32 results are the formula's float32 value. A matrix that is a flip and/or an integer
shift reads exactly one pixel per output pixel, whatever the interpolation: the kernel
then copies (the identity returns the input bitwise, flips and shifts are pure gathers).
Non-finite pixels spread into the bilinear samples that touch them (as in ``grid_sample``).

**Random transforms.** :class:`RandomAffine` builds, per image, one matrix from a rotation
angle, shift, zoom and flips, and warps the batch in one pass. Parameters come from
Philox4x32-10: draw d of image i is a function of (``seed``, ``offset``, i) only — the same
batch on any thread count, SIMD target or machine, and image i's parameters do not depend
on the batch size (:func:`uniforms` gives the raw draws). The classes keep and advance
their own ``offset``, one per call (as :class:`nndl_fast.dropout.Dropout`); functional
forms need ``seed=`` and take ``offset=``. ``return_params=True`` returns
``Augmented(images, params)`` with every image's parameters.

:class:`Compose` runs steps in order, folding consecutive geometric steps into one matrix
per image before touching pixels (see its docstring). PyTorch differences are noted per
function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from . import _checks, _core

__all__ = [
    "AddNoise",
    "AffineParams",
    "Augmented",
    "Compose",
    "CropParams",
    "Cutout",
    "EraseParams",
    "FlipParams",
    "RandomAffine",
    "RandomCrop",
    "RandomErasing",
    "RandomFlip",
    "add_noise",
    "affine",
    "affine_matrices",
    "cutout",
    "random_crop",
    "random_erasing",
    "random_flip",
    "uniforms",
]

_INTERPOLATIONS = ("nearest", "bilinear")
_PADDINGS = ("constant", "edge", "reflect")
_LAYOUTS = ("NCHW", "NHWC")
_NOISE_KINDS = ("gaussian", "uniform", "salt_pepper")
_U64_MAX = 2**64 - 1


# -- results ----------------------------------------------------------------------------
class Augmented(NamedTuple):
    """A batch and the parameters that made it (``return_params=True``)."""

    images: np.ndarray
    params: Any


class AffineParams(NamedTuple):
    """Per image: angle (degrees, counter-clockwise as displayed), translate (N, 2) pixels
    (tx, ty), scale, hflip, vflip (bool), and the (N, 2, 3) warp matrices they make."""

    angle: np.ndarray
    translate: np.ndarray
    scale: np.ndarray
    hflip: np.ndarray
    vflip: np.ndarray
    matrices: np.ndarray


class CropParams(NamedTuple):
    """Per image: the crop's top-left corner in the padded image (row ``top``, column ``left``)."""

    top: np.ndarray
    left: np.ndarray


class FlipParams(NamedTuple):
    hflip: np.ndarray
    vflip: np.ndarray


class EraseParams(NamedTuple):
    """Per image: the erased box (top, left, height, width), int64 (N, 4); height 0: none."""

    boxes: np.ndarray


# -- hyper-parameters -------------------------------------------------------------------
def _u64(name: str, value: Any) -> int:
    return _checks.integer(name, value, 0, _U64_MAX)


def _stream(seed: Any, offset: Any) -> tuple[int, int]:
    if seed is None:
        raise TypeError("seed= is required (and a new offset= per batch); the transform classes keep their own")
    return _u64("seed", seed), _u64("offset", offset)


def _os_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])


def _fill(fill: Any) -> list[float]:
    """One finite number, or a sequence of them (one per channel; the kernel checks the count)."""
    if isinstance(fill, (str, bytes)) or fill is None:
        raise TypeError(f"fill must be a number or a sequence of numbers, got {type(fill).__name__}")
    if isinstance(fill, Sequence) or isinstance(fill, np.ndarray):
        values = list(np.asarray(fill).reshape(-1)) if isinstance(fill, np.ndarray) else list(fill)
        if not values:
            raise ValueError("fill must have at least one value")
        return [_checks.real(f"fill[{i}]", v) for i, v in enumerate(values)]
    return [_checks.real("fill", fill)]


def _range(name: str, value: Any, lo: float, hi: float, *, symmetric: bool = False) -> tuple[float, float]:
    """A (min, max) pair within [lo, hi]; one number v means (−v, v) when ``symmetric``."""
    if symmetric and not isinstance(value, (Sequence, np.ndarray)):
        v = _checks.real(name, value, 0.0, hi)
        return -v, v
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair (min, max) of numbers, got {value!r}")
    a = _checks.real(f"{name}[0]", value[0], lo, hi)
    b = _checks.real(f"{name}[1]", value[1], lo, hi)
    if a > b:
        raise ValueError(f"{name} must have min <= max, got {value!r}")
    return a, b


def _size(name: str, value: Any) -> tuple[int, int]:
    """An output (height, width): one int for a square, or a pair, each >= 1."""
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (height, width), got {value!r}")
        return _checks.integer(f"{name}[0]", value[0], 1), _checks.integer(f"{name}[1]", value[1], 1)
    s = _checks.integer(name, value, 1)
    return s, s


def _hw(images: Any, layout: str) -> tuple[int, int, int] | None:
    """(N, H, W) of a 4-D batch, or None (the compiled call then rejects it by name)."""
    shape = getattr(images, "shape", None)  # a tuple, or a torch.Size (a tuple too)
    if not isinstance(shape, tuple) or len(shape) != 4:
        return None
    n, a, b, c = (int(d) for d in shape)
    return (n, b, c) if layout == "NCHW" else (n, a, b)


def uniforms(n: int, k: int, *, seed: int, offset: int = 0) -> np.ndarray:
    """(n, k) float64 draws in [0, 1): draw d of image i is word d mod 4 of
    Philox4x32-10(counter = (i, ⌊d/4⌋, lo32(offset), hi32(offset)), key = seed) · 2⁻³².
    Every random transform reads its parameters from these (columns listed per transform)."""
    n = _checks.integer("n", n, 0, 2**32)
    k = _checks.integer("k", k, 0, 4096)
    seed, offset = _stream(seed, offset)
    return _core.augment_uniforms(n, k, seed, offset)


# -- matrices ---------------------------------------------------------------------------
def _cos_sin_deg(angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of degrees, exact at multiples of 90° (so quarter turns are gathers)."""
    a = np.asarray(angle, np.float64)
    r = np.deg2rad(a)
    c, s = np.cos(r), np.sin(r)
    quarter = np.mod(a, 90.0) == 0
    k = np.mod(np.round(a / 90.0), 4)
    c = np.where(quarter, np.choose(k.astype(np.int64) % 4, [1.0, 0.0, -1.0, 0.0]), c)
    s = np.where(quarter, np.choose(k.astype(np.int64) % 4, [0.0, 1.0, 0.0, -1.0]), s)
    return c, s


def affine_matrices(
    size: tuple[int, int],
    *,
    angle: Any = 0.0,
    translate: Any = (0.0, 0.0),
    scale: Any = 1.0,
    hflip: Any = False,
    vflip: Any = False,
) -> np.ndarray:
    r"""The (N, 2, 3) warp matrices (output pixel → input point) of images of ``size`` (H, W).

    The forward map, about the centre c = ((W − 1)/2, (H − 1)/2), flips the input first
    (``hflip``: x → W − 1 − x; ``vflip``: y → H − 1 − y), then rotates by ``angle`` degrees
    (counter-clockwise as displayed, y pointing down, as ``np.rot90`` and torchvision's
    ``rotate``; torchvision's ``F.affine`` turns clockwise: its angle is our −angle), zooms by
    ``scale`` and shifts by ``translate`` = (tx, ty) pixels:
    p_out = c + t + s·R(angle)·F·(p_in − c). The matrix is its inverse,
    p_in = c + F·R(−angle)·(p_out − c − t)/s. Arguments broadcast over images; scalars
    give N = 1.
    """
    h, w = _size("size", size)
    ang = np.asarray(angle, np.float64)
    sc = np.asarray(scale, np.float64)
    tr = np.asarray(translate, np.float64)
    if tr.shape[-1:] != (2,):
        raise ValueError(f"translate must be (tx, ty) or (N, 2), got shape {tr.shape}")
    if not (np.all(np.isfinite(ang)) and np.all(np.isfinite(tr)) and np.all(np.isfinite(sc))):
        raise ValueError("angle, translate and scale must be finite")
    if np.any(sc <= 0):
        raise ValueError("scale must be > 0")
    hf = np.where(np.asarray(hflip, bool), -1.0, 1.0)
    vf = np.where(np.asarray(vflip, bool), -1.0, 1.0)
    n = np.broadcast_shapes(ang.shape, sc.shape, tr.shape[:-1], hf.shape, vf.shape)
    n = (int(np.prod(n)),) if n else (1,)
    ang, sc, hf, vf = (np.broadcast_to(a, n).reshape(-1) for a in (ang, sc, hf, vf))
    tr = np.broadcast_to(tr, n + (2,)).reshape(-1, 2)
    c, s = _cos_sin_deg(ang)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    # A = F·R(−angle)/s, R(−a) = [[cos, −sin], [sin, cos]] in (x, y-down) coordinates.
    m = np.empty(n + (2, 3))
    m[:, 0, 0] = hf * c / sc
    m[:, 0, 1] = -hf * s / sc
    m[:, 1, 0] = vf * s / sc
    m[:, 1, 1] = vf * c / sc
    # t = c − A·(c + translate)
    px, py = cx + tr[:, 0], cy + tr[:, 1]
    m[:, 0, 2] = cx - (m[:, 0, 0] * px + m[:, 0, 1] * py)
    m[:, 1, 2] = cy - (m[:, 1, 0] * px + m[:, 1, 1] * py)
    return m


def _compose(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The inverse map of "first step, then second": output → second's input → first's input."""
    a = np.concatenate([first, np.broadcast_to([0.0, 0.0, 1.0], first.shape[:-2] + (1, 3))], axis=-2)
    b = np.concatenate([second, np.broadcast_to([0.0, 0.0, 1.0], second.shape[:-2] + (1, 3))], axis=-2)
    return np.ascontiguousarray((a @ b)[..., :2, :])


def _flip_matrices(hf: np.ndarray, vf: np.ndarray, h: int, w: int) -> np.ndarray:
    m = np.zeros((hf.shape[0], 2, 3))
    m[:, 0, 0] = np.where(hf, -1.0, 1.0)
    m[:, 0, 2] = np.where(hf, w - 1.0, 0.0)
    m[:, 1, 1] = np.where(vf, -1.0, 1.0)
    m[:, 1, 2] = np.where(vf, h - 1.0, 0.0)
    return m


def _out_or_none(out: Any) -> Any:
    return out


# -- the warp ---------------------------------------------------------------------------
def affine(
    images: np.ndarray,
    matrices: np.ndarray,
    *,
    out: np.ndarray | None = None,
    interpolation: str = "bilinear",
    fill: Any = 0.0,
    padding_mode: str = "constant",
    layout: str = "NCHW",
) -> np.ndarray:
    """Warps image i by ``matrices[i]`` ((N, 2, 3) float64, output pixel → input point; see
    the module docstring and :func:`affine_matrices`); returns ``out`` (new if None).

    PyTorch: ``torchvision.transforms.v2.functional.affine`` on one image computes the same
    grid (its ``fill`` as ours with ``padding_mode="constant"``); it has no edge or reflect
    padding and takes angle/translate/scale/shear instead of a matrix.
    """
    interp = _checks.choice("interpolation", interpolation, _INTERPOLATIONS)
    pad = _checks.choice("padding_mode", padding_mode, _PADDINGS)
    cl = _checks.choice("layout", layout, _LAYOUTS) == "NHWC"
    return _core.augment_affine(
        images, matrices, out, _fill(fill), _INTERPOLATIONS.index(interp), _PADDINGS.index(pad), cl
    )


# -- random transforms, functional forms ------------------------------------------------
class _AffineSpec(NamedTuple):
    degrees: tuple[float, float]
    translate: tuple[float, float]
    scale: tuple[float, float]
    hflip_p: float
    vflip_p: float


def _affine_spec(degrees: Any, translate: Any, scale: Any, hflip_p: Any, vflip_p: Any) -> _AffineSpec:
    return _AffineSpec(
        _range("degrees", degrees, -360.0, 360.0, symmetric=True),
        _range("translate", translate, 0.0, 1.0),
        _range("scale", scale, 1e-6, 1e6),
        _checks.real("hflip_p", hflip_p, 0.0, 1.0),
        _checks.real("vflip_p", vflip_p, 0.0, 1.0),
    )


def _affine_params(spec: _AffineSpec, n: int, h: int, w: int, seed: int, offset: int) -> AffineParams:
    """Columns of :func:`uniforms`: 0 angle, 1 tx, 2 ty, 3 scale, 4 hflip, 5 vflip."""
    u = _core.augment_uniforms(n, 6, seed, offset)
    lo, hi = spec.degrees
    angle = lo + (hi - lo) * u[:, 0]
    max_dx, max_dy = spec.translate[0] * w, spec.translate[1] * h
    tx = np.rint(-max_dx + 2.0 * max_dx * u[:, 1])  # whole pixels, as torchvision
    ty = np.rint(-max_dy + 2.0 * max_dy * u[:, 2])
    s0, s1 = spec.scale
    scale = s0 + (s1 - s0) * u[:, 3]
    hflip, vflip = u[:, 4] < spec.hflip_p, u[:, 5] < spec.vflip_p
    translate = np.stack([tx, ty], axis=1)
    m = (
        affine_matrices((h, w), angle=angle, translate=translate, scale=scale, hflip=hflip, vflip=vflip)
        if n
        else np.zeros((0, 2, 3))
    )
    return AffineParams(angle, translate, scale, hflip, vflip, m)


def _result(images: np.ndarray, params: Any, return_params: bool) -> Any:
    return Augmented(images, params) if return_params else images


def random_flip(
    images: np.ndarray,
    *,
    hflip_p: float = 0.5,
    vflip_p: float = 0.0,
    seed: int | None = None,
    offset: int = 0,
    layout: str = "NCHW",
    out: np.ndarray | None = None,
    return_params: bool = False,
) -> Any:
    """Flips image i horizontally when u[i, 0] < ``hflip_p`` and vertically when u[i, 1] <
    ``vflip_p`` (u of :func:`uniforms`): a gather, no interpolation.

    PyTorch: ``RandomHorizontalFlip(p)`` / ``RandomVerticalFlip(p)``, one image at a time.
    """
    hp, vp = _checks.real("hflip_p", hflip_p, 0.0, 1.0), _checks.real("vflip_p", vflip_p, 0.0, 1.0)
    seed, offset = _stream(seed, offset)
    lay = _checks.choice("layout", layout, _LAYOUTS)
    return_params = _checks.flag("return_params", return_params)
    geo = _hw(images, lay)
    n, h, w = geo if geo else (0, 1, 1)
    u = _core.augment_uniforms(n, 2, seed, offset)
    hf, vf = u[:, 0] < hp, u[:, 1] < vp
    y = _core.augment_affine(images, _flip_matrices(hf, vf, h, w), out, [0.0], 0, 0, lay == "NHWC")
    return _result(y, FlipParams(hf, vf), return_params)


def random_crop(
    images: np.ndarray,
    size: Any,
    *,
    padding: int = 0,
    padding_mode: str = "constant",
    fill: Any = 0.0,
    seed: int | None = None,
    offset: int = 0,
    layout: str = "NCHW",
    out: np.ndarray | None = None,
    return_params: bool = False,
) -> Any:
    """A ``size`` (h, w) crop of each image padded by ``padding`` pixels on every side, at
    top = ⌊u[i, 0]·(H + 2p − h + 1)⌋, left = ⌊u[i, 1]·(W + 2p − w + 1)⌋ of the padded image:
    a gather, no interpolation, and the padding is never materialised.

    PyTorch: ``RandomCrop(size, padding, fill=, padding_mode=)`` ("edge", "reflect" there
    is numpy's "reflect" — without the edge pixel — while ours repeats it; use "edge" or
    "constant" for identical crops).
    """
    oh, ow = _size("size", size)
    p = _checks.integer("padding", padding, 0, 2**30)
    pad = _checks.choice("padding_mode", padding_mode, _PADDINGS)
    fills = _fill(fill)
    seed, offset = _stream(seed, offset)
    lay = _checks.choice("layout", layout, _LAYOUTS)
    return_params = _checks.flag("return_params", return_params)
    geo = _hw(images, lay)
    n, h, w = geo if geo else (0, oh, ow)
    if oh > h + 2 * p or ow > w + 2 * p:
        raise ValueError(f"size {(oh, ow)} is larger than the padded images ({h + 2 * p}, {w + 2 * p})")
    u = _core.augment_uniforms(n, 2, seed, offset)
    top = np.floor(u[:, 0] * (h + 2 * p - oh + 1)).astype(np.int64)
    left = np.floor(u[:, 1] * (w + 2 * p - ow + 1)).astype(np.int64)
    maps = np.stack([left - p, np.ones(n), top - p, np.ones(n)], axis=1).astype(np.float64)
    y = _core.augment_gather(images, maps, out, oh, ow, fills, _PADDINGS.index(pad), lay == "NHWC")
    return _result(y, CropParams(top, left), return_params)


def _erase_call(images: Any, boxes: np.ndarray, fills: list[float], lay: str, out: Any) -> np.ndarray:
    return _core.augment_erase(images, boxes.astype(np.float64), out, fills, lay == "NHWC")


def cutout(
    images: np.ndarray,
    size: Any,
    *,
    fill: Any = 0.0,
    seed: int | None = None,
    offset: int = 0,
    layout: str = "NCHW",
    out: np.ndarray | None = None,
    return_params: bool = False,
) -> Any:
    """Cutout (DeVries & Taylor 2017): a ``size`` (h, w) box centred at (⌊u[i, 1]·W⌋,
    ⌊u[i, 0]·H⌋), clipped to the image, set to ``fill`` in every image. ``out`` may be images."""
    bh, bw = _size("size", size)
    fills = _fill(fill)
    seed, offset = _stream(seed, offset)
    lay = _checks.choice("layout", layout, _LAYOUTS)
    return_params = _checks.flag("return_params", return_params)
    geo = _hw(images, lay)
    n, h, w = geo if geo else (0, 1, 1)
    u = _core.augment_uniforms(n, 2, seed, offset)
    cy, cx = np.floor(u[:, 0] * h).astype(np.int64), np.floor(u[:, 1] * w).astype(np.int64)
    y0, x0 = np.clip(cy - bh // 2, 0, h), np.clip(cx - bw // 2, 0, w)
    y1, x1 = np.clip(cy - bh // 2 + bh, 0, h), np.clip(cx - bw // 2 + bw, 0, w)
    boxes = np.stack([y0, x0, y1 - y0, x1 - x0], axis=1)
    y = _erase_call(images, boxes, fills, lay, out)
    return _result(y, EraseParams(boxes), return_params)


def random_erasing(
    images: np.ndarray,
    *,
    p: float = 0.5,
    scale: Any = (0.02, 0.33),
    ratio: Any = (0.3, 3.3),
    fill: Any = 0.0,
    seed: int | None = None,
    offset: int = 0,
    layout: str = "NCHW",
    out: np.ndarray | None = None,
    return_params: bool = False,
) -> Any:
    """Random erasing (Zhong et al. 2020): with probability ``p`` (u[i, 0] < p) a box of area
    H·W·(s0 + (s1 − s0)·u[i, 1]) and aspect h/w = exp(ln r0 + (ln r1 − ln r0)·u[i, 2]),
    h = rint(√(area·aspect)), w = rint(√(area/aspect)) clipped to the image, at top =
    ⌊u[i, 3]·(H − h + 1)⌋, left = ⌊u[i, 4]·(W − w + 1)⌋, set to ``fill``.

    PyTorch: ``RandomErasing`` redraws up to 10 times when the box does not fit (and then
    erases nothing); ours draws once and clips, so every image with u[i, 0] < p is erased.
    """
    prob = _checks.real("p", p, 0.0, 1.0)
    s0, s1 = _range("scale", scale, 0.0, 1.0)
    r0, r1 = _range("ratio", ratio, 1e-6, 1e6)
    fills = _fill(fill)
    seed, offset = _stream(seed, offset)
    lay = _checks.choice("layout", layout, _LAYOUTS)
    return_params = _checks.flag("return_params", return_params)
    geo = _hw(images, lay)
    n, h, w = geo if geo else (0, 1, 1)
    u = _core.augment_uniforms(n, 5, seed, offset)
    area = h * w * (s0 + (s1 - s0) * u[:, 1])
    aspect = np.exp(math.log(r0) + (math.log(r1) - math.log(r0)) * u[:, 2])
    bh = np.clip(np.rint(np.sqrt(area * aspect)), 0, h).astype(np.int64)
    bw = np.clip(np.rint(np.sqrt(area / aspect)), 0, w).astype(np.int64)
    on = u[:, 0] < prob
    bh, bw = np.where(on, bh, 0), np.where(on, bw, 0)
    top = np.floor(u[:, 3] * (h - bh + 1)).astype(np.int64)
    left = np.floor(u[:, 4] * (w - bw + 1)).astype(np.int64)
    boxes = np.stack([top, left, bh, bw], axis=1)
    y = _erase_call(images, boxes, fills, lay, out)
    return _result(y, EraseParams(boxes), return_params)


def _noise_params(kind: Any, std: Any, amount: Any) -> tuple[int, float, float, int, int]:
    """(kind index, loc, scale, pepper, salt) of the kernel."""
    kind = _checks.choice("kind", kind, _NOISE_KINDS)
    if kind == "salt_pepper":
        if amount is None or std is not None:
            raise TypeError("kind='salt_pepper' takes amount= (the fraction of elements replaced), not std=")
        a = _checks.real("amount", amount, 0.0, 1.0)
        pepper = min(int(math.floor(a / 2 * 2.0**32 + 0.5)), 2**31)
        return 2, 0.0, 0.0, pepper, 2**32 - pepper
    if std is None or amount is not None:
        raise TypeError(f"kind={kind!r} takes std= (the noise's standard deviation, in the images' units), not amount=")
    sd = _checks.real("std", std, 0.0)
    if kind == "gaussian":
        return 0, 0.0, sd, 0, 2**32
    half = sd * math.sqrt(3.0)  # U[−a, a) has standard deviation a/√3
    return 1, -half, 2.0 * half, 0, 2**32


def add_noise(
    images: np.ndarray,
    *,
    kind: str = "gaussian",
    std: float | None = None,
    amount: float | None = None,
    seed: int | None = None,
    offset: int = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Adds noise to every element, in the same pass that writes ``out`` (``out`` may be images).

    Element i (of the batch in C order, any layout) gets n_i, exactly element i of
    :mod:`nndl_fast.random`'s float32 fill of (``seed``, ``offset``):
    ``kind="gaussian"``: n ~ N(0, std²) (Box–Muller); ``"uniform"``: n ~ U[−a, a) with
    a = std·√3 (standard deviation std); then y = x + n in float32, for uint8 rounded half
    to even and saturated to [0, 255]. ``"salt_pepper"``: with probability ``amount``/2 the
    element becomes 0 (pepper), with probability ``amount``/2 the dtype's top (255, or 1.0
    for float32: images in [0, 1]) (salt), else it is kept: the element's 32-bit word w is
    compared, w < round(amount/2·2³²) → pepper, w ≥ 2³² − that → salt.

    PyTorch: no torchvision transform; ``x + std * torch.randn_like(x)`` (float) is the
    gaussian case, without rounding or saturation.
    """
    k, loc, scale, pepper, salt = _noise_params(kind, std, amount)
    seed, offset = _stream(seed, offset)
    return _core.augment_noise(images, out, k, seed, offset, loc, scale, pepper, salt)


# -- transform objects ------------------------------------------------------------------
class _Transform:
    """Shared by the transform classes: a seed, an offset advanced once per call, a layout.

    ``__call__(images, *, offset=None, out=None, return_params=False)``: with ``offset=None``
    the object's own offset is used and then advanced by one; an explicit offset replays
    that batch's parameters and leaves the object's offset alone.
    """

    geometric = False  # a step that moves pixels (folded by Compose)

    def __init__(self, seed: int | None, offset: int, layout: str) -> None:
        self.seed = _u64("seed", _os_seed() if seed is None else seed)
        self.offset = _u64("offset", offset)
        self.layout = _checks.choice("layout", layout, _LAYOUTS)

    def _next_offset(self, offset: Any) -> tuple[int, bool]:
        if offset is None:
            return self.offset, True
        return _u64("offset", offset), False

    def __call__(
        self,
        images: np.ndarray,
        *,
        offset: int | None = None,
        out: np.ndarray | None = None,
        return_params: bool = False,
    ) -> Any:
        off, advance = self._next_offset(offset)
        r = self._apply(images, off, out, _checks.flag("return_params", return_params))
        if advance:
            self.offset = off + 1
        return r

    def _apply(self, images: Any, offset: int, out: Any, return_params: bool) -> Any:
        raise NotImplementedError

    # Geometric steps: (params, (N, 2, 3) inverse maps, output (h, w)) for input (h, w).
    def _maps(self, n: int, h: int, w: int, offset: int) -> tuple[Any, np.ndarray, tuple[int, int]]:
        raise NotImplementedError


class RandomAffine(_Transform):
    """Rotation by an angle uniform in ``degrees`` (d: (−d, d); counter-clockwise as
    displayed), a shift uniform in ±``translate`` = (fx, fy) of the width and height (rounded
    to whole pixels), a zoom uniform in ``scale`` = (s0, s1), and horizontal/vertical flips
    with probabilities ``hflip_p``/``vflip_p`` — one matrix per image
    (:func:`affine_matrices`), one pass. Draws (columns of :func:`uniforms`): 0 angle, 1 tx,
    2 ty, 3 scale, 4 hflip (u < hflip_p), 5 vflip.

    PyTorch: ``torchvision.transforms.v2.RandomAffine(degrees, translate, scale)`` (+
    ``RandomHorizontalFlip``/``RandomVerticalFlip``), one image at a time, with the same
    grid; its angle draw comes from torch's generator, ours from Philox per image.
    """

    geometric = True

    def __init__(
        self,
        degrees: Any = 0.0,
        translate: Any = (0.0, 0.0),
        scale: Any = (1.0, 1.0),
        hflip_p: float = 0.0,
        vflip_p: float = 0.0,
        *,
        seed: int | None = None,
        offset: int = 0,
        interpolation: str = "bilinear",
        fill: Any = 0.0,
        padding_mode: str = "constant",
        layout: str = "NCHW",
    ) -> None:
        self.spec = _affine_spec(degrees, translate, scale, hflip_p, vflip_p)
        self.interpolation = _checks.choice("interpolation", interpolation, _INTERPOLATIONS)
        self.fill = _fill(fill)
        self.padding_mode = _checks.choice("padding_mode", padding_mode, _PADDINGS)
        super().__init__(seed, offset, layout)

    def params(self, n: int, size: tuple[int, int], *, offset: int | None = None) -> AffineParams:
        """The parameters the call at ``offset`` (default: the next one) draws for n images of ``size``."""
        h, w = _size("size", size)
        off = self.offset if offset is None else _u64("offset", offset)
        return _affine_params(self.spec, _checks.integer("n", n, 0, 2**32), h, w, self.seed, off)

    def _maps(self, n, h, w, offset):
        p = _affine_params(self.spec, n, h, w, self.seed, offset)
        return p, p.matrices, (h, w)

    def _apply(self, images, offset, out, return_params):
        geo = _hw(images, self.layout)
        n, h, w = geo if geo else (0, 1, 1)
        p = _affine_params(self.spec, n, h, w, self.seed, offset)
        y = _core.augment_affine(
            images,
            p.matrices,
            out,
            self.fill,
            _INTERPOLATIONS.index(self.interpolation),
            _PADDINGS.index(self.padding_mode),
            self.layout == "NHWC",
        )
        return _result(y, p, return_params)


class RandomFlip(_Transform):
    """:func:`random_flip` with its own (seed, offset)."""

    geometric = True

    def __init__(
        self,
        hflip_p: float = 0.5,
        vflip_p: float = 0.0,
        *,
        seed: int | None = None,
        offset: int = 0,
        layout: str = "NCHW",
    ) -> None:
        self.hflip_p = _checks.real("hflip_p", hflip_p, 0.0, 1.0)
        self.vflip_p = _checks.real("vflip_p", vflip_p, 0.0, 1.0)
        super().__init__(seed, offset, layout)

    def _maps(self, n, h, w, offset):
        u = _core.augment_uniforms(n, 2, self.seed, offset)
        hf, vf = u[:, 0] < self.hflip_p, u[:, 1] < self.vflip_p
        return FlipParams(hf, vf), _flip_matrices(hf, vf, h, w), (h, w)

    def _apply(self, images, offset, out, return_params):
        return random_flip(
            images,
            hflip_p=self.hflip_p,
            vflip_p=self.vflip_p,
            seed=self.seed,
            offset=offset,
            layout=self.layout,
            out=out,
            return_params=return_params,
        )


class RandomCrop(_Transform):
    """:func:`random_crop` with its own (seed, offset)."""

    geometric = True

    def __init__(
        self,
        size: Any,
        padding: int = 0,
        *,
        padding_mode: str = "constant",
        fill: Any = 0.0,
        seed: int | None = None,
        offset: int = 0,
        layout: str = "NCHW",
    ) -> None:
        self.size = _size("size", size)
        self.padding = _checks.integer("padding", padding, 0, 2**30)
        self.padding_mode = _checks.choice("padding_mode", padding_mode, _PADDINGS)
        self.fill = _fill(fill)
        super().__init__(seed, offset, layout)

    def _maps(self, n, h, w, offset):
        oh, ow = self.size
        p = self.padding
        if oh > h + 2 * p or ow > w + 2 * p:
            raise ValueError(f"size {(oh, ow)} is larger than the padded images ({h + 2 * p}, {w + 2 * p})")
        u = _core.augment_uniforms(n, 2, self.seed, offset)
        top = np.floor(u[:, 0] * (h + 2 * p - oh + 1)).astype(np.int64)
        left = np.floor(u[:, 1] * (w + 2 * p - ow + 1)).astype(np.int64)
        m = np.zeros((n, 2, 3))
        m[:, 0, 0] = m[:, 1, 1] = 1.0
        m[:, 0, 2], m[:, 1, 2] = left - p, top - p
        return CropParams(top, left), m, (oh, ow)

    def _apply(self, images, offset, out, return_params):
        return random_crop(
            images,
            self.size,
            padding=self.padding,
            padding_mode=self.padding_mode,
            fill=self.fill,
            seed=self.seed,
            offset=offset,
            layout=self.layout,
            out=out,
            return_params=return_params,
        )


class Cutout(_Transform):
    """:func:`cutout` with its own (seed, offset)."""

    def __init__(
        self, size: Any, *, fill: Any = 0.0, seed: int | None = None, offset: int = 0, layout: str = "NCHW"
    ) -> None:
        self.size = _size("size", size)
        self.fill = _fill(fill)
        super().__init__(seed, offset, layout)

    def _apply(self, images, offset, out, return_params):
        return cutout(
            images,
            self.size,
            fill=self.fill,
            seed=self.seed,
            offset=offset,
            layout=self.layout,
            out=out,
            return_params=return_params,
        )


class RandomErasing(_Transform):
    """:func:`random_erasing` with its own (seed, offset)."""

    def __init__(
        self,
        p: float = 0.5,
        scale: Any = (0.02, 0.33),
        ratio: Any = (0.3, 3.3),
        *,
        fill: Any = 0.0,
        seed: int | None = None,
        offset: int = 0,
        layout: str = "NCHW",
    ) -> None:
        self.p = _checks.real("p", p, 0.0, 1.0)
        self.scale = _range("scale", scale, 0.0, 1.0)
        self.ratio = _range("ratio", ratio, 1e-6, 1e6)
        self.fill = _fill(fill)
        super().__init__(seed, offset, layout)

    def _apply(self, images, offset, out, return_params):
        return random_erasing(
            images,
            p=self.p,
            scale=self.scale,
            ratio=self.ratio,
            fill=self.fill,
            seed=self.seed,
            offset=offset,
            layout=self.layout,
            out=out,
            return_params=return_params,
        )


class AddNoise(_Transform):
    """:func:`add_noise` with its own (seed, offset). Returned params: None (the noise is
    (seed, offset) and the element index)."""

    def __init__(
        self,
        kind: str = "gaussian",
        *,
        std: float | None = None,
        amount: float | None = None,
        seed: int | None = None,
        offset: int = 0,
        layout: str = "NCHW",
    ) -> None:
        _noise_params(kind, std, amount)
        self.kind, self.std, self.amount = kind, std, amount
        super().__init__(seed, offset, layout)

    def _apply(self, images, offset, out, return_params):
        y = add_noise(images, kind=self.kind, std=self.std, amount=self.amount, seed=self.seed, offset=offset, out=out)
        return _result(y, None, return_params)


class Compose(_Transform):
    """Runs ``steps`` in order on a batch, with one offset per call passed to every step.

    Consecutive geometric steps (:class:`RandomAffine`, :class:`RandomFlip`,
    :class:`RandomCrop`) are folded first: their per-image inverse maps multiply into one
    matrix per image (M = M₁·M₂·…, the first step's map applied last), and the pixels are
    touched once — by a gather when every folded map is a flip/integer shift (crops and
    flips: the same pixels as the unfolded steps), else by one warp with the interpolation,
    fill and padding of the run's first :class:`RandomAffine`. A folded warp resamples once
    instead of once per step, so it is sharper than the unfolded chain, and it reads the
    source wherever the composed map lands (an unfolded chain would read an intermediate's
    padding there). A :class:`RandomCrop` folds only with flips (its padding and size
    change make any other fold differ from the chain), so it starts a new run after a
    :class:`RandomAffine`. An :class:`AddNoise` right after a geometric run is added in the
    run's sweep (the output goes in cache-sized chunks of images: warped, then noised, while
    still in cache), with the same values as a separate step. Returned params
    (``return_params=True``) are one entry per step.
    Only the last pass writes ``out``; it may be the input batch itself when that pass
    reads an intermediate (more than one pass) or works in place (noise, erasing).
    """

    def __init__(self, steps: Sequence[Any], *, offset: int = 0) -> None:
        if isinstance(steps, (str, bytes)) or not isinstance(steps, Sequence):
            raise TypeError(f"steps must be a list of transforms, got {type(steps).__name__}")
        steps = list(steps)
        for i, s in enumerate(steps):
            if not isinstance(s, _Transform) or isinstance(s, Compose):
                raise TypeError(f"steps[{i}] must be a transform of nndl_fast.augment, got {type(s).__name__}")
        layouts = {s.layout for s in steps}
        if len(layouts) > 1:
            raise ValueError(f"steps must share one layout, got {sorted(layouts)}")
        self.steps = steps
        super().__init__(0, offset, layouts.pop() if layouts else "NCHW")

    def _runs(self) -> list[list[Any]]:
        """Steps grouped: each group is one pass (a geometric run, or one other step)."""
        runs: list[list[Any]] = []
        for s in self.steps:
            last = runs[-1] if runs else None
            if s.geometric and last and last[0].geometric:
                has_crop = any(isinstance(t, RandomCrop) for t in last)
                has_affine = any(isinstance(t, RandomAffine) for t in last)
                if not (
                    (isinstance(s, RandomCrop) and (has_crop or has_affine))
                    or (isinstance(s, RandomAffine) and has_crop)
                ):
                    last.append(s)
                    continue
            if isinstance(s, AddNoise) and last and last[0].geometric and not isinstance(last[-1], AddNoise):
                last.append(s)  # added in the run's sweep
                continue
            runs.append([s])
        return runs

    def _apply(self, images, offset, out, return_params):
        params: list[Any] = []
        x = images
        runs = self._runs()
        for k, run in enumerate(runs):
            dest = out if k == len(runs) - 1 else None
            if not run[0].geometric:
                r = run[0]._apply(x, offset, dest, True)
                x, _ = r
                params.append(r.params)
                continue
            noise = None
            if isinstance(run[-1], AddNoise):
                a = run[-1]
                k_, loc, scale, pepper, salt = _noise_params(a.kind, a.std, a.amount)
                noise = (k_, a.seed, offset, loc, scale, pepper, salt)
                run = run[:-1]
            geo = _hw(x, self.layout)
            if geo is None:  # let the first step's compiled call name the bad input
                run[0]._apply(x, offset, dest, False)
                raise TypeError("images must be a 4-D batch")
            n, h, w = geo
            if all(isinstance(s, (RandomCrop, RandomFlip)) for s in run):
                x = self._crop_flip(run, x, (h, w), n, offset, dest, noise, params if return_params else None)
                if noise is not None:
                    params.append(None)
                continue
            total = None
            size = (h, w)
            for s in run:
                p, m, size_next = s._maps(n, size[0], size[1], offset)
                params.append(p)
                total = m if total is None else _compose(total, m)
                size = size_next
            assert total is not None
            crop = next((s for s in run if isinstance(s, RandomCrop)), None)
            aff = next((s for s in run if isinstance(s, RandomAffine)), None)
            if crop is not None:
                maps = np.stack([total[:, 0, 2], total[:, 0, 0], total[:, 1, 2], total[:, 1, 1]], axis=1)
                x = _core.augment_gather(
                    x,
                    np.ascontiguousarray(maps),
                    dest,
                    size[0],
                    size[1],
                    crop.fill,
                    _PADDINGS.index(crop.padding_mode),
                    self.layout == "NHWC",
                    noise,
                )
            else:
                interp, fill, pad = (
                    (aff.interpolation, aff.fill, aff.padding_mode) if aff else ("nearest", [0.0], "constant")
                )
                x = _core.augment_affine(
                    x,
                    np.ascontiguousarray(total),
                    dest,
                    fill,
                    _INTERPOLATIONS.index(interp),
                    _PADDINGS.index(pad),
                    self.layout == "NHWC",
                    noise,
                )
            if noise is not None:
                params.append(None)
        if out is not None and x is images:
            raise ValueError("out: Compose of no steps has nothing to write")
        return _result(x, params, return_params)

    def _crop_flip(self, run, x, size, n, offset, dest, noise, params):
        """A run of crops and flips: its per-image maps are drawn and folded in the compiled
        call (the same maps as _maps and _compose give; their params only when asked)."""
        steps = []
        for s in run:
            if isinstance(s, RandomCrop):
                (oh, ow), p = s.size, s.padding
                if oh > size[0] + 2 * p or ow > size[1] + 2 * p:
                    raise ValueError(
                        f"size {(oh, ow)} is larger than the padded images ({size[0] + 2 * p}, {size[1] + 2 * p})"
                    )
                steps.append((0, s.seed, 0.0, 0.0, p, oh, ow))
            else:
                steps.append((1, s.seed, s.hflip_p, s.vflip_p, 0, 0, 0))
            if params is not None:
                params.append(s._maps(n, size[0], size[1], offset)[0])
            size = s.size if isinstance(s, RandomCrop) else size
        crop = next((s for s in run if isinstance(s, RandomCrop)), None)
        fill, pad = (crop.fill, crop.padding_mode) if crop else ([0.0], "constant")
        return _core.augment_crop_flip(x, steps, offset, dest, fill, _PADDINGS.index(pad), self.layout == "NHWC", noise)
