"""Dropout with a mask of another shape (``noise_shape=``, Keras's semantics; torch's
Dropout2d and Keras's SpatialDropout2D as named cases): bit for bit against the NumPy
reference on every SIMD target and thread count, the backward from a stored or regenerated
mask, the presets, the layers, torch's Dropout2d statistics, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import torch_or_skip
from hypothesis import given, settings
from hypothesis import strategies as st

from nndl_fast import dropout as D
from nndl_fast.reference import dropout as R

DTYPES = [np.float32, np.float64]
# (x shape, noise_shape): torch's Dropout2d (N, C, 1, 1), Keras's SpatialDropout2D (N, 1, 1, C),
# odd sizes, a mask of x's own shape, one bit for everything, size-1 axes of x, and patterns
# with more than three runs of kept/broadcast axes (the driver loops over the leading runs).
CASES = [
    ((2, 3, 5, 7), (2, 3, 1, 1)),
    ((3, 5, 7, 4), (3, 1, 1, 4)),
    ((4, 65, 33), (4, 65, 1)),
    ((7, 9), (7, 9)),
    ((5, 6, 7), (1, 1, 1)),
    ((3, 1, 5, 1), (3, 1, 1, 1)),
    ((3, 4, 5, 6, 2), (3, 1, 5, 1, 2)),
    ((2, 3, 4, 5, 6, 7), (1, 3, 1, 5, 1, 7)),
    ((1, 130, 70), (1, 130, 1)),
    ((2, 3, 0, 4), (2, 3, 1, 4)),
    ((3, 70, 131), (3, 70, 1)),  # enough elements for the threads: rows scaled in parallel
    ((2, 60, 70, 5), (2, 1, 1, 5)),  # NHWC in parallel
]
IDS = [f"{'x'.join(map(str, s))}/{'x'.join(map(str, n))}" for s, n in CASES]


def _keep(convention: str) -> dict:
    return {"keep_prob": 0.7} if convention == "chapter" else {"drop_prob": 0.3}


@pytest.mark.parametrize("convention", ["chapter", "torch", "keras", "onnx"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,noise", CASES, ids=IDS)
def test_forward_and_backward_match_reference_bitwise(simd, nthreads, rng, shape, noise, dtype, convention):
    x = rng.standard_normal(shape).astype(dtype)
    mask = np.empty(D.packed_size(int(np.prod(noise))), np.uint8)
    y = D.dropout(x, **_keep(convention), convention=convention, seed=11, offset=5, noise_shape=noise, mask_out=mask)
    want, m = R.noise_dropout(x, 0.7, convention, noise, 11, 5)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(np.unpackbits(mask, count=m.size).astype(bool), m.ravel())
    dy = rng.standard_normal(shape).astype(dtype)
    want_dx, _ = R.noise_dropout(dy, 0.7, convention, noise, 11, 5)
    kw = dict(**_keep(convention), convention=convention, noise_shape=noise)
    np.testing.assert_array_equal(D.dropout_backward(dy, mask=mask, **kw), want_dx)
    np.testing.assert_array_equal(D.dropout_backward(dy, seed=11, offset=5, **kw), want_dx)


def test_a_mask_of_xs_own_shape_is_plain_dropout(rng):
    x = rng.standard_normal((5, 7, 9)).astype(np.float32)
    plain = D.dropout(x, drop_prob=0.4, seed=3, offset=2)
    np.testing.assert_array_equal(D.dropout(x, drop_prob=0.4, seed=3, offset=2, noise_shape=(5, 7, 9)), plain)
    np.testing.assert_array_equal(D.dropout(x, drop_prob=0.4, seed=3, offset=2, noise_shape=(None,) * 3), plain)


def test_named_cases(rng):
    x = rng.standard_normal((4, 6, 5, 3))
    kw = {"drop_prob": 0.5, "seed": 9, "offset": 1}
    np.testing.assert_array_equal(D.dropout2d(x, **kw), D.dropout(x, noise_shape=(4, 6, 1, 1), **kw))
    np.testing.assert_array_equal(D.dropout(x, noise_shape="channels_first", **kw), D.dropout2d(x, **kw))
    x5 = rng.standard_normal((2, 3, 2, 2, 2))
    np.testing.assert_array_equal(D.dropout3d(x5, **kw), D.dropout(x5, noise_shape=(2, 3, 1, 1, 1), **kw))
    np.testing.assert_array_equal(D.spatial_dropout2d(x, **kw), D.dropout(x, noise_shape=(4, 1, 1, 3), **kw))
    np.testing.assert_array_equal(
        D.spatial_dropout2d(x, data_format="channels_first", **kw), D.dropout(x, noise_shape=(4, 6, 1, 1), **kw)
    )
    y = D.dropout2d(x, **kw)
    # whole channels: each (n, c) plane is all kept (×2) or all zero
    planes = (y / x).reshape(4, 6, -1)
    assert np.all((planes == planes[:, :, :1]) & np.isin(planes[:, :, :1], (0.0, 2.0)))


def test_test_time_is_identity_or_p_x(rng):
    x = rng.standard_normal((2, 3, 4))
    assert D.dropout(x, drop_prob=0.3, convention="onnx", training=False, noise_shape="channels_first") is x
    assert D.dropout(x, drop_prob=0.3, convention="keras", training=False) is x
    np.testing.assert_array_equal(D.dropout(x, keep_prob=0.7, training=False, noise_shape="channels_first"), x * 0.7)


@pytest.mark.parametrize(
    "cls,kw,noise",
    [
        (D.Dropout2d, {"drop_prob": 0.4}, (3, 4, 1, 1)),
        (D.Dropout3d, {"drop_prob": 0.4}, (3, 4, 1, 1)),
        (D.SpatialDropout2D, {"drop_prob": 0.4}, (3, 1, 1, 5)),
        (D.Dropout, {"keep_prob": 0.6, "noise_shape": (None, 1, 1, None)}, (3, 1, 1, 5)),
    ],
)
@pytest.mark.parametrize("store_mask", [False, True])
def test_layers(rng, cls, kw, noise, store_mask):
    x = rng.standard_normal((3, 4, 6, 5))
    layer = cls(seed=21, offset=7, store_mask=store_mask, **kw)
    convention = layer.convention
    y = layer(x)
    want, _ = R.noise_dropout(x, 0.6, convention, noise, 21, 7)
    np.testing.assert_array_equal(y, want)
    dy = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(dy), R.noise_dropout(dy, 0.6, convention, noise, 21, 7)[0])
    assert layer.offset == 8
    state = layer.state_dict()
    other = D.Dropout(keep_prob=0.5, seed=0)
    other.load_state_dict(state)
    assert other.noise_shape == layer.noise_shape
    np.testing.assert_array_equal(other(x), layer(x))
    layer.eval()
    np.testing.assert_array_equal(layer(x), x if convention != "chapter" else x * 0.6)


def test_keras_preset_of_spatial_dropout_and_torch_of_dropout2d():
    assert D.SpatialDropout2D(drop_prob=0.2).convention == "keras"
    assert D.Dropout2d(drop_prob=0.2).convention == "torch"
    assert D.Dropout2d(keep_prob=0.8).convention == "chapter"


def test_torch_dropout2d_statistics_and_scaling(rng):
    torch = torch_or_skip()
    # torch's generator differs from ours: compare what the two promise, on many channels.
    x = np.ones((64, 128, 3, 3), np.float32)
    ours = D.dropout2d(x, drop_prob=0.25, seed=5)
    torch.manual_seed(0)
    theirs = torch.nn.functional.dropout2d(torch.from_numpy(x), p=0.25, training=True).numpy()
    for y in (ours, theirs):
        planes = y.reshape(64, 128, 9)
        assert np.all(planes == planes[:, :, :1])  # whole channels
        assert set(np.unique(planes)) <= {0.0, np.float32(1 / 0.75)}  # the same scaling rule
        kept = float(np.mean(planes[:, :, 0] != 0))
        assert abs(kept - 0.75) < 4 * np.sqrt(0.75 * 0.25 / planes[:, :, 0].size)


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"noise_shape": (2, 3)}, ValueError, "one entry per axis"),
        ({"noise_shape": (2, 2, 1)}, ValueError, "does not broadcast"),
        ({"noise_shape": (2, 0, 1)}, ValueError, "noise_shape"),
        ({"noise_shape": "channels"}, ValueError, "noise_shape"),
        ({"noise_shape": 3}, TypeError, "noise_shape"),
        ({"noise_shape": (2.0, 3, 1)}, TypeError, "noise_shape"),
        ({"noise_shape": (2, 3, 1), "mask_out": np.empty(5, np.uint8)}, ValueError, "mask_out"),
    ],
)
def test_bad_noise_shape_changes_nothing(kw, exc, match):
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    out = np.full_like(x, 7.0)
    with pytest.raises(exc, match=match):
        D.dropout(x, drop_prob=0.5, seed=1, out=out, **kw)
    np.testing.assert_array_equal(out, 7.0)
    with pytest.raises((TypeError, ValueError)):
        D.Dropout(keep_prob=0.5, variational="TNF", noise_shape=(1, 1, 1))


def test_named_noise_needs_two_axes_and_a_layer_checks_dy_against_its_forward():
    with pytest.raises(ValueError, match="two axes or more"):
        D.dropout(np.ones(5), drop_prob=0.5, seed=1, noise_shape="channels_first")
    layer = D.Dropout2d(drop_prob=0.5, seed=1)
    layer(np.ones((2, 3, 4, 5)))
    for dy in (np.ones((2, 3, 4, 5, 2)), np.ones((2, 3, 20)), np.asarray(1.0)):  # same (n, c) count
        with pytest.raises(ValueError, match="dy"):
            layer.backward(dy)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 6), st.booleans()), min_size=1, max_size=5),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
)
def test_any_noise_shape_matches_reference(dims, seed, offset):
    shape = tuple(d for d, _ in dims)
    noise = tuple(d if kept else 1 for d, kept in dims)
    x = np.arange(1, np.prod(shape) + 1, dtype=np.float32).reshape(shape)
    y = D.dropout(x, drop_prob=0.5, seed=seed, offset=offset, noise_shape=noise)
    np.testing.assert_array_equal(y, R.noise_dropout(x, 0.5, "torch", noise, seed, offset)[0])
