"""nndl_fast.preprocessing: parity with the NumPy reference and scikit-learn, determinism of the
column statistics (threads, SIMD targets, chunkings), whitening, degenerate input, the
estimator protocol, and a memmap larger than the memory a fit may use."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from conftest import SIMD_TARGETS, assert_close, several_simd_targets

import nndl_fast
from nndl_fast import _core, preprocessing
from nndl_fast.preprocessing import (
    DegenerateFeatureWarning,
    MinMaxScaler,
    NotFittedError,
    PCAWhitening,
    StandardScaler,
    ZCAWhitening,
)
from nndl_fast.reference import preprocessing as ref

BLOCK = _core.column_stats_rows
SHAPES = [(1, 3), (7, 5), (BLOCK + 1, 3), (2 * BLOCK + 3, 17), (4099, 1), (301, 600), (257, 2100)]


def _data(shape, dtype=np.float64, seed=0, offset=100.0):
    rng = np.random.default_rng(seed)
    n, d = shape
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0, d) + offset * rng.uniform(-1, 1, d)
    return x.astype(dtype)


def _ordered(x, order):
    return np.asfortranarray(x) if order == "F" else np.ascontiguousarray(x)


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateFeatureWarning)
        return fn(*a, **k)


def _stats_of(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_")}


# --------------------------------------------------------------------------------------------
# Parity


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_scalers_match_reference(shape, dtype, order, simd, nthreads):
    x = _ordered(_data(shape, dtype), order)
    x64 = x.astype(np.float64)
    want_y, mean, var = ref.standardize(x64)
    s = _quiet(StandardScaler().fit, x)
    # The statistics are taken in double from the values as given: float64-exact for float32 too.
    np.testing.assert_allclose(s.mean_, mean, rtol=1e-12, atol=1e-12 * np.abs(mean).max())
    np.testing.assert_allclose(s.var_, var, rtol=1e-11, atol=1e-12 * var.max())
    y = s.transform(x)
    assert y.dtype == dtype and (y.flags.f_contiguous if order == "F" else y.flags.c_contiguous)
    assert_close(y, want_y, dtype, scale=max(1.0, np.abs(want_y).max()))

    want_m, lo, hi = ref.min_max_scale(x64, (-1.0, 2.0))
    m = _quiet(MinMaxScaler(feature_range=(-1.0, 2.0)).fit, x)
    np.testing.assert_array_equal(m.data_min_, lo)
    np.testing.assert_array_equal(m.data_max_, hi)
    assert_close(m.transform(x), want_m, dtype, scale=2.0)


@pytest.mark.parametrize("shape", [(7, 5), (2 * BLOCK + 3, 17), (300, 64)], ids=str)
def test_scalers_match_sklearn(shape):
    sk = pytest.importorskip("sklearn.preprocessing")
    x = _data(shape, seed=3)
    ours, theirs = StandardScaler().fit(x), sk.StandardScaler().fit(x)
    for name in ("mean_", "var_", "scale_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-12)
    assert ours.n_samples_seen_ == theirs.n_samples_seen_
    y = theirs.transform(x)
    np.testing.assert_allclose(ours.transform(x), y, rtol=1e-12, atol=1e-12 * np.abs(y).max())
    ours, theirs = MinMaxScaler((-2, 3)).fit(x), sk.MinMaxScaler((-2, 3)).fit(x)
    for name in ("data_min_", "data_max_", "data_range_", "scale_", "min_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-12)
    y = theirs.transform(x)
    np.testing.assert_allclose(ours.transform(x), y, rtol=1e-12, atol=1e-12 * np.abs(y).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_inverse_round_trip(dtype, order):
    x = _ordered(_data((513, 9), dtype, offset=10.0), order)
    for est in (StandardScaler(), StandardScaler(with_mean=False), MinMaxScaler((-1, 1))):
        back = est.fit(x).inverse_transform(est.transform(x))
        assert back.dtype == dtype
        assert_close(back, x, dtype)
    for est in (PCAWhitening(), ZCAWhitening()):
        back = est.fit(x).inverse_transform(est.transform(x))
        assert back.dtype == dtype
        np.testing.assert_allclose(back, x, rtol=1e-10 if dtype == np.float64 else 1e-3, atol=1e-3)


def test_with_mean_with_std_match_sklearn():
    sk = pytest.importorskip("sklearn.preprocessing")
    x = _data((100, 4))
    for wm, ws in [(False, True), (True, False), (False, False)]:
        ours, theirs = (
            StandardScaler(with_mean=wm, with_std=ws).fit(x),
            sk.StandardScaler(with_mean=wm, with_std=ws).fit(x),
        )
        for name in ("mean_", "var_", "scale_"):
            a, b = getattr(ours, name), getattr(theirs, name)
            assert (a is None) == (b is None), name
            if a is not None:
                np.testing.assert_allclose(a, b, rtol=1e-12)
        np.testing.assert_allclose(ours.transform(x), theirs.transform(x), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Determinism and chunkings


def _fit_in_runs(x, sizes, est_cls=StandardScaler):
    est = est_cls()
    r = 0
    for k in sizes:
        _quiet(est.partial_fit, x[r : r + k])  # a first run of one row has zero variance
        r += k
    assert r == x.shape[0]
    return est


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_statistics_bitwise_across_threads_and_targets(dtype, order):
    x = _ordered(_data((5 * BLOCK + 77, 23), dtype, seed=5), order)
    runs = [BLOCK + 5, 3 * BLOCK - 9, x.shape[0] - 4 * BLOCK + 4]
    results = []
    for target in SIMD_TARGETS:
        for t in (1, 2):
            with nndl_fast.simd_target(target), nndl_fast.threads(t):
                est = _fit_in_runs(x, runs)
                y = est.transform(x)
                results.append((est._stats.tobytes(), y.tobytes(), (target, t)))
    for st, y, who in results[1:]:
        assert st == results[0][0], f"statistics differ on {who}"
        assert y == results[0][1], f"transform differs on {who}"


def _non_finite_case(dtype, order, seed, nan_column=False):
    """(2·BLOCK + 13, 9) data with NaN in columns 1 and 2, +inf in 3, −inf in 4 (and, with
    nan_column, NaN in every third row of column 5), in eight-row groups and in the row tails."""
    n = 2 * BLOCK + 13
    x = _data((n, 9), dtype, seed=seed)
    x[5, 1] = np.nan  # in a group of eight rows
    x[n - 2, 2] = np.nan  # in the last rows, read one at a time
    x[BLOCK + 3, 3] = np.inf
    x[n - 1, 4] = -np.inf
    if nan_column:
        x[::3, 5] = np.nan
    return _ordered(x, order)


@pytest.mark.parametrize("omit", [False, True], ids=["raise", "omit"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_min_max_only_statistics(order, dtype, omit, simd, nthreads):
    # MinMaxScaler's pass (moments=False): count, min and max as the full pass gives them, the
    # mean field flags NaN/±inf (0 otherwise) and M2 is 0, also for values in the row tails.
    x = _non_finite_case(dtype, order, seed=11, nan_column=True)
    full, mm = _empty_stats(9), _empty_stats(9)
    _core.column_stats_update(x, full, omit, True)
    _core.column_stats_update(x, mm, omit, False)
    np.testing.assert_array_equal(mm[[0, 3, 4]], full[[0, 3, 4]])
    flagged = [3, 4] if omit else [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(np.flatnonzero(~np.isfinite(mm[1])), flagged)
    ok = np.isfinite(mm[1])
    assert (mm[1][ok] == 0).all() and (mm[2][ok] == 0).all()
    np.testing.assert_array_equal(~np.isfinite(full[1]), ~np.isfinite(mm[1]))


@pytest.mark.parametrize("omit", [False, True], ids=["raise", "omit"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_moments_only_statistics(order, dtype, omit, simd, nthreads):
    # StandardScaler's and the whitenings' pass (minmax=False): count, mean and M2 bitwise those
    # of the full pass, min and max left as they were, NaN/±inf still shown by mean and M2.
    x = _non_finite_case(dtype, order, seed=12)
    full, mo = _empty_stats(9), _empty_stats(9)
    _core.column_stats_update(x, full, omit, True)
    _core.column_stats_update(x, mo, omit, True, False)
    np.testing.assert_array_equal(mo[:3], full[:3])
    np.testing.assert_array_equal(mo[3:], _empty_stats(9)[3:])
    flagged = [3, 4] if omit else [1, 2, 3, 4]
    np.testing.assert_array_equal(np.flatnonzero(~(np.isfinite(mo[1]) & np.isfinite(mo[2]))), flagged)
    with pytest.raises(ValueError, match="nothing to compute"):
        _core.column_stats_update(x, mo, omit, False, False)


def test_min_max_scaler_flags_non_finite_in_any_row():
    for row in (0, 9, 2 * BLOCK + 12):
        x = _data((2 * BLOCK + 13, 3), np.float32)
        x[row, 1] = np.nan
        with pytest.raises(ValueError, match=r"NaN or infinity in feature\(s\) 1"):
            MinMaxScaler().fit(x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("size", ["in-cache", "prefetched"])
@pytest.mark.parametrize("d", [600, 64, 120])
def test_min_max_of_grouped_rows_flags_non_finite_in_any_row(d, size, dtype, simd, nthreads):
    # Float rows are read a few at a time (8 from 2 KiB on, 4 up to 64 values, else 2), with
    # prefetches in a large x (over half the last-level cache for long rows, 2 MiB for short
    # ones): the exact min and max, and a NaN or inf in a group's first or last row or in a
    # block's remaining rows flags its feature alone.
    rows = 301 if size == "in-cache" else _core.last_level_cache_bytes() // (2 * d * 4) + 2 * BLOCK + 5
    x = _data((rows, d), dtype, seed=13)
    st = _empty_stats(d)
    _core.column_stats_update(x, st, False, False)
    np.testing.assert_array_equal(st[3], x.min(0))
    np.testing.assert_array_equal(st[4], x.max(0))
    assert (st[1] == 0).all() and (st[2] == 0).all()
    for row, col, v in ((0, 0, np.nan), (15, d - 1, np.nan), (rows - 1, d // 2, np.inf), (rows - 3, 17, -np.inf)):
        y = x.copy()
        y[row, col] = v
        st = _empty_stats(d)
        _core.column_stats_update(y, st, False, False)
        np.testing.assert_array_equal(np.flatnonzero(~np.isfinite(st[1])), [col], err_msg=f"row {row}")


def _empty_stats(d):
    st = np.zeros((5, d))
    st[3], st[4] = np.inf, -np.inf
    return st


def test_partial_fit_chunkings():
    x = _data((4 * BLOCK + 13, 7), seed=7)
    whole = StandardScaler().fit(x)
    # Runs of whole blocks fold exactly as one fit does.
    aligned = _fit_in_runs(x, [BLOCK, 2 * BLOCK, BLOCK + 13])
    np.testing.assert_array_equal(aligned._stats, whole._stats)
    # Any other chunking: equal to rounding.
    for sizes in (
        [1, 2, 3, x.shape[0] - 6],
        [1000] * 8 + [x.shape[0] - 8000],
        [x.shape[0] // 2, x.shape[0] - x.shape[0] // 2],
    ):
        est = _fit_in_runs(x, sizes)
        np.testing.assert_allclose(est.mean_, whole.mean_, rtol=1e-13)
        np.testing.assert_allclose(est.var_, whole.var_, rtol=1e-12)
        assert est.n_samples_seen_ == x.shape[0]
        mm = _fit_in_runs(x, sizes, MinMaxScaler)
        np.testing.assert_array_equal(mm.data_min_, x.min(0))
        np.testing.assert_array_equal(mm.data_max_, x.max(0))
    for cls in (PCAWhitening, ZCAWhitening):
        est, full = _fit_in_runs(x, [5, 3000, x.shape[0] - 3005], cls), cls().fit(x)
        np.testing.assert_allclose(est.explained_variance_, full.explained_variance_, rtol=1e-12)
        np.testing.assert_allclose(est.whitening_, full.whitening_, rtol=1e-10, atol=1e-12)


def test_column_and_row_order_agree():
    x = _data((3 * BLOCK + 5, 11), np.float32)
    c, f = StandardScaler().fit(x), StandardScaler().fit(np.asfortranarray(x))
    np.testing.assert_allclose(c.mean_, f.mean_, rtol=1e-13)
    np.testing.assert_allclose(c.var_, f.var_, rtol=1e-12)
    # The map is element-wise: the same bits in either order.
    np.testing.assert_array_equal(c.transform(x), f.transform(np.asfortranarray(x)))


@pytest.mark.parametrize(
    ("shape", "dtype"),
    # short rows in an x over 2 MiB (read with prefetches, 4 rows per group for float rows of
    # <= 64 values, else 2; the blocks' last rows alone); 3 blocks x 700 columns (the fold of
    # the blocks split over threads, 8 rows per group)
    [((9001, 64), np.float32), ((6001, 120), np.float32), ((4001, 80), np.float64), ((2 * BLOCK + 1, 700), np.float32)],
    ids=str,
)
def test_statistics_of_large_inputs_bitwise_across_threads_and_targets(shape, dtype):
    x = _data(shape, dtype, seed=9)
    want_y, mean, var = ref.standardize(x.astype(np.float64))
    results = []
    for target in SIMD_TARGETS:
        for t in (1, 2):
            with nndl_fast.simd_target(target), nndl_fast.threads(t):
                full, mm = _empty_stats(shape[1]), _empty_stats(shape[1])
                _core.column_stats_update(x, full, False, True)
                _core.column_stats_update(x, mm, False, False)
                results.append((full.tobytes(), mm.tobytes(), (target, t)))
    for st, m, who in results[1:]:
        assert st == results[0][0], f"statistics differ on {who}"
        assert m == results[0][1], f"min-max statistics differ on {who}"
    np.testing.assert_allclose(full[1], mean, rtol=1e-12, atol=1e-12 * np.abs(mean).max())
    np.testing.assert_allclose(full[2] / shape[0], var, rtol=1e-11)
    np.testing.assert_array_equal(full[0], shape[0])
    np.testing.assert_array_equal(mm[3], x.min(0))
    np.testing.assert_array_equal(mm[4], x.max(0))


@several_simd_targets()
def test_affine_bitwise_on_every_target():
    x = _data((1001, 37), np.float32)
    s = MinMaxScaler(clip=True).fit(x[:500])
    outs = []
    for target in SIMD_TARGETS:
        with nndl_fast.simd_target(target):
            outs.append(s.transform(x).tobytes())
    assert all(o == outs[0] for o in outs)


# --------------------------------------------------------------------------------------------
# In place, out=, dtype


def test_copy_false_and_out_write_in_place():
    x = _data((300, 6), np.float32)
    s = StandardScaler().fit(x)
    want = s.transform(x)
    y = x.copy()
    assert s.transform(y, copy=False) is y
    np.testing.assert_array_equal(y, want)
    out = np.empty_like(x)
    assert s.transform(x, out=out) is out
    np.testing.assert_array_equal(out, want)
    back = y.copy()
    assert s.inverse_transform(back, copy=False) is back
    np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="out must have the memory order of x"):
        s.transform(x, out=np.empty_like(x, order="F"))
    with pytest.raises(ValueError, match="out"):
        s.transform(x, out=np.empty((300, 5), np.float32))
    with pytest.raises(TypeError, match="out"):
        s.transform(x, out=np.empty((300, 6)))


def test_integer_and_list_input_become_float64():
    x = np.arange(40).reshape(10, 4)
    s = StandardScaler().fit(x)
    assert s.transform(x).dtype == np.float64
    np.testing.assert_allclose(s.transform(x.tolist()), s.transform(x.astype(float)))


def test_min_max_clip():
    x = _data((50, 3))
    m = MinMaxScaler((0, 1), clip=True).fit(x)
    y = m.transform(x * 3)
    assert y.min() == 0.0 and y.max() == 1.0
    assert MinMaxScaler().fit(x).transform(x * 3).max() > 1


# --------------------------------------------------------------------------------------------
# Whitening


def test_pca_matches_sklearn():
    sk = pytest.importorskip("sklearn.decomposition")
    x = _data((2000, 6), seed=11) @ np.diag([3.0, 2.0, 1.5, 1.0, 0.7, 0.4])
    for nc in (None, 3, 0.8):
        ours = PCAWhitening(n_components=nc, eps=0.0).fit(x)
        theirs = sk.PCA(n_components=nc, whiten=True, svd_solver="full").fit(x)
        assert ours.n_components_ == theirs.n_components_
        np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-12)
        np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_, rtol=1e-12)
        np.testing.assert_allclose(ours.explained_variance_ratio_, theirs.explained_variance_ratio_, rtol=1e-12)
        np.testing.assert_allclose(ours.components_, theirs.components_, rtol=1e-12, atol=1e-12)
        y = theirs.transform(x)
        np.testing.assert_allclose(ours.transform(x), y, rtol=1e-12, atol=1e-12 * np.abs(y).max())


def test_whitening_matches_reference():
    x = _data((500, 8), seed=2)
    y, mean, lam, u = ref.pca_whiten(x, 5, eps=1e-3)
    p = PCAWhitening(n_components=5, eps=1e-3).fit(x)
    np.testing.assert_allclose(p.explained_variance_, lam, rtol=1e-12)
    np.testing.assert_allclose(p.transform(x), y, rtol=1e-10, atol=1e-12)
    y, mean, w = ref.zca_whiten(x, eps=1e-3)
    z = ZCAWhitening(eps=1e-3).fit(x)
    np.testing.assert_allclose(z.whitening_, w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(z.transform(x), y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("order", ["C", "F"])
def test_whitened_covariance_is_identity(order):
    rng = np.random.default_rng(4)
    x = _ordered(rng.standard_normal((3000, 10)) @ rng.standard_normal((10, 10)) + 5.0, order)
    for est in (PCAWhitening(eps=0.0), ZCAWhitening(eps=0.0)):
        y = est.fit_transform(x)
        np.testing.assert_allclose(np.cov(y, rowvar=False), np.eye(10), atol=1e-6)
    # eps > 0: variance λ/(λ + ε) along each principal direction
    p = PCAWhitening(eps=0.1).fit(x)
    lam = p.explained_variance_
    np.testing.assert_allclose(np.cov(p.transform(x), rowvar=False), np.diag(lam / (lam + 0.1)), atol=1e-6)


def test_zca_is_the_closest_whitening():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2000, 5)) @ rng.standard_normal((5, 5))
    z = ZCAWhitening(eps=0.0).fit(x)
    xc = x - z.mean_
    y = z.transform(x)
    w = z.whitening_
    cov = np.cov(x, rowvar=False)
    # The definition: W symmetric positive definite with W Σ W = I, i.e. W = Σ^(-1/2).
    np.testing.assert_allclose(w, w.T, atol=1e-12)
    assert np.linalg.eigvalsh(w).min() > 0
    np.testing.assert_allclose(w @ cov @ w, np.eye(5), atol=1e-10)
    # Every other whitening is y·Q for an orthogonal Q, and lies further from x.
    best = np.sum((xc - y) ** 2)
    pca = PCAWhitening(eps=0.0).fit(x).transform(x)
    assert np.sum((xc - pca) ** 2) > best
    for _ in range(20):
        q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
        assert np.sum((xc - y @ q) ** 2) > best


def test_float32_whitening_stays_float32():
    x = _data((400, 6), np.float32)
    for est in (PCAWhitening(n_components=4), ZCAWhitening()):
        y = est.fit(x).transform(x)
        assert y.dtype == np.float32
        assert y.shape == (400, est.n_components_)


# --------------------------------------------------------------------------------------------
# Degenerate input


def test_zero_variance_feature_warns_and_gets_scale_one():
    x = _data((50, 4))
    x[:, 2] = 7.0
    with pytest.warns(DegenerateFeatureWarning, match=r"feature\(s\) 2 have zero variance"):
        s = StandardScaler().fit(x)
    assert s.scale_[2] == 1.0
    np.testing.assert_array_equal(s.transform(x)[:, 2], 0.0)
    with pytest.warns(DegenerateFeatureWarning, match=r"feature\(s\) 2 have zero range"):
        m = MinMaxScaler((-1, 1)).fit(x)
    np.testing.assert_array_equal(m.transform(x)[:, 2], -1.0)
    assert np.isfinite(m.transform(x)).all()


@pytest.mark.parametrize("cls", [StandardScaler, MinMaxScaler, PCAWhitening])
def test_nan_is_an_error_naming_the_feature(cls):
    x = _data((30, 5))
    x[4, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity in feature\(s\) 3"):
        cls().fit(x)
    x[4, 3] = -np.inf
    with pytest.raises(ValueError, match=r"infinity in feature\(s\) 3"):
        cls().fit(x)


@pytest.mark.parametrize("order", ["C", "F"])
def test_nan_policy_omit(order):
    sk = pytest.importorskip("sklearn.preprocessing")
    x = _data((3 * BLOCK + 1, 4), seed=9)
    x[::5, 1] = np.nan
    x[: BLOCK + 7, 2] = np.nan  # whole blocks without a value
    x = _ordered(x, order)
    ours, theirs = StandardScaler(nan_policy="omit").fit(x), sk.StandardScaler().fit(x)
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.var_, theirs.var_, rtol=1e-12)
    np.testing.assert_array_equal(ours.n_samples_seen_, theirs.n_samples_seen_)
    np.testing.assert_array_equal(ours.transform(x), ours.transform(x))  # NaNs pass through
    assert np.isnan(ours.transform(x)[::5, 1]).all()
    m = MinMaxScaler(nan_policy="omit").fit(x)
    np.testing.assert_array_equal(m.data_min_, np.nanmin(x, axis=0))
    with pytest.raises(ValueError, match=r"infinity in feature\(s\) 0"):
        x[3, 0] = np.inf
        StandardScaler(nan_policy="omit").fit(x)
    with pytest.raises(ValueError, match=r"feature\(s\) 1 have no value that is not NaN"):
        StandardScaler(nan_policy="omit").fit(np.array([[1.0, np.nan], [2.0, np.nan]]))


def test_rejected_partial_fit_changes_nothing():
    x = _data((40, 3))
    for est in (StandardScaler(), MinMaxScaler(), PCAWhitening(), ZCAWhitening()):
        est.fit(x)
        before = pickle.dumps(est)
        bad = x.copy()
        bad[5, 1] = np.nan
        for arg in (bad, x[:, :2], np.zeros((0, 3))):
            with pytest.raises(ValueError):
                est.partial_fit(arg)
        assert pickle.dumps(est) == before


def test_empty_one_sample_and_feature_mismatch():
    for cls in (StandardScaler, MinMaxScaler, PCAWhitening, ZCAWhitening):
        with pytest.raises(ValueError, match="0 sample"):
            cls().fit(np.zeros((0, 3)))
        with pytest.raises(ValueError, match="0 feature"):
            cls().fit(np.zeros((3, 0)))
        with pytest.raises(ValueError, match="2D array"):
            cls().fit(np.zeros(3))
        with pytest.raises(NotFittedError):
            cls().transform(np.zeros((2, 3)))
        est = _quiet(cls().fit, _data((10, 3)))
        with pytest.raises(ValueError, match="X has 4 features, but .* is expecting 3 features"):
            est.transform(np.zeros((2, 4)))
    for cls in (PCAWhitening, ZCAWhitening):
        with pytest.raises(ValueError, match="at least 2 samples"):
            cls().fit(np.ones((1, 3)))
    # one sample is a valid fit of a scaler: zero variance, scale 1
    with pytest.warns(DegenerateFeatureWarning):
        s = StandardScaler().fit(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(s.transform(np.array([[1.0, 3.0]])), [[0.0, 1.0]])


def test_bad_hyper_parameters_raise_at_fit():
    x = _data((10, 3))
    cases = [
        (StandardScaler(with_mean="yes"), TypeError, "with_mean"),
        (StandardScaler(nan_policy="drop"), ValueError, "nan_policy"),
        (MinMaxScaler(feature_range=(1, 0)), ValueError, "feature_range"),
        (MinMaxScaler(feature_range=3), TypeError, "feature_range"),
        (MinMaxScaler(clip=1), TypeError, "clip"),
        (PCAWhitening(n_components=0), ValueError, "n_components"),
        (PCAWhitening(n_components=1.5), ValueError, "n_components"),
        (PCAWhitening(n_components=4), ValueError, "n_components"),
        (PCAWhitening(eps=-1.0), ValueError, "eps"),
        (ZCAWhitening(eps="0"), TypeError, "eps"),
    ]
    for est, exc, name in cases:
        with pytest.raises(exc, match=name):
            est.fit(x)


# --------------------------------------------------------------------------------------------
# The estimator protocol


def test_params_repr_and_clone():
    s = StandardScaler(with_mean=False)
    assert s.get_params() == {"nan_policy": "raise", "with_mean": False, "with_std": True}
    assert repr(s) == "StandardScaler(with_mean=False)"
    assert s.set_params(with_std=False) is s and s.with_std is False
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        s.set_params(bogus=1)
    assert repr(PCAWhitening(n_components=3, eps=0.0)) == "PCAWhitening(eps=0.0, n_components=3)"
    base = pytest.importorskip("sklearn.base")
    c = base.clone(MinMaxScaler(feature_range=(-1, 1)))
    assert c.get_params()["feature_range"] == (-1, 1)


def test_pipeline_and_grid_search():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 5)) * 100
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    pipe = Pipeline([("scale", StandardScaler()), ("white", PCAWhitening()), ("clf", LogisticRegression())])
    grid = GridSearchCV(pipe, {"white__n_components": [2, 4], "scale__with_mean": [True, False]}, cv=3)
    grid.fit(x, y)
    assert grid.best_score_ > 0.8


@pytest.mark.parametrize(
    "est",
    [
        StandardScaler(),
        StandardScaler(nan_policy="omit"),
        MinMaxScaler(),
        MinMaxScaler(nan_policy="omit"),
        PCAWhitening(),
        PCAWhitening(n_components=0.5),
        ZCAWhitening(),
    ],
    ids=repr,
)
def test_sklearn_check_estimator(est):
    checks = pytest.importorskip("sklearn.utils.estimator_checks")
    # Does not apply: with the default nan_policy="raise" a NaN in fit is an error by design
    # (transform passes NaNs through, hence the allow_nan tag), and this check fits on NaNs;
    # the nan_policy="omit" instances pass it.
    expected = {"check_estimators_pickle": "nan_policy='raise' rejects NaN in fit"}
    with warnings.catch_warnings():
        # The checks fit constant and one-sample data: zero variance, named by this warning.
        warnings.simplefilter("ignore", DegenerateFeatureWarning)
        warnings.filterwarnings("ignore", message=".*does not inherit from `sklearn.base.BaseEstimator`")
        warnings.simplefilter("ignore", checks.SkipTestWarning)
        omit = getattr(est, "nan_policy", "raise") == "omit" or not est._allow_nan
        checks.check_estimator(est, expected_failed_checks=None if omit else expected)


# --------------------------------------------------------------------------------------------
# Memory-mapped input


def test_memmap_chunks_give_the_in_memory_result(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocessing, "_MAPPED_CHUNK_BYTES", 3 * BLOCK * 8 * 6)
    x = _data((7 * BLOCK + 9, 6), seed=8)
    for order in ("C", "F"):
        xo = _ordered(x, order)
        mm = np.lib.format.open_memmap(
            tmp_path / f"x{order}.npy", mode="w+", dtype=xo.dtype, shape=xo.shape, fortran_order=order == "F"
        )
        mm[...] = xo
        mm.flush()
        assert len(preprocessing._chunks(mm)) > 1
        ro = np.load(tmp_path / f"x{order}.npy", mmap_mode="r")
        a, b = StandardScaler().fit(ro), StandardScaler().fit(xo)
        np.testing.assert_array_equal(a._stats, b._stats)
        np.testing.assert_array_equal(a.transform(ro), b.transform(xo))
        np.testing.assert_array_equal(MinMaxScaler().fit(ro).transform(ro), MinMaxScaler().fit(xo).transform(xo))
        np.testing.assert_allclose(
            PCAWhitening().fit(ro).transform(ro), PCAWhitening().fit(xo).transform(xo), rtol=1e-9, atol=1e-12
        )
        rw = np.load(tmp_path / f"x{order}.npy", mmap_mode="r+")
        assert a.transform(rw, copy=False) is rw
        np.testing.assert_array_equal(np.asarray(rw), b.transform(xo))


@pytest.mark.slow
def test_memmap_larger_than_the_resident_limit(tmp_path):
    """A 2 GB float32 memmap is fitted and transformed in place with a peak RSS far below
    its size (its pages are released chunk by chunk)."""
    script = textwrap.dedent(
        f"""
        import resource, numpy as np
        from nndl_fast.preprocessing import StandardScaler, MinMaxScaler
        path = {str(tmp_path / "big.f32")!r}
        n, d = 8_000_000, 64
        with open(path, "wb") as f:  # written through the file, not a mapping: nothing resident
            for r in range(0, n, 500_000):
                block = (np.arange(500_000 * d, dtype=np.float32).reshape(-1, d) % 97) + r % 13
                block.tofile(f)
        del block
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        x = np.memmap(path, np.float32, "r+", shape=(n, d))
        s = StandardScaler().fit(x)
        m = MinMaxScaler().fit(x)
        s.transform(x, copy=False)
        x.flush()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(base, peak, float(s.mean_[0]), float(m.data_max_[0]), float(x[12345, 7]))
        """
    )
    env_path = nndl_fast.__path__[0].rsplit("/", 1)[0]
    res = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    base, peak, mean0, max0, v = res.stdout.split()
    size_kb = 8_000_000 * 64 * 4 // 1024
    # resident growth during fit + transform: a few chunks, far below the 2 GB mapped
    assert int(peak) - int(base) < size_kb // 4, (base, peak, size_kb)
    assert float(max0) >= 96.0 and np.isfinite(float(mean0)) and np.isfinite(float(v))


def test_out_overlapping_x_is_rejected():
    buf = _data((11, 4))
    x, out = buf[:10], buf[1:]
    s = StandardScaler().fit(x)
    before = buf.copy()
    with pytest.raises(ValueError, match="shares memory"):
        s.transform(x, out=out)
    np.testing.assert_array_equal(buf, before)


def test_feature_names_out():
    x = _data((20, 3))
    assert list(StandardScaler().fit(x).get_feature_names_out()) == ["x0", "x1", "x2"]
    assert list(MinMaxScaler().fit(x).get_feature_names_out(["a", "b", "c"])) == ["a", "b", "c"]
    assert list(PCAWhitening(n_components=2).fit(x).get_feature_names_out()) == ["pcawhitening0", "pcawhitening1"]
    with pytest.raises(ValueError, match="input_features"):
        StandardScaler().fit(x).get_feature_names_out(["a"])
