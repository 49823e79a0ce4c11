"""The benchmark harness's machinery: timing, bandwidth probes, records, table, JSON, plot.

A suite (one module per concept: ``optim.py``, ``norm.py``, ...) gets a :class:`Bench`
and calls :meth:`Bench.measure` once per (kernel, case, implementation). Each record
holds the time per call, the effective bandwidth ``bytes / seconds`` computed from the
*minimal* bytes the operation must move, and that bandwidth as a fraction of the
matching probe of this machine (``limit``), which the harness measures itself.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import _core

# The probes a record can be compared with: which bandwidth bounds the kernel.
#   copy    read one stream, write one        (STREAM copy)
#   triad   read two streams, write one       (STREAM triad)
#   inplace read and write the same stream    (an optimizer's access pattern)
PROBES = ("copy", "triad", "inplace")


@dataclass
class Record:
    kernel: str
    case: str
    impl: str
    seconds: float
    bytes: int
    gbps: float
    limit: str
    fraction_of_limit: float
    threads: int
    simd: str
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def time_call(fn: Callable[[], object], *, min_seconds: float, repeats: int) -> float:
    """Seconds per call: the best, over `repeats` rounds, of the mean over a round.

    A round runs fn enough times to last about min_seconds / repeats (at least once),
    after one warm-up call. The best round is the one least disturbed by the machine.
    """
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(min_seconds / repeats / once))
    best = float("inf")
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            best = min(best, (time.perf_counter() - t0) / inner)
    finally:
        if gc_was_enabled:
            gc.enable()
    return best


class Bench:
    """Collects records; `quick` trades precision for a run of under two minutes."""

    def __init__(self, *, quick: bool, threads: int, only: list[str] | None = None) -> None:
        self.quick = quick
        self.threads = threads
        self.only = only or []
        self.records: list[Record] = []
        self.probe_gbps: dict[str, float] = {}
        self.min_seconds = 0.25 if quick else 1.0
        self.repeats = 3 if quick else 7

    # -- selection ---------------------------------------------------------------
    def wants(self, kernel: str) -> bool:
        """--only filters by substring of the kernel name or its suite."""
        return not self.only or any(o in kernel for o in self.only)

    # -- probes ------------------------------------------------------------------
    def measure_probes(self, n: int = 64_000_000) -> dict[str, float]:
        """STREAM copy / triad and an in-place read-modify-write over n float32 (256 MB)."""
        a = np.full(n, 1.0, np.float32)
        b = np.full(n, 2.0, np.float32)
        c = np.zeros(n, np.float32)
        min_seconds = 0.5 if self.quick else 2.0

        def gbps(nbytes: int, fn: Callable[[], object]) -> float:
            return nbytes / time_call(fn, min_seconds=min_seconds, repeats=5) / 1e9

        self.probe_gbps["copy"] = gbps(8 * n, lambda: _core.stream_copy(c, a))
        self.probe_gbps["triad"] = gbps(12 * n, lambda: _core.stream_triad(c, a, b, 3.0))
        self.probe_gbps["inplace"] = gbps(8 * n, lambda: _core.stream_inplace(c, 0.5))
        return self.probe_gbps

    # -- measuring ---------------------------------------------------------------
    def measure(
        self,
        kernel: str,
        case: str,
        impl: str,
        fn: Callable[[], object],
        *,
        nbytes: int,
        limit: str = "inplace",
        note: str = "",
        min_seconds: float | None = None,
        **extra: Any,
    ) -> Record:
        if limit not in PROBES:
            raise ValueError(f"limit must be one of {PROBES}, got {limit!r}")
        seconds = time_call(
            fn, min_seconds=self.min_seconds if min_seconds is None else min_seconds, repeats=self.repeats
        )
        return self.add(kernel, case, impl, seconds, nbytes=nbytes, limit=limit, note=note, **extra)

    def add(
        self,
        kernel: str,
        case: str,
        impl: str,
        seconds: float,
        *,
        nbytes: int,
        limit: str = "inplace",
        note: str = "",
        **extra: Any,
    ) -> Record:
        """Records a time measured elsewhere (e.g. in a subprocess with another environment)."""
        if limit not in PROBES:
            raise ValueError(f"limit must be one of {PROBES}, got {limit!r}")
        gbps = nbytes / seconds / 1e9
        probe = self.probe_gbps.get(limit, float("nan"))
        rec = Record(
            kernel=kernel,
            case=case,
            impl=impl,
            seconds=seconds,
            bytes=int(nbytes),
            gbps=gbps,
            limit=limit,
            fraction_of_limit=gbps / probe if probe == probe else float("nan"),
            threads=self.threads,
            simd=_core.get_simd_target(),
            note=note,
            extra=extra,
        )
        self.records.append(rec)
        print(format_row(rec, self._baseline_seconds(rec)), flush=True)
        return rec

    def _baseline_seconds(self, rec: Record) -> float | None:
        """Seconds of this (kernel, case)'s first record: the speed-up column's reference."""
        for r in self.records:
            if r.kernel == rec.kernel and r.case == rec.case:
                return r.seconds
        return None

    # -- output ------------------------------------------------------------------
    def to_json(self, path: str, meta: dict[str, Any]) -> None:
        with open(path, "w") as f:
            json.dump(
                {"meta": meta, "probes_gbps": self.probe_gbps, "records": [asdict(r) for r in self.records]},
                f,
                indent=1,
            )

    def plot(self, path: str) -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:  # optional extra: pip install nndl_fast[plot]
            raise SystemExit(f"--plot needs matplotlib (pip install 'nndl_fast[plot]'): {e}") from e
        labels = [f"{r.kernel} {r.case} [{r.impl}]" for r in self.records]
        fig, ax = plt.subplots(figsize=(10, 0.28 * len(labels) + 1.5))
        family = {"nndl_fast": "tab:blue", "numpy": "tab:gray", "torch": "tab:orange"}
        colors = [family.get(r.impl.split()[0], "tab:green") for r in self.records]
        ax.barh(range(len(labels)), [r.gbps for r in self.records], color=colors)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        for name, gbps in self.probe_gbps.items():
            ax.axvline(gbps, linestyle="--", linewidth=0.8)
            ax.text(gbps, -0.8, name, fontsize=7)
        ax.set_xlabel("effective GB/s (minimal bytes / time)")
        fig.tight_layout()
        fig.savefig(path, dpi=120)


HEADER = (
    f"{'kernel':<14} {'case':<26} {'impl':<22} {'time':>10} {'GB/s':>8} {'limit':>8} "
    f"{'% limit':>8} {'speed-up':>9}"
)


def format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e3:.3f} ms"


def format_row(rec: Record, first_seconds: float | None) -> str:
    """speed-up: the first implementation measured for this case (ours), relative to this one."""
    speedup = "" if first_seconds is None else f"{rec.seconds / first_seconds:.2f}x"
    return (
        f"{rec.kernel:<14} {rec.case:<26} {rec.impl:<22} {format_time(rec.seconds):>10} "
        f"{rec.gbps:8.1f} {rec.limit:>8} {100 * rec.fraction_of_limit:7.1f}% {speedup:>9}"
    )
