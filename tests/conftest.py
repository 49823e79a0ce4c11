"""Shared fixtures: every kernel test runs on every SIMD target and with 1 and 2 threads."""

from __future__ import annotations

import numpy as np
import pytest

import nndl_fast

SIMD_TARGETS = nndl_fast.available_simd_targets()
THREAD_COUNTS = [1, 2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_optim's parity test takes its large sizes (1e6+ elements, seconds per case) on the last
    SIMD target with 2 threads only: those cases are slow. (The other slow tests say so themselves.)"""
    for item in items:
        params = getattr(item, "callspec", None)
        if (
            item.name.startswith("test_parity_with_reference[")
            and item.path.name == "test_optim.py"
            and params is not None
            and params.params.get("simd") == SIMD_TARGETS[-1]
            and params.params.get("nthreads") == 2
        ):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(params=SIMD_TARGETS)
def simd(request: pytest.FixtureRequest):
    """Each test using this runs once per SIMD target this CPU has."""
    with nndl_fast.simd_target(request.param):
        yield request.param


@pytest.fixture(params=THREAD_COUNTS, ids=lambda n: f"{n}thr")
def nthreads(request: pytest.FixtureRequest):
    with nndl_fast.threads(request.param):
        yield request.param


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261126)


def several_simd_targets(targets: list[str] = SIMD_TARGETS) -> pytest.MarkDecorator:
    """For a test comparing each SIMD target with baseline: on a CPU with baseline only it would
    compare baseline with itself, so it skips, saying why."""
    reason = f"this CPU runs only {targets}: no other SIMD target to compare with baseline"
    return pytest.mark.skipif(len(targets) < 2, reason=reason)


def assert_close(ours: np.ndarray, want: np.ndarray, dtype: type, scale: float | None = None) -> None:
    """Equal to rounding of the dtype: rtol, plus an absolute slack of rtol·scale (default: the
    largest |want|) for entries that cancel to ~0."""
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    if scale is None:
        scale = float(np.max(np.abs(want))) if want.size else 1.0
    np.testing.assert_allclose(ours, want, rtol=rtol, atol=rtol * scale)


def numeric_grad(f, a, h=1e-6):
    """Central differences of the scalar f() with respect to every element of a (changed in
    place and restored): the finite-difference check of the backward kernels, in float64."""
    g = np.zeros_like(a)
    flat, gflat = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * h)
    return g


def at_phase(a: np.ndarray, k: int) -> np.ndarray:
    """A copy of a whose data starts k elements past a 64-byte boundary (the kernels place
    their per-channel / per-element vectors at the rows' offset from a cache line)."""
    buf = np.empty(a.size + 64, a.dtype)
    start = (-buf.ctypes.data % 64) // a.itemsize + k
    out = buf[start : start + a.size].reshape(a.shape)
    out[...] = a
    return out


def torch_or_skip():
    """The torch module, or a skip naming why (torch is an optional dependency)."""
    return pytest.importorskip("torch", reason="torch not installed: PyTorch parity not checked")


@pytest.fixture
def stream_above_16mib():
    """Outputs over 16 MiB take the streaming-store path (by default only those over the
    last-level cache do), so its tests need no arrays of the cache's size."""
    nndl_fast._core.set_stream_threshold((1 << 24) - 1)
    yield
    nndl_fast._core.set_stream_threshold(-1)
