"""Weight normalisation (1.55): parity with the NumPy reference, determinism, finite
differences, torch parity, bad input, zero rows, the WeightNorm object."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import assert_close, numeric_grad
from hypothesis import given, settings
from hypothesis import strategies as st

import nndl_fast
from nndl_fast.norm import WeightNorm, WeightNormBackward, weight_norm, weight_norm_backward
from nndl_fast.reference import weight_norm as ref

DTYPES = [np.float32, np.float64]
# (rows, ...): single element, odd sizes, a conv kernel, a 1-D v (rows of one element),
# rows longer than one 32Ki-column chunk (the chunked path), enough work for 2 threads.
SHAPES = [(1, 1), (7, 13), (5, 3, 3, 3), (4099,), (33, 1), (3, 70001), (64, 4099)]


def make(rng: np.random.Generator, shape: tuple[int, ...], dtype: type):
    v = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape[0]).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return v, g, dy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_parity_with_reference(simd, nthreads, rng, shape, dtype):
    v, g, dy = make(rng, shape, dtype)
    w = weight_norm(v, g)
    assert w.dtype == dtype and w.shape == shape
    assert_close(w, ref.weight_norm(v, g), dtype)
    dv, dg = weight_norm_backward(dy, v, g)
    want_v, want_g = ref.weight_norm_backward(dy, v, g)
    assert dv.dtype == dtype and dv.shape == shape and dg.shape == g.shape
    # ∂L/∂v = (g/‖v‖)(∂L/∂W − projection): its terms have the size of |g/‖v‖|·|∂L/∂W|
    norms = np.sqrt(np.sum(v.reshape(shape[0], -1).astype(np.float64) ** 2, axis=1))
    assert_close(dv, want_v, dtype, scale=float(np.max(np.abs(g) / norms) * np.max(np.abs(dy))))
    assert_close(dg, want_g, dtype, scale=float(np.max(np.abs(dy)) * np.sqrt(v[0].size)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(64, 4099), (3, 70001), (5, 100_003)], ids=str)
def test_bitwise_equal_across_threads_and_targets(rng, shape, dtype):
    v, g, dy = make(rng, shape, dtype)
    results = []
    for target in nndl_fast.available_simd_targets():
        for n in (1, 2):
            with nndl_fast.simd_target(target), nndl_fast.threads(n):
                results.append((weight_norm(v, g), *weight_norm_backward(dy, v, g)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_out_buffers_are_filled_and_returned(rng):
    v, g, dy = make(rng, (6, 5), np.float64)
    out = np.empty_like(v)
    assert weight_norm(v, g, out=out) is out
    np.testing.assert_allclose(out, ref.weight_norm(v, g), rtol=1e-13)
    dv, dg = np.empty_like(v), np.empty_like(g)
    result = weight_norm_backward(dy, v, g, out=(dv, dg))
    assert isinstance(result, WeightNormBackward)
    assert result.dv is dv and result.dg is dg
    want_v, want_g = ref.weight_norm_backward(dy, v, g)
    np.testing.assert_allclose(dv, want_v, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dg, want_g, rtol=1e-12, atol=1e-15)
    # either entry None: that one is allocated
    only_dg = weight_norm_backward(dy, v, g, out=(None, dg))
    assert only_dg.dg is dg and only_dg.dv is not dv
    np.testing.assert_array_equal(only_dg.dv, dv)
    only_dv = weight_norm_backward(dy, v, g, out=[dv, None])
    assert only_dv.dv is dv
    np.testing.assert_array_equal(only_dv.dg, dg)
    with pytest.raises(TypeError, match=r"\bout\b"):
        weight_norm_backward(dy, v, g, out=dv)
    with pytest.raises(ValueError, match=r"\bout\b"):
        weight_norm_backward(dy, v, g, out=(dv, dg, dg))


def test_torch_shaped_gain(rng):
    """g of torch's shape (out, 1, 1, 1) gives the same W, and ∂L/∂g in that shape."""
    v, g, dy = make(rng, (4, 3, 2, 2), np.float64)
    g4 = g.reshape(4, 1, 1, 1).copy()
    np.testing.assert_array_equal(weight_norm(v, g4), weight_norm(v, g))
    dv4, dg4 = weight_norm_backward(dy, v, g4)
    dv, dg = weight_norm_backward(dy, v, g)
    assert dg4.shape == (4, 1, 1, 1)
    np.testing.assert_array_equal(dv4, dv)
    np.testing.assert_array_equal(dg4.reshape(4), dg)


def test_finite_differences(rng):
    """Every backward term in float64: L = Σ R ⊙ W, so ∂L/∂W = R."""
    v, g, r = make(rng, (3, 4, 2), np.float64)

    def loss() -> float:
        return float(np.sum(r * weight_norm(v, g)))

    dv, dg = weight_norm_backward(r, v, g)
    np.testing.assert_allclose(dv, numeric_grad(loss, v), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dg, numeric_grad(loss, g), rtol=1e-6, atol=1e-8)


