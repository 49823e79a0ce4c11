"""python -m nndl_fast.bench — the benchmark harness (see harness.py for what it measures).

python -m nndl_fast.bench --quick                 # all suites, < 2 minutes on 2 cores
python -m nndl_fast.bench --only adam --json out.json --plot out.png
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys

from .. import build_info, set_num_threads
from . import SUITES
from .harness import HEADER, Bench


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m nndl_fast.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repeats (< 2 min)")
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only kernels whose name contains this (repeatable), e.g. adam, bn",
    )
    ap.add_argument("--threads", type=int, default=None, help="OpenMP threads (default: all cores)")
    ap.add_argument("--json", metavar="PATH", help="write one record per (kernel, case, impl)")
    ap.add_argument("--plot", metavar="PATH", help="write a PNG bar chart (needs matplotlib)")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch rows even if installed")
    args = ap.parse_args(argv)

    if args.threads is not None:
        set_num_threads(args.threads)
    info = build_info()
    bench = Bench(quick=args.quick, threads=info["num_threads"], only=args.only)
    torch = None
    if not args.no_torch:
        try:
            import torch as _torch

            _torch.set_num_threads(info["num_threads"])
            torch = _torch
        except ImportError:
            pass
    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_name(),
        "python": sys.version.split()[0],
        "numpy": __import__("numpy").__version__,
        "torch": getattr(torch, "__version__", None),
        "quick": args.quick,
        **info,
    }
    print(
        f"# nndl_fast bench  {meta['date']}  {meta['cpu']}  threads={info['num_threads']}  "
        f"simd={info['selected_target']}  torch={meta['torch']}"
    )
    probes = bench.measure_probes()
    print("# memory bandwidth probes (GB/s): " + "  ".join(f"{k} {v:.1f}" for k, v in probes.items()))
    print(HEADER)
    for run in SUITES.values():
        run(bench, torch)
        bench.flush()
    if args.json:
        bench.to_json(args.json, meta)
        print(f"# wrote {args.json}")
    if args.plot:
        bench.plot(args.plot)
        print(f"# wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
