"""Random fills: Philox known answers through the fills, equality with the NumPy reference
(bits for uniform, stated ulps for normal), the same bits on every SIMD target and thread
count, distributions (KS, moments, pairs), streams, the Generator, bad input."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import several_simd_targets, torch_or_skip

import nndl_fast
from nndl_fast import random as NR
from nndl_fast.reference import random as R

SIZES = [1, 7, 31, 63, 64, 65, 4099, 100_003]
DTYPES = [np.float32, np.float64]
DISTS = ["uniform", "normal", "truncated_normal"]
# The ulps the module docstring states (normal) and what the truncated normal keeps.
NORMAL_ULPS = {np.float32: 2, np.float64: 4}

# Random123's kat_vectors for Philox4x32-10: counter (0, 0, 0, 0), key (0, 0).
KAT_ZERO = (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)


def _fill(dist: str, n: int, dtype, seed: int, offset: int, **kw) -> np.ndarray:
    a = np.full(n, np.nan, dtype)
    getattr(NR, dist + "_")(a, seed=seed, offset=offset, **kw)
    return a


def _reference(dist: str, n: int, dtype, seed: int, offset: int) -> np.ndarray:
    if dist == "uniform":
        return R.uniform(n, dtype, 0.0, 1.0, seed, offset)
    if dist == "normal":
        return R.normal(n, dtype, 0.0, 1.0, seed, offset)
    return R.truncated_normal(n, dtype, 0.0, 1.0, -2.0, 2.0, seed, offset)


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place (sign-magnitude bits mapped onto a line)."""
    it = np.int32 if a.dtype == np.float32 else np.int64
    ai, bi = a.view(it).astype(np.int64), b.view(it).astype(np.int64)
    lo = np.iinfo(it).min
    ai = np.where(ai < 0, lo - ai, ai)
    bi = np.where(bi < 0, lo - bi, bi)
    return np.abs(ai - bi)


def test_known_answers_through_the_fills(simd):
    """Element 16·w of (seed 0, offset 0) in float32 is word w of Philox(counter 0, key 0)."""
    u = NR.uniform(64, seed=0)
    for w, word in enumerate(KAT_ZERO):
        assert u[16 * w] == np.float32((word >> 8) * 2.0**-24)
    # float64: element 16·h takes the top 53 bits of words (2h, 2h + 1)
    d = NR.uniform(32, dtype=np.float64, seed=0)
    for h in range(2):
        k = (KAT_ZERO[2 * h] >> 5) * 2**26 + (KAT_ZERO[2 * h + 1] >> 6)
        assert d[16 * h] == k * 2.0**-53
    assert tuple(int(v) for v in R.words(1, 0, 0)[:, 0]) == KAT_ZERO


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_uniform_equals_reference_bitwise(simd, nthreads, n, dtype):
    seed, offset = 2**40 + 12345, 2**33 + 7
    got = NR.uniform_(np.empty(n, dtype), -1.5, 2.25, seed=seed, offset=offset)
    np.testing.assert_array_equal(got, R.uniform(n, dtype, -1.5, 2.25, seed, offset))


@pytest.mark.parametrize("n", [63, 64, 4099])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(
    "low, high", [(0.0, 1.0), (0.0, 1.2345e-300), (-3.0, 0.1)], ids=["unit", "tiny-scale", "folded-scale"]
)
def test_uniform_each_kernel_path_equals_reference_bitwise(simd, nthreads, n, dtype, low, high):
    """The kernel computes U[0, 1) in the dtype, folds the 2^-24 (2^-53) step into scale when
    that is exact, and keeps the plain expression below: every path gives the reference's bits."""
    seed, offset = 31, 2**34 + 3
    got = NR.uniform_(np.empty(n, dtype), low, high, seed=seed, offset=offset)
    np.testing.assert_array_equal(got, R.uniform(n, dtype, low, high, seed, offset))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_normal_within_stated_ulps_of_reference(simd, nthreads, n, dtype):
    seed, offset = 77, 2**35 + 1
    got = NR.normal_(np.empty(n, dtype), seed=seed, offset=offset)
    want = R.normal(n, dtype, 0.0, 1.0, seed, offset)
    assert _ulps(got, want).max() <= NORMAL_ULPS[dtype]
    # mean and std applied in double, rounded once (float32: mean and std rounded to float32 first)
    got = NR.normal_(np.empty(n, dtype), 3.0, 0.5, seed=seed, offset=offset)
    np.testing.assert_allclose(got, R.normal(n, dtype, 3.0, 0.5, seed, offset), rtol=4 * np.finfo(dtype).eps)


