"""Data augmentation (1.7.5): the warp against the NumPy reference (bit for bit, every SIMD
target and thread count) and against scipy.ndimage; closed forms (identity, np.rot90,
flips, crops of np.pad); parameter draws (reproducible, per image, KS-uniform, flip rates);
Compose's folds; noise; erasing; bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nndl_fast
from nndl_fast import augment as A
from nndl_fast.reference import augment as R

DTYPES = [np.uint8, np.float32]
LAYOUTS = ["NCHW", "NHWC"]
INTERPS = ["nearest", "bilinear"]
PADS = ["constant", "edge", "reflect"]
SCIPY_MODES = [("constant", "grid-constant"), ("edge", "nearest"), ("reflect", "reflect")]  # scipy.ndimage's names
NUMPY_PAD_MODES = [("constant", "constant"), ("edge", "edge"), ("reflect", "symmetric")]  # np.pad's names


def _images(rng, n, c, h, w, dtype, layout):
    shape = (n, c, h, w) if layout == "NCHW" else (n, h, w, c)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.random(shape, dtype=np.float32)


def _chw(x, layout):
    """The batch as (N, C, H, W), whatever its layout."""
    return x if layout == "NCHW" else np.moveaxis(x, 3, 1)


def _random_matrices(rng, n, h, w):
    m = A.affine_matrices(
        (h, w),
        angle=rng.uniform(-180, 180, n),
        translate=rng.uniform(-4, 4, (n, 2)),
        scale=rng.uniform(0.6, 1.6, n),
        hflip=rng.random(n) < 0.5,
    )
    m[-1] = [[-1, 0, w - 3], [0, 1, 2]]  # a flip and shift: the gather path
    return m


# --------------------------------------------------------------------------------------------
# The warp


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("interpolation", INTERPS)
@pytest.mark.parametrize("padding_mode", PADS)
def test_affine_matches_reference_on_every_target(simd, nthreads, rng, dtype, layout, interpolation, padding_mode):
    # Odd sizes; rows longer than one 256-pixel segment; enough rows for the parallel path.
    for n, c, h, w in ((3, 3, 17, 23), (2, 1, 5, 301), (4, 2, 64, 130)):
        x = _images(rng, n, c, h, w, dtype, layout)
        m = _random_matrices(rng, n, h, w)
        fill = [7.0, 200.5, 0.25][:c]
        got = A.affine(x, m, interpolation=interpolation, fill=fill, padding_mode=padding_mode, layout=layout)
        want = R.affine(x, m, interpolation=interpolation, fill=fill, padding_mode=padding_mode, layout=layout)
        assert got.dtype == x.dtype and got.shape == x.shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("padding_mode, scipy_mode", SCIPY_MODES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_bilinear_agrees_with_scipy(rng, padding_mode, scipy_mode, layout):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = _images(rng, 3, 2, 19, 26, np.float32, layout)
    m = _random_matrices(rng, 3, 19, 26)
    got = _chw(A.affine(x, m, padding_mode=padding_mode, fill=0.5, layout=layout), layout)
    xc = _chw(x, layout).astype(np.float64)
    for i in range(3):
        # scipy indexes (row, col): swap the matrix's x and y.
        a = m[i][::-1, :2][:, ::-1]
        t = m[i][::-1, 2]
        for c in range(2):
            want = ndimage.affine_transform(xc[i, c], a, offset=t, order=1, mode=scipy_mode, cval=0.5)
            np.testing.assert_allclose(got[i, c], want, atol=1e-5)


def test_nearest_agrees_with_scipy(rng):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = _images(rng, 2, 1, 21, 18, np.uint8, "NCHW")
    m = _random_matrices(rng, 2, 21, 18)
    got = A.affine(x, m, interpolation="nearest", padding_mode="edge")
    for i in range(2):
        a, t = m[i][::-1, :2][:, ::-1], m[i][::-1, 2]
        want = ndimage.affine_transform(x[i, 0], a, offset=t, order=0, mode="nearest")
        np.testing.assert_array_equal(got[i, 0], want)


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("interpolation", INTERPS)
def test_closed_forms(rng, dtype, layout, interpolation):
    x = _images(rng, 4, 3, 9, 9, dtype, layout)
    ax = (2, 3) if layout == "NCHW" else (1, 2)
    kw = {"interpolation": interpolation, "layout": layout}
    same = A.affine(x, np.repeat(A.affine_matrices((9, 9)), 4, 0), **kw)
    assert same.tobytes() == x.tobytes()  # the identity returns the input bitwise
    for k in range(4):
        m = np.repeat(A.affine_matrices((9, 9), angle=90.0 * k), 4, 0)
        np.testing.assert_array_equal(A.affine(x, m, **kw), np.rot90(x, k, axes=ax))
    hflip = np.repeat(A.affine_matrices((9, 9), hflip=True), 4, 0)
    once = A.affine(x, hflip, **kw)
    np.testing.assert_array_equal(once, np.flip(x, ax[1]))
    np.testing.assert_array_equal(A.affine(once, hflip, **kw), x)


def test_non_square_rotation_about_the_centre(rng):
    # 180° of a (H, W) image maps pixel centres onto pixel centres whatever the parity.
    x = _images(rng, 2, 1, 6, 11, np.float32, "NCHW")
    m = np.repeat(A.affine_matrices((6, 11), angle=180.0), 2, 0)
    np.testing.assert_array_equal(A.affine(x, m), x[:, :, ::-1, ::-1])


def test_bilinear_half_pixel_shift_averages_neighbours():
    x = np.array([[[[0.0, 2.0, 4.0, 8.0]]]], np.float32)
    m = np.array([[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]])
    y = A.affine(x, m, padding_mode="edge")
    np.testing.assert_array_equal(y[0, 0, 0], [1.0, 3.0, 6.0, 8.0])
    y = A.affine(x, m, fill=10.0)  # the last sample is half outside: half the fill
    np.testing.assert_array_equal(y[0, 0, 0], [1.0, 3.0, 6.0, 9.0])


def test_uint8_rounds_half_to_even_and_saturates():
    x = np.array([[[[1, 2, 5, 255]]]], np.uint8)
    m = np.array([[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]])
    # (1+2)/2 = 1.5 → 2, (2+5)/2 = 3.5 → 4, (5+255)/2 = 130, (255 + fill 1000)/2 → 255
    np.testing.assert_array_equal(A.affine(x, m, fill=1000.0)[0, 0, 0], [2, 4, 130, 255])
    np.testing.assert_array_equal(A.affine(x, m, fill=-1000.0)[0, 0, 0], [2, 4, 130, 0])


def test_out_is_written_and_returned(rng):
    x = _images(rng, 2, 3, 8, 8, np.float32, "NCHW")
    m = _random_matrices(rng, 2, 8, 8)
    out = np.full_like(x, np.nan)
    assert A.affine(x, m, out=out) is out
    np.testing.assert_array_equal(out, A.affine(x, m))


# --------------------------------------------------------------------------------------------
# Random parameters


def test_uniforms_are_per_image_philox_words():
    u = A.uniforms(5, 6, seed=2**40 + 3, offset=2**33 + 1)
    for i in (0, 4):
        for d in (0, 5):
            words = nndl_fast.dropout.philox4x32_10(
                (i, d // 4, (2**33 + 1) & 0xFFFFFFFF, (2**33 + 1) >> 32), ((2**40 + 3) & 0xFFFFFFFF, (2**40 + 3) >> 32)
            )
            assert u[i, d] == words[d % 4] / 2**32
    # Image i's draws do not depend on the batch size.
    np.testing.assert_array_equal(A.uniforms(3, 6, seed=2**40 + 3, offset=2**33 + 1), u[:3])


def test_random_affine_reproducible_and_params_rebuild_the_batch(rng):
    x = _images(rng, 6, 3, 16, 16, np.uint8, "NHWC")
    t = A.RandomAffine(25, (0.1, 0.2), (0.8, 1.2), 0.5, 0.5, seed=11, layout="NHWC")
    y0, p0 = t(x, return_params=True)
    assert t.offset == 1
    y1, p1 = t(x, return_params=True)
    assert t.offset == 2 and not np.array_equal(p0.angle, p1.angle)
    again = t(x, offset=0)
    assert t.offset == 2  # an explicit offset replays without advancing
    np.testing.assert_array_equal(again, y0)
    np.testing.assert_array_equal(A.affine(x, p0.matrices, layout="NHWC"), y0)
    want = A.affine_matrices(
        (16, 16), angle=p0.angle, translate=p0.translate, scale=p0.scale, hflip=p0.hflip, vflip=p0.vflip
    )
    np.testing.assert_array_equal(p0.matrices, want)
    np.testing.assert_array_equal(t.params(6, (16, 16), offset=0).angle, p0.angle)
    # The first images of a bigger batch get the same parameters.
    big = np.concatenate([x, x])
    np.testing.assert_array_equal(t(big, offset=0)[:6], y0)
    assert np.all(np.abs(p0.translate[:, 0]) <= 0.1 * 16) and np.all(p0.translate == np.rint(p0.translate))


def test_parameter_distributions():
    stats = pytest.importorskip("scipy.stats")
    n = 10_000
    p = A.RandomAffine(30, (0.0, 0.0), (0.5, 2.0), 0.3, 0.7, seed=5).params(n, (32, 32))
    assert stats.kstest((p.angle + 30) / 60, "uniform").pvalue > 1e-3
    assert stats.kstest((p.scale - 0.5) / 1.5, "uniform").pvalue > 1e-3
    assert np.all(np.abs(p.angle) <= 30)
    for rate, flips in ((0.3, p.hflip), (0.7, p.vflip)):
        assert abs(flips.mean() - rate) < 5 * math.sqrt(rate * (1 - rate) / n)
    hf = A.random_flip(np.zeros((n, 1, 1, 2), np.uint8), hflip_p=0.25, seed=9, return_params=True).params.hflip
    assert abs(hf.mean() - 0.25) < 5 * math.sqrt(0.25 * 0.75 / n)


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_random_flip_is_a_gather(simd, nthreads, rng, dtype, layout):
    x = _images(rng, 40, 3, 7, 12, dtype, layout)
    y, p = A.random_flip(x, hflip_p=0.5, vflip_p=0.5, seed=3, layout=layout, return_params=True)
    ax = (2, 3) if layout == "NCHW" else (1, 2)
    for i in range(40):
        want = x[i : i + 1]
        if p.hflip[i]:
            want = np.flip(want, ax[1])
        if p.vflip[i]:
            want = np.flip(want, ax[0])
        np.testing.assert_array_equal(y[i : i + 1], want)
    assert 0 < p.hflip.sum() < 40 and 0 < p.vflip.sum() < 40


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("padding_mode, np_mode", NUMPY_PAD_MODES)
def test_random_crop_is_a_crop_of_the_padded_image(simd, nthreads, rng, dtype, layout, padding_mode, np_mode):
    x = _images(rng, 9, 3, 13, 10, dtype, layout)
    y, p = A.random_crop(
        x, (11, 9), padding=4, padding_mode=padding_mode, fill=5, seed=7, layout=layout, return_params=True
    )
    xc = _chw(x, layout)
    kw = {"constant_values": 5} if np_mode == "constant" else {}
    padded = np.pad(xc, ((0, 0), (0, 0), (4, 4), (4, 4)), mode=np_mode, **kw)
    yc = _chw(y, layout)
    assert yc.shape == (9, 3, 11, 9)
    for i in range(9):
        t, left = p.top[i], p.left[i]
        np.testing.assert_array_equal(yc[i], padded[i, :, t : t + 11, left : left + 9])
    assert len(set(p.top)) > 1 and p.top.max() <= 13 + 8 - 11


def test_crop_gather_matches_reference_far_outside(rng):
    x = _images(rng, 3, 2, 5, 6, np.float32, "NHWC")
    maps = np.array([[-20.0, 1, 30, -1], [7, -1, -3, 1], [2, 1, 1, 1]])
    for pad in PADS:
        got = nndl_fast._core.augment_gather(x, maps, None, 9, 11, [1.0, 2.0], PADS.index(pad), True)
        np.testing.assert_array_equal(got, R.gather(x, maps, (9, 11), fill=[1, 2], padding_mode=pad, layout="NHWC"))


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("c", [1, 3, 4, 5, 17])
def test_gather_rows_match_reference(simd, nthreads, rng, dtype, layout, c):
    """Every copy path of a gathered row (forward, and reversed for pixels of 1, 3, 4, 5, 12,
    16, 17, 20, 68 bytes: the byte-shuffle, 32-bit-lane and bytewise ways), odd widths, rows
    shorter and longer than a vector, segments cut by the image's edges, every padding; the
    affine warp's gather rows (flips with integer shifts) too. Batches large enough to split."""
    for h, w, oh, ow in [(5, 1, 4, 3), (9, 7, 11, 9), (7, 33, 6, 31), (4, 70, 5, 75)]:
        n = min(40, max(4, 40000 // (c * oh * ow)))
        x = _images(rng, n, c, h, w, dtype, layout)
        maps = np.stack(
            [
                rng.integers(-ow - 2, w + ow + 2, n),
                rng.choice([-1.0, 1.0], n),
                rng.integers(-oh, h + oh, n),
                rng.choice([-1.0, 1.0], n),
            ],
            axis=1,
        ).astype(np.float64)
        maps[:4] = [[0, 1, 0, 1], [w - 1, -1, 0, 1], [ow - 1, -1, oh - 1, -1], [w - ow, 1, h - 1, -1]]
        fill = [3.0] * c if c > 1 else [3.0]
        for pad in PADS:
            got = nndl_fast._core.augment_gather(x, maps, None, oh, ow, fill, PADS.index(pad), layout == "NHWC")
            want = R.gather(x, maps, (oh, ow), fill=fill, padding_mode=pad, layout=layout)
            np.testing.assert_array_equal(got, want, err_msg=f"{(h, w, oh, ow)} {pad}")
            m = np.zeros((n, 2, 3))
            m[:, 0, 0], m[:, 0, 2], m[:, 1, 1], m[:, 1, 2] = maps[:, 1], maps[:, 0], maps[:, 3], maps[:, 2]
            got = A.affine(x, m, interpolation="bilinear", padding_mode=pad, fill=fill, layout=layout)
            want = R.gather(x, maps, (h, w), fill=fill, padding_mode=pad, layout=layout)
            np.testing.assert_array_equal(got, want, err_msg=f"affine {(h, w)} {pad}")


# --------------------------------------------------------------------------------------------
# Compose


def test_compose_folds_crop_and_flip_into_one_gather(rng):
    x = _images(rng, 8, 3, 12, 12, np.uint8, "NCHW")
    steps = [A.RandomCrop(10, 2, seed=1), A.RandomFlip(0.5, 0.5, seed=2)]
    c = A.Compose(steps)
    assert len(c._runs()) == 1
    y, params = c(x, return_params=True)
    chain = A.random_flip(A.random_crop(x, 10, padding=2, seed=1), hflip_p=0.5, vflip_p=0.5, seed=2)
    np.testing.assert_array_equal(y, chain)
    assert isinstance(params[0], A.CropParams) and isinstance(params[1], A.FlipParams)
    assert c.offset == 1 and not np.array_equal(c(x), y)


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("padding_mode", PADS)
def test_compose_crop_flip_run_equals_the_chain(simd, nthreads, rng, dtype, layout, padding_mode):
    """A run of flips and a crop, drawn and folded in one compiled call: the chain's pixels
    and params, with the run's noise added in its sweep; a run of flips alone too."""
    x = _images(rng, 37, 3, 13, 10, dtype, layout)
    kw = {"layout": layout}
    f1, f2 = A.RandomFlip(0.5, 0.5, seed=1, **kw), A.RandomFlip(0.4, 0.6, seed=3, **kw)
    crop = A.RandomCrop((11, 7), 3, padding_mode=padding_mode, fill=[9, 200, 4], seed=2, **kw)
    noise = A.AddNoise(std=2.0, seed=4, **kw)
    c = A.Compose([f1, crop, f2, noise], offset=5)
    assert len(c._runs()) == 1
    y, params = c(x, return_params=True)
    a = A.random_flip(x, hflip_p=0.5, vflip_p=0.5, seed=1, offset=5, layout=layout)
    b = A.random_crop(a, (11, 7), padding=3, padding_mode=padding_mode, fill=[9, 200, 4], seed=2, offset=5, **kw)
    chain = A.add_noise(
        A.random_flip(b, hflip_p=0.4, vflip_p=0.6, seed=3, offset=5, layout=layout), std=2.0, seed=4, offset=5
    )
    np.testing.assert_array_equal(y, chain)
    _, p1 = A.random_flip(x, hflip_p=0.5, vflip_p=0.5, seed=1, offset=5, layout=layout, return_params=True)
    np.testing.assert_array_equal(params[0].hflip, p1.hflip)
    np.testing.assert_array_equal(
        params[1].top, A.random_crop(a, (11, 7), padding=3, seed=2, offset=5, return_params=True, **kw).params.top
    )
    assert params[3] is None and len(params) == 4
    flips = A.Compose([f1, f2], offset=5)
    want = A.random_flip(a, hflip_p=0.4, vflip_p=0.6, seed=3, offset=5, layout=layout)
    np.testing.assert_array_equal(flips(x), want)


def test_compose_folds_affine_steps_into_one_matrix(rng):
    x = _images(rng, 5, 2, 15, 15, np.float32, "NHWC")
    a1 = A.RandomAffine(40, seed=1, layout="NHWC")
    a2 = A.RandomAffine(0, (0.2, 0.2), (0.9, 1.1), seed=2, layout="NHWC")
    fl = A.RandomFlip(0.5, seed=3, layout="NHWC")
    c = A.Compose([a1, fl, a2])
    y, (p1, pf, p2) = c(x, offset=4, return_params=True)
    mf = A.affine_matrices((15, 15), hflip=pf.hflip)
    m = A._compose(A._compose(p1.matrices, mf), p2.matrices)
    np.testing.assert_array_equal(y, A.affine(x, m, layout="NHWC"))
    # One resampling: the composed matrix applied to a point is the chain of the inverse maps.
    pt = np.array([3.0, 11.0, 1.0])
    chain = p1.matrices[0] @ np.append(mf[0] @ np.append(p2.matrices[0] @ pt, 1.0), 1.0)
    np.testing.assert_allclose(m[0] @ pt, chain, rtol=1e-12)


def test_compose_runs_other_steps_in_order(rng):
    x = _images(rng, 4, 3, 16, 16, np.uint8, "NCHW")
    steps = [A.RandomAffine(10, seed=1), A.RandomCrop(12, seed=2), A.Cutout(4, seed=3), A.AddNoise(std=3.0, seed=4)]
    c = A.Compose(steps)
    assert [len(r) for r in c._runs()] == [1, 1, 1, 1]  # a crop after an affine is not folded
    out = np.empty((4, 3, 12, 12), np.uint8)
    y = c(x, out=out)
    assert y is out
    chain = steps[0](x, offset=0)
    chain = steps[1](chain, offset=0)
    chain = steps[2](chain, offset=0)
    np.testing.assert_array_equal(y, steps[3](chain, offset=0))


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("kind", ["gaussian", "uniform", "salt_pepper"])
def test_compose_adds_noise_in_the_warps_sweep(simd, nthreads, rng, dtype, kind):
    # 1 MiB chunks of images, whose element ranges do not start on the generator's 64-blocks.
    x = _images(rng, 400, 3, 37, 41, dtype, "NHWC")  # uint8 too: more than one chunk
    kw = {"amount": 0.1} if kind == "salt_pepper" else {"std": 5.0 if dtype == np.uint8 else 0.05}
    for geometric in (
        [A.RandomCrop(33, 2, seed=1, layout="NHWC"), A.RandomFlip(seed=2, layout="NHWC")],
        [A.RandomAffine(20, seed=3, layout="NHWC")],
    ):
        noise = A.AddNoise(kind, seed=4, layout="NHWC", **kw)
        c = A.Compose([*geometric, noise])
        assert len(c._runs()) == 1
        y, params = c(x, offset=2, return_params=True)
        assert params[-1] is None
        chain = A.Compose(geometric)(x, offset=2)
        np.testing.assert_array_equal(y, noise(chain, offset=2))


# --------------------------------------------------------------------------------------------
# Noise and erasing


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("n", [1, 63, 64, 65, 3 * 17 * 19])
def test_noise_matches_reference(simd, nthreads, rng, dtype, n):
    x = _images(rng, 1, 1, 1, n, dtype, "NCHW")
    seed, offset = 2**35 + 1, 7
    std = 12.0 if dtype == np.uint8 else 0.1
    u = A.add_noise(x, kind="uniform", std=std, seed=seed, offset=offset)
    np.testing.assert_array_equal(u, R.add_noise(x, R.noise(x.shape, "uniform", seed, offset, std=std)))
    g = A.add_noise(x, std=std, seed=seed, offset=offset)
    want = R.add_noise(x, R.noise(x.shape, "gaussian", seed, offset, std=std))
    if dtype == np.uint8:  # the kernel's float32 transform is within 2 ulp of NumPy's: rarely one level at a .5
        assert np.abs(g.astype(int) - want).max() <= 1 and np.mean(g != want) < 0.01
    else:
        np.testing.assert_allclose(g, want, rtol=0, atol=1e-6)
    sp = A.add_noise(x, kind="salt_pepper", amount=0.3, seed=seed, offset=offset)
    np.testing.assert_array_equal(sp, R.salt_pepper(x, 0.3, seed, offset))


def test_gaussian_noise_is_the_random_fill():
    random = pytest.importorskip("nndl_fast.random", reason="nndl_fast.random (the init branch) not merged yet")
    x = np.random.default_rng(1).random((2, 3, 9, 11), dtype=np.float32)
    want = x + random.normal(x.shape, 0.0, 0.2, dtype=np.float32, seed=3, offset=5)
    np.testing.assert_array_equal(A.add_noise(x, std=0.2, seed=3, offset=5), want)


def test_noise_statistics_and_in_place():
    x = np.full((4, 3, 64, 64), 0.5, np.float32)
    n = A.add_noise(x, std=0.1, seed=1) - x
    assert abs(n.mean()) < 0.002 and abs(n.std() - 0.1) < 0.002
    n = A.add_noise(x, kind="uniform", std=0.1, seed=1) - x
    assert abs(n.std() - 0.1) < 0.002 and np.abs(n).max() <= 0.1 * math.sqrt(3) + 1e-6
    y = A.add_noise(x, kind="salt_pepper", amount=0.2, seed=2, out=x)
    assert y is x and abs((x == 0).mean() - 0.1) < 0.01 and abs((x == 1).mean() - 0.1) < 0.01


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_erasing_matches_reference(rng, dtype, layout):
    x = _images(rng, 30, 3, 12, 9, dtype, layout)
    y, p = A.cutout(x, 5, fill=(1, 2, 3), seed=4, layout=layout, return_params=True)
    np.testing.assert_array_equal(y, R.erase(x, p.boxes, fill=(1, 2, 3), layout=layout))
    assert np.all(p.boxes[:, 2:] <= 5) and np.any(p.boxes[:, 2] < 5)  # clipped at the borders
    y, p = A.random_erasing(x, p=0.5, seed=4, layout=layout, return_params=True)
    np.testing.assert_array_equal(y, R.erase(x, p.boxes, layout=layout))
    area = p.boxes[:, 2] * p.boxes[:, 3]
    assert np.any(area == 0) and np.all(area <= 0.4 * 12 * 9)
    z = x.copy()
    assert A.cutout(z, 3, seed=4, layout=layout, out=z) is z
    np.testing.assert_array_equal(z, A.cutout(x, 3, seed=4, layout=layout))


# --------------------------------------------------------------------------------------------
# Bad input (the shared table in test_bad_input.py covers the generic array cases)


def test_bad_input_is_named(rng):
    x = _images(rng, 2, 3, 8, 8, np.float32, "NCHW")
    m = _random_matrices(rng, 2, 8, 8)
    with pytest.raises(ValueError, match="matrices"):
        A.affine(x, m[:1])
    bad = m.copy()
    bad[1, 0, 2] = np.nan
    with pytest.raises(ValueError, match=r"matrices\[1\] is not finite"):
        A.affine(x, bad)
    with pytest.raises(TypeError, match="images must be uint8 or float32"):
        A.affine(x.astype(np.uint16), m)
    with pytest.raises(ValueError, match="images must have 4 dimensions"):
        A.affine(x[0], m)
    with pytest.raises(ValueError, match="shares memory"):
        A.affine(x, m, out=x)
    with pytest.raises(ValueError, match="out has shape"):
        A.affine(x, m, out=np.empty((2, 3, 8, 9), np.float32))
    with pytest.raises(TypeError, match="out has dtype"):
        A.affine(x, m, out=np.empty((2, 3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="fill has 2 values"):
        A.affine(x, m, fill=(1, 2))
    with pytest.raises(ValueError, match="layout"):
        A.affine(x, m, layout="CHWN")
    with pytest.raises(ValueError, match="size"):
        A.random_crop(x, 12, seed=1)
    with pytest.raises(TypeError, match="seed"):
        A.random_flip(x)
    with pytest.raises(TypeError, match="std"):
        A.add_noise(x, kind="gaussian", amount=0.1, seed=1)
    with pytest.raises(TypeError, match="steps"):
        A.Compose([A.RandomFlip(seed=1), "flip"])
    with pytest.raises(ValueError, match="layout"):
        A.Compose([A.RandomFlip(seed=1), A.RandomFlip(seed=1, layout="NHWC")])
    before = x.copy()
    t = A.RandomAffine(10, seed=1)
    with pytest.raises(TypeError):
        t(x.astype(np.float64))
    assert t.offset == 0  # a rejected call does not advance the stream
    np.testing.assert_array_equal(x, before)


def test_empty_images():
    x = np.zeros((2, 3, 0, 0), np.uint8)
    with pytest.raises(ValueError, match="empty"):  # nothing to repeat (a division by zero before)
        A.random_crop(x, 2, padding=1, padding_mode="edge", seed=1)
    np.testing.assert_array_equal(A.random_crop(x, 2, padding=1, fill=9, seed=1), np.full((2, 3, 2, 2), 9, np.uint8))
    for pad in PADS:
        assert A.affine(x, np.zeros((2, 2, 3)), padding_mode=pad).shape == x.shape
    assert A.affine(np.zeros((0, 3, 4, 4), np.float32), np.zeros((0, 2, 3))).shape == (0, 3, 4, 4)


def test_torchvision_parity():
    torch = pytest.importorskip("torch")
    F = pytest.importorskip("torchvision.transforms.v2.functional", reason="torchvision not installed")
    x = np.random.default_rng(0).random((1, 3, 20, 20), dtype=np.float32)
    for angle, tr, sc in ((30.0, (2, -3), 1.2), (-75.0, (0, 1), 0.8)):
        # F.affine turns clockwise for a positive angle (F.rotate, like ours, counter-clockwise).
        want = F.affine(torch.from_numpy(x), angle=-angle, translate=list(tr), scale=sc, shear=[0.0, 0.0])
        m = A.affine_matrices((20, 20), angle=angle, translate=tr, scale=sc)
        got = A.affine(x, m)
        np.testing.assert_allclose(got, want.numpy(), atol=1e-5)
