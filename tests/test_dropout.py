"""Dropout (1.65): Philox known answers, masks equal to the NumPy reference bit for bit on
every SIMD target and thread count, statistics of the masks, both conventions, variational
dropout, DropConnect, the Dropout layer, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import numeric_grad, torch_or_skip
from hypothesis import given, settings
from hypothesis import strategies as st

import nndl_fast
from nndl_fast import dropout as D
from nndl_fast.reference import dropout as R

SIZES = [1, 7, 63, 64, 65, 4099, 100_003]
KEEPS = [0.1, 0.5, 0.9, 1.0]
CONVENTIONS = ["chapter", "torch"]
DTYPES = [np.float32, np.float64]

# Random123's kat_vectors: counter (4 words), key (2 words) -> Philox4x32-10 output.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("ctr, key, expected", KAT)
def test_philox_known_answers(ctr, key, expected):
    assert D.philox4x32_10(ctr, key) == expected
    got = R.philox4x32_10(np.array(ctr, np.uint32)[:, None], key)[:, 0]
    assert tuple(int(v) for v in got) == expected


def test_known_mask_words():
    # Element 0 of (seed 0, offset 0) is word 0 of counter 0 under key 0: 0x6627e8d5 ≈ 0.399·2³².
    assert D.dropout_mask(1, keep_prob=0.40, seed=0)[0]
    assert not D.dropout_mask(1, keep_prob=0.39, seed=0)[0]
    # Element 16 is word 1 of the same counter: 0xe169c58d ≈ 0.881·2³².
    m = D.dropout_mask(17, keep_prob=0.88, seed=0)
    assert not m[16]
    assert D.dropout_mask(17, keep_prob=0.89, seed=0)[16]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("keep", KEEPS)
def test_mask_matches_reference_on_every_target(simd, nthreads, n, keep):
    seed, offset = 2**40 + 12345, 2**33 + 7
    got = D.dropout_mask(n, keep_prob=keep, seed=seed, offset=offset)
    np.testing.assert_array_equal(got, R.mask(n, keep, seed, offset))
    packed = D.dropout_mask(n, keep_prob=keep, seed=seed, offset=offset, packed=True)
    np.testing.assert_array_equal(packed, np.packbits(got))  # numpy.packbits's default bit order


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [7, 65, 100_003])
def test_forward_matches_reference_bitwise(simd, nthreads, rng, convention, dtype, n):
    x = rng.standard_normal((n,)).astype(dtype)
    x[:3] = [np.inf, np.nan, -2.0]
    keep = 0.7
    mask = np.empty(D.packed_size(n), np.uint8)
    y = D.dropout(x, keep_prob=keep, convention=convention, seed=99, offset=3, mask_out=mask)
    y_ref, m_ref = R.dropout(x, keep, convention, True, 99, 3)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, y_ref)
    assert (np.signbit(y) == np.signbit(y_ref)).all()  # −0 for dropped negatives, as x·0
    np.testing.assert_array_equal(np.unpackbits(mask, count=n).astype(bool), m_ref)


def test_same_mask_for_every_target_and_thread_count(rng):
    x = rng.standard_normal((3, 50_001)).astype(np.float32)
    results = []
    for target in nndl_fast.available_simd_targets():
        for n in (1, 2):
            with nndl_fast.simd_target(target), nndl_fast.threads(n):
                mask = np.empty(D.packed_size(x.size), np.uint8)
                y = D.dropout(x, drop_prob=0.3, convention="torch", seed=5, offset=11, mask_out=mask)
                results.append((y, mask))
    for y, mask in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(mask, results[0][1])


def test_documented_exact_outputs():
    x = np.array([1.0, -2.0, 3.0, 4.0, -5.0, 6.0, 7.0, 8.0], np.float32)
    m = D.dropout_mask(8, keep_prob=0.5, seed=42)
    chapter = D.dropout(x, keep_prob=0.5, seed=42)
    inverted = D.dropout(x, keep_prob=0.5, convention="torch", seed=42)
    np.testing.assert_array_equal(chapter, np.where(m, x, 0))  # m ⊙ x
    np.testing.assert_array_equal(inverted, np.where(m, 2 * x, 0))  # m ⊙ x / p
    np.testing.assert_array_equal(D.dropout(x, drop_prob=0.5, convention="torch", seed=42), inverted)
    np.testing.assert_array_equal(D.dropout(x, keep_prob=0.5, training=False), 0.5 * x)  # p·x
    assert D.dropout(x, keep_prob=0.5, convention="torch", training=False) is x  # identity
    out = np.empty_like(x)
    assert D.dropout(x, keep_prob=0.5, convention="torch", training=False, out=out) is out
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(D.dropout(x, keep_prob=1.0, seed=1), x)  # p = 1 keeps all
    np.testing.assert_array_equal(D.dropout(x, keep_prob=1.0, convention="torch", seed=1), x)


def test_in_place(rng):
    x = rng.standard_normal(1000)
    expected = D.dropout(x, keep_prob=0.6, seed=3)
    y = D.dropout(x, keep_prob=0.6, seed=3, out=x)
    assert y is x
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("keep", [0.01, 0.2, 0.5, 0.8, 0.999])
def test_keep_rate_within_4_sigma(keep):
    n = 2_000_000
    for seed, offset in [(0, 0), (1, 0), (7, 123)]:
        rate = D.dropout_mask(n, keep_prob=keep, seed=seed, offset=offset).mean()
        sigma = math.sqrt(keep * (1 - keep) / n)
        assert abs(rate - keep) < 4 * sigma, (seed, offset, rate)


def _wilson_hilferty(x2: float, k: int) -> float:
    """A chi-square statistic with k degrees of freedom as a standard normal deviate."""
    return ((x2 / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))


def _chi2_z(observed: np.ndarray, expected: np.ndarray) -> float:
    """Pearson's goodness-of-fit statistic over the cells of one multinomial, as a deviate."""
    return _wilson_hilferty(float(((observed - expected) ** 2 / expected).sum()), observed.size - 1)


