"""Keras 3 parity (jax backend; skipped without keras): BatchNormalization() is
BatchNorm(convention="keras") with nothing else given, LayerNormalization(axis=...) is
layer_norm_forward(axis=..., convention="keras") over any contiguous block, and
SpatialDropout2D drops whole channels of NHWC with Keras's scaling, as spatial_dropout2d."""

from __future__ import annotations

import os

import numpy as np
import pytest

from nndl_fast import dropout as D
from nndl_fast.norm import BatchNorm, layer_norm_forward

pytestmark = pytest.mark.slow  # importing keras (and jax) takes several seconds


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def test_batch_normalization_is_one_preset(keras):
    rng = np.random.default_rng(0)
    theirs = keras.layers.BatchNormalization()
    ours = BatchNorm(3, convention="keras", channels_last=True, dtype=np.float32)
    for step in range(5):
        x = (rng.standard_normal((8, 5, 5, 3)) * (1 + step) + step).astype(np.float32)
        want = np.asarray(theirs(x, training=True))
        np.testing.assert_allclose(ours(x), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.running_mean, np.asarray(theirs.moving_mean), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.running_var, np.asarray(theirs.moving_variance), rtol=1e-5, atol=1e-6)
    x = rng.standard_normal((4, 5, 5, 3)).astype(np.float32)
    ours.eval()
    np.testing.assert_allclose(ours(x), np.asarray(theirs(x, training=False)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("axis", [1, -1, (1, 2), 2, (2, 3)])
def test_layer_normalization_over_any_block(keras, axis):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 4, 3, 5)) * 3 + 1).astype(np.float32)
    theirs = keras.layers.LayerNormalization(axis=axis)
    theirs.build(x.shape)
    gamma = rng.uniform(0.5, 1.5, theirs.gamma.shape).astype(np.float32)
    beta = rng.standard_normal(theirs.beta.shape).astype(np.float32)
    theirs.gamma.assign(gamma)
    theirs.beta.assign(beta)
    want = np.asarray(theirs(x))
    got = layer_norm_forward(x, None, gamma, beta, axis=axis, convention="keras").y
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_spatial_dropout2d_semantics(keras):
    x = np.ones((16, 4, 4, 32), np.float32)
    rate = 0.25
    theirs = np.asarray(keras.layers.SpatialDropout2D(rate, seed=1)(x, training=True))
    ours = D.spatial_dropout2d(x, drop_prob=rate, seed=1)
    for y in (theirs, ours):
        assert np.all(y == y[:, :1, :1, :])  # one value per (n, c) over H, W
        assert set(np.unique(y)) <= {0.0, np.float32(1 / (1 - rate))}
        assert abs(float(np.mean(y[:, 0, 0, :] == 0)) - rate) < 0.15
    np.testing.assert_array_equal(np.asarray(keras.layers.SpatialDropout2D(rate)(x, training=False)), x)
    assert D.spatial_dropout2d(x, drop_prob=rate, training=False) is x