def test_gradient_is_orthogonal_to_v(rng):
    """∂L/∂v_i ⟂ v_i: changing only ‖v_i‖ does not change W (the reparametrisation's point)."""
    v, g, dy = make(rng, (9, 31), np.float64)
    dv, _ = weight_norm_backward(dy, v, g)
    np.testing.assert_allclose(np.sum(dv * v, axis=1), 0.0, atol=1e-12)


def test_zero_row_gives_nan_like_torch(rng):
    """Documented: ‖v_i‖ = 0 gives NaN in W_i, ∂L/∂g_i and ∂L/∂v_i; other rows unaffected."""
    v, g, dy = make(rng, (4, 6), np.float32)
    v[2] = 0.0
    w = weight_norm(v, g)
    assert np.isnan(w[2]).all()
    np.testing.assert_allclose(w[[0, 1, 3]], ref.weight_norm(v[[0, 1, 3]], g[[0, 1, 3]]), rtol=2e-6)
    dv, dg = weight_norm_backward(dy, v, g)
    assert np.isnan(dg[2]) and np.isnan(dv[2]).all()
    assert np.isfinite(dg[[0, 1, 3]]).all() and np.isfinite(dv[[0, 1, 3]]).all()


def test_empty_inputs():
    """No rows: empty results. Rows of no elements: ‖v_i‖ = 0, so ∂L/∂g_i is NaN (documented)."""
    v, g = np.ones((0, 3)), np.ones(0)
    assert weight_norm(v, g).shape == (0, 3)
    dv, dg = weight_norm_backward(v, v, g)
    assert dv.shape == (0, 3) and dg.shape == (0,)
    v, g = np.ones((3, 0)), np.ones(3)
    assert weight_norm(v, g).shape == (3, 0)
    dv, dg = weight_norm_backward(v, v, g)
    assert dv.shape == (3, 0) and np.isnan(dg).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_parity(rng, dtype):
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    v, g, dy = make(rng, (8, 5, 3, 3), dtype)
    tv = torch.from_numpy(v.copy()).requires_grad_(True)
    tg = torch.from_numpy(g.reshape(8, 1, 1, 1).copy()).requires_grad_(True)
    tw = torch._weight_norm(tv, tg, 0)
    tw.backward(torch.from_numpy(dy))
    assert_close(weight_norm(v, g), tw.detach().numpy(), dtype)
    dv, dg = weight_norm_backward(dy, v, g)
    assert_close(dv, tv.grad.numpy(), dtype)
    assert_close(dg, tg.grad.numpy().reshape(8), dtype)


def test_torch_parametrization_parity(rng):
    torch = pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")
    from torch.nn.utils.parametrizations import weight_norm as torch_weight_norm

    lin = torch.nn.Linear(7, 5, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(rng.standard_normal((5, 7))))
    lin = torch_weight_norm(lin, dim=0)
    g_t = lin.parametrizations.weight.original0  # (5, 1)
    v_t = lin.parametrizations.weight.original1  # (5, 7)
    with torch.no_grad():
        g_t.mul_(torch.from_numpy(rng.uniform(0.5, 2.0, (5, 1))))
    wn = WeightNorm(v_t.detach().numpy().copy(), g_t.detach().numpy().copy())
    np.testing.assert_allclose(wn.weight(), lin.weight.detach().numpy(), rtol=1e-13, atol=1e-15)
    x = torch.from_numpy(rng.standard_normal((3, 7)))
    lin(x).square().sum().backward()
    dy = (2 * (x @ lin.weight.T + lin.bias)).T @ x  # ∂/∂W Σ (xWᵀ + b)²
    dv, dg = wn.backward(dy.detach().numpy())
    np.testing.assert_allclose(dv, v_t.grad.numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dg, g_t.grad.numpy().reshape(5), rtol=1e-12, atol=1e-13)


# -- bad input: a clear error naming the argument, nothing written -----------------------


