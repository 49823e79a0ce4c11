"""Local response normalisation (1.56): parity with the NumPy reference for both
conventions, determinism, finite differences, torch parity, bad input, non-finite input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, numeric_grad
from hypothesis import given, settings
from hypothesis import strategies as st

import nndl_fast
from nndl_fast.norm import local_response_norm, local_response_norm_backward
from nndl_fast.reference import local_response_norm as ref

DTYPES = [np.float32, np.float64]
CONVENTIONS = ["chapter", "torch", "onnx"]
# (N, C, spatial...): one element, odd sizes, 2-D (N, C), 1-D spatial, spatial longer
# than one 256-position block with a ragged tail, enough work for 2 threads.
SHAPES = [(1, 1, 1), (2, 7, 5, 3), (2, 3), (3, 16, 33), (2, 9, 4099), (4, 13, 41, 43)]
# (size, alpha, beta, k): AlexNet; even sizes (the conventions' windows differ); a window
# wider than C; β special cases 0.5 / 1 and general β, β = 0 (identity).
HYPER = [
    (5, 1e-4, 0.75, 2.0),
    (4, 0.05, 0.75, 1.0),
    (2, 0.3, 0.5, 1.5),
    (1, 0.2, 1.0, 1.0),
    (7, 0.02, 0.6, 0.5),
    (30, 0.01, 0.75, 2.0),
    (3, 0.1, 0.0, 1.0),
]


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_parity_with_reference(simd, nthreads, rng, shape, dtype, convention):
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    for size, alpha, beta, k in HYPER:
        hp = {"size": size, "alpha": alpha, "beta": beta, "k": k, "convention": convention}
        y = local_response_norm(x, **hp)
        assert y.dtype == dtype and y.shape == shape
        assert_close(y, ref.local_response_norm(x, **hp), dtype, scale=float(np.max(np.abs(x))))
        dx = local_response_norm_backward(dy, x, **hp)
        assert dx.dtype == dtype and dx.shape == shape
        want = ref.local_response_norm_backward(dy, x, **hp)
        assert_close(dx, want, dtype, scale=float(np.max(np.abs(want))))


def test_huge_window_equals_whole_channel_range(rng):
    """size far beyond C: every channel sums all C squares (and no giant scratch)."""
    x = rng.standard_normal((2, 6, 5))
    for convention in CONVENTIONS:
        want = ref.local_response_norm(x, 13, 0.1, 0.75, 1.0, convention)
        a = 0.1 if convention == "chapter" else 0.1 / 13
        np.testing.assert_allclose(want, x / (1.0 + a * np.sum(x**2, axis=1, keepdims=True)) ** 0.75, rtol=1e-14)
        for size in (13, 10**9 + 1, 2**70 + 1):
            hp = {
                "size": size,
                "alpha": 0.1 * size / 13 if convention != "chapter" else 0.1,
                "beta": 0.75,
                "k": 1.0,
                "convention": convention,
            }
            np.testing.assert_allclose(local_response_norm(x, **hp), want, rtol=1e-13)
            want_grad = ref.local_response_norm_backward(x, x, 13, 0.1, 0.75, 1.0, convention)
            np.testing.assert_allclose(local_response_norm_backward(x, x, **hp), want_grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shape", [(0, 3, 4), (2, 0, 4), (2, 3, 0), (0, 0)], ids=str)
def test_empty_inputs(shape):
    x = np.ones(shape, np.float32)
    assert local_response_norm(x).shape == shape
    assert local_response_norm_backward(x, x).shape == shape


def test_beta_zero_is_identity(rng):
    x = rng.standard_normal((2, 5, 7))
    np.testing.assert_array_equal(local_response_norm(x, beta=0.0), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hyper", [(5, 1e-4, 0.75, 2.0), (4, 0.05, 0.6, 1.0)], ids=str)
def test_bitwise_equal_across_threads_and_targets(rng, dtype, hyper):
    size, alpha, beta, k = hyper
    x = (3 * rng.standard_normal((5, 16, 37, 41))).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    results = []
    for target in nndl_fast.available_simd_targets():
        for n in (1, 2):
            with nndl_fast.simd_target(target), nndl_fast.threads(n):
                results.append(
                    (
                        local_response_norm(x, size, alpha, beta, k),
                        local_response_norm_backward(dy, x, size, alpha, beta, k),
                    )
                )
    for other in results[1:]:
        np.testing.assert_array_equal(results[0][0], other[0])
        np.testing.assert_array_equal(results[0][1], other[1])


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("hyper", [(5, 0.1, 0.75, 2.0), (4, 0.2, 0.6, 1.0), (2, 0.3, 0.5, 0.5)], ids=str)
def test_finite_differences(rng, convention, hyper):
    """Every input's gradient in float64: L = Σ R ⊙ y, so ∂L/∂y = R."""
    size, alpha, beta, k = hyper
    hp = {"size": size, "alpha": alpha, "beta": beta, "k": k, "convention": convention}
    x = rng.standard_normal((2, 7, 3))
    r = rng.standard_normal(x.shape)
    dx = local_response_norm_backward(r, x, **hp)
    fd = numeric_grad(lambda: float(np.sum(r * local_response_norm(x, **hp))), x)
    np.testing.assert_allclose(dx, fd, rtol=1e-6, atol=1e-8)


