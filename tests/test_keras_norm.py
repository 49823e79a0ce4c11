"""Keras 3 parity (jax backend; skipped without keras): BatchNormalization() is
BatchNorm(convention="keras") with nothing else given, LayerNormalization(axis=...) is
layer_norm_forward(axis=..., convention="keras") over any contiguous block, and
SpatialDropout2D drops whole channels of NHWC with Keras's scaling, as spatial_dropout2d.

Keras runs in a child process: jax, once imported, makes every later os.fork() in the test
process unsafe (the search tests' process executors fork)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nndl_fast import dropout as D
from nndl_fast.norm import BatchNorm, layer_norm_forward

pytestmark = [
    pytest.mark.slow,  # the child imports keras and jax: several seconds
    pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="keras not installed"),
]

AXES = [1, -1, (1, 2), 2, (2, 3)]

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras

    data = dict(np.load(sys.argv[1]))
    out = {}
    bn = keras.layers.BatchNormalization()
    for step in range(5):
        out[f"bn_y{step}"] = np.asarray(bn(data[f"bn_x{step}"], training=True))
    out["bn_mean"], out["bn_var"] = np.asarray(bn.moving_mean), np.asarray(bn.moving_variance)
    out["bn_eval"] = np.asarray(bn(data["bn_xe"], training=False))
    for k, axis in enumerate(AXES):
        ln = keras.layers.LayerNormalization(axis=axis)
        ln.build(data["ln_x"].shape)
        ln.gamma.assign(data[f"ln_g{k}"])
        ln.beta.assign(data[f"ln_b{k}"])
        out[f"ln_y{k}"] = np.asarray(ln(data["ln_x"]))
    x = data["sd_x"]
    out["sd_train"] = np.asarray(keras.layers.SpatialDropout2D(0.25, seed=1)(x, training=True))
    out["sd_eval"] = np.asarray(keras.layers.SpatialDropout2D(0.25)(x, training=False))
    np.savez(sys.argv[2], **out)
    """
)


def _block(shape, axis):
    return tuple(shape[a] for a in sorted(a % len(shape) for a in np.atleast_1d(axis)))


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory):
    """Inputs, and Keras's outputs for them from the child process."""
    rng = np.random.default_rng(0)
    data = {f"bn_x{s}": (rng.standard_normal((8, 5, 5, 3)) * (1 + s) + s).astype(np.float32) for s in range(5)}
    data["bn_xe"] = rng.standard_normal((4, 5, 5, 3)).astype(np.float32)
    data["ln_x"] = (rng.standard_normal((2, 4, 3, 5)) * 3 + 1).astype(np.float32)
    for k, axis in enumerate(AXES):
        block = _block(data["ln_x"].shape, axis)
        data[f"ln_g{k}"] = rng.uniform(0.5, 1.5, block).astype(np.float32)
        data[f"ln_b{k}"] = rng.standard_normal(block).astype(np.float32)
    data["sd_x"] = np.ones((16, 4, 4, 32), np.float32)
    d = tmp_path_factory.mktemp("keras")
    np.savez(d / "in.npz", **data)
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    code = f"AXES = {AXES!r}\n" + CHILD
    proc = subprocess.run(
        [sys.executable, "-c", code, str(d / "in.npz"), str(d / "out.npz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        if "No module named" in proc.stderr:
            pytest.skip(f"keras's jax backend is not installed: {proc.stderr.strip().splitlines()[-1]}")
        raise AssertionError(proc.stderr)
    return data, dict(np.load(d / "out.npz"))


def test_batch_normalization_is_one_preset(keras_run):
    data, keras = keras_run
    ours = BatchNorm(3, convention="keras", channels_last=True, dtype=np.float32)
    for step in range(5):
        np.testing.assert_allclose(ours(data[f"bn_x{step}"]), keras[f"bn_y{step}"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.running_mean, keras["bn_mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.running_var, keras["bn_var"], rtol=1e-5, atol=1e-6)
    ours.eval()
    np.testing.assert_allclose(ours(data["bn_xe"]), keras["bn_eval"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k", range(len(AXES)), ids=[str(a) for a in AXES])
def test_layer_normalization_over_any_block(keras_run, k):
    data, keras = keras_run
    got = layer_norm_forward(data["ln_x"], None, data[f"ln_g{k}"], data[f"ln_b{k}"], axis=AXES[k], convention="keras").y
    np.testing.assert_allclose(got, keras[f"ln_y{k}"], rtol=1e-4, atol=1e-4)


def test_spatial_dropout2d_semantics(keras_run):
    data, keras = keras_run
    x, rate = data["sd_x"], 0.25
    ours = D.spatial_dropout2d(x, drop_prob=rate, seed=1)
    for y in (keras["sd_train"], ours):
        assert np.all(y == y[:, :1, :1, :])  # one value per (n, c) over H, W
        assert set(np.unique(y)) <= {0.0, np.float32(1 / (1 - rate))}
        assert abs(float(np.mean(y[:, 0, 0, :] == 0)) - rate) < 0.15
    np.testing.assert_array_equal(keras["sd_eval"], x)
    assert D.spatial_dropout2d(x, drop_prob=rate, training=False) is x