def test_chi_square_on_mask_bits():
    # At p = 1/2 every byte of the packed mask is uniform over 256 values, and every bit
    # position within a 64-element block (word w, lane l of the Philox layout) is fair.
    n = 8 * 400_000
    packed = D.dropout_mask(n, keep_prob=0.5, seed=2026, packed=True)
    counts = np.bincount(packed, minlength=256).astype(float)
    assert abs(_chi2_z(counts, np.full(256, packed.size / 256))) < 4.5
    m = D.dropout_mask(n, keep_prob=0.5, seed=2026).reshape(-1, 64)
    rows = m.shape[0]
    z = (m.sum(axis=0) - rows / 2) / math.sqrt(rows / 4)  # one binomial per position
    assert abs(_wilson_hilferty(float((z**2).sum()), 64)) < 4.5
    # pairs of neighbouring elements: the four outcomes equally likely
    pairs = (2 * m[:, :-1] + m[:, 1:]).ravel()
    c = np.bincount(pairs, minlength=4).astype(float)
    assert abs(_chi2_z(c, np.full(4, pairs.size / 4))) < 4.5


def test_independence_across_seeds_and_offsets():
    n, p = 1_000_000, 0.3
    base = D.dropout_mask(n, keep_prob=p, seed=10, offset=5)
    others = [
        D.dropout_mask(n, keep_prob=p, seed=10, offset=6),
        D.dropout_mask(n, keep_prob=p, seed=11, offset=5),
        D.dropout_mask(n, keep_prob=p, seed=10 + 2**32, offset=5),  # high word of the key
        D.dropout_mask(n, keep_prob=p, seed=10, offset=5 + 2**32),  # high word of the offset
    ]
    sigma = math.sqrt(p * p * (1 - p * p) / n)
    for other in others:
        both = (base & other).mean()  # P(both kept) = p² when independent
        assert abs(both - p * p) < 4 * sigma
    assert (base != others[0]).any()


