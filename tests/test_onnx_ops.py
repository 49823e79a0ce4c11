"""ONNX operator cases through ``convention="onnx"``: BatchNormalization (inference and
training_mode), LayerNormalization (every axis, broadcast scale), LRN (odd and even sizes,
bias <= 0), Dropout (ratio, training_mode, seed) and Clip, generated as onnx's backend node
tests generate them (onnx/backend/test/case/node/*.py: same shapes and attributes) and
evaluated with onnx.reference.ReferenceEvaluator. Only our public API is called."""

from __future__ import annotations

import math

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from nndl_fast import dropout  # noqa: E402
from nndl_fast.clip import clip_grad_value_  # noqa: E402
from nndl_fast.norm import batch_norm_forward, layer_norm_forward, local_response_norm  # noqa: E402

F32 = TensorProto.FLOAT


def run(op: str, inputs: dict[str, np.ndarray | None], outputs: list[str], **attrs) -> list[np.ndarray]:
    """One ONNX node (opset 22) on `inputs` (None: an optional input left out), by the reference."""
    names = [k if v is not None else "" for k, v in inputs.items()]
    node = helper.make_node(op, names, outputs, **attrs)
    given = {k: v for k, v in inputs.items() if v is not None}
    graph = helper.make_graph(
        [node],
        op,
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in given.items()],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    return ReferenceEvaluator(model).run(None, given)


@pytest.fixture
def r():
    return np.random.default_rng(2026)


# -- BatchNormalization ---------------------------------------------------------------------


@pytest.mark.parametrize("epsilon", [None, 1e-2])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3)])
def test_batch_normalization_inference(r, shape, epsilon):
    x = r.standard_normal(shape).astype(np.float32)
    s, bias, mean = (r.standard_normal(3).astype(np.float32) for _ in range(3))
    var = r.random(3).astype(np.float32)
    attrs = {} if epsilon is None else {"epsilon": epsilon}
    (want,) = run("BatchNormalization", {"x": x, "s": s, "bias": bias, "mean": mean, "var": var}, ["y"], **attrs)
    kw = {} if epsilon is None else {"eps": epsilon}
    y, *_ = batch_norm_forward(x, s, bias, mean, var, training=False, convention="onnx", **kw)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("momentum,epsilon", [(None, None), (0.9, 1e-2), (0.5, None)])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 3), (1, 3, 1, 1), (4, 3)])
def test_batch_normalization_training_mode(r, shape, momentum, epsilon):
    # (1, 3) and (1, 3, 1, 1): one value per channel, σ²_B = 0 (ONNX accepts it).
    x = r.standard_normal(shape).astype(np.float32)
    s, bias, mean = (r.standard_normal(3).astype(np.float32) for _ in range(3))
    var = r.random(3).astype(np.float32)
    attrs = {"training_mode": 1}
    kw = {}
    if momentum is not None:
        attrs["momentum"], kw["momentum"] = momentum, momentum
    if epsilon is not None:
        attrs["epsilon"], kw["eps"] = epsilon, epsilon
    want_y, want_mean, want_var = run(
        "BatchNormalization",
        {"x": x, "s": s, "bias": bias, "mean": mean, "var": var},
        ["y", "output_mean", "output_var"],
        **attrs,
    )
    rm, rv = mean.copy(), var.copy()
    y, *_ = batch_norm_forward(x, s, bias, rm, rv, convention="onnx", **kw)
    np.testing.assert_allclose(y, want_y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rm, want_mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rv, want_var, rtol=1e-6, atol=1e-6)


# -- LayerNormalization ---------------------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -2, -3, -4])
def test_layer_normalization_every_axis(r, axis):
    x = r.standard_normal((2, 3, 4, 5)).astype(np.float32)
    block = x.shape[axis % 4 :]
    w, b = r.standard_normal(block).astype(np.float32), r.standard_normal(block).astype(np.float32)
    want_y, want_mean, want_rstd = run(
        "LayerNormalization", {"X": x, "W": w, "B": b}, ["Y", "Mean", "InvStdDev"], axis=axis
    )
    y, sm, sr = layer_norm_forward(x, None, w, b, axis=axis, convention="onnx")
    np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sm.reshape(want_mean.shape), want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sr.reshape(want_rstd.shape), want_rstd, rtol=1e-5)


