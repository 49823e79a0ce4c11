"""Batch-norm and layer-norm rows of the benchmark harness.

Bytes are the floor each operation must move (float32):
  BN training forward   read x twice (statistics, then output), write y        3·|x|
  BN training backward  read x and dy twice (reductions, then dx), write dx    5·|x|
  LN forward            read x, write y (each row's second read hits cache)    2·|x|
  LN backward           read x and dy, write dx                                 3·|x|
Modes (in the note):
  "out="        ours into preallocated outputs and workspace (what a training loop does;
                nothing allocated per step).
  "alloc"       fresh outputs each call.
  "torch aten"  torch in this process. Whether its fresh outputs page-fault depends on
                glibc's state, i.e. on what this process ran before: run alone
                (--only bn / ln) each freed output of 32 MB or more goes back to the OS
                and every call faults (and zeroes) its outputs anew; after the other suites
                the heap may hold free blocks that large, and it does not.
  "fresh proc"  a new interpreter with the default allocator running only the training
                step: an ordinary process, deterministically (it faults as above).
  "tuned alloc" a new interpreter with MALLOC_MMAP_MAX_=0 and a huge
                MALLOC_TRIM_THRESHOLD_: freed outputs stay in the heap and are reused, so
                steady-state calls do not fault (torch's best case on this machine).
                Each subprocess times torch, ours ("nndl_fast fresh proc" / "nndl_fast
                tuned proc", out=) and its own triad probe in the same interleaved rounds:
                a torch row's "nndl_fast is Nx faster" is against our row above it, its % limit against
                that probe, so the ratio holds while the machine's bandwidth drifts.
  "1st call"    the first full-size fwd+bwd call in the fresh subprocess (after a tiny
                warm-up op, so thread-pool start-up is not counted): one sample, noisy.
torch rows call torch.ops.aten.native_batch_norm / native_batch_norm_backward and
native_layer_norm / native_layer_norm_backward directly (no autograd bookkeeping).
Rows can pass 100 % of the probe: part of BN's second read of x is served by the L3 cache.
Every row is compared with the STREAM-triad probe (two reads, one ordinary write: the same
kind of traffic; the copy probe may be served by a memcpy with non-temporal stores). Large
outputs of ours are written with streaming stores (no read of the destination), so the
triad probe's write costs more than ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..norm import (
    batch_norm_backward,
    batch_norm_forward,
    batch_norm_workspace,
    layer_norm_backward,
    layer_norm_forward,
    layer_norm_workspace,
)
from ..reference import batch_norm as ref_bn
from ..reference import layer_norm as ref_ln
from .harness import Bench, time_interleaved

# BN: NCHW, (N, C), and channels-last (N, H, W, C) with few channels (rows folded, see
# norm_plan.hpp; torch gets the same memory as a channels_last tensor).
BN_CASES = [((64, 256, 28, 28), False), ((8192, 1024), False), ((32, 112, 112, 32), True)]
LN_CASES = [(8192, 1024), (65536, 768)]


def _case(shape: tuple[int, ...], channels_last: bool = False) -> str:
    return "x".join(map(str, shape)) + (" NHWC" if channels_last else "")


def _placed(shape: tuple[int, ...], slot: int) -> np.ndarray:
    """An uninitialised float32 array placed as numpy places large arrays in an ordinary
    process (each its own mmap: 16 bytes past a page boundary, each next array 4 KiB lower
    modulo 2 MiB), in whichever process this runs.

    With MALLOC_MMAP_MAX_=0 (the tuned torch process) numpy's arrays land on the heap next
    to one another instead, and the relative placement of a pass's inputs and output changes
    its speed here noticeably (docs/performance-notes.md, "Batch norm"). Placing the case's
    big arrays the same way in both processes keeps that out of the comparison.
    """
    nbytes = int(np.prod(shape)) * 4
    align = 2 << 20
    offset = align - 4096 * (slot + 1) + 16
    buf = np.empty(nbytes + 2 * align, np.uint8)
    start = (-buf.ctypes.data) % align + offset
    return buf[start : start + nbytes].view(np.float32).reshape(shape)


def _filled(shape: tuple[int, ...], slot: int, values: np.ndarray) -> np.ndarray:
    a = _placed(shape, slot)
    a[...] = values
    return a


def run_bn(bench: Bench, torch: Any, children: dict | None = None) -> None:
    rng = np.random.default_rng(0)
    for shape, cl in BN_CASES:
        _bn_case(bench, torch, rng, shape, cl, children or {})


def _bn_setup(rng: np.random.Generator, shape: tuple[int, ...], cl: bool) -> dict[str, Any]:
    """Inputs of a BN training step of `shape` (channels last if cl) and our fwd / bwd into
    preallocated buffers; x_t, dy_t: the (N, C, ...) views torch reads (channels_last
    strides if cl)."""
    c = shape[-1] if cl else shape[1]
    x = _filled(shape, 0, rng.standard_normal(shape, dtype=np.float32) + 1.0)
    dy = _filled(shape, 1, rng.standard_normal(shape, dtype=np.float32))
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    y, dx = _placed(shape, 2), _placed(shape, 3)
    sm, si = np.empty(c, np.float32), np.empty(c, np.float32)
    dg, db = np.empty(c, np.float32), np.empty(c, np.float32)
    ws = batch_norm_workspace(shape, channels_last=cl)

    def fwd() -> None:
        batch_norm_forward(x, gamma, beta, rm, rv, out=(y, sm, si), workspace=ws, channels_last=cl)

    def bwd() -> None:
        batch_norm_backward(dy, x, sm, si, gamma, out=(dx, dg, db), workspace=ws, channels_last=cl)

    def nchw(a: np.ndarray) -> np.ndarray:
        return np.moveaxis(a, -1, 1) if cl else a

    return {
        "x": x,
        "dy": dy,
        "x_t": nchw(x),
        "dy_t": nchw(dy),
        "gamma": gamma,
        "beta": beta,
        "rm": rm,
        "rv": rv,
        "fwd": fwd,
        "bwd": bwd,
    }


def _bn_case(
    bench: Bench, torch: Any, rng: np.random.Generator, shape: tuple[int, ...], cl: bool, children: dict
) -> None:
    s = _bn_setup(rng, shape, cl)
    x, dy, gamma, beta, rm, rv = (s[k] for k in ("x", "dy", "gamma", "beta", "rm", "rv"))
    fwd, bwd = s["fwd"], s["bwd"]
    n = x.nbytes
    case = _case(shape, cl)

    def fwd_bwd_alloc():
        f = batch_norm_forward(x, gamma, beta, rm, rv, channels_last=cl)
        batch_norm_backward(dy, x, f.save_mean, f.save_rstd, gamma, channels_last=cl)

    def ref():
        _, mu, inv, _, _ = ref_bn.batch_norm_forward(x, gamma, beta, rm, rv, channels_last=cl)
        ref_bn.batch_norm_backward(dy, x, mu, inv, gamma, channels_last=cl)

    _our_rows(bench, "bn", case, fwd, bwd, fwd_bwd_alloc, ref, fwd_bytes=3 * n, bwd_bytes=5 * n)
    if torch is None:
        return
    tx, tdy = torch.from_numpy(s["x_t"]), torch.from_numpy(s["dy_t"])
    tg, tb = torch.from_numpy(gamma), torch.from_numpy(beta)
    trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    aten = torch.ops.aten
    saved = {}

    def t_fwd():
        saved["r"] = aten.native_batch_norm(tx, tg, tb, trm, trv, True, 0.1, 1e-5)

    def t_bwd():
        _, m, s = saved["r"]
        aten.native_batch_norm_backward(tdy, tx, tg, trm, trv, m, s, True, 1e-5, [True, True, True])

    _torch_rows(
        bench,
        children,
        "bn",
        case,
        t_fwd,
        t_bwd,
        fwd_bytes=3 * n,
        bwd_bytes=5 * n,
        note="native_batch_norm(+_backward), alloc, this process",
    )


def run_ln(bench: Bench, torch: Any, children: dict | None = None) -> None:
    rng = np.random.default_rng(1)
    for shape in LN_CASES:
        _ln_case(bench, torch, rng, shape, children or {})


def _ln_setup(rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
    """Inputs of an LN training step of `shape` and our fwd / bwd into preallocated buffers."""
    d = shape[-1]
    x = _filled(shape, 0, rng.standard_normal(shape, dtype=np.float32))
    dy = _filled(shape, 1, rng.standard_normal(shape, dtype=np.float32))
    gamma = rng.uniform(0.5, 1.5, d).astype(np.float32)
    beta = rng.standard_normal(d).astype(np.float32)
    y, dx = _placed(shape, 2), _placed(shape, 3)
    sm, sr = np.empty(shape[0], np.float32), np.empty(shape[0], np.float32)
    dg, db = np.empty(d, np.float32), np.empty(d, np.float32)
    ws = layer_norm_workspace(shape, d)

    def fwd() -> None:
        layer_norm_forward(x, d, gamma, beta, out=(y, sm, sr))

    def bwd() -> None:
        layer_norm_backward(dy, x, sm, sr, d, gamma, out=(dx, dg, db), workspace=ws)

    return {"x": x, "dy": dy, "gamma": gamma, "beta": beta, "fwd": fwd, "bwd": bwd}


def _ln_case(bench: Bench, torch: Any, rng: np.random.Generator, shape: tuple[int, ...], children: dict) -> None:
    d = shape[-1]
    s = _ln_setup(rng, shape)
    x, dy, gamma, beta = (s[k] for k in ("x", "dy", "gamma", "beta"))
    fwd, bwd = s["fwd"], s["bwd"]
    n = x.nbytes
    case = _case(shape)

    def fwd_bwd_alloc():
        f = layer_norm_forward(x, d, gamma, beta)
        layer_norm_backward(dy, x, f.save_mean, f.save_rstd, d, gamma)

    def ref():
        _, mu, rs = ref_ln.layer_norm_forward(x, 1, gamma, beta)
        ref_ln.layer_norm_backward(dy, x, mu, rs, 1, gamma)

    _our_rows(bench, "ln", case, fwd, bwd, fwd_bwd_alloc, ref, fwd_bytes=2 * n, bwd_bytes=3 * n)
    if torch is None:
        return
    tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
    tg, tb = torch.from_numpy(gamma), torch.from_numpy(beta)
    aten = torch.ops.aten
    saved = {}

    def t_fwd():
        saved["r"] = aten.native_layer_norm(tx, [d], tg, tb, 1e-5)

    def t_bwd():
        _, m, r = saved["r"]
        aten.native_layer_norm_backward(tdy, tx, [d], m, r, tg, tb, [True, True, True])

    _torch_rows(
        bench,
        children,
        "ln",
        case,
        t_fwd,
        t_bwd,
        fwd_bytes=2 * n,
        bwd_bytes=3 * n,
        note="native_layer_norm(+_backward), alloc, this process",
    )


# Layer norm over the channel axis of NCHW (Keras's axis=1): our strided kernel in place; the
# reference and torch (which has no such layer norm) move the axis last and back, with copies.
LN_AXIS_SHAPE = (32, 64, 28, 28)


def run_ln_axis(bench: Bench, torch: Any) -> None:
    shape = LN_AXIS_SHAPE
    if not (bench.wants("ln_axis1_fwd") or bench.wants("ln_axis1_bwd")):
        return
    rng = np.random.default_rng(2)
    c = shape[1]
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    y, dx = np.empty_like(x), np.empty_like(x)
    lead = (shape[0],) + shape[2:]
    sm, sr = np.empty(lead, np.float32), np.empty(lead, np.float32)
    dg, db = np.empty(c, np.float32), np.empty(c, np.float32)
    ws = layer_norm_workspace(shape, axis=1, convention="keras")
    kw: dict[str, Any] = {"axis": 1, "convention": "keras"}
    n = x.nbytes
    case = _case(shape) + " axis=1"
    if bench.wants("ln_axis1_fwd"):
        bench.measure(
            "ln_axis1_fwd",
            case,
            "nndl_fast",
            lambda: layer_norm_forward(x, None, gamma, beta, out=(y, sm, sr), **kw),
            nbytes=2 * n,
            limit="triad",
            note="strided, no transpose",
        )
        bench.measure(
            "ln_axis1_fwd",
            case,
            "numpy reference",
            lambda: ref_ln.layer_norm_forward(x, None, gamma, beta, eps=1e-3, axes=(1,)),
            nbytes=2 * n,
            limit="triad",
            min_seconds=0.3,
        )
        if torch is not None:
            tx, tg, tb = torch.from_numpy(x), torch.from_numpy(gamma), torch.from_numpy(beta)
            bench.measure(
                "ln_axis1_fwd",
                case,
                "torch movedim+layer_norm",
                lambda: (
                    torch.nn.functional.layer_norm(tx.movedim(1, -1), (c,), tg, tb, 1e-3).movedim(-1, 1).contiguous()
                ),
                nbytes=2 * n,
                limit="triad",
                note="transposes copied",
            )
        bench.flush()
    if bench.wants("ln_axis1_bwd"):
        layer_norm_forward(x, None, gamma, beta, out=(y, sm, sr), **kw)
        bench.measure(
            "ln_axis1_bwd",
            case,
            "nndl_fast",
            lambda: layer_norm_backward(dy, x, sm, sr, None, gamma, out=(dx, dg, db), workspace=ws, **kw),
            nbytes=3 * n,
            limit="triad",
        )
        bench.measure(
            "ln_axis1_bwd",
            case,
            "numpy reference",
            lambda: ref_ln.layer_norm_backward(dy, x, sm, sr, None, gamma, axes=(1,)),
            nbytes=3 * n,
            limit="triad",
            min_seconds=0.3,
        )
        if torch is not None:
            txr = torch.from_numpy(x).movedim(1, -1).contiguous().requires_grad_()
            tdy = torch.from_numpy(dy)
            tg = torch.from_numpy(gamma).requires_grad_()
            tb = torch.from_numpy(beta).requires_grad_()

            def t_bwd() -> None:
                out = torch.nn.functional.layer_norm(txr, (c,), tg, tb, 1e-3).movedim(-1, 1)
                out.backward(tdy)

            bench.measure(
                "ln_axis1_bwd", case, "torch movedim+layer_norm", t_bwd, nbytes=3 * n, limit="triad", note="fwd+bwd"
            )


# --- torch in subprocesses: a fresh ordinary process, and one with a tuned allocator -----

TUNED_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 40)}


def _add_child_rows(bench: Bench, children: dict, kernel: str, case: str, nbytes: int) -> None:
    # Each subprocess timed ours and torch's steady state interleaved with its own triad
    # probe: a torch row's "nndl_fast is Nx faster" is against ours from those same rounds.
    for mode, label, note in (
        ("fresh", "fresh proc", "subprocess, default allocator (an ordinary process)"),
        ("tuned", "tuned alloc", "subprocess, MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2^40"),
    ):
        res = children.get(mode, {}).get(f"{kernel} {case}")
        if not res:
            continue
        bench.add(
            kernel,
            case,
            f"nndl_fast {label.split()[0]} proc",
            res["ours"],
            nbytes=nbytes,
            limit="triad",
            limit_gbps=res["triad_gbps"],
            note=f"fwd+bwd, out=, in the {mode} subprocess",
        )
        bench.add(
            kernel,
            case,
            f"torch aten {label}",
            res["steady"],
            nbytes=nbytes,
            limit="triad",
            limit_gbps=res["triad_gbps"],
            vs_seconds=res["ours"],
            note=f"{note}; compared with the row above",
        )
        if mode == "fresh":
            bench.add(
                kernel,
                case,
                "torch aten 1st call",
                res["first"],
                nbytes=nbytes,
                limit="triad",
                note="first fwd+bwd call of the fresh subprocess (one sample)",
            )


def _torch_child(bench: Bench, kernels: list[str], env_extra: dict[str, str]) -> dict:
    """Runs _child_main in a fresh interpreter (environment + env_extra); {"kernel case": {...}}."""
    if not kernels:
        return {}
    pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, **env_extra)
    env["PYTHONPATH"] = os.pathsep.join([pkg_root, env.get("PYTHONPATH", "")])
    args = {"kernels": kernels, "threads": bench.threads, "min_seconds": bench.min_seconds, "repeats": bench.repeats}
    try:
        out = subprocess.run(
            [sys.executable, "-m", "nndl_fast.bench.norm_bn_ln", json.dumps(args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, OSError, ValueError, IndexError) as e:
        print(f"# torch subprocess ({env_extra or 'default allocator'}) failed, rows skipped: {e}", flush=True)
        return {}


def _steps(
    torch: Any, kernel: str, shape: tuple[int, ...], cl: bool = False
) -> tuple[Callable[[], None], Callable[[], None]]:
    """(ours, torch's) training fwd+bwd of `kernel` on the same random data of `shape`
    (BN: channels last if cl): ours into preallocated buffers, torch's aten ops allocating
    their outputs."""
    aten = torch.ops.aten
    rng = np.random.default_rng(2)
    if kernel == "bn_train":
        s = _bn_setup(rng, shape, cl)
        x, dy, g, b = (torch.from_numpy(s[k]) for k in ("x_t", "dy_t", "gamma", "beta"))
        rm, rv = torch.from_numpy(s["rm"].copy()), torch.from_numpy(s["rv"].copy())

        def t_step() -> None:
            _, m, si = aten.native_batch_norm(x, g, b, rm, rv, True, 0.1, 1e-5)
            aten.native_batch_norm_backward(dy, x, g, rm, rv, m, si, True, 1e-5, [True, True, True])

    else:
        s = _ln_setup(rng, shape)
        x, dy, g, b = (torch.from_numpy(s[k]) for k in ("x", "dy", "gamma", "beta"))
        d = shape[-1]

        def t_step() -> None:
            _, m, r = aten.native_layer_norm(x, [d], g, b, 1e-5)
            aten.native_layer_norm_backward(dy, x, [d], m, r, g, b, [True, True, True])

    def ours() -> None:
        s["fwd"]()
        s["bwd"]()

    return ours, t_step


def _child_main(args: dict) -> None:
    import torch

    from .. import _core, set_num_threads

    set_num_threads(int(args["threads"]))
    torch.set_num_threads(int(args["threads"]))
    aten = torch.ops.aten
    n = 64_000_000  # the main process's triad probe (Bench.measure_probes)
    pa, pb, pc = np.full(n, 1.0, np.float32), np.full(n, 2.0, np.float32), np.zeros(n, np.float32)

    def triad() -> None:
        _core.stream_triad(pc, pa, pb, 3.0)

    res = {}
    with torch.no_grad():
        small = torch.randn(4, 3, 2, 2)  # start torch's thread pool etc. before timing
        aten.native_batch_norm(small, None, None, None, None, True, 0.1, 1e-5)
        aten.native_layer_norm(small, [2], None, None, 1e-5)
        for kernel in args["kernels"]:
            for shape, cl in BN_CASES if kernel == "bn_train" else [(s, False) for s in LN_CASES]:
                ours, t_step = _steps(torch, kernel, shape, cl)
                t0 = time.perf_counter()
                t_step()
                first = time.perf_counter() - t0
                per_round = args["min_seconds"] / args["repeats"]
                t_ours, t_torch, t_triad = time_interleaved(
                    [ours, t_step, triad],
                    seconds_per_round=[per_round, per_round, 0.1 / args["repeats"]],
                    repeats=args["repeats"],
                )
                res[f"{kernel} {_case(shape, cl)}"] = {
                    "first": first,
                    "steady": t_torch,
                    "ours": t_ours,
                    "triad_gbps": 12 * n / t_triad / 1e9,
                }
    print(json.dumps(res))


def _our_rows(
    bench: Bench,
    prefix: str,
    case: str,
    fwd: Callable[[], None],
    bwd: Callable[[], None],
    fwd_bwd_alloc: Callable[[], None],
    ref: Callable[[], None],
    *,
    fwd_bytes: int,
    bwd_bytes: int,
) -> None:
    """Our rows of a case: fwd+bwd into out= buffers and with fresh outputs, then fwd, bwd;
    then the NumPy reference's fwd+bwd (float64; skipped in --quick)."""

    def fwd_bwd() -> None:
        fwd()
        bwd()

    if bench.wants(f"{prefix}_train"):
        bench.measure(
            f"{prefix}_train",
            case,
            "nndl_fast",
            fwd_bwd,
            nbytes=fwd_bytes + bwd_bytes,
            limit="triad",
            note="fwd+bwd, out= (preallocated)",
        )
        bench.measure(
            f"{prefix}_train",
            case,
            "nndl_fast alloc",
            fwd_bwd_alloc,
            nbytes=fwd_bytes + bwd_bytes,
            limit="triad",
            note="fwd+bwd, fresh outputs",
        )
    if bench.wants(f"{prefix}_fwd"):
        bench.measure(f"{prefix}_fwd", case, "nndl_fast", fwd, nbytes=fwd_bytes, limit="triad", note="out=")
    if bench.wants(f"{prefix}_bwd"):
        fwd()  # the saved statistics bwd reads
        bench.measure(f"{prefix}_bwd", case, "nndl_fast", bwd, nbytes=bwd_bytes, limit="triad", note="out=")
    if not bench.quick and bench.wants(f"{prefix}_train"):
        bench.measure(
            f"{prefix}_train",
            case,
            "numpy ref (f64)",
            ref,
            nbytes=fwd_bytes + bwd_bytes,
            limit="triad",
            min_seconds=0.5,
            note="fwd+bwd",
        )


def _torch_rows(
    bench: Bench,
    children: dict,
    prefix: str,
    case: str,
    t_fwd: Callable[[], None],
    t_bwd: Callable[[], None],
    *,
    fwd_bytes: int,
    bwd_bytes: int,
    note: str,
) -> None:
    """torch's rows of a case: fwd+bwd (in process, and the subprocess rows), fwd, bwd."""

    def t_fwd_bwd() -> None:
        t_fwd()
        t_bwd()

    if bench.wants(f"{prefix}_train"):
        bench.measure(
            f"{prefix}_train", case, "torch aten", t_fwd_bwd, nbytes=fwd_bytes + bwd_bytes, limit="triad", note=note
        )
        _add_child_rows(bench, children, f"{prefix}_train", case, fwd_bytes + bwd_bytes)
    if bench.wants(f"{prefix}_fwd"):
        bench.measure(f"{prefix}_fwd", case, "torch aten", t_fwd, nbytes=fwd_bytes, limit="triad", note="alloc")
    if bench.wants(f"{prefix}_bwd"):
        t_fwd()  # the saved statistics t_bwd reads
        bench.measure(f"{prefix}_bwd", case, "torch aten", t_bwd, nbytes=bwd_bytes, limit="triad", note="alloc")


def run(bench: Bench, torch: Any) -> None:
    children: dict[str, dict] = {}
    if torch is not None:
        kernels = [k for k in ("bn_train", "ln_train") if bench.wants(k)]
        children = {"fresh": _torch_child(bench, kernels, {}), "tuned": _torch_child(bench, kernels, TUNED_ENV)}
    run_bn(bench, torch, children)
    run_ln(bench, torch, children)
    run_ln_axis(bench, torch)


if __name__ == "__main__":
    _child_main(json.loads(sys.argv[1]))