@pytest.mark.parametrize("keep", [0.3, 0.75])
def test_chapter_and_torch_have_the_same_expectation(keep):
    # E[train] = test in each convention: chapter E[m ⊙ x] = p·x, torch E[m ⊙ x / p] = x.
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 2.0, 2000)
    calls = 400
    for convention, test_out in [("chapter", keep * x), ("torch", x)]:
        total = np.zeros_like(x)
        for off in range(calls):
            total += D.dropout(x, keep_prob=keep, convention=convention, seed=8, offset=off)
        mean = total / calls
        s = 1.0 if convention == "chapter" else 1.0 / keep
        sigma = x * s * math.sqrt(keep * (1 - keep) / calls)
        z = (mean - test_out) / sigma
        assert abs(z.mean()) < 4 / math.sqrt(x.size)  # averaged over the 2000 units
        assert np.abs(z).max() < 5.5
    # the same draw in both conventions: torch = chapter / p
    c = D.dropout(x, keep_prob=keep, seed=3)
    i = D.dropout(x, keep_prob=keep, convention="torch", seed=3)
    np.testing.assert_allclose(i, c / keep, rtol=1e-15)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_from_mask_and_from_seed(simd, nthreads, rng, convention, dtype):
    x = rng.standard_normal((33, 101)).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    mask = np.empty(D.packed_size(x.size), np.uint8)
    D.dropout(x, keep_prob=0.6, convention=convention, seed=17, offset=4, mask_out=mask)
    m = np.unpackbits(mask, count=x.size).astype(bool).reshape(x.shape)
    expected = R.dropout_backward(g, m, 0.6, convention)
    np.testing.assert_array_equal(D.dropout_backward(g, keep_prob=0.6, convention=convention, mask=mask), expected)
    np.testing.assert_array_equal(
        D.dropout_backward(g, keep_prob=0.6, convention=convention, seed=17, offset=4), expected
    )
    np.testing.assert_array_equal(
        D.dropout_backward(g, keep_prob=0.6, convention=convention, training=False),
        R.dropout_backward(g, None, 0.6, convention),
    )


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_backward_finite_differences(rng, convention):
    # L = Σ w ⊙ dropout(x); the mask is fixed by (seed, offset), so central differences in
    # float64 check ∂L/∂x = dropout_backward(w).
    x = rng.standard_normal(50)
    w = rng.standard_normal(50)
    kw = {"keep_prob": 0.5, "convention": convention, "seed": 4, "offset": 9}
    grad = D.dropout_backward(w, **kw)
    fd = numeric_grad(lambda: float(np.sum(w * D.dropout(x, **kw))), x)
    np.testing.assert_allclose(fd, grad, rtol=0, atol=1e-8)


@pytest.mark.parametrize("layout", ["TNF", "NTF"])
@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_variational_mask_constant_over_time(simd, nthreads, rng, layout, convention, dtype):
    T, N, F = 9, 5, 37
    shape = (T, N, F) if layout == "TNF" else (N, T, F)
    x = rng.standard_normal(shape).astype(dtype)
    mask = np.empty(D.packed_size(N * F), np.uint8)
    y = D.variational_dropout(x, keep_prob=0.5, convention=convention, layout=layout, seed=1, offset=2, mask_out=mask)
    y_ref, m_ref = R.variational_dropout(x, 0.5, convention, layout, 1, 2)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(np.unpackbits(mask, count=N * F).astype(bool).reshape(N, F), m_ref)
    dropped = (y == 0) & (x != 0)
    time_axis = 0 if layout == "TNF" else 1
    per_step = dropped.swapaxes(0, time_axis)  # (T, ..)
    assert (per_step == per_step[0]).all()  # the same units dropped at every time step
    assert 0 < per_step[0].mean() < 1
    # the (n, f) mask is the same in both layouts
    other = "NTF" if layout == "TNF" else "TNF"
    y2 = D.variational_dropout(
        np.swapaxes(x, 0, 1).copy(), keep_prob=0.5, convention=convention, layout=other, seed=1, offset=2
    )
    np.testing.assert_array_equal(np.swapaxes(y2, 0, 1), y)
    # backward from the mask and from (seed, offset)
    g = rng.standard_normal(shape).astype(dtype)
    gm = D.variational_dropout_backward(g, keep_prob=0.5, convention=convention, layout=layout, mask=mask)
    gs = D.variational_dropout_backward(g, keep_prob=0.5, convention=convention, layout=layout, seed=1, offset=2)
    np.testing.assert_array_equal(gm, R.variational_dropout(g, 0.5, convention, layout, 1, 2)[0])
    np.testing.assert_array_equal(gs, gm)


