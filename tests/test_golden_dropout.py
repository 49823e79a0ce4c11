"""Dropout outputs (forward, masks, backward, variational, DropConnect, the layer) are
bitwise those of the build before the consolidation pass: tests/data/golden_dropout.npz,
written by tests/data/make_golden_dropout.py from that build, replayed through today's API
on every SIMD target with 1 and 2 threads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from nndl_fast import dropout as D

DATA = Path(__file__).resolve().parent / "data"
_spec = importlib.util.spec_from_file_location("make_golden_dropout", DATA / "make_golden_dropout.py")
assert _spec is not None and _spec.loader is not None
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

GOLDEN = dict(np.load(DATA / "golden_dropout.npz"))
_, CALLS = gen.cases()


def _assert_bitwise(key: str, got: np.ndarray) -> None:
    want = GOLDEN[key]
    assert got.dtype == want.dtype and got.shape == want.shape, key
    # Compare the bits: NaN payloads and the sign of −0 included.
    assert np.array_equal(np.ascontiguousarray(got).view(np.uint8), want.view(np.uint8)), key


def test_golden_covers_every_function():
    assert {c["fn"] for c in CALLS} == {
        "dropout",
        "dropout_backward",
        "dropout_mask",
        "variational_dropout",
        "variational_dropout_backward",
        "dropconnect",
    }
    assert {c["kw"].get("convention") for c in CALLS} >= {"chapter", "torch"}
    assert {np.dtype(GOLDEN[c["arg"]].dtype).name for c in CALLS if c["arg"]} == {
        "float32",
        "float64",
    }


def test_calls_bitwise_equal_to_original_build(simd, nthreads):
    for case in CALLS:
        for key, got in gen.run_case(D, case, GOLDEN, legacy=False).items():
            _assert_bitwise(key, got)


@pytest.mark.parametrize("index", range(len(gen.LAYER_SCRIPTS)))
def test_layer_bitwise_equal_to_original_build(index):
    for key, got in gen.run_layer(D, index, legacy=False).items():
        _assert_bitwise(key, got)