def test_float32_normal_applies_mean_and_std_by_one_float32_fma(simd):
    """x = fma(std, z, mean) in float32 on the standard normal's z, std rounded to float32 (0.1):
    float32·float32 is exact in double, so rounding it to float32 is the fma's one rounding;
    0.25 + 0.5·z is exact in double for |z| > 2⁻²⁰ (a span of 42 bits)."""
    n, seed = 100_003, 5
    z = NR.normal_(np.empty(n, np.float32), seed=seed).astype(np.float64)
    std32 = float(np.float32(0.1))
    np.testing.assert_array_equal(
        NR.normal_(np.empty(n, np.float32), std=0.1, seed=seed), (std32 * z).astype(np.float32)
    )
    got = NR.normal_(np.empty(n, np.float32), 0.25, 0.5, seed=seed)
    assert np.abs(z).min() > 2.0**-20
    np.testing.assert_array_equal(got, (0.25 + 0.5 * z).astype(np.float32))


@pytest.mark.parametrize("n", [7, 65, 100_003])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize(
    "mean, std, low, high",
    [(0.0, 1.0, -2.0, 2.0), (1.0, 2.0, 3.0, 8.0), (0.0, 1.0, -np.inf, -1.0), (-1.0, 0.5, 0.25, np.inf)],
    ids=["pm2", "upper-tail", "lower-inf", "upper-inf"],
)
def test_truncated_normal_matches_reference(simd, nthreads, n, dtype, mean, std, low, high):
    seed, offset = 5, 11
    got = NR.truncated_normal_(np.empty(n, dtype), mean, std, low, high, seed=seed, offset=offset)
    want = R.truncated_normal(n, dtype, mean, std, low, high, seed, offset)
    if dtype == np.float32:
        assert _ulps(got, want).max() <= 1
    else:
        np.testing.assert_allclose(got, want, rtol=2e-15, atol=2e-15 * max(1.0, abs(mean)))
    lo, hi = mean + low * std, mean + high * std
    assert np.all(got >= dtype(lo)) and np.all(got <= dtype(hi))


@several_simd_targets()
@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_same_bits_on_every_target_and_thread_count(dist, dtype):
    n = 300_017  # many blocks per thread, and a partial last block
    results = {}
    for target in nndl_fast.available_simd_targets():
        for threads in (1, 2):
            with nndl_fast.simd_target(target), nndl_fast.threads(threads):
                results[target, threads] = _fill(dist, n, dtype, 2**50 + 3, 2**40 + 9)
    first = next(iter(results.values()))
    for key, got in results.items():
        np.testing.assert_array_equal(got, first, err_msg=str(key))


