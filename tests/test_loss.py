"""nndl_fast.loss: softmax cross-entropy (label smoothing, 1.7.6) and distillation.

Parity with the NumPy reference (every option, float32 and float64, every SIMD target, 1 and
2 threads) and with torch; finite differences of every gradient; bitwise equality across
threads and SIMD targets; the chapter's smoothing against torch's in closed form; numerics at
the edges (±1e4, −inf, K = 1 and 10⁶); the non-finite policy; bad target values.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import numeric_grad, several_simd_targets, torch_or_skip

import nndl_fast
from nndl_fast import loss
from nndl_fast.reference import loss as ref


def _close(ours, want, dtype, what="", scale=None):
    """Loss and gradient to 1e-6 relative in float32 (1e-12 in float64), with an absolute
    slack of that times `scale` (default the largest |want|) for entries that cancel to ~0."""
    ours, want = np.asarray(ours, np.float64), np.asarray(want, np.float64)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    if scale is None:
        scale = float(np.max(np.abs(want))) if want.size else 1.0
    np.testing.assert_allclose(ours, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def _case(rng, N, K, dtype, *, soft=False, scale=3.0):
    z = (rng.standard_normal((N, K)) * scale).astype(dtype)
    if soft:
        q = rng.random((N, K)) ** 3
        target = (q / q.sum(axis=1, keepdims=True)).astype(dtype)
    else:
        target = rng.integers(0, K, N).astype(np.int64)
        target[::4] = -100  # ignored rows
    w = (rng.random(K) + 0.5).astype(dtype)
    return z, target, w


CE_OPTIONS = [
    dict(label_smoothing=eps, convention=conv, reduction=red, weighted=weighted)
    for eps in (0.0, 0.1)
    for conv in ("chapter", "torch")
    for red in ("mean", "sum", "none")
    for weighted in (False, True)
]


def _ce_both(z, target, o, dtype):
    w = o["w"] if o["weighted"] else None
    kw = dict(label_smoothing=o["label_smoothing"], convention=o["convention"], reduction=o["reduction"])
    d = np.full_like(z, np.nan)
    ours = loss.softmax_cross_entropy(z, target, weight=w, dlogits=d, **kw)
    want, dwant = ref.softmax_cross_entropy(z, target, weight=w, **kw)
    return ours, d, want, dwant


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
# With class indices, K <= 16 takes the kernel's short path (a row per vector, 16 rows at a time),
# K <= 64 the narrow path (16 rows transposed into lanes); K = 65 the row path.
@pytest.mark.parametrize(
    ("N", "K"), [(1, 1), (7, 5), (37, 10), (21, 16), (23, 17), (19, 64), (5, 65), (13, 1031), (3, 4099)]
)
@pytest.mark.parametrize("soft", [False, True], ids=["index", "soft"])
def test_cross_entropy_matches_reference(simd, nthreads, dtype, N, K, soft, rng):
    z, target, w = _case(rng, N, K, dtype, soft=soft)
    for o in CE_OPTIONS:
        ours, d, want, dwant = _ce_both(z, target, {**o, "w": w}, dtype)
        _close(ours, want, dtype, f"loss {o}")
        _close(d, dwant, dtype, f"dlogits {o}")
        if o["reduction"] == "none":
            assert ours.dtype == dtype and ours.shape == (N,)


SWEEP_OPTIONS = [
    dict(label_smoothing=0.1, convention="chapter", reduction="mean", weighted=True),
    dict(label_smoothing=0.1, convention="torch", reduction="none", weighted=False),
    dict(label_smoothing=0.0, convention="chapter", reduction="sum", weighted=False),
    dict(label_smoothing=0.2, convention="torch", reduction="none", weighted=True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_cross_entropy_matches_reference_for_every_narrow_width(simd, nthreads, dtype, rng):
    """Every K of the short (K <= 16) and narrow (K <= 64) paths, over two full groups of 16 rows
    and a partial one, with ignored rows; in place too."""
    for K in range(1, 66):
        z, target, w = _case(rng, 37, K, dtype)
        for o in SWEEP_OPTIONS:
            ours, d, want, dwant = _ce_both(z, target, {**o, "w": w}, dtype)
            _close(ours, want, dtype, f"K={K} loss {o}")
            # K = 1: every gradient entry cancels to ~0; the weights set the scale of its terms
            _close(d, dwant, dtype, f"K={K} dlogits {o}", scale=max(float(np.max(np.abs(dwant))), float(w.max())))
        zz = z.copy()
        got = loss.softmax_cross_entropy(zz, target, label_smoothing=0.1, weight=w, dlogits=zz)
        want, dwant = ref.softmax_cross_entropy(z, target, label_smoothing=0.1, weight=w)
        _close(got, want, dtype, f"K={K} in place")
        _close(zz, dwant, dtype, f"K={K} in place", scale=max(float(np.max(np.abs(dwant))), float(w.max())))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
# K <= 64: the narrow path (16 rows transposed into lanes); K = 65 on: the row path.
@pytest.mark.parametrize(("N", "K"), [(1, 1), (7, 5), (37, 10), (19, 64), (5, 65), (13, 1031), (3, 4099)])
def test_distillation_matches_reference(simd, nthreads, dtype, N, K, rng):
    s = (rng.standard_normal((N, K)) * 3).astype(dtype)
    t = (rng.standard_normal((N, K)) * 3).astype(dtype)
    y = rng.integers(0, K, N)
    for T in (1.0, 2.5):
        for alpha in (0.0, 0.3, 1.0):
            for target in (y, None):
                for eps, conv in ((0.0, "chapter"), (0.1, "chapter"), (0.1, "torch")):
                    for red in ("batchmean", "sum", "none"):
                        kw = dict(temperature=T, alpha=alpha, label_smoothing=eps, convention=conv, reduction=red)
                        d = np.full_like(s, np.nan)
                        ours = loss.distillation_loss(s, t, target, dstudent=d, **kw)
                        want, dwant = ref.distillation_loss(s, t, target, **kw)
                        _close(ours, want, dtype, f"loss {kw} target={target is not None}")
                        _close(d, dwant, dtype, f"dstudent {kw} target={target is not None}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_cross_entropy_matches_torch(dtype, rng):
    torch = torch_or_skip()
    F = torch.nn.functional
    N, K = 33, 257
    for soft in (False, True):
        z, target, w = _case(rng, N, K, dtype, soft=soft)
        for eps in (0.0, 0.1):
            for red in ("mean", "sum", "none"):
                for weight in (None, w):
                    d = np.empty_like(z)
                    ours = loss.softmax_cross_entropy(
                        z, target, label_smoothing=eps, convention="torch", reduction=red, weight=weight, dlogits=d
                    )
                    zt = torch.tensor(z, requires_grad=True)
                    wt = None if weight is None else torch.tensor(weight)
                    lt = F.cross_entropy(zt, torch.tensor(target), weight=wt, label_smoothing=eps, reduction=red)
                    lt.sum().backward()
                    what = f"soft={soft} eps={eps} {red} weight={weight is not None}"
                    _close(ours, lt.detach().numpy(), dtype, what)
                    _close(d, zt.grad.numpy(), dtype, what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_distillation_matches_torch_kl_div_and_cross_entropy(dtype, rng):
    torch = torch_or_skip()
    F = torch.nn.functional
    N, K = 29, 301
    s = (rng.standard_normal((N, K)) * 3).astype(dtype)
    t = (rng.standard_normal((N, K)) * 3).astype(dtype)
    y = rng.integers(0, K, N)
    for T, alpha, eps in ((1.0, 0.5, 0.0), (4.0, 0.7, 0.1)):
        d = np.empty_like(s)
        ours = loss.distillation_loss(s, t, y, temperature=T, alpha=alpha, label_smoothing=eps, convention="torch",
                                      dstudent=d)  # fmt: skip
        st = torch.tensor(s, requires_grad=True)
        tt = torch.tensor(t)
        kl = F.kl_div(F.log_softmax(st / T, 1), F.log_softmax(tt / T, 1), reduction="batchmean", log_target=True)
        lt = alpha * T * T * kl + (1 - alpha) * F.cross_entropy(st, torch.tensor(y), label_smoothing=eps)
        lt.backward()
        _close(ours, lt.item(), dtype, f"T={T}")
        _close(d, st.grad.numpy(), dtype, f"T={T}")


def test_cross_entropy_gradient_by_finite_differences(rng):
    N, K = 4, 6
    for soft in (False, True):
        z, target, w = _case(rng, N, K, np.float64, soft=soft)
        for conv in ("chapter", "torch"):
            kw = dict(label_smoothing=0.2, convention=conv, weight=w)
            d = np.empty_like(z)
            loss.softmax_cross_entropy(z, target, dlogits=d, **kw)
            num = numeric_grad(lambda z=z, target=target, kw=kw: loss.softmax_cross_entropy(z, target, **kw), z)
            np.testing.assert_allclose(d, num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("K", [6, 70], ids=["narrow", "rows"])
def test_distillation_gradient_by_finite_differences(K, rng):
    N = 4
    s, t = rng.standard_normal((N, K)) * 2, rng.standard_normal((N, K)) * 2
    y = rng.integers(0, K, N)
    for target in (y, None):
        kw = dict(temperature=2.5, alpha=0.6, label_smoothing=0.1)
        d = np.empty_like(s)
        loss.distillation_loss(s, t, target, dstudent=d, **kw)
        num = numeric_grad(lambda target=target, kw=kw: loss.distillation_loss(s, t, target, **kw), s)
        np.testing.assert_allclose(d, num, rtol=1e-6, atol=1e-9)


def _all_results(z, target, w, t):
    """Row losses and gradients of every variant, as one list of arrays."""
    out = []
    for kw in (dict(label_smoothing=0.1, weight=w), dict(convention="torch", label_smoothing=0.2), {}):
        d = np.empty_like(z)
        out += [loss.softmax_cross_entropy(z, target, reduction="none", dlogits=d, **kw), d]
        out.append(np.array(loss.softmax_cross_entropy(z, target, **kw)))
    for T in (1.0, 3.0):
        d = np.empty_like(z)
        y = np.maximum(target, 0)
        out += [loss.distillation_loss(z, t, y, temperature=T, label_smoothing=0.1, reduction="none", dstudent=d), d]
        out.append(np.array(loss.distillation_loss(z, t, y, temperature=T)))
    return out


@several_simd_targets()
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("N", "K"), [(64, 2053), (3001, 37), (8003, 10)], ids=["rows", "narrow", "short"])
def test_bitwise_identical_for_threads_and_simd_targets(dtype, N, K, rng):
    # enough work for two threads
    z, target, w = _case(rng, N, K, dtype)
    t = (rng.standard_normal((N, K)) * 2).astype(dtype)
    with nndl_fast.simd_target("baseline"), nndl_fast.threads(1):
        base = _all_results(z, target, w, t)
    for simd in nndl_fast.available_simd_targets():
        for n in (1, 2):
            with nndl_fast.simd_target(simd), nndl_fast.threads(n):
                got = _all_results(z, target, w, t)
            for k, (a, b) in enumerate(zip(got, base)):
                assert a.tobytes() == b.tobytes(), f"{simd}, {n} threads: result {k} differs"


def test_chapter_and_torch_smoothing_differ_by_the_closed_form(rng):
    N, K, eps = 9, 11, 0.15
    z, target, w = _case(rng, N, K, np.float64)
    target[:] = rng.integers(0, K, N)
    kw = dict(label_smoothing=eps, reduction="none", weight=w)
    chapter = loss.softmax_cross_entropy(z, target, convention="chapter", **kw)
    torch_ = loss.softmax_cross_entropy(z, target, convention="torch", **kw)
    logp = ref.log_softmax(z)
    wl = w * logp
    others = wl.sum(axis=1) - wl[np.arange(N), target]
    # ℓ_chapter − ℓ_torch = ε·[Σ_j w_j log p_j / K − Σ_{j≠y} w_j log p_j / (K − 1)]
    np.testing.assert_allclose(chapter - torch_, eps * (wl.sum(axis=1) / K - others / (K - 1)), rtol=1e-10)
    assert np.all(chapter != torch_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("K", [513, 10])
def test_extreme_logits_and_neg_inf_entries_are_exact(dtype, K, rng):
    N = 6
    z = (rng.standard_normal((N, K)) * 1e4).astype(dtype)
    z[0, :] = 1e4
    z[1, ::3] = -np.inf
    target = rng.integers(0, K, N)
    target[1] = 1  # a finite logit
    d = np.empty_like(z)
    ours = loss.softmax_cross_entropy(z, target, reduction="none", dlogits=d)
    want, dwant = ref.softmax_cross_entropy(z, target, reduction="none")
    assert np.all(np.isfinite(ours)) and np.all(np.isfinite(d))
    _close(ours, want, dtype)
    _close(d, dwant, dtype)
    assert np.all(d[1, ::3] == 0)
    # Smoothing puts weight on the −inf logits: the loss is +inf, as the formula says; the
    # gradient is still finite.
    ours = loss.softmax_cross_entropy(z, target, reduction="none", label_smoothing=0.1, dlogits=d)
    assert ours[1] == np.inf and np.all(np.isfinite(np.delete(ours, 1)))
    assert np.all(np.isfinite(d))


def test_one_class_and_a_million_classes(rng):
    z = rng.standard_normal((5, 1))
    d = np.full_like(z, np.nan)
    for conv in ("chapter", "torch"):
        assert loss.softmax_cross_entropy(z, np.zeros(5, np.int64), label_smoothing=0.3, convention=conv,
                                          dlogits=d) == 0.0  # fmt: skip
        np.testing.assert_array_equal(d, 0.0)
    K = 1_000_003
    z = (rng.standard_normal((2, K)) * 20).astype(np.float32)
    y = np.array([5, K - 1])
    d = np.empty_like(z)
    ours = loss.softmax_cross_entropy(z, y, label_smoothing=0.1, reduction="none", dlogits=d)
    want, dwant = ref.softmax_cross_entropy(z, y, label_smoothing=0.1, reduction="none")
    _close(ours, want, np.float32)
    _close(d, dwant, np.float32)


@pytest.mark.parametrize("bad", ["nan", "posinf", "all_neginf"])
@pytest.mark.parametrize("K", [7, 37, 100])
def test_nonfinite_rows_raise_or_are_skipped(bad, K, rng):
    z, target, _ = _case(rng, 5, K, np.float64)
    target[:] = [1, 2, 3, 4, 5]
    if bad == "all_neginf":
        z[2] = -np.inf
    else:
        z[2, 3] = np.nan if bad == "nan" else np.inf
    d = np.full_like(z, 7.0)
    with pytest.raises(RuntimeError, match="row 2"):
        loss.softmax_cross_entropy(z, target, dlogits=d)
    _, good = ref.softmax_cross_entropy(np.delete(z, 2, 0), np.delete(target, 2), reduction="sum")
    np.testing.assert_array_equal(d[2], 7.0)  # the non-finite row is untouched
    kept = np.delete(np.arange(5), 2)
    np.testing.assert_allclose(d[kept], good / 5, rtol=1e-12)  # the others: their gradient
    # skipped: the row counts 0 (its weight stays in the mean's denominator), zero gradient
    ce = loss.SoftmaxCrossEntropy(skip_nonfinite=True)
    value, d = ce(z, target)
    want = ref.softmax_cross_entropy(np.delete(z, 2, 0), np.delete(target, 2), reduction="sum")[0] / 5
    assert value == pytest.approx(want, rel=1e-12) and ce.skipped_rows == 1
    np.testing.assert_array_equal(d[2], 0.0)
    # distillation: a bad teacher row too
    with pytest.raises(RuntimeError, match="row 2"):
        loss.distillation_loss(np.zeros_like(z), z, temperature=2.0)
    kd = loss.Distillation(temperature=2.0, skip_nonfinite=True)
    value, ds = kd(np.zeros_like(z), z)
    assert np.isfinite(value) and kd.skipped_rows == 1
    np.testing.assert_array_equal(ds[2], 0.0)


@pytest.mark.parametrize("K", [10, 70], ids=["narrow", "rows"])
def test_distillation_with_neg_inf_logits(K, rng):
    # student −inf where the teacher has mass: the KL is +inf; the teacher −inf there: finite
    z = rng.standard_normal((19, K))
    z[:, ::3] = -np.inf
    t = rng.standard_normal((19, K))
    y = np.full(19, 1)
    assert loss.distillation_loss(z, t, temperature=2.0) == np.inf
    d = np.empty_like(z)
    got = loss.distillation_loss(t, z, y, temperature=2.0, label_smoothing=0.1, reduction="none", dstudent=d)
    want, dwant = ref.distillation_loss(t, z, y, temperature=2.0, label_smoothing=0.1, reduction="none")
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(d, dwant, rtol=1e-12, atol=1e-15)


def test_neg_inf_prefix_of_a_row_is_not_lost(rng):
    """A row whose first blocks are all −inf (the online max starts at −inf) still counts them."""
    K = 3000
    z = rng.standard_normal((2, K))
    z[:, :2500] = -np.inf
    t = rng.standard_normal((2, K))
    y = np.array([2600, 2999])
    for eps in (0.0, 0.1):
        got = loss.softmax_cross_entropy(z, y, label_smoothing=eps, reduction="none")
        want = ref.softmax_cross_entropy(z, y, label_smoothing=eps, reduction="none")[0]
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # the finite logits far below −708 (a block of −inf before them must not scale by e^{+1000})
    z2 = np.full((1, K), -np.inf)
    z2[0, 2500:] = -1000.0 - np.arange(K - 2500) / K
    d = np.empty_like(z2)
    got = loss.softmax_cross_entropy(z2, np.array([2600]), reduction="none", dlogits=d)
    want, dwant = ref.softmax_cross_entropy(z2, np.array([2600]), reduction="none")
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(d, dwant, rtol=1e-12, atol=1e-15)
    # student −inf where the teacher has mass: the KL is +inf; teacher −inf there: finite
    assert loss.distillation_loss(z, t, temperature=2.0) == np.inf
    d = np.empty_like(z)
    got = loss.distillation_loss(t, z, y, temperature=2.0, reduction="none", dstudent=d)
    want, dwant = ref.distillation_loss(t, z, y, temperature=2.0, reduction="none")
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(d, dwant, rtol=1e-12, atol=1e-15)


def test_in_place_gradient_and_int32_targets(rng):
    z, target, w = _case(rng, 9, 31, np.float32)
    d = np.empty_like(z)
    want = loss.softmax_cross_entropy(z, target, label_smoothing=0.1, weight=w, dlogits=d)
    zz = z.copy()
    got = loss.softmax_cross_entropy(zz, target.astype(np.int32), label_smoothing=0.1, weight=w, dlogits=zz)
    assert got == want
    np.testing.assert_array_equal(zz, d)
    s = z.copy()
    t = z[::-1].copy()
    ds = np.empty_like(s)
    want = loss.distillation_loss(s, t, np.maximum(target, 0), temperature=2.0, dstudent=ds)
    got = loss.distillation_loss(s, t, np.maximum(target, 0).astype(np.int32), temperature=2.0, dstudent=s)
    assert got == want
    np.testing.assert_array_equal(s, ds)


def test_objects_return_loss_and_gradient(rng):
    z, target, w = _case(rng, 6, 8, np.float64)
    ce = loss.SoftmaxCrossEntropy(label_smoothing=0.1, weight=w, grad_scale=2.0)
    r = ce(z, target)
    assert isinstance(r, loss.CrossEntropyResult) and r.dlogits.shape == z.shape
    want, dwant = ref.softmax_cross_entropy(z, target, label_smoothing=0.1, weight=w)
    assert r.loss == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(r.dlogits, 2.0 * dwant, rtol=1e-12, atol=1e-15)  # grad_scale
    buf = np.empty_like(z)
    assert ce(z, target, dlogits=buf).dlogits is buf
    kd = loss.Distillation(temperature=3.0, alpha=0.25)
    r = kd(z, z[::-1].copy(), np.maximum(target, 0))
    assert isinstance(r, loss.DistillationResult) and r.dstudent.shape == z.shape
    assert r.loss == pytest.approx(ref.distillation_loss(z, z[::-1], np.maximum(target, 0), temperature=3.0,
                                                         alpha=0.25)[0], rel=1e-12)  # fmt: skip


def test_mean_over_no_rows_is_zero():
    z = np.ones((3, 4))
    d = np.full_like(z, 5.0)
    assert loss.softmax_cross_entropy(z, np.full(3, -100), dlogits=d) == 0.0
    np.testing.assert_array_equal(d, 0.0)
    assert loss.softmax_cross_entropy(np.ones((0, 4)), np.zeros(0, np.int64)) == 0.0


def _unchanged(call, d, err, match):
    before = d.copy()
    with pytest.raises(err, match=match):
        call()
    np.testing.assert_array_equal(d, before)


def test_bad_targets_are_rejected_and_leave_dlogits_untouched(rng):
    z, target, w = _case(rng, 5, 7, np.float32)
    d = np.full_like(z, 3.0)
    for bad in (7, -1, -101):
        t = target.copy()
        t[3] = bad
        _unchanged(lambda t=t: loss.softmax_cross_entropy(z, t, dlogits=d), d, ValueError, r"target\[3\]")
    _unchanged(lambda: loss.softmax_cross_entropy(z, target, weight=w * np.nan, dlogits=d), d, ValueError, "weight")
    _unchanged(
        lambda: loss.distillation_loss(z, z, target, temperature=2.0, dstudent=d), d, ValueError, r"target\[0\]"
    )  # fmt: skip (-100 is a class out of range for distillation)
    # soft targets: entries in [0, 1], rows summing to 1 within 16·K units of rounding
    q = np.full((5, 7), 1 / 7, np.float32)
    tol = 16 * 7 * 2.0**-24
    loss.softmax_cross_entropy(z, q, dlogits=d)  # accepted (float32 rounding of 1/7)
    for row_sum in (1 + 2 * tol, 1 - 2 * tol):
        bad = q.copy()
        bad[2] = (row_sum / 7) * np.ones(7, np.float64)
        _unchanged(lambda bad=bad: loss.softmax_cross_entropy(z, bad, dlogits=d), d, ValueError, "row 2 sums to")
    ok = q.copy()
    ok[2, 0] += np.float32(tol / 2)
    loss.softmax_cross_entropy(z, ok)
    bad = q.copy()
    bad[1, :2] = [-0.1, 0.1 + 1 / 7]
    _unchanged(lambda: loss.softmax_cross_entropy(z, bad, dlogits=d), d, ValueError, "row 1")
    # shapes and dtypes, aliasing
    _unchanged(lambda: loss.softmax_cross_entropy(z, target[:4], dlogits=d), d, ValueError, "target")
    _unchanged(lambda: loss.softmax_cross_entropy(z, q[:, :6], dlogits=d), d, ValueError, "target")
    di = np.zeros(z.shape, np.int32)
    _unchanged(lambda: loss.softmax_cross_entropy(z, target, dlogits=di), di, TypeError, "dlogits")
    _unchanged(lambda: loss.softmax_cross_entropy(z, target.astype(np.uint8), dlogits=d), d, TypeError, "target")
    q64 = q.astype(np.float64)
    _unchanged(lambda: loss.softmax_cross_entropy(z.astype(np.float64), q64, dlogits=q64), q64, ValueError,
               "shares memory")  # fmt: skip


def test_checked_options_are_reused_only_for_the_same_types(rng):
    # 0 == False and 1.0 == True as dict keys: a repeated call must not skip the check of a
    # value that equals an accepted one but has another type.
    z, target, _ = _case(rng, 4, 5, np.float64)
    s, t, y = z.copy(), rng.standard_normal(z.shape), np.arange(4)
    for _ in range(2):
        loss.softmax_cross_entropy(z, target, skip_nonfinite=False, grad_scale=1.0)
        loss.distillation_loss(s, t, y, temperature=1.0, alpha=1.0, skip_nonfinite=False)
    with pytest.raises(TypeError, match="skip_nonfinite"):
        loss.softmax_cross_entropy(z, target, skip_nonfinite=0, grad_scale=1.0)
    with pytest.raises(TypeError, match="grad_scale"):
        loss.softmax_cross_entropy(z, target, skip_nonfinite=False, grad_scale=True)
    with pytest.raises(TypeError, match="alpha"):
        loss.distillation_loss(s, t, y, temperature=1.0, alpha=True, skip_nonfinite=False)
    with pytest.raises(TypeError, match="label_smoothing"):
        loss.softmax_cross_entropy(z, target, label_smoothing=[0.1])  # unhashable: still checked


@pytest.mark.parametrize("K", [2, 100], ids=["narrow", "rows"])
def test_float32_exponentials_are_within_a_few_roundings(K):
    # Row (0, d, −inf, …) of class 0: dlogits[:, 1] = e^d/(1 + e^d), e^d by the kernel's float
    # lanes (vexpf), against the same in double, over vexpf's whole range.
    d = np.linspace(-87.0, 0.0, 200_003).astype(np.float32)
    z = np.full((d.size, K), -np.inf, np.float32)
    z[:, 0], z[:, 1] = 0.0, d
    g = np.empty_like(z)
    loss.softmax_cross_entropy(z, np.zeros(d.size, np.int64), reduction="sum", dlogits=g)
    e = np.exp(d.astype(np.float64))
    rel = np.abs(g[:, 1] / (e / (1.0 + e)) - 1.0)
    assert rel.max() < 3e-7, f"worst at d = {d[rel.argmax()]}: {rel.max():.3g}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_streamed_gradient_is_the_stored_one(dtype, rng):
    # Gradients larger than the cache go out by streaming stores; the bits are the same.
    z, target, w = _case(rng, 37, 3001, dtype)
    target[::5] = -100
    for kw in (dict(label_smoothing=0.1), dict(weight=w), dict(label_smoothing=0.2, convention="torch")):
        stored = np.full_like(z, np.nan)
        want = loss.softmax_cross_entropy(z, target, dlogits=stored, **kw)
        streamed = np.full_like(z, np.nan)
        nndl_fast._core.set_stream_threshold(4096)
        try:
            got = loss.softmax_cross_entropy(z, target, dlogits=streamed, **kw)
        finally:
            nndl_fast._core.set_stream_threshold(-1)
        assert got == want and streamed.tobytes() == stored.tobytes()
