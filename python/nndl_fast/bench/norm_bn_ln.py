"""Batch-norm and layer-norm rows of the benchmark harness.

Bytes are the floor each operation must move (float32):
  BN training forward   read x twice (statistics, then output), write y        3·|x|
  BN training backward  read x and dy twice (reductions, then dx), write dx    5·|x|
  LN forward            read x, write y (each row's second read hits cache)    2·|x|
  LN backward           read x and dy, write dx                                 3·|x|
Modes (in the note): "out=" — ours into preallocated outputs and workspace (what a training
loop does; nothing allocated per step); "alloc" — fresh outputs each call, as torch's
aten ops in an ordinary process (so page faults on the fresh buffers are part of the time).
torch rows call torch.ops.aten.native_batch_norm / native_batch_norm_backward and
native_layer_norm / native_layer_norm_backward directly (no autograd bookkeeping).
Rows can pass 100 % of the probe: part of BN's second read of x is served by the L3 cache.
Every row is compared with the STREAM-triad probe (two reads, one ordinary write: the same
kind of traffic; the copy probe may be served by a memcpy with non-temporal stores).
"""

from __future__ import annotations

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
from .harness import Bench

BN_CASES = [(64, 256, 28, 28), (8192, 1024)]
LN_CASES = [(8192, 1024), (65536, 768)]