@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_element_depends_only_on_seed_offset_index(dist, dtype):
    """A shorter fill is the prefix of a longer one (so a slice is a function of its indices),
    and the shape does not matter, only the flat index."""
    long = _fill(dist, 10_000, dtype, 3, 4)
    for n in (1, 17, 64, 999):
        np.testing.assert_array_equal(_fill(dist, n, dtype, 3, 4), long[:n])
    shaped = getattr(NR, dist + "_")(np.empty((100, 10, 10), dtype), seed=3, offset=4)
    np.testing.assert_array_equal(shaped.reshape(-1), long)
    # the reference computes the whole array; its slice is the fill's slice
    want = _reference(dist, 10_000, dtype, 3, 4)[5000:5100]
    np.testing.assert_allclose(long[5000:5100], want, rtol=8 * np.finfo(dtype).eps, atol=8 * np.finfo(dtype).eps)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2**63 + 5])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_kolmogorov_smirnov_and_moments(seed, dtype):
    stats = pytest.importorskip("scipy.stats", reason="scipy not installed: KS tests not run")
    n = 1_000_000
    cases = {
        "uniform": (stats.uniform().cdf, 0.5, 1 / 12),
        "normal": (stats.norm().cdf, 0.0, 1.0),
        "truncated_normal": (stats.truncnorm(-2, 2).cdf, 0.0, float(stats.truncnorm(-2, 2).var())),
    }
    for dist, (cdf, mean, var) in cases.items():
        x = _fill(dist, n, dtype, seed, 0).astype(np.float64)
        assert stats.kstest(x, cdf).pvalue > 1e-4, dist
        assert abs(x.mean() - mean) < 5 * np.sqrt(var / n), dist
        fourth = {"uniform": 1 / 80, "normal": 3.0, "truncated_normal": float(stats.truncnorm(-2, 2).moment(4))}[dist]
        assert abs(x.var() - var) < 5 * np.sqrt((fourth - var**2) / n), dist
        # neighbours (and the cosine/sine partners 16 apart in float32, 16 apart in float64) uncorrelated
        for lag in (1, 16, 32):
            assert abs(np.corrcoef(x[:-lag], x[lag:])[0, 1]) < 5 / np.sqrt(n), (dist, lag)


def test_normal_tails_reach_the_stated_range():
    stats = pytest.importorskip("scipy.stats", reason="scipy not installed")
    x = NR.normal(4_000_000, dtype=np.float64, seed=8)
    assert np.abs(x).max() <= 8.58
    # the share beyond 4σ is that of a normal (6.3e-5), within 5σ of its binomial noise
    p = 2 * stats.norm.sf(4.0)
    assert abs(np.mean(np.abs(x) > 4.0) - p) < 5 * np.sqrt(p / x.size)


