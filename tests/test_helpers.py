"""The shared test helpers of conftest.py check what they claim to."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, numeric_grad, several_simd_targets


def test_numeric_grad_is_the_gradient_and_restores_the_input():
    a = np.array([[0.5, -1.0], [2.0, 3.0]])
    before = a.copy()
    g = numeric_grad(lambda: float(np.sum(a**3)), a)
    np.testing.assert_allclose(g, 3 * before**2, rtol=1e-6)
    np.testing.assert_array_equal(a, before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_assert_close_allows_rounding_and_nothing_more(dtype):
    want = np.array([1.0, -3.0, 1e-9], dtype)
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    assert_close(want * (1 + rtol / 2), want, dtype)
    assert_close(want + rtol * 2.0, want, dtype, scale=3.0)  # absolute slack rtol·scale near 0
    with pytest.raises(AssertionError):
        assert_close(want * (1 + 4 * rtol), want, dtype)


def test_several_simd_targets_skips_with_baseline_only():
    (only_baseline,) = several_simd_targets(["baseline"]).mark.args
    (all_three,) = several_simd_targets(["baseline", "avx2", "avx512"]).mark.args
    assert only_baseline and not all_three
    assert "no other SIMD target" in several_simd_targets(["baseline"]).mark.kwargs["reason"]
