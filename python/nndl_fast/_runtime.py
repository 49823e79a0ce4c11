"""SIMD target and thread-count controls (the compiled module's run-time settings)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from . import _core


def build_info() -> dict[str, Any]:
    """Compiler, OpenMP version, compiled / available / selected SIMD targets, threads."""
    info: dict[str, Any] = dict(_core.build_info())
    info["num_threads"] = info.pop("max_threads")
    return info


def available_simd_targets() -> list[str]:
    """SIMD targets compiled in and supported by this CPU, best last."""
    return list(_core.available_simd_targets())


def get_simd_target() -> str:
    """The target kernels run with ('baseline', 'avx2' or 'avx512')."""
    return str(_core.get_simd_target())


def set_simd_target(name: str) -> None:
    """Force a SIMD target (ValueError if unknown or unsupported here).

    The environment variable ``NNDL_FAST_SIMD`` does the same at import.
    """
    _core.set_simd_target(name)


def get_num_threads() -> int:
    """OpenMP threads the kernels use (threadpoolctl sees and sets the same number)."""
    return int(_core.get_num_threads())


def set_num_threads(n: int) -> None:
    """Set the OpenMP thread count (results do not depend on it)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    _core.set_num_threads(n)


@contextlib.contextmanager
def simd_target(name: str) -> Iterator[None]:
    """Run a block with the given SIMD target, then restore the previous one."""
    previous = get_simd_target()
    set_simd_target(name)
    try:
        yield
    finally:
        set_simd_target(previous)


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Run a block with n OpenMP threads, then restore the previous count."""
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)