def test_dropconnect_masks_the_weight(rng):
    w = rng.standard_normal((16, 9))
    wm = D.dropconnect(w, keep_prob=0.5, seed=3)
    m = D.dropout_mask(w.shape, keep_prob=0.5, seed=3)
    np.testing.assert_array_equal(wm, np.where(m, w, 0))
    np.testing.assert_array_equal(D.dropconnect(w, keep_prob=0.5, training=False), 0.5 * w)
    x = rng.standard_normal((4, 9))
    y = x @ wm.T
    gy = rng.standard_normal(y.shape)
    gw = D.dropout_backward(gy.T @ x, keep_prob=0.5, seed=3)  # ∂L/∂W = m ⊙ ∂L/∂W_masked
    np.testing.assert_allclose(gw, np.where(m, gy.T @ x, 0))
    with pytest.raises(ValueError, match="weight must be a 2-D"):
        D.dropconnect(np.ones(5), keep_prob=0.5)


def test_dropout_layer_train_eval_offsets_and_state(rng):
    layer = D.Dropout(keep_prob=0.5, convention="torch", seed=77)
    x = rng.standard_normal((8, 300))
    y0 = layer(x)
    assert layer.offset == 1
    y1 = layer(x)
    assert layer.offset == 2
    assert not np.array_equal(y0 == 0, y1 == 0)  # a fresh mask per call
    np.testing.assert_array_equal(y1, D.dropout(x, keep_prob=0.5, convention="torch", seed=77, offset=1))
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(g), np.where(y1 != 0, 2 * g, 0))
    state = layer.state_dict()
    y2 = layer(x)
    other = D.Dropout(keep_prob=0.9, seed=1)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other(x), y2)  # resumed: the same next mask
    layer.eval()
    assert layer(x) is x and layer.offset == 3  # eval neither draws nor advances
    np.testing.assert_array_equal(layer.backward(g), g)
    stored = D.Dropout(keep_prob=0.75, seed=5, store_mask=True)
    ys = stored(x)
    np.testing.assert_array_equal(stored.backward(g), np.where(ys != 0, g, 0))
    var = D.Dropout(keep_prob=0.5, variational="NTF", seed=2)
    xs = rng.standard_normal((3, 6, 4))
    yv = var(xs)
    np.testing.assert_array_equal(yv, D.variational_dropout(xs, keep_prob=0.5, layout="NTF", seed=2))
    np.testing.assert_array_equal(var.backward(xs), yv)
    with pytest.raises(RuntimeError, match="before any training forward"):
        D.Dropout(keep_prob=0.5).backward(g)
    assert D.Dropout(keep_prob=0.5).seed != D.Dropout(keep_prob=0.5).seed  # seed=None: fresh entropy


