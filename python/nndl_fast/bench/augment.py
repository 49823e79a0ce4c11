"""Augmentation rows of the benchmark harness: images per second (``extra["images"]`` /
seconds) on CIFAR-like (256, 3, 32, 32) float32 and uint8 and ImageNet-like (64, 3, 224, 224)
uint8 batches, in both layouts.

- ``augment_affine``: :class:`RandomAffine` with rotation, zoom, shift and flip (one warp
  per image, bilinear), against the copy probe (read the batch, write it). Peers: the
  per-image loop users write today — torchvision v2 ``RandomAffine`` + ``RandomHorizontalFlip``
  or Albumentations ``Affine`` where importable, else ``scipy.ndimage.affine_transform`` per
  image and channel with the same matrices (the row's name says which) — the NumPy reference
  (CIFAR only: it is per image and slow on purpose) and torch's batched ``affine_grid`` +
  ``grid_sample`` (float32 compute; uint8 converted both ways).
- ``augment_crop_flip``: ``Compose([RandomCrop, RandomFlip])`` folded into one gather,
  against the copy probe (reads and writes the crop's bytes). Peer: NumPy, ``np.pad`` of the
  batch then a per-image slice and flip.
- ``augment_noise``: gaussian noise fused with the write, against the triad probe. Peers:
  NumPy (Generator.standard_normal into a buffer, add, for uint8 round and clip) and
  ``x + std·torch.randn_like(x)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import augment as A
from ..reference import augment as R
from .harness import Bench


def _per_image_peer() -> tuple[str, Any]:
    """The per-image library users call today: torchvision, else Albumentations, else scipy."""
    try:
        from torchvision.transforms import v2  # noqa: F401

        return "torchvision per image", v2
    except ImportError:
        pass
    try:
        import albumentations

        return "albumentations per image", albumentations
    except ImportError:
        pass
    from scipy import ndimage

    return "scipy per image (no tv/alb)", ndimage


def _cases(quick: bool) -> list[tuple[str, tuple[int, int, int, int], Any, str]]:
    cases = [
        ("cifar 256x3x32x32 f32", (256, 3, 32, 32), np.float32, "NCHW"),
        ("cifar 256x3x32x32 u8", (256, 3, 32, 32), np.uint8, "NCHW"),
        ("imnet 64x3x224x224 u8", (64, 3, 224, 224), np.uint8, "NCHW"),
    ]
    cases += [(name, shape, dt, "NHWC") for name, shape, dt, _ in cases]
    if quick:
        cases = [cases[0], cases[4], cases[2]]
    return [(f"{name} {lay}", shape, dt, lay) for name, shape, dt, lay in cases]


def _batch(shape: tuple[int, int, int, int], dtype: Any, layout: str) -> np.ndarray:
    n, c, h, w = shape
    full = (n, c, h, w) if layout == "NCHW" else (n, h, w, c)
    rng = np.random.default_rng(0)
    if dtype == np.uint8:
        return rng.integers(0, 256, full, dtype=np.uint8)
    return rng.random(full, dtype=np.float32)


def _affine_rows(bench: Bench, torch: Any, case: str, x: np.ndarray, layout: str) -> None:
    n = x.shape[0]
    h, w = (x.shape[2], x.shape[3]) if layout == "NCHW" else (x.shape[1], x.shape[2])
    y = np.empty_like(x)
    t = A.RandomAffine(30, (0.1, 0.1), (0.9, 1.1), 0.5, seed=1, layout=layout)
    nbytes = 2 * x.nbytes
    kw: dict[str, Any] = {"nbytes": nbytes, "limit": "copy", "images": n}
    bench.measure("augment_affine", case, "nndl_fast", lambda: t(x, out=y), note="RandomAffine, one warp", **kw)
    m = t.params(n, (h, w), offset=0).matrices
    xc = x if layout == "NCHW" else np.moveaxis(x, 3, 1)
    peer_name, peer = _per_image_peer()
    if peer_name.startswith("torchvision") and torch is not None and layout == "NCHW":
        tf = peer.Compose([peer.RandomAffine(30, (0.1, 0.1), (0.9, 1.1)), peer.RandomHorizontalFlip()])
        xt = torch.from_numpy(x)

        def per_image() -> None:
            for i in range(n):
                tf(xt[i])

    elif peer_name.startswith("albumentations"):
        tf = peer.Affine(rotate=(-30, 30), translate_percent=(-0.1, 0.1), scale=(0.9, 1.1), p=1.0)
        hwc = x if layout == "NHWC" else np.ascontiguousarray(np.moveaxis(x, 1, 3))

        def per_image() -> None:
            for i in range(n):
                tf(image=hwc[i])

    else:
        peer_name = "scipy per image (no tv/alb)"
        from scipy import ndimage

        yc = np.empty(xc.shape, x.dtype)

        def per_image() -> None:
            for i in range(n):
                a, off = m[i][::-1, :2][:, ::-1], m[i][::-1, 2]
                for c in range(xc.shape[1]):
                    ndimage.affine_transform(xc[i, c], a, offset=off, order=1, mode="grid-constant", output=yc[i, c])

    slow = bench.min_seconds / 2
    bench.measure("augment_affine", case, peer_name, per_image, min_seconds=slow, **kw)
    if n * h * w <= 256 * 32 * 32:
        bench.measure(
            "augment_affine", case, "numpy reference", lambda: R.affine(x, m, layout=layout), min_seconds=slow, **kw
        )
    if torch is not None:
        F = torch.nn.functional
        xt = torch.from_numpy(xc)  # a (N, C, H, W) view in either layout
        theta = torch.from_numpy(_torch_theta(m, h, w)).float()
        grid = F.affine_grid(theta, list(xt.shape), align_corners=False)

        def batched() -> None:
            src = xt if x.dtype == np.float32 else xt.float()
            out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            if x.dtype == np.uint8:
                out.round_().clamp_(0, 255).to(torch.uint8)

        bench.measure("augment_affine", case, "torch grid_sample", batched, note="grid made once", **kw)


def _torch_theta(m: np.ndarray, h: int, w: int) -> np.ndarray:
    """Our pixel matrices as affine_grid's normalised ones (align_corners=False: x_n = (2x + 1)/W − 1)."""
    s = np.array([[2.0 / w, 0, 1.0 / w - 1], [0, 2.0 / h, 1.0 / h - 1], [0, 0, 1]])
    s_inv = np.linalg.inv(s)
    full = np.concatenate([m, np.broadcast_to([[0.0, 0.0, 1.0]], (m.shape[0], 1, 3))], axis=1)
    return (s @ full @ s_inv)[:, :2, :]


