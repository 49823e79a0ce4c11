"""The benchmark harness's machinery: timing, bandwidth probes, records, table, JSON, plot.

A suite (one module per concept: ``optim.py``, ``norm_bn_ln.py``, ...) gets a :class:`Bench`
and calls :meth:`Bench.measure` once per (kernel, case, implementation). Each record
holds the time per call, the effective bandwidth ``bytes / seconds`` computed from the
*minimal* bytes the operation must move, and that bandwidth as a fraction of the
matching probe of this machine (``limit``), which the harness measures itself, in the
same interleaved rounds as the case (``extra["limit_gbps"]``): every comparison in a row
group is taken under the same conditions.
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
#   fill    write one stream                  (the random fills' access pattern)
#   sum     read one stream                   (the statistics passes' access pattern)
PROBES = ("copy", "triad", "inplace", "fill", "sum")


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
    # This row's time over the case's nndl_fast row's (or ``extra["vs_seconds"]``): how many
    # times faster nndl_fast is than this row; 1 on nndl_fast's own row, < 1 where it is slower.
    nndl_fast_times_faster: float | None = None


# What the JSON's less obvious record keys mean (written beside the records).
RECORD_KEYS = {
    "nndl_fast_times_faster": "this row's seconds / the nndl_fast row's seconds in the same case (or in the same "
    "subprocess, extra.vs_seconds): nndl_fast is this many times faster than this row; 1 on nndl_fast's own row, "
    "below 1 where this row is faster",
    "fraction_of_limit": "gbps / extra.limit_gbps, the bandwidth probe named by limit, timed in the same rounds",
}


def _calibrate(fn: Callable[[], object], seconds_per_round: float) -> int:
    """Calls per round so that a round lasts about seconds_per_round (after one warm-up)."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    return max(1, int(seconds_per_round / once))


def time_interleaved(fns: list[Callable[[], object]], *, seconds_per_round: list[float], repeats: int) -> list[float]:
    """Seconds per call of each fn: the best, over `repeats` rounds, of the mean over a round.

    The rounds alternate between the fns (fn 0, fn 1, ..., fn 0, fn 1, ...), so that every
    fn meets the same phases of the machine: this machine's memory bandwidth drifts by
    tens of per cent over minutes, and a comparison timed minutes apart would show that
    drift instead of the implementations. The best round is the one least disturbed.
    """
    inner = [_calibrate(fn, s) for fn, s in zip(fns, seconds_per_round)]
    best = [float("inf")] * len(fns)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for k, fn in enumerate(fns):
                t0 = time.perf_counter()
                for _ in range(inner[k]):
                    fn()
                best[k] = min(best[k], (time.perf_counter() - t0) / inner[k])
    finally:
        if gc_was_enabled:
            gc.enable()
    return best


def time_call(fn: Callable[[], object], *, min_seconds: float, repeats: int) -> float:
    """Seconds per call of one fn (see time_interleaved)."""
    return time_interleaved([fn], seconds_per_round=[min_seconds / repeats], repeats=repeats)[0]


@dataclass
class _Pending:
    kernel: str
    case: str
    impl: str
    fn: Callable[[], object] | None  # None: timed elsewhere, `seconds` given
    seconds: float
    nbytes: int
    limit: str
    note: str
    min_seconds: float
    extra: dict[str, Any]