def test_torch_conventions_match():
    torch = torch_or_skip()
    x = np.random.default_rng(0).standard_normal(200_000).astype(np.float32)
    t = torch.nn.functional.dropout(torch.from_numpy(x), p=0.2, training=True).numpy()
    ours = D.dropout(x, drop_prob=0.2, convention="torch", seed=1)
    kept_t, kept_o = t != 0, ours != 0
    np.testing.assert_allclose(t[kept_t], x[kept_t] / np.float32(0.8), rtol=2e-7)
    np.testing.assert_allclose(ours[kept_o], x[kept_o] / np.float32(0.8), rtol=2e-7)
    assert abs(kept_t.mean() - kept_o.mean()) < 8 * math.sqrt(0.16 / x.size)
    np.testing.assert_array_equal(
        torch.nn.functional.dropout(torch.from_numpy(x), p=0.2, training=False).numpy(),
        D.dropout(x, drop_prob=0.2, convention="torch", training=False),
    )


FORWARDS = {
    "dropout": (D.dropout, (6, 7), {}),
    "dropout_backward": (D.dropout_backward, (6, 7), {}),
    "variational_dropout": (D.variational_dropout, (3, 4, 5), {"layout": "NTF"}),
    "variational_dropout_backward": (D.variational_dropout_backward, (3, 4, 5), {"layout": "NTF"}),
    "dropconnect": (D.dropconnect, (6, 7), {}),
}


@pytest.mark.parametrize("name", list(FORWARDS))
@pytest.mark.parametrize("training", [True, False])
def test_the_probabilitys_name_chooses_the_convention(name, training):
    """drop_prob= (torch's p) brings torch's inverted dropout, keep_prob= the chapter's; an
    explicit convention= wins. (drop_prob= used to keep the chapter's ×1 / ×(1 − p).)"""
    fn, shape, kw = FORWARDS[name]
    x = np.random.default_rng(3).standard_normal(shape)
    kw = {**kw, "training": training, **({"seed": 9, "offset": 2} if training else {})}
    torch_form = fn(x, keep_prob=0.8, convention="torch", **kw)
    chapter_form = fn(x, keep_prob=0.8, convention="chapter", **kw)
    assert not np.array_equal(torch_form, chapter_form)
    np.testing.assert_array_equal(fn(x, drop_prob=0.2, **kw), torch_form)
    np.testing.assert_array_equal(fn(x, keep_prob=0.8, **kw), chapter_form)
    np.testing.assert_array_equal(fn(x, drop_prob=0.2, convention="chapter", **kw), chapter_form)
    np.testing.assert_array_equal(fn(x, keep_prob=0.8, convention="torch", **kw), torch_form)
    with pytest.raises(TypeError, match="keep_prob=.*drop_prob="):
        fn(x, keep_prob=0.8, drop_prob=0.2, **kw)


def test_dropout_layer_with_drop_prob_is_torchs_module():
    """Dropout(drop_prob=p) computes what torch.nn.Dropout(p) does: ×1/(1 − p) on the kept
    units in training, the identity at test."""
    x = np.random.default_rng(4).standard_normal((50, 40))
    layer = D.Dropout(drop_prob=0.2, seed=7)
    assert layer.convention == "torch" and D.Dropout(keep_prob=0.8).convention == "chapter"
    assert D.Dropout(drop_prob=0.2, convention="chapter").convention == "chapter"
    y = layer(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.8, rtol=1e-15)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), kept / 0.8, rtol=1e-15)
    assert layer.eval()(x) is x
    with pytest.raises(TypeError, match="keep_prob=.*drop_prob="):
        D.Dropout(keep_prob=0.8, drop_prob=0.2)