def test_conventions_differ_as_documented(rng):
    """Odd n: torch's a = α/n is the chapter's with α/n. Even n: the chapter's window is
    n + 1 channels, i.e. torch's with size n + 1 (and α scaled back)."""
    x = rng.standard_normal((2, 11, 6))
    np.testing.assert_allclose(
        local_response_norm(x, 5, 0.5, 0.75, 2.0, convention="torch"),
        local_response_norm(x, 5, 0.1, 0.75, 2.0, convention="chapter"),
        rtol=1e-14,
    )
    np.testing.assert_allclose(
        local_response_norm(x, 4, 0.2, 0.75, 2.0, convention="chapter"),
        local_response_norm(x, 5, 1.0, 0.75, 2.0, convention="torch"),
        rtol=1e-14,
    )
    assert not np.allclose(
        local_response_norm(x, 4, 0.2, 0.75, 2.0, convention="torch"),
        local_response_norm(x, 4, 0.05, 0.75, 2.0, convention="chapter"),
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 6, 9])
def test_torch_parity(rng, dtype, size):
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    F = torch.nn.functional
    x = (3 * rng.standard_normal((3, 10, 7, 5))).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    alpha, beta, k = 0.05, 0.75, 1.0
    # torch convention: F.local_response_norm(x, size, alpha, beta, k) exactly.
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = F.local_response_norm(tx, size, alpha, beta, k)
    ty.backward(torch.from_numpy(dy))
    y = local_response_norm(x, size, alpha, beta, k, convention="torch")
    assert_close(y, ty.detach().numpy(), dtype, scale=float(np.max(np.abs(x))))
    dx = local_response_norm_backward(dy, x, size, alpha, beta, k, convention="torch")
    assert_close(dx, tx.grad.numpy(), dtype, scale=float(np.max(np.abs(tx.grad.numpy()))))
    # chapter convention: torch with the window of 2⌊n/2⌋ + 1 channels and α scaled by it.
    width = 2 * (size // 2) + 1
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = F.local_response_norm(tx, width, alpha * width, beta, k)
    ty.backward(torch.from_numpy(dy))
    y = local_response_norm(x, size, alpha, beta, k, convention="chapter")
    assert_close(y, ty.detach().numpy(), dtype, scale=float(np.max(np.abs(x))))
    dx = local_response_norm_backward(dy, x, size, alpha, beta, k, convention="chapter")
    assert_close(dx, tx.grad.numpy(), dtype, scale=float(np.max(np.abs(tx.grad.numpy()))))


def test_onnx_window_is_torchs_mirror_image(rng):
    # For an even n, ONNX's window (p − 1 … p + 2 for n = 4) is torch's (p − 2 … p + 1) reversed
    # along the channels; for an odd n the two are the same.
    x = rng.standard_normal((2, 9, 5))
    for size in (2, 4, 6):
        onnx = local_response_norm(x, size, 0.3, 0.75, convention="onnx")
        torch_flipped = local_response_norm(x[:, ::-1].copy(), size, 0.3, 0.75, convention="torch")[:, ::-1]
        np.testing.assert_allclose(onnx, torch_flipped, rtol=1e-14)
        assert not np.allclose(onnx, local_response_norm(x, size, 0.3, 0.75, convention="torch"))
    np.testing.assert_array_equal(
        local_response_norm(x, 5, 0.3, 0.75, convention="onnx"),
        local_response_norm(x, 5, 0.3, 0.75, convention="torch"),
    )


def test_k_defaults_by_preset_and_onnx_allows_k_at_most_zero(rng):
    x = rng.standard_normal((2, 6, 3))
    for convention, k in (("chapter", 2.0), ("torch", 1.0), ("onnx", 1.0)):
        np.testing.assert_array_equal(
            local_response_norm(x, 3, convention=convention), local_response_norm(x, 3, k=k, convention=convention)
        )
    for k in (0.0, -0.5):
        y = local_response_norm(x, 3, 1.0, 0.5, k, convention="onnx")
        with np.errstate(invalid="ignore", divide="ignore"):
            want = ref.local_response_norm(x, 3, 1.0, 0.5, k, "onnx")
        np.testing.assert_allclose(y, want, rtol=1e-12, equal_nan=True)
    with pytest.raises(ValueError, match="k"):
        local_response_norm(x, 3, k=0.0, convention="torch")


def test_out_buffers(rng):
    x = rng.standard_normal((2, 6, 5)).astype(np.float32)
    out = np.empty_like(x)
    assert local_response_norm(x, out=out) is out
    np.testing.assert_array_equal(out, local_response_norm(x))
    dx_out = np.empty_like(x)
    assert local_response_norm_backward(x, x, out=dx_out) is dx_out
    np.testing.assert_array_equal(dx_out, local_response_norm_backward(x, x))


# β = 0.75 takes square roots; any other β exp(−β ln d) with libm's pow for d outside its
# range (an infinite or NaN window, |β ln d| > 700).
@pytest.mark.parametrize("beta", [0.75, 0.6])
def test_nonfinite_input_documented_behaviour(beta):
    """A NaN at channel c poisons the running sum at that position: channels c − hi on are
    NaN there, earlier channels and every other position are untouched."""
    x = np.ones((1, 12, 3))
    x[0, 6, 1] = np.nan
    y = local_response_norm(x, size=5, beta=beta)  # chapter: hi = 2
    assert np.isfinite(y[0, :4, 1]).all() and np.isnan(y[0, 4:, 1]).all()
    assert np.isfinite(y[0, :, [0, 2]]).all()


@pytest.mark.parametrize("beta", [0.75, 0.6])
def test_infinite_input_documented_behaviour(beta):
    """An Inf at channel c: 0 in the other channels whose window holds it, NaN at c and
    in every channel after the window."""
    x = np.ones((1, 12, 3))
    x[0, 6, 1] = np.inf
    y = local_response_norm(x, size=5, beta=beta)  # chapter: channels 4..8 hold channel 6
    assert np.isfinite(y[0, :4, 1]).all() and (y[0, :4, 1] > 0).all()
    np.testing.assert_array_equal(y[0, [4, 5, 7, 8], 1], 0.0)
    assert np.isnan(y[0, 6, 1]) and np.isnan(y[0, 9:, 1]).all()
    assert np.isfinite(y[0, :, [0, 2]]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_powers_beyond_double_range_match_reference(dtype):
    """d^{−β} under e^{−700} (huge windows, large β): libm's pow, as the reference. The
    float32 backward is left out: it forms d^{−β}/d in float, which underflows for windows
    this large (a float32 range limit, not one of the power)."""
    x = np.full((1, 4, 3), 1e18 if dtype == np.float32 else 1e150, dtype)
    x[0, :, 0] = 1.5
    x[0, 1, 2] = 1e-30
    for beta in (0.6, 3.7, 11.0):
        hp = {"size": 3, "alpha": 1.0, "beta": beta, "k": 1.0}
        with np.errstate(over="ignore", under="ignore"):  # the reference's d^β overflows to inf
            want = ref.local_response_norm(x.astype(np.float64), **hp)
        got = local_response_norm(x, **hp)
        np.testing.assert_allclose(got, want.astype(dtype), rtol=1e-6 if dtype == np.float32 else 1e-12, atol=0)
        if dtype == np.float64:
            dy = np.ones_like(x)
            with np.errstate(over="ignore", under="ignore"):
                want_g = ref.local_response_norm_backward(dy, x, **hp)
            np.testing.assert_allclose(local_response_norm_backward(dy, x, **hp), want_g, rtol=1e-11, atol=0)


# -- bad input: a clear error naming the argument, nothing written -----------------------


def _bad_cases():
    x = np.ones((2, 4, 3), np.float32)
    ro = np.zeros((2, 4, 3), np.float32)
    ro.flags.writeable = False
    fwd = local_response_norm
    bwd = local_response_norm_backward
    return [
        ("list x", lambda: fwd([[1.0, 2.0]]), TypeError, "x"),
        ("int x", lambda: fwd(np.ones((2, 4, 3), np.int64)), TypeError, "x"),
        ("1-D x", lambda: fwd(np.ones(5, np.float32)), ValueError, "x"),
        ("strided x", lambda: fwd(np.ones((2, 4, 6), np.float32)[..., ::2]), ValueError, "x"),
        ("transposed x", lambda: fwd(np.ones((3, 4, 2), np.float32).T), ValueError, "x"),
        ("out read-only", lambda: fwd(x, out=ro), ValueError, "out"),
        ("out shape", lambda: fwd(x, out=np.zeros((2, 3, 4), np.float32)), ValueError, "out"),
        ("out dtype", lambda: fwd(x, out=np.zeros((2, 4, 3), np.float64)), TypeError, "out"),
        ("out is x", lambda: fwd(x, out=x), ValueError, "out"),
        ("size 0", lambda: fwd(x, size=0), ValueError, "size"),
        ("size float", lambda: fwd(x, size=2.5), TypeError, "size"),
        ("size bool", lambda: fwd(x, size=True), TypeError, "size"),
        ("k zero", lambda: fwd(x, k=0.0), ValueError, "k"),
        ("k negative", lambda: fwd(x, k=-1.0), ValueError, "k"),
        ("k nan", lambda: fwd(x, k=float("nan")), ValueError, "k"),
        ("alpha negative", lambda: fwd(x, alpha=-1e-4), ValueError, "alpha"),
        ("alpha str", lambda: fwd(x, alpha="1e-4"), TypeError, "alpha"),
        ("beta negative", lambda: fwd(x, beta=-0.5), ValueError, "beta"),
        ("beta inf", lambda: fwd(x, beta=float("inf")), ValueError, "beta"),
        ("convention", lambda: fwd(x, convention="pytorch"), ValueError, "convention"),
        ("dy shape", lambda: bwd(np.ones((2, 4, 2), np.float32), x), ValueError, "dy"),
        ("dy dtype", lambda: bwd(np.ones((2, 4, 3)), x), TypeError, "dy"),
        ("bwd out is dy", lambda: bwd(ro.copy(), x, out=x), ValueError, "out"),
        ("bwd convention", lambda: bwd(x, x, convention="Chapter"), ValueError, "convention"),
    ]


@pytest.mark.parametrize("case", _bad_cases(), ids=lambda c: c[0])
def test_bad_input(case):
    _, call, exc, name = case
    with pytest.raises(exc, match=rf"\b{name}\b"):
        call()


def test_rejected_call_writes_nothing():
    x = np.ones((2, 4, 3))
    out = np.full_like(x, 7.0)
    with pytest.raises(ValueError, match=r"\bsize\b"):
        local_response_norm(x, size=-1, out=out)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        local_response_norm_backward(np.ones((2, 4, 4)), x, out=out)
    with pytest.raises(ValueError, match=r"\bdy\b.*shares memory|shares memory.*\bdy\b"):
        local_response_norm_backward(out, x, out=out)
    assert (out == 7.0).all()


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 12),
    s=st.integers(1, 300),
    size=st.integers(1, 9),
    beta=st.sampled_from([0.0, 0.5, 0.75, 1.0, 0.3]),
    convention=st.sampled_from(CONVENTIONS),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_shapes_match_reference(n, c, s, size, beta, convention, seed):
    rng = np.random.default_rng(seed)
    x = 2 * rng.standard_normal((n, c, s))
    dy = rng.standard_normal(x.shape)
    hp = {"size": size, "alpha": 0.05, "beta": beta, "k": 1.0, "convention": convention}
    assert_close(
        local_response_norm(x, **hp),
        ref.local_response_norm(x, **hp),
        np.float64,
        scale=float(np.max(np.abs(x))),
    )
    want = ref.local_response_norm_backward(dy, x, **hp)
    assert_close(
        local_response_norm_backward(dy, x, **hp),
        want,
        np.float64,
        scale=float(np.max(np.abs(want))),
    )


def test_compiled_names_follow_the_glossary():
    """_core spells the concept as the module does (docs/conventions.md): no lrn_ prefix."""
    core = nndl_fast._core
    assert hasattr(core, "local_response_norm_forward")
    assert hasattr(core, "local_response_norm_backward")
    assert not [name for name in dir(core) if name.startswith("lrn_")]


def test_negative_window_rejected_by_the_compiled_call():
    """The compiled call guards its scratch ring itself (a direct _core call skips Python)."""
    x = np.ones((2, 4, 3))
    out = np.full_like(x, 7.0)
    with pytest.raises(ValueError, match=r"\blo\b"):
        nndl_fast._core.local_response_norm_backward(out, x, x.copy(), -1, 2, 1.0, 0.1, 0.75)
    assert (out == 7.0).all()


def test_torch_tensors_accepted(rng):
    torch = pytest.importorskip("torch", reason="torch not installed: tensor inputs not checked")
    x = rng.standard_normal((2, 5, 7)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(local_response_norm(torch.from_numpy(x)), local_response_norm(x))
    np.testing.assert_array_equal(
        local_response_norm_backward(torch.from_numpy(dy), torch.from_numpy(x)),
        local_response_norm_backward(dy, x),
    )
