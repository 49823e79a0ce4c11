"""Random-fill and initialisation rows of the benchmark harness.

uniform_ and normal_ on 1.6e7 and (not with --quick) 1e8 float32 elements, in place, against
the write-only fill probe (4 bytes per element): the floor of a fill is writing the array
once. NumPy's rows are its Generator (PCG64, one thread) writing into the same buffer with
``out=``; torch's are ``Tensor.uniform_``/``normal_`` on a tensor sharing that buffer (its CPU
generator, mt19937, is one generator behind a lock). xavier_uniform_ and kaiming_normal_ on
a (4096, 4096) float32 weight are timed with the plain fills of the same size and bounds (or
std), which they should match: the scheme only computes a bound or a std.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import init, random
from .harness import Bench


def _fill_rows(bench: Bench, torch: Any, kernel: str, n: int, case: str) -> None:
    a = np.empty(n, np.float32)
    gen = np.random.default_rng(1)
    offset = [0]

    def ours() -> None:
        fill = random.uniform_ if kernel == "uniform_" else random.normal_
        fill(a, seed=1, offset=offset[0])
        offset[0] += 1

    if kernel == "uniform_":

        def numpy_gen() -> None:
            gen.random(out=a, dtype=np.float32)
    else:

        def numpy_gen() -> None:
            gen.standard_normal(out=a, dtype=np.float32)

    bench.measure(kernel, case, "nndl_fast", ours, nbytes=4 * n, limit="fill", note="Philox4x32-10, in place")
    bench.measure(
        kernel, case, "numpy (Generator)", numpy_gen, nbytes=4 * n, limit="fill", min_seconds=0.3, note="out="
    )
    if torch is not None:
        t = torch.from_numpy(a)
        method = t.uniform_ if kernel == "uniform_" else t.normal_
        bench.measure(kernel, case, "torch", method, nbytes=4 * n, limit="fill", min_seconds=0.3, note="in place")
    bench.flush()


def run(bench: Bench, torch: Any) -> None:
    sizes = [(16_000_000, "1.6e7 f32")] if bench.quick else [(16_000_000, "1.6e7 f32"), (100_000_000, "1e8 f32")]
    for kernel in ("uniform_", "normal_"):
        if bench.wants(kernel):
            for n, case in sizes:
                _fill_rows(bench, torch, kernel, n, case)
    for scheme, plain in (("xavier_uniform_", random.uniform_), ("kaiming_normal_", random.normal_)):
        if bench.wants(scheme):
            _scheme_rows(bench, torch, scheme, plain)


def _scheme_rows(bench: Bench, torch: Any, scheme: str, plain: Any) -> None:
    w = np.empty((4096, 4096), np.float32)
    nbytes = w.nbytes
    case = "(4096, 4096) f32"
    ours = getattr(init, scheme)
    xavier = scheme.startswith("xavier")
    std = float(np.sqrt(2.0 / (2 * 4096))) if xavier else float(np.sqrt(2.0 / 4096))
    # the scheme's own bounds or std: U[0, 1) alone takes a shorter path than other bounds
    bound = float(np.sqrt(3.0) * std)
    plain_args = (-bound, bound) if xavier else (0.0, std)
    bench.measure(scheme, case, "nndl_fast", lambda: ours(w, seed=2), nbytes=nbytes, limit="fill")
    bench.measure(
        scheme,
        case,
        "nndl_fast plain fill",
        lambda: plain(w, *plain_args, seed=2),
        nbytes=nbytes,
        limit="fill",
        note="the fill the scheme runs",
    )
    gen = np.random.default_rng(2)

    def numpy_scheme() -> None:
        if xavier:
            gen.random(out=w, dtype=np.float32)
            np.multiply(w, np.float32(2 * np.sqrt(3.0) * std), out=w)
            np.subtract(w, np.float32(np.sqrt(3.0) * std), out=w)
        else:
            gen.standard_normal(out=w, dtype=np.float32)
            np.multiply(w, np.float32(std), out=w)

    bench.measure(scheme, case, "numpy (Generator)", numpy_scheme, nbytes=nbytes, limit="fill", min_seconds=0.3)
    if torch is not None:
        t = torch.from_numpy(w)
        theirs = getattr(torch.nn.init, scheme)
        bench.measure(scheme, case, "torch.nn.init", lambda: theirs(t), nbytes=nbytes, limit="fill", min_seconds=0.3)
    bench.flush()
