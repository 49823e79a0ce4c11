"""Layer norm over any contiguous block of axes (Keras's axis, ONNX's first axis to the end)
read in place by the strided (outer, D, inner) kernel, γ/β broadcast to the block, and the
convention= presets: parity with the NumPy reference, finite differences, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import numeric_grad, torch_or_skip

from nndl_fast.norm import LayerNorm, layer_norm_backward, layer_norm_forward, layer_norm_workspace
from nndl_fast.reference import layer_norm as ref

# (x shape, Keras axis): a middle axis of NCHW, odd sizes, inner longer than one 64-column
# block with a ragged tail, a block of two middle axes, the first axis, a trailing axis
# through the same code, inner = 1 via a negative axis, many (outer, block) tasks.
CASES = [
    ((2, 3, 5, 7), 1),
    ((3, 7, 131), 1),
    ((2, 5, 3, 9), (1, 2)),
    ((6, 4, 5), 0),
    ((4, 3, 5), -1),
    ((4, 3, 5), (-2,)),
    ((70, 9, 65), 1),
    ((1, 1, 1), 1),
]
IDS = [f"{'x'.join(map(str, s))}/{a}" for s, a in CASES]
TOL = {np.float32: dict(rtol=3e-5, atol=3e-5), np.float64: dict(rtol=1e-11, atol=1e-11)}


def _axes(shape, axis):
    return tuple(sorted(a % len(shape) for a in np.atleast_1d(axis)))


@pytest.mark.parametrize("affine", ["both", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", CASES, ids=IDS)
def test_keras_axis_matches_reference(rng, simd, nthreads, shape, axis, dtype, affine):
    ax = _axes(shape, axis)
    block = tuple(shape[a] for a in ax)
    offset = 1e3 if dtype == np.float64 else 0.5  # a large common offset cancels in the shifted sums
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    g = rng.uniform(0.5, 1.5, block).astype(dtype) if affine == "both" else None
    b = rng.standard_normal(block).astype(dtype) if affine == "both" else None
    y, sm, sr = layer_norm_forward(x, None, g, b, axis=axis, convention="keras")
    ry, rm, rr = ref.layer_norm_forward(x, None, g, b, eps=1e-3, axes=ax)
    tol = TOL[dtype]
    np.testing.assert_allclose(y, ry, **tol)
    np.testing.assert_allclose(sm, rm, rtol=tol["rtol"])
    np.testing.assert_allclose(sr, rr, **tol)
    assert sm.shape == tuple(s for i, s in enumerate(shape) if i not in ax)
    dy = rng.standard_normal(shape).astype(dtype)
    ws = layer_norm_workspace(shape, axis=axis, convention="keras")
    dx, dg, db = layer_norm_backward(dy, x, sm, sr, None, g, axis=axis, convention="keras", workspace=ws)
    rdx, rdg, rdb = ref.layer_norm_backward(dy, x, sm, sr, None, g, axes=ax)
    n = x.size // max(1, int(np.prod(block)))
    np.testing.assert_allclose(dx, rdx, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)
    np.testing.assert_allclose(dg, rdg, rtol=tol["rtol"] * 10, atol=tol["atol"] * np.sqrt(n) * 10)
    np.testing.assert_allclose(db, rdb, rtol=tol["rtol"] * 10, atol=tol["atol"] * np.sqrt(n) * 10)


def test_results_do_not_depend_on_threads_or_target(rng):
    import nndl_fast

    x = rng.standard_normal((70, 9, 65)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    g = rng.uniform(0.5, 1.5, 9).astype(np.float32)
    runs = []
    for t in (1, 2):
        with nndl_fast.threads(t):
            f = layer_norm_forward(x, None, g, g, axis=1, convention="keras")
            runs.append(
                (*f, *layer_norm_backward(dy, x, f.save_mean, f.save_rstd, None, g, axis=1, convention="keras"))
            )
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape,axis", [((2, 3, 4), 1), ((3, 2, 2, 3), (1, 2)), ((2, 3, 4), 0)])
def test_finite_differences(rng, shape, axis):
    ax = _axes(shape, axis)
    block = tuple(shape[a] for a in ax)
    x = rng.standard_normal(shape)
    g, b = rng.uniform(0.5, 1.5, block), rng.standard_normal(block)
    w = rng.standard_normal(shape)

    def loss():
        return float(np.sum(w * layer_norm_forward(x, None, g, b, axis=axis, convention="keras").y))

    f = layer_norm_forward(x, None, g, b, axis=axis, convention="keras")
    dx, dg, db = layer_norm_backward(w, x, f.save_mean, f.save_rstd, None, g, axis=axis, convention="keras")
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dg, numeric_grad(loss, g), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numeric_grad(loss, b), rtol=1e-6, atol=1e-7)
    dx2, dg2, db2 = layer_norm_backward(
        w, x, f.save_mean, f.save_rstd, None, g, axis=axis, convention="keras", param_grads=False
    )
    np.testing.assert_array_equal(dx2, dx)  # the dγ, dβ partials do not change dx
    assert dg2 is None and db2 is None


@pytest.mark.parametrize("gshape", [(1,), (3, 1, 1), (1, 5), (4, 5), ()])
def test_broadcast_scale_and_bias(rng, gshape):
    # ONNX's Scale and B broadcast to the normalised block (3, 4, 5) (axis=1 of (2, 3, 4, 5)).
    shape = (2, 3, 4, 5)
    x = rng.standard_normal(shape)
    g, b = rng.uniform(0.5, 1.5, gshape), rng.standard_normal(gshape)
    f = layer_norm_forward(x, None, g, b, axis=1, convention="onnx")
    np.testing.assert_allclose(f.y, ref.layer_norm_forward(x, None, g, b, axes=(1, 2, 3))[0], rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(shape)
    dx, dg, db = layer_norm_backward(w, x, f.save_mean, f.save_rstd, None, g, axis=1, convention="onnx")
    assert dg.shape == g.shape and db.shape == (3, 4, 5)

    def loss():
        return float(np.sum(w * layer_norm_forward(x, None, g, b, axis=1, convention="onnx").y))

    np.testing.assert_allclose(dg, numeric_grad(loss, g), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
    dbb = np.empty(gshape)
    _, _, db2 = layer_norm_backward(
        w, x, f.save_mean, f.save_rstd, None, g, axis=1, convention="onnx", out=(None, None, dbb)
    )
    assert db2 is dbb
    np.testing.assert_allclose(db2, numeric_grad(loss, b), rtol=1e-6, atol=1e-7)


def test_onnx_axis_is_the_first_of_the_trailing_block(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    for axis in (1, 2, 3, -1, -3):
        first = axis % 4
        want = layer_norm_forward(x, x.shape[first:])
        got = layer_norm_forward(x, axis=axis, convention="onnx")
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(layer_norm_forward(x, axis=-1, convention="onnx").y, layer_norm_forward(x, 5).y)


def test_presets_set_eps_and_default_axis(rng):
    x = rng.standard_normal((3, 4, 5))
    np.testing.assert_array_equal(
        layer_norm_forward(x, axis=-1, convention="keras").y, layer_norm_forward(x, 5, eps=1e-3).y
    )
    np.testing.assert_array_equal(layer_norm_forward(x, convention="keras").y, layer_norm_forward(x, 5, eps=1e-3).y)
    np.testing.assert_array_equal(layer_norm_forward(x, convention="onnx").y, layer_norm_forward(x, 5).y)
    np.testing.assert_array_equal(
        layer_norm_forward(x, convention="keras", eps=1e-5).y, layer_norm_forward(x, 5).y
    )  # an explicit option wins
    assert LayerNorm(5, convention="keras").eps == 1e-3 and LayerNorm(5).eps == 1e-5


def test_layer_object_over_a_middle_axis(rng):
    x = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    ln = LayerNorm(4, axis=1, convention="keras")
    ln.gamma[:] = rng.uniform(0.5, 1.5, 4)
    y = ln(x)
    np.testing.assert_allclose(
        y, ref.layer_norm_forward(x, None, ln.gamma, ln.beta, eps=1e-3, axes=(1,))[0], rtol=3e-5, atol=3e-5
    )
    dy = rng.standard_normal(x.shape).astype(np.float32)
    dx = ln.backward(dy)
    f = layer_norm_forward(x, None, ln.gamma, ln.beta, axis=1, convention="keras")
    want = layer_norm_backward(dy, x, f.save_mean, f.save_rstd, None, ln.gamma, axis=1, convention="keras")
    np.testing.assert_array_equal(dx, want.dx)
    np.testing.assert_array_equal(ln.dgamma, want.dgamma)


def test_torch_equivalent_of_a_middle_axis(rng):
    torch = torch_or_skip()
    x = rng.standard_normal((3, 6, 4, 5))
    g = rng.uniform(0.5, 1.5, 6)
    # torch has no middle-axis layer norm: move the axis last, normalise, move it back.
    want = torch.nn.functional.layer_norm(torch.from_numpy(x).movedim(1, -1), (6,), torch.from_numpy(g), eps=1e-5)
    got = layer_norm_forward(x, None, g, axis=1, convention="torch")
    np.testing.assert_allclose(got.y, want.movedim(-1, 1).numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"axis": (0, 2)}, ValueError, "contiguous"),
        ({"axis": (1, 1)}, ValueError, "twice"),
        ({"axis": 3}, ValueError, "out of range"),
        ({"axis": 1.0}, TypeError, "axis"),
        ({"axis": ()}, ValueError, "axis"),
        ({"axis": 1, "normalized_shape": 4}, TypeError, "not both"),
        ({}, TypeError, "normalized_shape"),
        ({"axis": 1, "gamma": np.ones(3), "convention": "onnx"}, ValueError, "broadcast"),
        ({"axis": 1, "gamma": np.ones((2, 4, 5)), "convention": "onnx"}, ValueError, "broadcast"),
        ({"axis": 1, "gamma": np.ones(1)}, ValueError, "gamma"),  # broadcasting is ONNX's only
        ({"axis": 1, "convention": "optax"}, ValueError, "convention"),
    ],
)
def test_bad_axes_change_nothing(kw, exc, match):
    x = np.arange(40, dtype=np.float64).reshape(2, 4, 5)
    out = np.full_like(x, 7.0)
    kw = dict(kw)
    norm = kw.pop("normalized_shape", None)
    gamma = kw.pop("gamma", None)
    convention = kw.pop("convention", "chapter" if "axis" not in kw else "keras")
    if not kw and norm is None:
        convention = "torch"
    with pytest.raises(exc, match=match):
        layer_norm_forward(x, norm, gamma, convention=convention, out=(out, None, None), **kw)
    np.testing.assert_array_equal(out, 7.0)
