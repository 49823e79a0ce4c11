"""Optimizer rows of the benchmark harness (filled in with the optimizers)."""

from __future__ import annotations

from typing import Any

from .harness import Bench


def run(bench: Bench, torch: Any) -> None:
    return None
