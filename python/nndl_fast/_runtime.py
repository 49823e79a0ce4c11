"""SIMD target and thread-count controls (the compiled module's run-time settings)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from . import _checks, _core


def build_info() -> dict[str, Any]:
    """Compiler, OpenMP version, compiled / available / selected SIMD targets, threads
    (``num_threads``, and ``thread_limit``: the most :func:`set_num_threads` accepts)."""
    return dict(_core.build_info())


def available_simd_targets() -> list[str]:
    """SIMD targets compiled in and supported by this CPU, best last."""
    return list(_core.available_simd_targets())


def get_simd_target() -> str:
    """The target kernels run with ('baseline', 'avx2' or 'avx512')."""
    return str(_core.get_simd_target())


def set_simd_target(name: str) -> None:
    """Force a SIMD target (ValueError if unknown or unsupported here).

    The environment variable ``NNDL_FAST_SIMD`` does the same at import. The setting is
    process-wide. It is safe to change while other threads run kernels: each call reads it
    once, so every kernel a call chains (batch norm's statistics, finalize and apply) runs on
    the old target or every one on the new.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {_core.available_simd_targets()}, got {type(name).__name__}")
    try:
        _core.set_simd_target(name)
    except ValueError as e:
        raise ValueError(f"name: {e}") from None


def get_num_threads() -> int:
    """Threads the next kernel called from this thread uses (see :func:`set_num_threads`)."""
    return int(_core.get_num_threads())


def set_num_threads(n: int) -> None:
    """Set the number of OpenMP threads every kernel uses, process-wide (as ``torch``'s).

    1 <= n <= ``build_info()["thread_limit"]``, which is 4 per processor: these kernels are
    memory-bound, so more threads than that only add context switches, and libgomp aborts or
    crashes when tens of thousands cannot be created. TypeError for a non-integer.

    The default is ``OMP_NUM_THREADS``, or the number of processors. The count is shared by
    every Python thread (OpenMP's own setting is per thread). threadpoolctl's limits change
    the OpenMP setting of the thread that sets them, and win in that thread while they last.
    Results do not depend on the count. In a child forked after kernels ran threads, the
    count is 1 and raising it is a RuntimeError (libgomp's workers did not survive the fork).
    """
    _core.set_num_threads(_checks.integer("n", n, 1, int(_core.build_info()["thread_limit"])))


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
    """Run a block with n threads (process-wide, see :func:`set_num_threads`), then restore the count."""
    previous = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)
