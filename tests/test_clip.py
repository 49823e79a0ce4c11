"""Gradient clipping (1.24–1.25): parity with the NumPy reference and torch, determinism,
non-finite gradients, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import torch_or_skip
from hypothesis import given, settings
from hypothesis import strategies as st

import nndl_fast
from nndl_fast import clip
from nndl_fast.reference import clip as ref

SIZES = [1, 7, 4099, 16384 * 3 + 5]  # odd sizes; the last spans several 16 Ki chunks
NORMS = [1.0, 2.0, math.inf, 3.0]
DTYPES = [np.float32, np.float64]


def make_grads(rng, dtype, sizes=SIZES, scale=1.0):
    return [(scale * rng.standard_normal(n)).astype(dtype) for n in sizes] + [
        (scale * rng.standard_normal((3, 5, 7))).astype(dtype)
    ]


def rtol(dtype):
    return 1e-6 if dtype == np.float32 else 1e-12


@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_global_norm_matches_reference(simd, nthreads, rng, p, dtype):
    grads = make_grads(rng, dtype)
    before = [g.copy() for g in grads]
    got = clip.global_norm(grads, p)
    assert got == pytest.approx(ref.global_norm(grads, p), rel=1e-12 if p != 3.0 else 1e-10)
    for g, b in zip(grads, before):  # read-only
        np.testing.assert_array_equal(g, b)


@pytest.mark.parametrize("p", NORMS)
def test_global_norm_bitwise_same_for_any_threads_and_target(rng, p):
    grads = make_grads(rng, np.float32, sizes=[1_000_003, 17, 40_000])
    results = set()
    for target in nndl_fast.available_simd_targets():
        for n in (1, 2):
            with nndl_fast.simd_target(target), nndl_fast.threads(n):
                results.add(clip.global_norm(grads, p))
    assert len(results) == 1, results


@pytest.mark.parametrize("convention", ["chapter", "torch"])
@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_norm_matches_reference(simd, nthreads, rng, convention, p, dtype):
    grads = make_grads(rng, dtype)
    expected = [g.copy() for g in grads]
    total_ref = ref.global_norm(expected, p)
    max_norm = 0.25 * total_ref
    assert ref.clip_grad_norm_(expected, max_norm, p, convention=convention) == total_ref
    total = clip.clip_grad_norm_(grads, max_norm, p, convention=convention)
    assert total == pytest.approx(total_ref, rel=1e-10)
    for g, e in zip(grads, expected):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, e, rtol=rtol(dtype), atol=0)
    # after clipping the norm is b (chapter) or b·‖g‖/(‖g‖ + 1e-6) (torch)
    after = ref.global_norm(grads, p)
    want = max_norm if convention == "chapter" else max_norm * total_ref / (total_ref + 1e-6)
    assert after == pytest.approx(want, rel=1e-5 if dtype == np.float32 else 1e-12)


def test_norm_below_max_leaves_arrays_bitwise_unchanged(rng):
    grads = make_grads(rng, np.float32)
    before = [g.copy() for g in grads]
    total = clip.global_norm(grads)
    for convention in ("chapter", "torch"):
        assert clip.clip_grad_norm_(grads, 2 * total, convention=convention) == total
        for g, b in zip(grads, before):
            np.testing.assert_array_equal(g, b)


def test_chapter_rule_is_exact_threshold():
    g = [np.array([3.0, 4.0])]  # ‖g‖ = 5
    assert clip.clip_grad_norm_(g, 5.0) == 5.0  # ‖g‖ > b is false at equality: unchanged
    np.testing.assert_array_equal(g[0], [3.0, 4.0])
    assert clip.clip_grad_norm_(g, 2.5) == 5.0
    np.testing.assert_array_equal(g[0], [1.5, 2.0])  # exactly b/‖g‖ = 0.5
    g = [np.array([3.0, 4.0])]
    clip.clip_grad_norm_(g, 2.5, convention="torch")
    np.testing.assert_allclose(g[0], np.array([3.0, 4.0]) * 2.5 / (5.0 + 1e-6), rtol=1e-15)


def test_clip_coefficient_conventions():
    assert clip.clip_coefficient(10.0, 2.0) == 0.2
    assert clip.clip_coefficient(1.0, 2.0) == 1.0
    assert clip.clip_coefficient(2.0, 2.0) == 1.0
    assert clip.clip_coefficient(10.0, 2.0, convention="torch") == 2.0 / (10.0 + 1e-6)
    assert clip.clip_coefficient(2.0, 2.0, convention="torch") == 2.0 / (2.0 + 1e-6)  # < 1: scales
    assert clip.clip_coefficient(1.0, 2.0, convention="torch") == 1.0
    assert clip.clip_coefficient(0.0, 1.0, convention="torch") == 1.0
    assert clip.clip_coefficient(math.inf, 1.0) == 0.0
    assert clip.clip_coefficient(math.nan, 1.0) == 1.0  # NaN > b is false
    assert math.isnan(clip.clip_coefficient(math.nan, 1.0, convention="torch"))
    for total, b in [(3.0, 1.0), (0.5, 1.0), (7.0, 0.0)]:
        for convention in ("chapter", "torch"):
            want = ref.clip_coefficient(total, b, convention=convention)
            assert clip.clip_coefficient(total, b, convention=convention) == want


def test_zero_gradients(simd):
    grads = [np.zeros(5, np.float32), np.zeros((2, 3), np.float32)]
    for convention in ("chapter", "torch"):
        assert clip.clip_grad_norm_(grads, 1.0, convention=convention) == 0.0
        assert clip.clip_grad_norm_(grads, 0.0, convention=convention) == 0.0
        for g in grads:
            assert not g.any() and not np.signbit(g).any()
    for p in NORMS:
        assert clip.global_norm(grads, p) == 0.0


def test_infinite_max_norm_never_clips(rng):
    grads = make_grads(rng, np.float32)
    before = [g.copy() for g in grads]
    for convention in ("chapter", "torch"):
        assert clip.clip_grad_norm_(grads, math.inf, convention=convention) == clip.global_norm(before)
        for g, b in zip(grads, before):
            np.testing.assert_array_equal(g, b)


def test_empty_list_and_empty_arrays():
    assert clip.global_norm([]) == 0.0
    assert clip.clip_grad_norm_([], 1.0) == 0.0
    clip.clip_grad_value_([], 1.0)
    grads = [np.zeros(0, np.float32), np.ones(4, np.float32)]
    assert clip.global_norm(grads) == 2.0
    assert clip.clip_grad_norm_(grads, 1.0) == 2.0
    np.testing.assert_array_equal(grads[1], 0.5)


def test_single_array_and_generator_accepted(rng):
    g = rng.standard_normal(10)
    expected = ref.global_norm([g])
    assert clip.global_norm(g) == pytest.approx(expected, rel=1e-14)
    assert clip.global_norm(x for x in [g]) == pytest.approx(expected, rel=1e-14)
    assert clip.global_norm([g], "inf") == np.max(np.abs(g))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("p", NORMS)
def test_nonfinite_with_error_raises_and_modifies_nothing(rng, bad, p):
    grads = make_grads(rng, np.float32)
    grads[2][100] = bad
    before = [g.copy() for g in grads]
    with pytest.raises(RuntimeError, match="non-finite"):
        clip.clip_grad_norm_(grads, 1.0, p, error_if_nonfinite=True)
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)


@pytest.mark.parametrize("p", NORMS)
def test_nonfinite_without_error_follows_the_conventions(rng, p):
    # NaN: chapter leaves the arrays alone (NaN > b is false); torch makes everything NaN.
    grads = make_grads(rng, np.float64)
    grads[1][3] = np.nan
    before = [g.copy() for g in grads]
    assert math.isnan(clip.clip_grad_norm_(grads, 1.0, p))
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)
    assert math.isnan(clip.clip_grad_norm_(grads, 1.0, p, convention="torch"))
    assert all(np.isnan(g).all() for g in grads)
    # Inf: c = 0 in both conventions, finite entries become 0 and the Inf entry NaN (0·Inf).
    for convention in ("chapter", "torch"):
        grads = make_grads(rng, np.float64)
        grads[1][3] = np.inf
        assert clip.clip_grad_norm_(grads, 1.0, p, convention=convention) == math.inf
        assert math.isnan(grads[1][3])
        grads[1][3] = 0.0
        assert all((g == 0).all() for g in grads)


def test_torch_parity(rng):
    torch = torch_or_skip()
    for p in NORMS:
        for dtype in DTYPES:
            grads = make_grads(rng, dtype)
            params = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype)) for g in grads]
            for prm, g in zip(params, grads):
                prm.grad = torch.from_numpy(g.copy())
            max_norm = 0.3 * ref.global_norm(grads, p)
            t_total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=p)
            total = clip.clip_grad_norm_(grads, max_norm, p, convention="torch")
            assert total == pytest.approx(float(t_total), rel=rtol(dtype) * 10)
            for g, prm in zip(grads, params):
                np.testing.assert_allclose(g, prm.grad.numpy(), rtol=rtol(dtype) * 10, atol=0)
    g = rng.standard_normal(100).astype(np.float32)
    prm = torch.nn.Parameter(torch.zeros(100))
    prm.grad = torch.from_numpy(g.copy())
    torch.nn.utils.clip_grad_value_([prm], 0.5)
    clip.clip_grad_value_([g], 0.5)
    np.testing.assert_array_equal(g, prm.grad.numpy())


def _model(torch, rng, dtype):
    """Parameters with gradients of several shapes, one frozen (grad None), like a model's."""
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    params = [torch.nn.Parameter(torch.from_numpy(rng.standard_normal(n).astype(dtype))) for n in SIZES]
    frozen = torch.nn.Parameter(torch.ones(5, dtype=tdtype))
    for prm in params:
        prm.grad = torch.from_numpy(rng.standard_normal(prm.shape).astype(dtype) * 3)
    return params[:1] + [frozen] + params[1:], tdtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", NORMS)