def test_bad_input_clear_errors_nothing_modified(rng):
    x = rng.standard_normal(100).astype(np.float32)
    out = np.full_like(x, 7.0)
    x0 = x.copy()
    for kw, exc, msg in [
        ({"keep_prob": 0.0}, ValueError, r"keep_prob must be in \(0, 1\]"),
        ({"keep_prob": 1.5}, ValueError, "keep_prob"),
        ({"keep_prob": -0.1}, ValueError, "keep_prob"),
        ({"keep_prob": math.nan}, ValueError, "keep_prob"),
        ({"drop_prob": 1.0}, ValueError, r"drop_prob must be in \[0, 1\)"),
        ({"keep_prob": True}, TypeError, "keep_prob"),
        ({"keep_prob": "0.5"}, TypeError, "keep_prob"),
        ({}, TypeError, "exactly one of keep_prob"),
        ({"keep_prob": 0.5, "drop_prob": 0.5}, TypeError, "exactly one of keep_prob"),
        ({"keep_prob": 0.5, "convention": "inverted"}, ValueError, "convention must be"),
        ({"keep_prob": 0.5, "convention": 3}, TypeError, "convention must be"),
        ({"keep_prob": 0.5, "seed": -1}, ValueError, "seed"),
        ({"keep_prob": 0.5, "seed": 2**64}, ValueError, "seed"),
        ({"keep_prob": 0.5, "seed": 1.5}, TypeError, "seed"),
        ({"keep_prob": 0.5, "offset": -3}, ValueError, "offset"),
    ]:
        with pytest.raises(exc, match=msg):
            D.dropout(x, out=out, **{"seed": 0, **kw})
    with pytest.raises(TypeError, match="seed= is required in training"):
        D.dropout(x, keep_prob=0.5, out=out)
    with pytest.raises(TypeError, match="seed= is required in training"):
        D.dropout_mask(10, keep_prob=0.5)
    with pytest.raises(TypeError, match="must be float32 or float64"):
        D.dropout(np.arange(5), keep_prob=0.5, seed=0)
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        D.dropout([1.0, 2.0], keep_prob=0.5, seed=0)
    with pytest.raises(ValueError, match="out has shape"):
        D.dropout(x, keep_prob=0.5, seed=0, out=np.empty(99, np.float32))
    with pytest.raises(TypeError, match="out has dtype float64"):
        D.dropout(x, keep_prob=0.5, seed=0, out=np.empty(100))
    ro = out.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        D.dropout(x, keep_prob=0.5, seed=0, out=ro)
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        D.dropout(x, keep_prob=0.5, seed=0, out=np.empty(200, np.float32)[::2])
    with pytest.raises(ValueError, match="shares memory"):
        big = np.zeros(150, np.float32)
        D.dropout(big[:100], keep_prob=0.5, seed=0, out=big[50:])
    with pytest.raises(ValueError, match=r"mask_out has shape \(12,\) but must have shape \(13,\)"):
        D.dropout(x, keep_prob=0.5, seed=0, out=out, mask_out=np.empty(12, np.uint8))
    with pytest.raises(TypeError, match="mask_out must be a numpy.ndarray of uint8"):
        D.dropout(x, keep_prob=0.5, seed=0, out=out, mask_out=np.empty(13, np.int8))
    ro_mask = np.zeros(13, np.uint8)
    ro_mask.flags.writeable = False
    with pytest.raises(ValueError, match="mask_out is read-only"):
        D.dropout(x, keep_prob=0.5, seed=0, out=out, mask_out=ro_mask)
    with pytest.raises(ValueError, match="mask_out: no mask is drawn at test time"):
        D.dropout(x, keep_prob=0.5, training=False, mask_out=np.empty(13, np.uint8))
    with pytest.raises(TypeError, match="exactly one of mask= .* or seed="):
        D.dropout_backward(x, keep_prob=0.5)
    with pytest.raises(ValueError, match=r"mask has shape \(14,\) but must have shape \(13,\)"):
        D.dropout_backward(x, keep_prob=0.5, mask=np.empty(14, np.uint8), out=out)
    with pytest.raises(ValueError, match=r"x must have 3 dimensions \(T, N, F\)"):
        D.variational_dropout(x, keep_prob=0.5, seed=1, out=out)
    with pytest.raises(ValueError, match="layout must be"):
        D.variational_dropout(x.reshape(2, 5, 10), keep_prob=0.5, layout="NCT")
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(out, 7.0)
    np.testing.assert_array_equal(ro_mask, 0)


