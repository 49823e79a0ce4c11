"""nndl_fast: fused CPU kernels for network optimisation and regularisation.

The training techniques of the chapter "Network optimization and regularization" of
Qiu Xipeng's *Neural Networks and Deep Learning*, as in-place SIMD + OpenMP kernels
over NumPy arrays, each checked against a plain NumPy reference
(:mod:`nndl_fast.reference`).

Sub-modules: :mod:`nndl_fast.optim` (update rules, 1.2), :mod:`nndl_fast.schedules`
(learning-rate decay, 1.5–1.7), :mod:`nndl_fast.norm` (batch, layer, weight and
local response normalisation, 1.43–1.56), :mod:`nndl_fast.clip` (gradient clipping, 1.24–1.25),
:mod:`nndl_fast.dropout` (dropout and its variants, 1.65), :mod:`nndl_fast.random`
(counter-based random fills), :mod:`nndl_fast.init` (parameter initialisation, 1.3),
:mod:`nndl_fast.preprocessing` (scalers and whitening, 1.38–1.41), :mod:`nndl_fast.loss`
(softmax cross-entropy with label smoothing, 1.7.6, and distillation), :mod:`nndl_fast.augment`
(batched data augmentation, 1.7.5), :mod:`nndl_fast.train` (early stopping, 1.7.3, mini-batches and
a progress bar for a training loop), :mod:`nndl_fast.search`
(hyper-parameter search, 1.6: ``import nndl_fast.search``, not loaded with the package),
:mod:`nndl_fast.bench` (the benchmark harness, ``python -m nndl_fast.bench``).
"""

from __future__ import annotations

import os as _os

# Waiting threads spin briefly (1000 rounds, microseconds), then sleep, unless the user chose a
# wait policy: libgomp's default spin of 300 000 rounds makes a busy machine's descheduled peer
# cost milliseconds, and sleeping at once costs a wake-up (~25 µs) per region on a quiet one.
# libgomp reads this once, when it loads (with _core, below); README "SIMD and threads".
_BOUNDED_SPIN = not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(_os.environ)
if _BOUNDED_SPIN:
    _os.environ["GOMP_SPINCOUNT"] = "1000"

from . import _core, augment, clip, dropout, init, loss, norm, optim, preprocessing, random, reference, schedules, train  # noqa: E402

if _BOUNDED_SPIN:
    del _os.environ["GOMP_SPINCOUNT"]  # read by now: do not hand it to child processes
from ._runtime import (  # noqa: E402
    available_simd_targets,
    build_info,
    get_num_threads,
    get_simd_target,
    set_num_threads,
    set_simd_target,
    simd_target,
    threads,
)

__version__ = "0.1.0"

# _core already honoured NNDL_FAST_SIMD when it loaded; re-apply it here so that a
# misspelt or unsupported value is reported instead of silently ignored.
if _os.environ.get("NNDL_FAST_SIMD"):
    _core.set_simd_target(_os.environ["NNDL_FAST_SIMD"])

__all__ = [
    "augment",
    "clip",
    "dropout",
    "init",
    "loss",
    "norm",
    "optim",
    "preprocessing",
    "random",
    "reference",
    "schedules",
    "train",
    "available_simd_targets",
    "build_info",
    "get_num_threads",
    "get_simd_target",
    "set_num_threads",
    "set_simd_target",
    "simd_target",
    "threads",
]
