"""The bandwidth probes of the benchmark harness (_core.stream_*): results, and arguments
checked like every other binding's (float32 only, shapes, aliasing, read-only)."""

from __future__ import annotations

import numpy as np
import pytest

from nndl_fast import _core


def test_probes_compute_what_they_say(simd):
    a = np.arange(1000, dtype=np.float32)
    b = np.linspace(0, 1, 1000, dtype=np.float32)
    out = np.empty_like(a)
    _core.stream_copy(out, a)
    np.testing.assert_array_equal(out, a)
    _core.stream_triad(out, a, b, 3.0)
    np.testing.assert_array_equal(out, a + np.float32(3.0) * b)
    x = a.copy()
    _core.stream_inplace(x, 0.5)
    np.testing.assert_array_equal(x, np.float32(0.5) * a + 1)
    _core.stream_fill(x, 2.5)
    assert (x == 2.5).all()
    assert _core.stream_sum(a) == float(a.astype(np.float64).sum())  # integers < 2**24: exact
    assert _core.stream_sum(a[:0]) == 0.0


def test_probe_arguments_are_checked():
    a = np.ones(64, np.float32)
    out = np.full(64, 7.0, np.float32)
    ro = np.ones(64, np.float32)
    ro.flags.writeable = False
    cases = [
        (lambda: _core.stream_copy(out, a.astype(np.float64)), TypeError, "src must be float32"),
        (lambda: _core.stream_copy(out, [1.0]), TypeError, "src must be a numpy.ndarray"),
        (lambda: _core.stream_copy(out[:32], a), ValueError, "out has shape"),
        (lambda: _core.stream_triad(out, a, a[:63], 1.0), ValueError, "b has shape"),
        (lambda: _core.stream_triad(out, a, out, 1.0), ValueError, "shares memory"),
        (lambda: _core.stream_copy(ro, a), ValueError, "out is read-only"),
        (lambda: _core.stream_inplace(ro, 1.0), ValueError, "x is read-only"),
        (lambda: _core.stream_inplace(np.ones(64)[::2], 1.0), TypeError, "x must be float32"),
        (lambda: _core.stream_fill(ro, 1.0), ValueError, "out is read-only"),
        (lambda: _core.stream_fill(out[::2], 1.0), ValueError, "out"),
        (lambda: _core.stream_fill(np.ones(64), 1.0), TypeError, "out must be float32"),
        (lambda: _core.stream_sum(np.ones(64)), TypeError, "src must be float32"),
        (lambda: _core.stream_sum([1.0]), TypeError, "src must be a numpy.ndarray"),
        (lambda: _core.stream_sum(a[::2]), ValueError, "src"),
    ]
    for call, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            call()
    assert (out == 7.0).all()
