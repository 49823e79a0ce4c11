"""python -m nndl_fast.figures [--out DIR] [--quick] [--only NAME ...]: the PNGs and figures.md."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import FIGURES, figure


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nndl_fast.figures", description=__doc__)
    ap.add_argument("--out", default="figures", help="directory for the PNGs and figures.md (default ./figures)")
    ap.add_argument("--quick", action="store_true", help="small budgets (digits, few epochs): seconds, for tests")
    ap.add_argument(
        "--only",
        nargs="+",
        choices=sorted(FIGURES),
        metavar="NAME",
        help=f"some of {sorted(FIGURES)} (figures.md then shows only those)",
    )
    args = ap.parse_args(argv)
    try:
        import matplotlib
    except ImportError as e:
        raise SystemExit(f"the figures need matplotlib (pip install 'nndl_fast[figures]'): {e}") from e
    matplotlib.use("Agg")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budget = "quick budgets (--quick)" if args.quick else "full budgets"
    lines = ["# The chapter's figures, recomputed", "", f"`python -m nndl_fast.figures` ({budget}).", ""]
    start = time.perf_counter()
    for name in args.only or FIGURES:
        module = figure(name)
        t = time.perf_counter()
        result = module.compute(quick=args.quick)
        module.plot(result, str(out / f"{name}.png"))
        took = time.perf_counter() - t
        print(f"{name}.png  {took:.1f} s")
        lines += [f"## {module.TITLE}", "", f"![{module.TITLE}]({name}.png)", "", module.describe(result), ""]
    (out / "figures.md").write_text("\n".join(lines))
    print(f"wrote {out / 'figures.md'} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