def test_clip_grad_norm_of_torch_parameters_clips_their_grads_as_torch(rng, p, dtype):
    """clip_grad_norm_(model.parameters(), b): the .grads are clipped (the frozen one skipped),
    the weights do not move, and the norm comes back as torch's 0-d tensor. (The weights
    themselves were clipped before, and their norm returned as a float.)"""
    torch = torch_or_skip()
    ours, tdtype = _model(torch, rng, dtype)
    theirs = [torch.nn.Parameter(q.detach().clone()) for q in ours]
    for a, b in zip(ours, theirs):
        b.grad = None if a.grad is None else a.grad.clone()
    weights = [q.detach().clone() for q in ours]
    grads = [q.grad for q in ours]  # the tensors clipped in place
    max_norm = 0.3 * float(torch.nn.utils.get_total_norm([g for g in grads if g is not None], p))
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=p)
    got = clip.clip_grad_norm_((q for q in ours), max_norm, p, convention="torch")
    assert isinstance(got, torch.Tensor) and got.dtype == want.dtype == tdtype and got.ndim == 0
    torch.testing.assert_close(got, want, rtol=rtol(dtype) * 10, atol=0)
    for q, w, g, t in zip(ours, weights, grads, theirs):
        assert torch.equal(q.detach(), w), "a weight moved"
        assert q.grad is g  # in place: the same tensor, no copy
        if t.grad is None:
            assert q.grad is None
        else:
            torch.testing.assert_close(q.grad, t.grad, rtol=rtol(dtype) * 10, atol=0)