def _case(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def run_bn(bench: Bench, torch: Any) -> None:
    rng = np.random.default_rng(0)
    for shape in BN_CASES:
        _bn_case(bench, torch, rng, shape)


def _bn_case(bench: Bench, torch: Any, rng: np.random.Generator, shape: tuple[int, ...]) -> None:
    c = shape[1]
    x = (rng.standard_normal(shape, dtype=np.float32) + 1.0).astype(np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    y, dx = np.empty_like(x), np.empty_like(x)
    sm, si = np.empty(c, np.float32), np.empty(c, np.float32)
    dg, db = np.empty(c, np.float32), np.empty(c, np.float32)
    ws = batch_norm_workspace(shape)
    n = x.nbytes
    case = _case(shape)

    def fwd():
        batch_norm_forward(
            x, gamma, beta, rm, rv, out=y, save_mean=sm, save_invstd=si, workspace=ws
        )

    def bwd():
        batch_norm_backward(dy, x, sm, si, gamma, dx=dx, dgamma=dg, dbeta=db, workspace=ws)

    def fwd_bwd():
        fwd()
        bwd()

    def fwd_bwd_alloc():
        f = batch_norm_forward(x, gamma, beta, rm, rv)
        batch_norm_backward(dy, x, f.save_mean, f.save_invstd, gamma)

    if bench.wants("bn_train"):
        bench.measure(
            "bn_train",
            case,
            "nndl_fast",
            fwd_bwd,
            nbytes=8 * n,
            limit="triad",
            note="fwd+bwd, out= (preallocated)",
        )
        bench.measure(
            "bn_train",
            case,
            "nndl_fast alloc",
            fwd_bwd_alloc,
            nbytes=8 * n,
            limit="triad",
            note="fwd+bwd, fresh outputs",
        )
    if bench.wants("bn_fwd"):
        bench.measure("bn_fwd", case, "nndl_fast", fwd, nbytes=3 * n, limit="triad", note="out=")
    if bench.wants("bn_bwd"):
        fwd()
        bench.measure("bn_bwd", case, "nndl_fast", bwd, nbytes=5 * n, limit="triad", note="out=")
    if not bench.quick and bench.wants("bn_train"):

        def ref():
            _, mu, inv, _, _ = ref_bn.batch_norm_forward(x, gamma, beta, rm, rv)
            ref_bn.batch_norm_backward(dy, x, mu, inv, gamma)

        bench.measure(
            "bn_train",
            case,
            "numpy ref (f64)",
            ref,
            nbytes=8 * n,
            limit="triad",
            min_seconds=0.5,
            note="fwd+bwd",
        )
    if torch is None:
        return
    tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
    tg, tb = torch.from_numpy(gamma), torch.from_numpy(beta)
    trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    aten = torch.ops.aten
    saved = {}

    def t_fwd():
        saved["r"] = aten.native_batch_norm(tx, tg, tb, trm, trv, True, 0.1, 1e-5)

    def t_bwd():
        _, m, s = saved["r"]
        aten.native_batch_norm_backward(tdy, tx, tg, trm, trv, m, s, True, 1e-5, [True, True, True])

    def t_fwd_bwd():
        t_fwd()
        t_bwd()

    with torch.no_grad():
        if bench.wants("bn_train"):
            bench.measure(
                "bn_train",
                case,
                "torch aten",
                t_fwd_bwd,
                nbytes=8 * n,
                limit="triad",
                note="native_batch_norm(+_backward), alloc",
            )
        if bench.wants("bn_fwd"):
            bench.measure(
                "bn_fwd", case, "torch aten", t_fwd, nbytes=3 * n, limit="triad", note="alloc"
            )
        if bench.wants("bn_bwd"):
            t_fwd()
            bench.measure(
                "bn_bwd", case, "torch aten", t_bwd, nbytes=5 * n, limit="triad", note="alloc"
            )


def run_ln(bench: Bench, torch: Any) -> None:
    rng = np.random.default_rng(1)
    for shape in LN_CASES:
        _ln_case(bench, torch, rng, shape)


def _ln_case(bench: Bench, torch: Any, rng: np.random.Generator, shape: tuple[int, ...]) -> None:
    d = shape[-1]
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    gamma = rng.uniform(0.5, 1.5, d).astype(np.float32)
    beta = rng.standard_normal(d).astype(np.float32)
    y, dx = np.empty_like(x), np.empty_like(x)
    sm, sr = np.empty(shape[0], np.float32), np.empty(shape[0], np.float32)
    dg, db = np.empty(d, np.float32), np.empty(d, np.float32)
    ws = layer_norm_workspace(shape, d)
    n = x.nbytes
    case = _case(shape)

    def fwd():
        layer_norm_forward(x, d, gamma, beta, out=y, save_mean=sm, save_rstd=sr)

    def bwd():
        layer_norm_backward(dy, x, sm, sr, d, gamma, dx=dx, dgamma=dg, dbeta=db, workspace=ws)

    def fwd_bwd():
        fwd()
        bwd()

    def fwd_bwd_alloc():
        f = layer_norm_forward(x, d, gamma, beta)
        layer_norm_backward(dy, x, f.save_mean, f.save_rstd, d, gamma)

    if bench.wants("ln_train"):
        bench.measure(
            "ln_train",
            case,
            "nndl_fast",
            fwd_bwd,
            nbytes=5 * n,
            limit="triad",
            note="fwd+bwd, out= (preallocated)",
        )
        bench.measure(
            "ln_train",
            case,
            "nndl_fast alloc",
            fwd_bwd_alloc,
            nbytes=5 * n,
            limit="triad",
            note="fwd+bwd, fresh outputs",
        )
    if bench.wants("ln_fwd"):
        bench.measure("ln_fwd", case, "nndl_fast", fwd, nbytes=2 * n, limit="triad", note="out=")
    if bench.wants("ln_bwd"):
        fwd()
        bench.measure("ln_bwd", case, "nndl_fast", bwd, nbytes=3 * n, limit="triad", note="out=")
    if not bench.quick and bench.wants("ln_train"):

        def ref():
            _, mu, rs = ref_ln.layer_norm_forward(x, 1, gamma, beta)
            ref_ln.layer_norm_backward(dy, x, mu, rs, 1, gamma)

        bench.measure(
            "ln_train",
            case,
            "numpy ref (f64)",
            ref,
            nbytes=5 * n,
            limit="triad",
            min_seconds=0.5,
            note="fwd+bwd",
        )
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

    def t_fwd_bwd():
        t_fwd()
        t_bwd()

    with torch.no_grad():
        if bench.wants("ln_train"):
            bench.measure(
                "ln_train",
                case,
                "torch aten",
                t_fwd_bwd,
                nbytes=5 * n,
                limit="triad",
                note="native_layer_norm(+_backward), alloc",
            )
        if bench.wants("ln_fwd"):
            bench.measure(
                "ln_fwd", case, "torch aten", t_fwd, nbytes=2 * n, limit="triad", note="alloc"
            )
        if bench.wants("ln_bwd"):
            t_fwd()
            bench.measure(
                "ln_bwd", case, "torch aten", t_bwd, nbytes=3 * n, limit="triad", note="alloc"
            )


def run(bench: Bench, torch: Any) -> None:
    run_bn(bench, torch)
    run_ln(bench, torch)