def _bad_forward_cases():
    v = np.ones((4, 3), np.float32)
    g = np.ones(4, np.float32)
    ro = np.zeros((4, 3), np.float32)
    ro.flags.writeable = False
    return [
        ("list v", lambda: weight_norm([[1.0, 2.0]], g), TypeError, "v"),
        ("int v", lambda: weight_norm(np.ones((4, 3), np.int32), g), TypeError, "v"),
        ("0-d v", lambda: weight_norm(np.ones((), np.float32), g), ValueError, "v"),
        ("g dtype", lambda: weight_norm(v, np.ones(4, np.float64)), TypeError, "g"),
        ("g shape", lambda: weight_norm(v, np.ones(3, np.float32)), ValueError, "g"),
        ("g 2-D wrong", lambda: weight_norm(v, np.ones((4, 2), np.float32)), ValueError, "g"),
        ("v strided", lambda: weight_norm(np.ones((4, 6), np.float32)[:, ::2], g), ValueError, "v"),
        (
            "v fortran",
            lambda: weight_norm(np.asfortranarray(np.ones((4, 3), np.float32)), g),
            ValueError,
            "v",
        ),
        ("out read-only", lambda: weight_norm(v, g, out=ro), ValueError, "out"),
        (
            "out shape",
            lambda: weight_norm(v, g, out=np.zeros((3, 4), np.float32)),
            ValueError,
            "out",
        ),
        (
            "out dtype",
            lambda: weight_norm(v, g, out=np.zeros((4, 3), np.float64)),
            TypeError,
            "out",
        ),
        ("out is v", lambda: weight_norm(v, g, out=v), ValueError, "out"),
    ]


@pytest.mark.parametrize("case", _bad_forward_cases(), ids=lambda c: c[0])
def test_bad_forward_input(case):
    _, call, exc, name = case
    with pytest.raises(exc, match=rf"\b{name}\b"):
        call()


def test_rejected_backward_writes_nothing():
    v = np.ones((4, 3), np.float64)
    g = np.ones(4, np.float64)
    dv = np.full((4, 3), 7.0)
    dg = np.full(4, 7.0)
    with pytest.raises(ValueError, match=r"\bdy\b"):
        weight_norm_backward(np.ones((4, 2)), v, g, out=(dv, dg))
    with pytest.raises(TypeError, match=r"\bdy\b"):
        weight_norm_backward(np.ones((4, 3), np.float32), v, g, out=(dv, dg))
    with pytest.raises(ValueError, match=r"out\[1\]"):
        weight_norm_backward(v, v, g, out=(dv, np.full(3, 7.0)))
    with pytest.raises(ValueError, match=r"out\[0\].*shares memory|shares memory.*out\[0\]"):
        weight_norm_backward(v, v, g, out=(v, dg))
    ro = np.full(4, 7.0)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"out\[1\]"):
        weight_norm_backward(v, v, g, out=(dv, ro))
    assert (dv == 7.0).all() and (dg == 7.0).all()


# -- the WeightNorm object --------------------------------------------------------------


def test_weightnorm_object(rng):
    w0 = rng.standard_normal((6, 2, 3)).astype(np.float32)
    wn = WeightNorm.from_weight(w0)
    np.testing.assert_allclose(wn.weight(), w0, rtol=1e-6, atol=1e-7)  # g = ‖v‖ at the start
    assert wn.v is not w0  # copied
    dy = rng.standard_normal(w0.shape).astype(np.float32)
    dv, dg = wn.backward(dy)
    assert dv is wn.dv and dg is wn.dg
    want_v, want_g = ref.weight_norm_backward(dy, wn.v, wn.g)
    assert_close(dv, want_v, np.float32)
    assert_close(dg, want_g, np.float32)
    with pytest.raises(TypeError, match=r"\bv\b"):
        WeightNorm(np.ones((2, 2), np.int64))
    with pytest.raises(ValueError, match=r"\bg\b"):
        WeightNorm(np.ones((2, 2)), np.ones(3))


def test_state_dict_roundtrip_resumes_bitwise(rng):
    """6 SGD steps in one go == 3 steps, state_dict via pickle into a new object, 3 more."""
    w0 = rng.standard_normal((5, 4))
    targets = [rng.standard_normal((5, 4)) for _ in range(6)]

    def step(wn: WeightNorm, target: np.ndarray) -> None:
        dv, dg = wn.backward(wn.weight() - target)
        wn.v -= 0.1 * dv
        wn.g -= 0.1 * dg

    straight = WeightNorm.from_weight(w0)
    for t in targets:
        step(straight, t)
    first = WeightNorm.from_weight(w0)
    for t in targets[:3]:
        step(first, t)
    state = pickle.loads(pickle.dumps(first.state_dict()))
    resumed = WeightNorm(np.zeros((5, 4)), np.zeros(5))
    v_buffer = resumed.v
    resumed.load_state_dict(state)
    assert resumed.v is v_buffer  # loaded in place
    for t in targets[3:]:
        step(resumed, t)
    np.testing.assert_array_equal(resumed.v, straight.v)
    np.testing.assert_array_equal(resumed.g, straight.g)
    np.testing.assert_array_equal(resumed.weight(), straight.weight())