@pytest.mark.parametrize("epsilon", [None, 1e-1])
@pytest.mark.parametrize("wshape,axis", [((1,), 1), ((5,), 1), ((1,), -1), ((4, 1), 2), ((), 0)])
def test_layer_normalization_broadcast_scale(r, wshape, axis, epsilon):
    x = r.standard_normal((2, 3, 4, 5)).astype(np.float32)
    w, b = r.standard_normal(wshape).astype(np.float32), r.standard_normal(wshape).astype(np.float32)
    attrs = {"axis": axis} if epsilon is None else {"axis": axis, "epsilon": epsilon}
    want_y, *_ = run("LayerNormalization", {"X": x, "W": w, "B": b}, ["Y", "Mean", "InvStdDev"], **attrs)
    kw = {} if epsilon is None else {"eps": epsilon}
    y, *_ = layer_norm_forward(x, None, w, b, axis=axis, convention="onnx", **kw)
    np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-5)


def test_layer_normalization_without_bias(r):
    x = r.standard_normal((3, 4, 5)).astype(np.float32)
    w = r.standard_normal((4, 5)).astype(np.float32)
    want_y, *_ = run("LayerNormalization", {"X": x, "W": w}, ["Y"], axis=1)
    np.testing.assert_allclose(
        layer_norm_forward(x, None, w, axis=1, convention="onnx").y, want_y, rtol=1e-5, atol=1e-5
    )


# -- LRN -----------------------------------------------------------------------------------


def node_test_lrn(x, size, alpha, beta, bias):
    """The expected output of onnx's backend node test lrn.py (its own loop over channels)."""
    c = x.shape[1]
    square_sum = np.zeros(x.shape, np.float64)
    for n, ch, h, w in np.ndindex(x.shape):
        lo, hi = max(0, ch - math.floor((size - 1) / 2)), min(c, ch + math.ceil((size - 1) / 2) + 1)
        square_sum[n, ch, h, w] = np.sum(x[n, lo:hi, h, w].astype(np.float64) ** 2)
    return x / ((bias + (alpha / size) * square_sum) ** beta)