def test_read_only_inputs_and_empty_arrays(rng):
    x = rng.standard_normal(300)
    x.flags.writeable = False  # inputs are only read
    mask = np.empty(D.packed_size(300), np.uint8)
    y = D.dropout(x, keep_prob=0.5, seed=2, mask_out=mask)
    mask.flags.writeable = False
    np.testing.assert_array_equal(D.dropout_backward(x, keep_prob=0.5, mask=mask), y)
    empty = np.zeros((0, 4), np.float32)
    assert D.dropout(empty, keep_prob=0.5, seed=1).shape == (0, 4)
    assert D.dropout_mask(0, keep_prob=0.5, seed=0).shape == (0,)
    assert D.dropout_mask((0, 3), keep_prob=0.5, seed=0, packed=True).shape == (0,)


def test_variational_layer_eval_and_test_time_outputs(rng):
    x = rng.standard_normal((4, 3, 5))
    for convention, expected in [("chapter", 0.25 * x), ("torch", x)]:
        layer = D.Dropout(keep_prob=0.25, convention=convention, variational="TNF", seed=3).eval()
        np.testing.assert_array_equal(layer(x), expected)
        np.testing.assert_array_equal(
            D.variational_dropout(x, keep_prob=0.25, convention=convention, training=False), expected
        )
        np.testing.assert_array_equal(layer.backward(x), expected)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 5000),
    keep=st.floats(1e-3, 1.0),
    seed=st.integers(0, 2**64 - 1),
    offset=st.integers(0, 2**64 - 1),
)
def test_mask_parity_generated(n, keep, seed, offset):
    got = D.dropout_mask(n, keep_prob=keep, seed=seed, offset=offset)
    np.testing.assert_array_equal(got, R.mask(n, keep, seed, offset))


# -- issue 10: rejected calls change nothing, lenient coercions refused --------------------


@pytest.mark.parametrize("store_mask", [False, True])
@pytest.mark.parametrize("variational", [None, "TNF"])
def test_failed_forward_keeps_what_backward_uses(rng, store_mask, variational):
    shape = (4, 3, 50) if variational else (4, 50)
    layer = D.Dropout(keep_prob=0.5, seed=3, store_mask=store_mask, variational=variational)
    x, g = rng.standard_normal(shape), rng.standard_normal(shape)
    layer(x)
    want = layer.backward(g)
    assert not np.array_equal(want, g)  # a training gradient, not the eval one
    layer.eval()
    with pytest.raises(ValueError, match=r"\bout\b"):
        layer(x, out=np.empty((3, 50)))
    np.testing.assert_array_equal(layer.backward(g), want)  # still the last training mask
    layer.train()
    with pytest.raises(TypeError, match=r"\bx\b"):
        layer(x.astype(np.int64))
    np.testing.assert_array_equal(layer.backward(g), want)
    assert layer.offset == 1  # the failed training forward did not advance the stream
    layer.eval()
    layer(x)
    np.testing.assert_array_equal(layer.backward(g), 0.5 * g)  # a successful eval forward


def _bad_state_cases():
    return [
        ("variational", "bogus", ValueError),
        ("variational", 3, TypeError),
        ("keep_prob", 0.0, ValueError),
        ("keep_prob", "0.5", TypeError),
        ("convention", "inverted", ValueError),
        ("seed", -1, ValueError),
        ("seed", 2**64, ValueError),
        ("offset", 1.5, TypeError),
        ("training", "yes", TypeError),
    ]


@pytest.mark.parametrize("key, value, exc", _bad_state_cases(), ids=lambda v: str(v))
def test_load_state_dict_rejects_every_bad_key_atomically(rng, key, value, exc):
    layer = D.Dropout(keep_prob=0.5, seed=3)
    x = rng.standard_normal(40)
    layer(x)
    before, want = layer.state_dict(), layer.backward(x)
    other = D.Dropout(keep_prob=0.9, convention="torch", variational="NTF", seed=8, offset=4)
    with pytest.raises(exc, match=rf"state\['{key}'\]"):
        layer.load_state_dict({**other.state_dict(), key: value})
    assert layer.state_dict() == before
    np.testing.assert_array_equal(layer.backward(x), want)