def test_load_state_dict_rejects_mismatch_and_changes_nothing():
    wn = WeightNorm(np.ones((3, 2)), np.ones(3))
    with pytest.raises(ValueError, match="'g'"):
        wn.load_state_dict({"v": np.zeros((3, 2)), "g": np.zeros(4)})
    with pytest.raises(TypeError, match="'v'"):
        wn.load_state_dict({"v": np.zeros((3, 2), np.float32), "g": np.zeros(3)})
    with pytest.raises(ValueError, match=r"missing \['g'\]"):
        wn.load_state_dict({"v": np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"unknown \['w'\]"):
        wn.load_state_dict({"v": np.zeros((3, 2)), "g": np.zeros(3), "w": np.zeros(3)})
    assert (wn.v == 1.0).all() and (wn.g == 1.0).all()


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 40), min_size=1, max_size=4).map(tuple),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_shapes_match_reference(shape, seed):
    rng = np.random.default_rng(seed)
    v, g, dy = make(rng, shape, np.float64)
    assert_close(weight_norm(v, g), ref.weight_norm(v, g), np.float64)
    dv, dg = weight_norm_backward(dy, v, g)
    want_v, want_g = ref.weight_norm_backward(dy, v, g)
    norms = np.sqrt(np.sum(v.reshape(shape[0], -1) ** 2, axis=1))
    assert_close(dv, want_v, np.float64, scale=float(np.max(np.abs(g) / norms) * np.max(np.abs(dy))))
    assert_close(dg, want_g, np.float64, scale=float(np.max(np.abs(dy)) * np.sqrt(v[0].size)))


def test_failed_first_backward_leaves_no_uninitialised_gradients(rng):
    """A rejected first backward keeps dv, dg None (no garbage buffers for an optimizer to
    apply); a rejected later one leaves the previous gradients as they were."""
    wn = WeightNorm(rng.standard_normal((4, 3)))
    with pytest.raises(ValueError, match=r"\bdy\b"):
        wn.backward(np.ones((4, 2)))
    with pytest.raises(TypeError, match=r"\bdy\b"):
        wn.backward(np.ones((4, 3), np.float32))
    assert wn.dv is None and wn.dg is None
    dy = rng.standard_normal((4, 3))
    dv, dg = wn.backward(dy)
    assert wn.dv is dv and wn.dg is dg
    before = dv.copy(), dg.copy()
    with pytest.raises(ValueError, match=r"\bdy\b"):
        wn.backward(np.ones(3))
    assert wn.dv is dv and wn.dg is dg
    np.testing.assert_array_equal(dv, before[0])
    np.testing.assert_array_equal(dg, before[1])
    again = wn.backward(dy)
    assert isinstance(again, WeightNormBackward) and again.dv is dv


def test_torch_tensors_accepted(rng):
    torch = pytest.importorskip("torch", reason="torch not installed: tensor inputs not checked")
    v, g, dy = make(rng, (5, 4), np.float32)
    w = weight_norm(torch.from_numpy(v), torch.from_numpy(g))
    np.testing.assert_array_equal(w, weight_norm(v, g))
    dv, dg = weight_norm_backward(torch.from_numpy(dy), torch.from_numpy(v), torch.from_numpy(g))
    want = weight_norm_backward(dy, v, g)
    np.testing.assert_array_equal(dv, want.dv)
    np.testing.assert_array_equal(dg, want.dg)


def test_torch_tensors_everywhere_including_torchs_gain_shape_and_the_object(rng):
    """torch's g of shape (out, 1, ..., 1) as a tensor (a parametrization's weight_g), the
    WeightNorm constructor, and a state_dict of tensors that require grad: all accepted."""
    torch = pytest.importorskip("torch", reason="torch not installed: tensor inputs not checked")
    v, g, dy = make(rng, (4, 3, 2), np.float32)
    tv, tg = torch.from_numpy(v), torch.from_numpy(g.reshape(4, 1, 1)).requires_grad_()
    np.testing.assert_array_equal(weight_norm(tv, tg), weight_norm(v, g))
    dg = torch.zeros(4, 1, 1)
    back = weight_norm_backward(torch.from_numpy(dy), tv, tg, out=(None, dg))
    assert back.dg is dg and dg.shape == (4, 1, 1)  # written in place, in torch's shape
    np.testing.assert_array_equal(dg.numpy().reshape(4), weight_norm_backward(dy, v, g).dg)
    wn = WeightNorm(tv, tg)
    np.testing.assert_array_equal(wn.weight(), weight_norm(v, g))
    assert not np.shares_memory(wn.v, v)  # the constructor copies, as documented
    np.testing.assert_array_equal(WeightNorm.from_weight(tv).v, v)
    other = WeightNorm(np.zeros_like(v), np.ones(4, np.float32))
    other.load_state_dict({"v": tv.clone().requires_grad_(), "g": torch.from_numpy(g).requires_grad_()})
    np.testing.assert_array_equal(other.weight(), wn.weight())