@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_adjacent_offsets_and_seeds_do_not_repeat(dist, dtype):
    n = 100_000
    base = _fill(dist, n, dtype, 10, 10)
    for seed, offset in ((10, 11), (11, 10), (10, 9), (9, 10)):
        other = _fill(dist, n, dtype, seed, offset)
        # equal values at the same place only by chance: float32 uniforms have 2^24 values
        assert np.count_nonzero(other == base) <= (3 if dtype == np.float32 else 0)
        assert len(np.intersect1d(other, base)) < (n // 100 if dtype == np.float32 else 1)


def test_generator_offsets_pickle_and_state():
    g = NR.Generator(123)
    a = g.normal(1000)
    b = g.normal(1000)
    assert g.offset == 2
    np.testing.assert_array_equal(a, NR.normal(1000, seed=123, offset=0))
    np.testing.assert_array_equal(b, NR.normal(1000, seed=123, offset=1))
    assert not np.any(a == b)
    assert g.next_stream() == (123, 2) and g.offset == 3
    restored = pickle.loads(pickle.dumps(g))
    np.testing.assert_array_equal(restored.uniform((7, 3)), g.uniform((7, 3)))
    h = NR.Generator(0)
    h.load_state_dict(g.state_dict())
    np.testing.assert_array_equal(h.truncated_normal_(np.empty(50)), g.truncated_normal_(np.empty(50)))
    assert repr(h) == f"Generator(seed=123, offset={h.offset})"
    assert NR.Generator().seed != NR.Generator().seed  # from the OS


def test_generator_rejected_call_does_not_advance():
    g = NR.Generator(5)
    with pytest.raises(TypeError):
        g.normal_(np.zeros(4, np.int32))
    with pytest.raises(ValueError):
        g.uniform_(np.zeros(4), 1.0, 0.0)
    assert g.offset == 0
    with pytest.raises(ValueError):
        g.load_state_dict({"seed": 1})
    with pytest.raises(ValueError):
        g.load_state_dict({"seed": 1, "offset": -1})
    assert g.state_dict() == {"seed": 5, "offset": 0}
    last = NR.Generator(5, offset=2**64 - 1)
    last.normal(3)
    with pytest.raises(ValueError, match="2\\*\\*64 offsets"):
        last.normal(3)


def test_functional_forms_dtype_and_out():
    a = NR.normal((3, 4), seed=1)
    assert a.shape == (3, 4) and a.dtype == np.float32
    d = NR.truncated_normal(5, dtype="float64", seed=1)
    assert d.dtype == np.float64
    out = np.empty((3, 4), np.float64)
    assert NR.uniform((3, 4), seed=2, out=out) is out
    np.testing.assert_array_equal(out, NR.uniform((3, 4), dtype=np.float64, seed=2))
    with pytest.raises(ValueError, match="out"):
        NR.uniform((4, 3), seed=2, out=out)
    with pytest.raises(TypeError, match="out"):
        NR.uniform((3, 4), dtype=np.float32, seed=2, out=out)
    with pytest.raises(TypeError, match="dtype"):
        NR.uniform(3, dtype=np.int32, seed=2)
    assert NR.normal(0, seed=1).shape == (0,)


def test_torch_tensor_filled_in_place():
    torch = torch_or_skip()
    t = torch.empty(5000, dtype=torch.float32)
    assert NR.normal_(t, seed=9) is t
    np.testing.assert_array_equal(t.numpy(), NR.normal(5000, seed=9))


@pytest.mark.parametrize(
    "call, exc, word",
    [
        (lambda a: NR.normal_(a, std=-1.0, seed=1), ValueError, "std"),
        (lambda a: NR.uniform_(a, 1.0, 1.0, seed=1), ValueError, "low"),
        (lambda a: NR.uniform_(a, 0.0, float("inf"), seed=1), ValueError, "high"),
        (lambda a: NR.truncated_normal_(a, low=2.0, high=-2.0, seed=1), ValueError, "low"),
        (lambda a: NR.truncated_normal_(a, low=31.0, high=np.inf, seed=1), ValueError, "interval"),
        (lambda a: NR.normal_(a), TypeError, "seed"),
        (lambda a: NR.normal_(a, seed=-1), ValueError, "seed"),
        (lambda a: NR.normal_(a.astype(np.int64), seed=1), TypeError, "a"),
        (lambda a: NR.normal_(a[::2], seed=1), ValueError, "a"),
        (lambda a: NR.uniform_(a.T, seed=1), ValueError, "a"),
    ],
)
def test_bad_input_leaves_the_array_unchanged(call, exc, word):
    a = np.arange(12.0).reshape(3, 4)
    before = a.copy()
    with pytest.raises(exc, match=word):
        call(a)
    np.testing.assert_array_equal(a, before)


def test_read_only_array_rejected():
    a = np.zeros(10)
    a.flags.writeable = False
    with pytest.raises(ValueError, match="a"):
        NR.uniform_(a, seed=1)
    assert not a.any()


@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_start_regenerates_any_slice(simd, nthreads, dist, dtype):
    whole = getattr(NR, dist)(70_001, dtype=dtype, seed=6, offset=2)
    for k, n in ((0, 70_001), (1, 5), (13, 64), (63, 66_000), (64, 100), (40_000, 30_001), (70_000, 1)):
        part = getattr(NR, dist)(n, dtype=dtype, seed=6, offset=2, start=k)
        np.testing.assert_array_equal(part, whole[k : k + n], err_msg=f"start={k}, n={n}")
    far = getattr(NR, dist)(3, dtype=dtype, seed=6, start=2**62)
    assert np.all(np.isfinite(far))


@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_streaming_stores_give_the_same_bits(request, dist, dtype):
    """Outputs over the threshold go out through streaming stores, from any alignment."""
    n = (1 << 24) // np.dtype(dtype).itemsize + 1001
    plain = _fill(dist, n, dtype, 4, 5)
    request.getfixturevalue("stream_above_16mib")
    for shift in (0, 1, 3):  # the array starting 0, 1 and 3 elements past an aligned address
        buf = np.empty(n + 16, dtype)
        start = (-buf.ctypes.data % 64) // buf.itemsize + shift
        a = buf[start : start + n]
        getattr(NR, dist + "_")(a, seed=4, offset=5)
        np.testing.assert_array_equal(a, plain, err_msg=f"shift {shift}")