class Bench:
    """Collects records; `quick` trades precision for a run of under two minutes.

    Measurements of one case (every kernel and implementation a suite measures in a row
    under the same ``case`` name) are timed together, interleaved round by round with the
    bandwidth probes they are compared with, when the case changes or at :meth:`flush`.
    """

    def __init__(self, *, quick: bool, threads: int, only: list[str] | None = None) -> None:
        self.quick = quick
        self.threads = threads
        self.only = only or []
        self.records: list[Record] = []
        self.probe_gbps: dict[str, float] = {}
        self.min_seconds = 0.25 if quick else 1.0
        self.repeats = 3 if quick else 7
        self._pending: list[_Pending] = []
        self._probes: dict[str, tuple[Callable[[], object], int]] = {}  # limit -> (fn, bytes per call)

    # -- selection ---------------------------------------------------------------
    def wants(self, kernel: str) -> bool:
        """--only filters by substring of the kernel name or its suite."""
        return not self.only or any(o in kernel for o in self.only)

    # -- probes ------------------------------------------------------------------
    def measure_probes(self, n: int = 64_000_000) -> dict[str, float]:
        """STREAM copy / triad, an in-place read-modify-write, a write-only fill and a read-only
        sum over n float32 (256 MB)."""
        a = np.full(n, 1.0, np.float32)
        b = np.full(n, 2.0, np.float32)
        c = np.zeros(n, np.float32)
        self._probes = {
            "copy": (lambda: _core.stream_copy(c, a), 8 * n),
            "triad": (lambda: _core.stream_triad(c, a, b, 3.0), 12 * n),
            "inplace": (lambda: _core.stream_inplace(c, 0.5), 8 * n),
            "fill": (lambda: _core.stream_fill(c, 0.5), 4 * n),
            "sum": (lambda: _core.stream_sum(a), 4 * n),
        }
        min_seconds = 0.5 if self.quick else 2.0
        names = list(self._probes)
        seconds = time_interleaved(
            [self._probes[k][0] for k in names], seconds_per_round=[min_seconds / 5] * len(names), repeats=5
        )
        self.probe_gbps = {k: self._probes[k][1] / t / 1e9 for k, t in zip(names, seconds)}
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
    ) -> None:
        """Queue fn for timing with the rest of its case (rows print when the case is timed)."""
        self._queue(
            _Pending(
                kernel,
                case,
                impl,
                fn,
                float("nan"),
                int(nbytes),
                limit,
                note,
                self.min_seconds if min_seconds is None else min_seconds,
                extra,
            )
        )

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
        limit_gbps: float | None = None,
        vs_seconds: float | None = None,
        **extra: Any,
    ) -> None:
        """Records a time measured elsewhere (e.g. in a subprocess with another environment).

        limit_gbps: the probe as measured there (else this process's, timed with the case);
        vs_seconds: the speed-up column's reference measured there (else the case's first row).
        """
        if limit_gbps is not None:
            extra["limit_gbps"] = float(limit_gbps)
        if vs_seconds is not None:
            extra["vs_seconds"] = float(vs_seconds)
        self._queue(_Pending(kernel, case, impl, None, float(seconds), int(nbytes), limit, note, 0.0, extra))

    def _queue(self, item: _Pending) -> None:
        if item.limit not in PROBES:
            raise ValueError(f"limit must be one of {PROBES}, got {item.limit!r}")
        if self._pending and self._pending[-1].case != item.case:
            self.flush()
        self._pending.append(item)

    def flush(self) -> list[Record]:
        """Time the queued case: its fns and the probes it needs, interleaved; print its rows."""
        pending, self._pending = self._pending, []
        timed = [p for p in pending if p.fn is not None]
        limits = sorted({p.limit for p in pending if p.limit in self._probes})
        fns: list[Callable[[], object]] = [p.fn for p in timed if p.fn is not None]
        fns += [self._probes[k][0] for k in limits]
        # A probe call moves 256 MB: a few calls per round are enough for a stable figure.
        per_round = [p.min_seconds / self.repeats for p in timed] + [0.1 / self.repeats] * len(limits)
        seconds = time_interleaved(fns, seconds_per_round=per_round, repeats=self.repeats) if fns else []
        for p, t in zip(timed, seconds):
            p.seconds = t
        probe = dict(self.probe_gbps)
        probe.update({k: self._probes[k][1] / t / 1e9 for k, t in zip(limits, seconds[len(timed) :])})
        out = []
        for p in pending:
            gbps = p.nbytes / p.seconds / 1e9
            limit_gbps = p.extra.get("limit_gbps", probe.get(p.limit, float("nan")))
            rec = Record(
                kernel=p.kernel,
                case=p.case,
                impl=p.impl,
                seconds=p.seconds,
                bytes=p.nbytes,
                gbps=gbps,
                limit=p.limit,
                fraction_of_limit=gbps / limit_gbps,
                threads=self.threads,
                simd=_core.get_simd_target(),
                note=p.note,
                extra={**p.extra, "limit_gbps": limit_gbps},
            )
            self.records.append(rec)
            out.append(rec)
        for rec in out:
            ours = self._ours_seconds(rec)
            rec.nndl_fast_times_faster = None if ours is None else rec.seconds / ours
            print(format_row(rec), flush=True)
        return out

    def _ours_seconds(self, rec: Record) -> float | None:
        """What the row is compared with: its own ``vs_seconds`` (nndl_fast timed beside it in a
        subprocess), else the seconds of this (kernel, case)'s first nndl_fast record."""
        if "vs_seconds" in rec.extra:
            return float(rec.extra["vs_seconds"])
        for r in self.records:
            if r.kernel == rec.kernel and r.case == rec.case and r.impl.startswith("nndl_fast"):
                return r.seconds
        return None

    # -- output ------------------------------------------------------------------
    def to_json(self, path: str, meta: dict[str, Any]) -> None:
        with open(path, "w") as f:
            json.dump(
                {
                    "meta": meta,
                    "probes_gbps": self.probe_gbps,
                    "record_keys": RECORD_KEYS,
                    "records": [asdict(r) for r in self.records],
                },
                f,
                indent=1,
            )

    def plot(self, path: str) -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:  # optional extra: pip install nndl_fast[figures]
            raise SystemExit(f"--plot needs matplotlib (pip install 'nndl_fast[figures]'): {e}") from e
        labels = [plot_label(r) for r in self.records]
        fig, ax = plt.subplots(figsize=(10, 0.28 * len(labels) + 1.5))
        family = {"nndl_fast": "tab:blue", "numpy": "tab:gray", "torch": "tab:orange"}
        colors = [family.get(r.impl.split()[0], "tab:green") for r in self.records]
        ax.barh(range(len(labels)), [r.gbps for r in self.records], color=colors)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        for name, gbps in self.probe_gbps.items():
            ax.axvline(gbps, linestyle="--", linewidth=0.8)
            ax.text(gbps, -0.8, name, fontsize=7)
        ax.set_xlabel("effective GB/s (minimal bytes / time); each label: how many times faster nndl_fast is")
        fig.tight_layout()
        fig.savefig(path, dpi=120)