def test_clip_grad_value_of_torch_parameters_clips_their_grads_as_torch(rng):
    torch = torch_or_skip()
    ours, _ = _model(torch, rng, np.float32)
    theirs = [torch.nn.Parameter(q.detach().clone()) for q in ours]
    for a, b in zip(ours, theirs):
        b.grad = None if a.grad is None else a.grad.clone()
    weights = [q.detach().clone() for q in ours]
    assert clip.clip_grad_value_(iter(ours), 0.5, foreach=True) is None
    torch.nn.utils.clip_grad_value_(theirs, 0.5)
    for q, w, t in zip(ours, weights, theirs):
        assert torch.equal(q.detach(), w), "a weight moved"
        assert (q.grad is None) == (t.grad is None)
        if t.grad is not None:
            assert torch.equal(q.grad, t.grad)


def test_torch_call_shapes(rng):
    """A single parameter, foreach= (accepted, no effect), parameters without any grad (norm 0,
    as torch), a NumPy array beside parameters (clipped itself), a bad foreach."""
    torch = torch_or_skip()
    prm = torch.nn.Parameter(torch.ones(4))
    prm.grad = torch.full((4,), 2.0)
    total = clip.clip_grad_norm_(prm, 1.0, foreach=False)
    assert isinstance(total, torch.Tensor) and float(total) == 4.0
    assert torch.equal(prm.grad, torch.full((4,), 0.5)) and torch.equal(prm.detach(), torch.ones(4))
    no_grad = [torch.nn.Parameter(torch.ones(3))]
    total = clip.clip_grad_norm_(no_grad, 1.0)
    assert torch.equal(total, torch.nn.utils.clip_grad_norm_(no_grad, 1.0))
    assert torch.equal(no_grad[0].detach(), torch.ones(3))
    arr = np.full(4, 2.0, np.float32)
    prm.grad = torch.full((4,), 2.0)
    assert float(clip.clip_grad_norm_([prm, arr], 2.0)) == pytest.approx(math.sqrt(32.0), rel=1e-7)
    np.testing.assert_allclose(arr, 2.0 * 2.0 / math.sqrt(32.0), rtol=1e-6)
    np.testing.assert_allclose(prm.grad.numpy(), arr, rtol=0)
    before = prm.grad.clone()
    for bad, exc in (("yes", TypeError), (1, TypeError)):
        with pytest.raises(exc, match="foreach"):
            clip.clip_grad_norm_(prm, 1.0, foreach=bad)
        with pytest.raises(exc, match="foreach"):
            clip.clip_grad_value_(prm, 1.0, foreach=bad)
    assert torch.equal(prm.grad, before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_value_matches_reference(simd, nthreads, rng, dtype):
    grads = make_grads(rng, dtype)
    grads[0][0] = np.nan
    expected = [g.copy() for g in grads]
    ref.clip_grad_value_(expected, -0.5, 0.75)
    clip.clip_grad_value_(grads, lower=-0.5, upper=0.75)
    for g, e in zip(grads, expected):
        np.testing.assert_array_equal(g, e)  # elementwise min/max: exact
    assert np.isnan(grads[0][0])
    g = [np.array([-3.0, 0.1, 3.0])]
    clip.clip_grad_value_(g, 1.0)
    np.testing.assert_array_equal(g[0], [-1.0, 0.1, 1.0])
    g = [np.array([-3.0, 0.1, 3.0])]
    clip.clip_grad_value_(g, upper=0.0)
    np.testing.assert_array_equal(g[0], [-3.0, 0.0, 0.0])


def test_bad_input_clear_errors_nothing_modified(rng):
    good = rng.standard_normal(4).astype(np.float32)
    keep = good.copy()
    with pytest.raises(TypeError, match=r"grads\[1\] must be float32 or float64"):
        clip.clip_grad_norm_([good, np.ones(3, np.int64)], 0.1)
    with pytest.raises(TypeError, match=r"grads\[1\] has dtype float64"):
        clip.clip_grad_norm_([good, np.ones(3)], 0.1)
    with pytest.raises(TypeError, match=r"grads\[0\] must be a numpy.ndarray"):
        clip.clip_grad_norm_([[1.0, 2.0]], 0.1)
    ro = good.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"grads\[1\] is read-only"):
        clip.clip_grad_norm_([good, ro], 0.1)
    assert clip.global_norm([ro]) > 0  # reading a read-only array is fine
    with pytest.raises(ValueError, match=r"grads\[1\] is read-only"):
        clip.clip_grad_value_([good, ro], 0.1)
    with pytest.raises(ValueError, match="C-contiguous"):
        clip.clip_grad_norm_([good, np.ones(8, np.float32)[::2]], 0.1)
    with pytest.raises(ValueError, match="shares memory"):
        clip.clip_grad_norm_([good, good[1:]], 0.1)
    with pytest.raises(ValueError, match="max_norm"):
        clip.clip_grad_norm_([good], -1.0)
    with pytest.raises(ValueError, match="max_norm"):
        clip.clip_grad_norm_([good], math.nan)
    with pytest.raises(TypeError, match="max_norm"):
        clip.clip_grad_norm_([good], "1")
    with pytest.raises(ValueError, match="norm_type"):
        clip.clip_grad_norm_([good], 1.0, norm_type=0)
    with pytest.raises(ValueError, match="norm_type"):
        clip.global_norm([good], -math.inf)
    with pytest.raises(ValueError, match="convention must be one of"):
        clip.clip_grad_norm_([good], 0.1, convention="keras")
    with pytest.raises(TypeError, match="grads"):
        clip.clip_grad_norm_(3.0, 0.1)
    with pytest.raises(ValueError, match="lower must be <= upper"):
        clip.clip_grad_value_([good], lower=1.0, upper=0.0)
    with pytest.raises(TypeError, match="not both"):
        clip.clip_grad_value_([good], 1.0, lower=0.0)
    with pytest.raises(ValueError, match="clip_value"):
        clip.clip_grad_value_([good], -1.0)
    np.testing.assert_array_equal(good, keep)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40_000), min_size=1, max_size=6),
    p=st.sampled_from(NORMS),
    scale=st.floats(1e-3, 1e3),
    dtype=st.sampled_from(DTYPES),
)
def test_clip_parity_generated_shapes(sizes, p, scale, dtype):
    rng = np.random.default_rng(len(sizes) * 1000 + sum(sizes))
    grads = [(scale * rng.standard_normal(n)).astype(dtype) for n in sizes]
    expected = [g.copy() for g in grads]
    total_ref = ref.global_norm(expected, p)
    max_norm = 0.5 * total_ref
    ref.clip_grad_norm_(expected, max_norm, p)
    assert clip.clip_grad_norm_(grads, max_norm, p) == pytest.approx(total_ref, rel=1e-10, abs=0)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=rtol(dtype), atol=0)
