"""Layer norm (1.49–1.52, RNN step 1.53–1.54): parity with the NumPy float64 reference,
finite differences, hard inputs, determinism, torch parity, state_dict."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import at_phase, numeric_grad, several_simd_targets, torch_or_skip

import nndl_fast
from nndl_fast.norm import LayerNorm, layer_norm_backward, layer_norm_forward, layer_norm_workspace
from nndl_fast.reference import layer_norm as ref

# (x shape, normalized_shape): odd sizes, several trailing dims, rows longer than one
# statistics block (4096), more rows than backward chunks (64), a single row.
CASES = [
    ((7, 5), (5,)),
    ((3, 4, 33), (33,)),
    ((5, 3, 4), (3, 4)),
    ((1, 9), (9,)),
    ((130, 17), (17,)),
    ((3, 5000), (5000,)),
    ((2, 3, 7, 5), (7, 5)),
    ((6, 1), (1,)),
    ((2100, 33), (33,)),  # chunks of 33 rows: the backward's T partials flushed mid-chunk
]
IDS = [f"{'x'.join(map(str, s))}/{'x'.join(map(str, n))}" for s, n in CASES]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-11)}


def make(rng, shape, norm, dtype, offset=0.5):
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, norm).astype(dtype)
    beta = rng.standard_normal(norm).astype(dtype)
    return x, gamma, beta


@pytest.mark.parametrize("affine", ["both", "gamma", "beta", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,norm", CASES, ids=IDS)
def test_forward_and_backward_match_reference(rng, simd, nthreads, shape, norm, dtype, affine):
    x, gamma, beta = make(rng, shape, norm, dtype)
    g = gamma if affine in ("both", "gamma") else None
    b = beta if affine in ("both", "beta") else None
    y, sm, sr = layer_norm_forward(x, norm, g, b)
    ry, rm, rr = ref.layer_norm_forward(x, len(norm), g, b)
    tol = TOL[dtype]
    np.testing.assert_allclose(y, ry, **tol)
    np.testing.assert_allclose(sm, rm, **tol)
    np.testing.assert_allclose(sr, rr, **tol)
    assert sm.shape == shape[: len(shape) - len(norm)] and y.dtype == dtype
    dy = rng.standard_normal(shape).astype(dtype)
    dx, dg, db = layer_norm_backward(dy, x, sm, sr, norm, g)
    rdx, rdg, rdb = ref.layer_norm_backward(dy, x, sm, sr, len(norm), g)
    rows = x.size // int(np.prod(norm))
    np.testing.assert_allclose(dx, rdx, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)
    np.testing.assert_allclose(dg, rdg, rtol=tol["rtol"] * 10, atol=tol["atol"] * np.sqrt(rows) * 10)
    np.testing.assert_allclose(db, rdb, rtol=tol["rtol"] * 10, atol=tol["atol"] * np.sqrt(rows) * 10)
    dx2, dg2, db2 = layer_norm_backward(dy, x, sm, sr, norm, g, param_grads=False)
    np.testing.assert_array_equal(dx2, dx)  # the dγ, dβ partials do not change dx
    assert dg2 is None and db2 is None


@pytest.mark.parametrize("shape,norm", [((4, 6), (6,)), ((2, 3, 2, 2), (2, 2))], ids=["2d", "4d"])
def test_backward_matches_finite_differences(rng, shape, norm):
    x, gamma, beta = make(rng, shape, norm, np.float64)
    w = rng.standard_normal(shape)

    def loss():
        return float((w * layer_norm_forward(x, norm, gamma, beta).y).sum())

    _, sm, sr = layer_norm_forward(x, norm, gamma, beta)
    dx, dg, db = layer_norm_backward(w, x, sm, sr, norm, gamma)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dg, numeric_grad(loss, gamma), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numeric_grad(loss, beta), rtol=1e-6, atol=1e-7)


def test_rnn_step_is_the_same_kernel(rng):
    """(1.53–1.54): h_t = tanh(LN(U h_{t−1} + W x_t)), one kernel call per step on
    (batch, hidden)."""
    batch, hidden, inp, steps = 4, 8, 3, 5
    u = rng.standard_normal((hidden, hidden)) * 0.3
    w = rng.standard_normal((inp, hidden)) * 0.3
    ln = LayerNorm(hidden, dtype=np.float64)
    ln.gamma[:] = rng.uniform(0.5, 1.5, hidden)
    ln.beta[:] = rng.standard_normal(hidden)
    xs = rng.standard_normal((steps, batch, inp))
    h = h_ref = np.zeros((batch, hidden))
    for t in range(steps):
        h = np.tanh(ln(h @ u + xs[t] @ w))
        z = h_ref @ u + xs[t] @ w
        mu = z.mean(-1, keepdims=True)
        sigma2 = ((z - mu) ** 2).mean(-1, keepdims=True)
        h_ref = np.tanh((z - mu) / np.sqrt(sigma2 + 1e-5) * ln.gamma + ln.beta)
        np.testing.assert_allclose(h, h_ref, rtol=1e-12, atol=1e-12)


def test_large_mean_offset_and_constant_rows(rng):
    x = (1e4 + rng.standard_normal((64, 300))).astype(np.float32)
    y, sm, sr = layer_norm_forward(x, 300)
    ry, rm, rr = ref.layer_norm_forward(x, 1)
    np.testing.assert_allclose(sr, rr, rtol=1e-5)
    np.testing.assert_allclose(y, ry, atol=2e-3)  # x itself is quantised to ~1e-3 at 1e4
    c = np.full((3, 10), -2.5, np.float32)
    y, sm, sr = layer_norm_forward(c, 10, None, np.arange(10, dtype=np.float32))
    np.testing.assert_array_equal(y, np.broadcast_to(np.arange(10, dtype=np.float32), (3, 10)))
    np.testing.assert_allclose(sr, 1 / np.sqrt(1e-5), rtol=1e-6)
    dx, *_ = layer_norm_backward(np.ones_like(c), c, sm, sr, 10)
    np.testing.assert_allclose(dx, 0, atol=1e-6)


def test_empty_leading_dims():
    x = np.empty((0, 5), np.float32)
    y, sm, sr = layer_norm_forward(x, 5)
    assert y.shape == (0, 5) and sm.shape == (0,)
    dx, dg, db = layer_norm_backward(x, x, sm, sr, 5, np.ones(5, np.float32))
    assert dx.shape == (0, 5)
    np.testing.assert_array_equal(dg, 0)
    np.testing.assert_array_equal(db, 0)


def test_bad_inputs_raise_clear_errors(rng):
    x, gamma, beta = make(rng, (4, 6), (6,), np.float32)
    with pytest.raises(TypeError, match="x must be a numpy.ndarray"):
        layer_norm_forward(x.tolist(), 6)
    with pytest.raises(TypeError, match="x must be float32 or float64"):
        layer_norm_forward(x.astype(np.float16), 6)
    with pytest.raises(TypeError, match="gamma has dtype float64"):
        layer_norm_forward(x, 6, gamma.astype(np.float64))
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        layer_norm_forward(np.asfortranarray(np.ones((6, 6), np.float32)), 6)
    with pytest.raises(ValueError, match="trailing dimensions must equal normalized_shape"):
        layer_norm_forward(x, 5)
    with pytest.raises(ValueError, match=r"gamma has shape \(5,\)"):
        layer_norm_forward(x, 6, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="normalized_shape must be non-empty"):
        layer_norm_forward(x, ())
    with pytest.raises(ValueError, match="eps must be"):
        layer_norm_forward(x, 6, eps=float("nan"))
    with pytest.raises(ValueError, match=r"out\[0\] shares memory with x"):
        layer_norm_forward(x, 6, out=(x, None, None))
    _, sm, sr = layer_norm_forward(x, 6)
    with pytest.raises(ValueError, match=r"save_mean has shape"):
        layer_norm_backward(x, x, sm[:2], sr, 6)
    with pytest.raises(ValueError, match="workspace must be"):
        layer_norm_backward(x, x, sm, sr, 6, workspace=np.empty(1))


@pytest.mark.parametrize("shape,norm", [((300, 700), (700,)), ((5000, 64), (64,)), ((2, 40000), (40000,))])
def test_one_and_two_threads_bitwise_equal(rng, simd, shape, norm):
    x, gamma, beta = make(rng, shape, norm, np.float32, offset=3.0)
    dy = rng.standard_normal(shape).astype(np.float32)
    outs = []
    for n in (1, 2):
        with nndl_fast.threads(n):
            y, sm, sr = layer_norm_forward(x, norm, gamma, beta)
            outs.append((y, sm, sr, *layer_norm_backward(dy, x, sm, sr, norm, gamma)))
    for p, q in zip(*outs):
        np.testing.assert_array_equal(p, q)


# Outputs over the streaming threshold (here 16 MiB, see conftest) use streaming stores; rows
# of odd length make every row start at a different alignment (head, body and tail paths).
@pytest.mark.parametrize("dtype,rows", [(np.float32, 4099), (np.float64, 2051)])
def test_streamed_large_output_equals_ordinary_path(rng, simd, nthreads, dtype, rows, stream_above_16mib):
    d = 1031
    x, gamma, beta = make(rng, (rows, d), (d,), dtype)
    assert x.nbytes >= 1 << 24  # the streaming path
    dy = rng.standard_normal(x.shape).astype(dtype)
    y, sm, sr = layer_norm_forward(x, d, gamma, beta)
    dx, dg, db = layer_norm_backward(dy, x, sm, sr, d, gamma)
    for sl in (slice(0, 5), slice(1234, 1241), slice(rows - 3, rows)):
        # Each row's y and dx depend on that row alone; a few rows are far below the
        # threshold (ordinary stores), so they must match bitwise.
        ys, sms, srs = layer_norm_forward(x[sl], d, gamma, beta)
        np.testing.assert_array_equal(y[sl], ys)
        np.testing.assert_array_equal(sm[sl], sms)
        dxs, _, _ = layer_norm_backward(dy[sl], x[sl], sms, srs, d, gamma)
        np.testing.assert_array_equal(dx[sl], dxs)
    ry, rm, rr = ref.layer_norm_forward(x[:300], 1, gamma, beta)
    np.testing.assert_allclose(y[:300], ry, **TOL[dtype])
    _, rdg, rdb = ref.layer_norm_backward(dy, x, sm, sr, 1, gamma)
    tol = TOL[dtype]
    np.testing.assert_allclose(dg, rdg, rtol=tol["rtol"] * 10, atol=tol["atol"] * np.sqrt(rows) * 10)
    np.testing.assert_allclose(db, rdb, rtol=tol["rtol"] * 10, atol=tol["atol"] * np.sqrt(rows) * 10)


# γ and β are copied to the rows' offset from a cache line when theirs differs: the results
# must not depend on where x, dy, γ, β, the outputs or the workspace start.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,norm", [((37, 1024), (1024,)), ((29, 35), (35,)), ((3, 4, 5, 6), (5, 6))])
def test_results_do_not_depend_on_array_alignment(rng, simd, shape, norm, dtype):
    x, gamma, beta = make(rng, shape, norm, dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    ws0 = layer_norm_workspace(shape, norm)

    def run(kx, kg, ky):
        xk, out, dx = at_phase(x, kx), at_phase(np.zeros(shape, dtype), ky), at_phase(np.zeros(shape, dtype), kx)
        g, b = at_phase(gamma, kg), at_phase(beta, (kg + 1) % 16)
        y, sm, sr = layer_norm_forward(xk, norm, g, b, out=(out, None, None))
        ws = at_phase(ws0, kg % 8)
        dx, dg, db = layer_norm_backward(at_phase(dy, ky), xk, sm, sr, norm, g, out=(dx, None, None), workspace=ws)
        return y, sm, sr, dx, dg, db

    lanes = 64 // np.dtype(dtype).itemsize
    want = run(0, 0, 0)
    for k in range(1, lanes):
        for got, exp in zip(run(k, (5 * k) % lanes, (3 * k) % lanes), want):
            np.testing.assert_array_equal(got, exp)


@several_simd_targets()
def test_every_simd_target_matches_baseline(rng):
    x, gamma, beta = make(rng, (37, 300), (300,), np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    res = {}
    for t in nndl_fast.available_simd_targets():
        with nndl_fast.simd_target(t):
            y, sm, sr = layer_norm_forward(x, 300, gamma, beta)
            res[t] = (y, sm, sr, *layer_norm_backward(dy, x, sm, sr, 300, gamma))
    for t, r in res.items():
        for a, b in zip(r, res["baseline"]):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=t)


def test_preallocated_outputs_are_used(rng):
    x, gamma, beta = make(rng, (8, 12), (12,), np.float32)
    out, sm, sr = np.empty_like(x), np.empty(8, np.float32), np.empty(8, np.float32)
    res = layer_norm_forward(x, 12, gamma, beta, out=(out, sm, sr))
    assert res.y is out and res.save_mean is sm and res.save_rstd is sr
    dx, dg, db = np.empty_like(x), np.empty(12, np.float32), np.empty(12, np.float32)
    got = layer_norm_backward(
        x,
        x,
        sm,
        sr,
        12,
        gamma,
        out=(dx, dg, db),
        workspace=layer_norm_workspace(x.shape, 12),
    )
    assert got.dx is dx and got.dgamma is dg and got.dbeta is db


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,norm", [((6, 10), (10,)), ((3, 4, 5, 6), (5, 6))], ids=["2d", "4d"])
def test_torch_parity(rng, shape, norm, dtype):
    torch = torch_or_skip()
    x, gamma, beta = make(rng, shape, norm, dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    tg, tb = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    ty = torch.nn.functional.layer_norm(tx, norm, tg, tb, eps=1e-5)
    ty.backward(torch.tensor(dy))
    y, sm, sr = layer_norm_forward(x, norm, gamma, beta)
    dx, dg, db = layer_norm_backward(dy, x, sm, sr, norm, gamma)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, ty.detach().numpy(), **tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), **tol)
    np.testing.assert_allclose(dg, tg.grad.numpy(), **tol)
    np.testing.assert_allclose(db, tb.grad.numpy(), **tol)
    _, tm, trs = torch.ops.aten.native_layer_norm(
        torch.tensor(x), list(norm), torch.tensor(gamma), torch.tensor(beta), 1e-5
    )
    np.testing.assert_allclose(sm, tm.numpy().reshape(sm.shape), **tol)
    np.testing.assert_allclose(sr, trs.numpy().reshape(sr.shape), **tol)


def test_layernorm_object_state_dict_and_torch(rng):
    ln = LayerNorm((3, 4), dtype=np.float64)
    ln.gamma[:] = rng.standard_normal((3, 4))
    ln.beta[:] = rng.standard_normal((3, 4))
    x = rng.standard_normal((5, 3, 4))
    y = ln(x)
    dx = ln.backward(np.ones_like(x))
    other = LayerNorm((3, 4), dtype=np.float64)
    other.load_state_dict(ln.state_dict())
    np.testing.assert_array_equal(other(x), y)
    np.testing.assert_array_equal(other.backward(np.ones_like(x)), dx)
    np.testing.assert_array_equal(other.dgamma, ln.dgamma)
    with pytest.raises(ValueError, match="keys"):
        other.load_state_dict({"weight": ln.gamma})
    no_affine = LayerNorm(4, elementwise_affine=False, dtype=np.float64)
    assert no_affine.state_dict() == {}
    z = rng.standard_normal((2, 4))
    np.testing.assert_allclose(no_affine(z), ref.layer_norm_forward(z, 1)[0], rtol=1e-12)
    no_affine.backward(np.ones_like(z))
    with pytest.raises(RuntimeError, match="forward"):
        LayerNorm(4).backward(np.ones((2, 4), np.float32))
    torch = torch_or_skip()
    tln = torch.nn.LayerNorm((3, 4), dtype=torch.float64)
    tln.load_state_dict({k: torch.tensor(v) for k, v in ln.state_dict().items()})
    np.testing.assert_allclose(tln(torch.tensor(x)).detach().numpy(), y, rtol=1e-10, atol=1e-10)


# --- hardening (issue 10) ------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["6", b"6", 6.0, (6.0,), True])
def test_normalized_shape_is_not_coerced(rng, bad):
    x, gamma, beta = make(rng, (4, 6), (6,), np.float32)
    with pytest.raises(TypeError, match="normalized_shape"):
        layer_norm_forward(x, bad)
    with pytest.raises(TypeError, match="normalized_shape"):
        LayerNorm(bad)


def test_non_number_eps_is_a_type_error(rng):
    x, _, _ = make(rng, (4, 6), (6,), np.float32)
    with pytest.raises(TypeError, match="eps"):
        layer_norm_forward(x, 6, eps="1e-5")


def test_workspace_size_rejects_overflow_and_negative_sizes():
    with pytest.raises(ValueError, match="shape"):
        layer_norm_workspace((2**62, 2**62), 2**62)
    with pytest.raises(ValueError, match="shape"):
        layer_norm_workspace((-1, 6), 6)
    with pytest.raises(ValueError, match="shape.*workspace larger than fits in int64"):
        layer_norm_workspace((1, 2**62), 2**62)


def test_layer_norm_layer_backward_takes_out(rng):
    ln = LayerNorm(6, dtype=np.float64)
    x = rng.standard_normal((5, 6))
    ln(x)
    dx = np.empty_like(x)
    assert ln.backward(np.ones_like(x), out=dx) is dx


def test_param_grads_false_refuses_their_outputs(rng):
    x, gamma, _ = make(rng, (4, 6), (6,), np.float32)
    _, sm, sr = layer_norm_forward(x, 6, gamma)
    with pytest.raises(ValueError, match="param_grads"):
        layer_norm_backward(x, x, sm, sr, 6, gamma, param_grads=False, out=(None, np.empty(6, np.float32), None))
    dx, dg, db = layer_norm_backward(x, x, sm, sr, 6, gamma, param_grads=False)
    assert dg is None and db is None and dx.shape == x.shape


def test_load_state_dict_is_all_or_nothing():
    ln = LayerNorm(4, dtype=np.float64)
    before = ln.state_dict()
    with pytest.raises(TypeError, match="bias"):
        ln.load_state_dict({"weight": np.full(4, 7.0), "bias": np.array(["a", "b", "c", "d"])})
    after = ln.state_dict()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