def _crop_flip_rows(bench: Bench, case: str, x: np.ndarray, layout: str) -> None:
    n = x.shape[0]
    h = x.shape[2] if layout == "NCHW" else x.shape[1]
    size, pad = (h, 4) if h <= 32 else (h - 32, 0)
    pipe = A.Compose([A.RandomCrop(size, pad, seed=1, layout=layout), A.RandomFlip(0.5, seed=2, layout=layout)])
    oshape = (n, x.shape[1], size, size) if layout == "NCHW" else (n, size, size, x.shape[3])
    y = np.empty(oshape, x.dtype)
    kw: dict[str, Any] = {"nbytes": 2 * y.nbytes, "limit": "copy", "images": n}
    bench.measure("augment_crop_flip", case, "nndl_fast", lambda: pipe(x, out=y), note="one folded gather", **kw)
    params = pipe(x, offset=0, return_params=True).params
    top, left, hf = params[0].top, params[0].left, params[1].hflip
    spatial = ((0, 0), (0, 0), (pad, pad), (pad, pad)) if layout == "NCHW" else ((0, 0), (pad, pad), (pad, pad), (0, 0))
    wax = 2 if layout == "NCHW" else 1

    def numpy_per_image() -> None:
        padded = np.pad(x, spatial) if pad else x
        for i in range(n):
            t, lf = top[i], left[i]
            if layout == "NCHW":
                crop = padded[i, :, t : t + size, lf : lf + size]
            else:
                crop = padded[i, t : t + size, lf : lf + size]
            y[i] = np.flip(crop, wax) if hf[i] else crop

    bench.measure("augment_crop_flip", case, "numpy per image", numpy_per_image, **kw)


def _noise_rows(bench: Bench, torch: Any, case: str, x: np.ndarray) -> None:
    std = 8.0 if x.dtype == np.uint8 else 0.05
    y = np.empty_like(x)
    kw: dict[str, Any] = {"nbytes": 2 * x.nbytes, "limit": "triad", "images": x.shape[0]}
    offset = [0]

    def ours() -> None:
        A.add_noise(x, std=std, seed=1, offset=offset[0], out=y)
        offset[0] += 1

    bench.measure("augment_noise", case, "nndl_fast", ours, note="gaussian, fused", **kw)
    gen = np.random.default_rng(1)
    buf = np.empty(x.shape, np.float32)

    def numpy_noise() -> None:
        gen.standard_normal(dtype=np.float32, out=buf)
        np.multiply(buf, np.float32(std), out=buf)
        if x.dtype == np.uint8:
            np.add(buf, x, out=buf)
            np.rint(buf, out=buf)
            np.clip(buf, 0, 255, out=buf)
            y[...] = buf
        else:
            np.add(x, buf, out=y)

    bench.measure("augment_noise", case, "numpy (Generator)", numpy_noise, **kw)
    if torch is not None:
        xt = torch.from_numpy(x)

        def torch_noise() -> None:
            if x.dtype == np.uint8:
                f = xt.float()
                (f + std * torch.randn_like(f)).round_().clamp_(0, 255).to(torch.uint8)
            else:
                xt + std * torch.randn_like(xt)

        bench.measure("augment_noise", case, "torch randn_like", torch_noise, **kw)


def run(bench: Bench, torch: Any) -> None:
    for case, shape, dtype, layout in _cases(bench.quick):
        x = _batch(shape, dtype, layout)
        if bench.wants("augment_affine"):
            _affine_rows(bench, torch, case, x, layout)
            bench.flush()
        if bench.wants("augment_crop_flip"):
            _crop_flip_rows(bench, case, x, layout)
            bench.flush()
        if bench.wants("augment_noise"):
            _noise_rows(bench, torch, case, x)
            bench.flush()