@pytest.mark.parametrize(
    "size,alpha,beta,bias",
    [
        (3, 2e-4, 0.5, 2.0),
        (3, None, None, None),
        (2, 0.1, 0.75, 1.0),
        (4, 0.3, 0.75, 1.0),
        (5, 0.1, 1.0, 1.5),
        (6, 0.2, 0.6, 1.0),
    ],
)
def test_lrn(r, size, alpha, beta, bias):
    x = r.standard_normal((5, 5, 5, 5)).astype(np.float32)  # N = C: the evaluator's loop covers every channel
    attrs = {k: v for k, v in (("alpha", alpha), ("beta", beta), ("bias", bias)) if v is not None}
    (want,) = run("LRN", {"x": x}, ["y"], size=size, **attrs)
    kw = {"alpha": alpha or 1e-4, "beta": beta or 0.75}
    if bias is not None:
        kw["k"] = bias
    y = local_response_norm(x, size, convention="onnx", **kw)
    np.testing.assert_allclose(y, want, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(y, node_test_lrn(x, size, kw["alpha"], kw["beta"], bias or 1.0), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("size", [2, 3, 4])
def test_lrn_more_channels_than_samples(r, size):
    # onnx.reference's LRN loops over range(N) where it means range(C) (onnx 1.23): with C > N
    # its later channels are wrong, so compare with the node test's own formula.
    x = r.standard_normal((2, 7, 3, 3)).astype(np.float32)
    y = local_response_norm(x, size, 0.2, 0.75, convention="onnx")
    np.testing.assert_allclose(y, node_test_lrn(x, size, 0.2, 0.75, 1.0), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("bias", [0.0, -0.5])
def test_lrn_bias_at_most_zero(r, bias):
    x = (r.standard_normal((4, 4, 3, 3)) + 3).astype(np.float32)  # Σx² large: the denominators stay > 0
    (want,) = run("LRN", {"x": x}, ["y"], size=3, alpha=1.0, beta=1.0, bias=bias)
    y = local_response_norm(x, 3, 1.0, 1.0, bias, convention="onnx")
    np.testing.assert_allclose(y, want, rtol=2e-5, atol=1e-6)


# -- Dropout -------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [None, 0.1, 0.75])
def test_dropout_inference_is_identity(r, ratio):
    x = r.standard_normal((3, 4, 5)).astype(np.float32)
    inputs = {"x": x} if ratio is None else {"x": x, "r": np.array(ratio, np.float32)}
    want_y, want_mask = run("Dropout", inputs, ["y", "z"], seed=0)
    y = dropout.dropout(x, drop_prob=0.5 if ratio is None else ratio, convention="onnx", training=False)
    np.testing.assert_array_equal(y, want_y)
    assert y is x and want_mask.all()


@pytest.mark.parametrize("ratio", [0.5, 0.1, 0.75])
def test_dropout_training_mode_mask_statistics_and_scaling(r, ratio):
    # ONNX's generator is NumPy's RandomState(seed), ours Philox: compare the mask statistics
    # and the scaling rule y = mask·x/(1 − ratio), not the masks themselves.
    x = (r.standard_normal((64, 1000)) + 10).astype(np.float32)  # no zeros in x
    want_y, want_mask = run(
        "Dropout", {"x": x, "r": np.array(ratio, np.float32), "t": np.array(True)}, ["y", "z"], seed=0
    )
    mask = np.empty(dropout.packed_size(x.size), np.uint8)
    y = dropout.dropout(x, drop_prob=ratio, convention="onnx", seed=0, mask_out=mask)
    ours_mask = np.unpackbits(mask, count=x.size).reshape(x.shape).astype(bool)
    for yy, m in ((y, ours_mask), (want_y, want_mask)):
        np.testing.assert_array_equal(yy != 0, m)
        np.testing.assert_allclose(yy[m], x[m] / np.float32(1 - ratio), rtol=1e-6)
        sigma = math.sqrt(ratio * (1 - ratio) / x.size)
        assert abs((1 - m.mean()) - ratio) < 5 * sigma
    assert abs(ours_mask.mean() - want_mask.mean()) < 10 * math.sqrt(ratio * (1 - ratio) / x.size)


def test_dropout_ratio_zero_in_training_is_identity(r):
    x = r.standard_normal((3, 4)).astype(np.float32)
    (want,) = run("Dropout", {"x": x, "r": np.array(0.0, np.float32), "t": np.array(True)}, ["y"], seed=0)
    np.testing.assert_array_equal(dropout.dropout(x, drop_prob=0.0, convention="onnx", seed=0), want)


# -- Clip ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lo,hi",
    [(-1.0, 1.0), (-5.0, 5.0), (-1.0, 5.0), (2.0, 1.0), (0.0, None), (None, 0.0), (None, None)],
    ids=["example", "inbounds", "splitbounds", "min_greater_than_max", "default_min", "default_max", "default"],
)
def test_clip(r, lo, hi):
    x = (r.standard_normal((3, 4, 5)) * 3).astype(np.float32)
    inputs = {
        "x": x,
        "min": None if lo is None else np.array(lo, np.float32),
        "max": None if hi is None else np.array(hi, np.float32),
    }
    (want,) = run("Clip", inputs, ["y"])
    y = x.copy()
    clip_grad_value_([y], lower=lo, upper=hi, convention="onnx")
    np.testing.assert_array_equal(y, want)
