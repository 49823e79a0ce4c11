"""Benchmark suites, one module per concept; ``python -m nndl_fast.bench`` runs them all.

A suite is ``run(bench, torch)``: it measures its kernels (ours, the NumPy reference, and
PyTorch's CPU paths when ``torch`` is not None) through ``bench.measure``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import (
    augment,
    clip,
    dropout,
    loss,
    norm_bn_ln,
    norm_wn_lrn,
    optim,
    preprocessing,
    random_init,
    search,
    torch_optim,
    torch_train,
)
from .harness import Bench

SUITES: dict[str, Callable[[Bench, Any], None]] = {
    "optim": optim.run,
    "torch_optim": torch_optim.run,
    "clip": clip.run,
    "dropout": dropout.run,
    "batch_norm_layer_norm": norm_bn_ln.run,
    "weight_norm_lrn": norm_wn_lrn.run,
    "torch_train": torch_train.run,
    "random_init": random_init.run,
    "preprocessing": preprocessing.run,
    "search": search.run,
    "loss": loss.run,
    "augment": augment.run,
}

__all__ = ["SUITES", "Bench"]