FASTER = "nndl_fast is Nx faster"
HEADER = (
    f"{'kernel':<14} {'case':<26} {'impl':<22} {'time':>10} {'GB/s':>8} {'limit':>8} "
    f"{'% limit':>8} {FASTER:>{len(FASTER)}}"
)


def format_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} us"
    return f"{seconds * 1e3:.3f} ms"


def format_times_faster(rec: Record) -> str:
    return "" if rec.nndl_fast_times_faster is None else f"{rec.nndl_fast_times_faster:.2f}x"


def format_row(rec: Record) -> str:
    """The last column: how many times faster nndl_fast is than this row (Record.nndl_fast_times_faster)."""
    return (
        f"{rec.kernel:<14} {rec.case:<26} {rec.impl:<22} {format_time(rec.seconds):>10} "
        f"{rec.gbps:8.1f} {rec.limit:>8} {100 * rec.fraction_of_limit:7.1f}% {format_times_faster(rec):>{len(FASTER)}}"
    )


def plot_label(rec: Record) -> str:
    """A chart bar's label: the row, and how many times faster nndl_fast is than it."""
    label = f"{rec.kernel} {rec.case} [{rec.impl}]"
    if rec.nndl_fast_times_faster is None or rec.impl.startswith("nndl_fast"):
        return label
    return f"{label}: nndl_fast {format_times_faster(rec)} faster"
