"""Dropout rows of the benchmark harness: forward on 1.6e7 float32 elements; channel dropout
(torch's Dropout2d, noise_shape (N, C, 1, 1)) on a (64, 64, 56, 56) NCHW batch.

Floor: read x, write y and the packed mask, 4 + 4 + 1/8 bytes per element, against the
copy probe. The generator (Philox4x32-10, one call per 4 elements) runs in registers. The
NumPy row is a careful vectorised version (Generator.random into a preallocated buffer,
compare, multiply, np.packbits), not the Philox reference, which is written for clarity
and is far slower; torch's row is F.dropout (a new tensor per call, no packed mask).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import dropout
from .harness import Bench


def run(bench: Bench, torch: Any) -> None:
    n = 16_000_000
    keep = 0.5
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    y = np.empty_like(x)
    mask = np.empty(dropout.packed_size(n), np.uint8)
    case = "1.6e7 f32 keep=0.5"
    fwd_bytes = 8 * n + n // 8
    if bench.wants("dropout_fwd"):
        offset = [0]

        def ours() -> None:
            dropout.dropout(x, keep_prob=keep, convention="torch", seed=1, offset=offset[0], out=y, mask_out=mask)
            offset[0] += 1

        bench.measure(
            "dropout_fwd",
            case,
            "nndl_fast",
            ours,
            nbytes=fwd_bytes,
            limit="copy",
            note="mask + apply, packed mask written",
        )
        u = np.empty(n, np.float32)
        m = np.empty(n, bool)
        gen = np.random.default_rng(1)
        scale = np.float32(1.0 / keep)

        def numpy_careful() -> None:
            gen.random(out=u, dtype=np.float32)
            np.less(u, keep, out=m)
            np.multiply(x, m, out=y)
            np.multiply(y, scale, out=y)
            np.packbits(m)

        bench.measure(
            "dropout_fwd",
            case,
            "numpy (Generator)",
            numpy_careful,
            nbytes=fwd_bytes,
            limit="copy",
            min_seconds=0.3,
        )
        if torch is not None:
            xt = torch.from_numpy(x)
            bench.measure(
                "dropout_fwd",
                case,
                "torch F.dropout",
                lambda: torch.nn.functional.dropout(xt, p=1 - keep, training=True),
                nbytes=fwd_bytes,
                limit="copy",
                min_seconds=0.3,
                note="no mask output",
            )
        bench.flush()  # time the forward rows now: the backward block reuses these names
    if bench.wants("dropout_bwd"):
        dy = rng.standard_normal(n, dtype=np.float32)
        dx = np.empty_like(dy)
        dropout.dropout(x, keep_prob=keep, convention="torch", seed=1, out=y, mask_out=mask)
        bench.measure(
            "dropout_bwd",
            case,
            "nndl_fast from mask",
            lambda: dropout.dropout_backward(dy, keep_prob=keep, convention="torch", mask=mask, out=dx),
            nbytes=fwd_bytes,
            limit="copy",
        )
        bench.measure(
            "dropout_bwd",
            case,
            "nndl_fast from seed",
            lambda: dropout.dropout_backward(dy, keep_prob=keep, convention="torch", seed=1, offset=0, out=dx),
            nbytes=8 * n,
            limit="copy",
            note="mask regenerated, nothing stored",
        )
        m = np.unpackbits(mask, count=n).view(bool)
        scale = np.float32(1.0 / keep)

        def numpy_bwd() -> None:
            np.multiply(dy, m, out=dx)
            np.multiply(dx, scale, out=dx)

        bench.measure("dropout_bwd", case, "numpy (bool mask)", numpy_bwd, nbytes=9 * n, limit="copy")

    if bench.wants("dropout2d_fwd"):
        _dropout2d(bench, torch)


def _dropout2d(bench: Bench, torch: Any) -> None:
    shape = (64, 64, 56, 56)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape, dtype=np.float32)
    y = np.empty_like(x)
    nc = shape[0] * shape[1]
    mask = np.empty(dropout.packed_size(nc), np.uint8)
    case = "64x64x56x56 f32 p=0.5"
    offset = [0]

    def ours() -> None:
        dropout.dropout2d(x, drop_prob=0.5, seed=1, offset=offset[0], out=y, mask_out=mask)
        offset[0] += 1

    bench.measure(
        "dropout2d_fwd", case, "nndl_fast", ours, nbytes=x.nbytes * 2, limit="copy", note="one bit per (n, c)"
    )
    gen = np.random.default_rng(1)

    def numpy_ref() -> None:
        m = gen.random((shape[0], shape[1], 1, 1), dtype=np.float32) < 0.5
        np.multiply(x, m * np.float32(2.0), out=y)

    bench.measure("dropout2d_fwd", case, "numpy (broadcast mask)", numpy_ref, nbytes=x.nbytes * 2, limit="copy")
    if torch is not None:
        xt = torch.from_numpy(x)
        bench.measure(
            "dropout2d_fwd",
            case,
            "torch F.dropout2d",
            lambda: torch.nn.functional.dropout2d(xt, p=0.5, training=True),
            nbytes=x.nbytes * 2,
            limit="copy",
            note="new tensor, no mask output",
        )