def test_load_state_dict_rejects_missing_and_unknown_keys():
    layer = D.Dropout(keep_prob=0.5, seed=3)
    before = layer.state_dict()
    state = D.Dropout(keep_prob=0.9, seed=8).state_dict()
    with pytest.raises(ValueError, match=r"missing \['offset'\]"):
        layer.load_state_dict({k: v for k, v in state.items() if k != "offset"})
    with pytest.raises(ValueError, match=r"unknown \['mode'\]"):
        layer.load_state_dict({**state, "mode": "chapter"})
    with pytest.raises(TypeError, match="state must be a dict"):
        layer.load_state_dict([("seed", 1)])
    assert layer.state_dict() == before
    layer.load_state_dict(state)
    assert layer.state_dict() == state


@pytest.mark.parametrize(
    "shape, exc",
    [
        ("12", TypeError),
        ((2.5, 3), TypeError),
        ((2, "3"), TypeError),
        (-1, ValueError),
        ((3, -2), ValueError),
        (2.0, TypeError),
        (None, TypeError),
    ],
    ids=str,
)
def test_dropout_mask_refuses_lenient_shapes(shape, exc):
    with pytest.raises(exc, match="shape"):
        D.dropout_mask(shape, keep_prob=0.5, seed=0)


def test_dropout_mask_accepts_numpy_integers():
    got = D.dropout_mask((np.int64(3), np.uint8(5)), keep_prob=0.5, seed=4)
    np.testing.assert_array_equal(got, D.dropout_mask((3, 5), keep_prob=0.5, seed=4))


def test_packed_size_checks_its_argument():
    assert [D.packed_size(n) for n in (0, 1, 8, 9, np.int64(17))] == [0, 1, 1, 2, 3]
    with pytest.raises(ValueError, match=r"\bn\b"):
        D.packed_size(-5)
    for bad in ("8", 8.0, True, None):
        with pytest.raises(TypeError, match=r"\bn\b"):
            D.packed_size(bad)


def test_backward_errors_name_dy(rng):
    dy = rng.standard_normal(10).astype(np.float32)
    with pytest.raises(TypeError, match=r"\bdy\b"):
        D.dropout_backward(dy.astype(np.int32), keep_prob=0.5, seed=1)
    with pytest.raises(TypeError, match=r"\bdy\b"):
        D.dropout_backward([1.0], keep_prob=0.5, training=False)
    with pytest.raises(ValueError, match=r"dy must have 3 dimensions"):
        D.variational_dropout_backward(dy, keep_prob=0.5, seed=1)
    with pytest.raises(TypeError, match=r"out has dtype float64"):
        D.dropout_backward(dy, keep_prob=0.5, seed=1, out=np.empty(10))


def test_torch_tensors_accepted_zero_copy():
    torch = torch_or_skip()
    x = torch.arange(1.0, 11.0, dtype=torch.float32)
    y = D.dropout(x, keep_prob=0.5, seed=2)
    np.testing.assert_array_equal(y, D.dropout(x.numpy(), keep_prob=0.5, seed=2))
    D.dropout(x, keep_prob=0.5, seed=2, out=x)  # in place, into the tensor's memory
    np.testing.assert_array_equal(x.numpy(), y)


def test_flags_and_layouts_are_checked():
    x = np.ones(8)
    with pytest.raises(TypeError, match="training"):
        D.dropout(x, keep_prob=0.5, seed=0, training=1)
    with pytest.raises(TypeError, match="packed"):
        D.dropout_mask(8, keep_prob=0.5, seed=0, packed="yes")
    with pytest.raises(TypeError, match="layout"):
        D.variational_dropout(x.reshape(2, 2, 2), keep_prob=0.5, seed=0, layout=None)
    with pytest.raises(ValueError, match="variational"):
        D.Dropout(keep_prob=0.5, variational="bogus")
    with pytest.raises(TypeError, match="store_mask"):
        D.Dropout(keep_prob=0.5, store_mask=1)
