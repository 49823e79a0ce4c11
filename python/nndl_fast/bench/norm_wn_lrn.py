"""Weight-norm (1.55) and local-response-norm (1.56) rows of the benchmark harness.

Kernels: ``wn_fwd`` (W from v, g), ``wn_fwd+bwd`` (W, then ∂L/∂v and ∂L/∂g), ``lrn_fwd``,
``lrn_fwd+bwd``. Each case is measured for ours, the NumPy reference
(:mod:`nndl_fast.reference`, float64 inside) and, when installed, torch's CPU path
(``torch._weight_norm`` — what ``parametrizations.weight_norm`` calls — and
``F.local_response_norm``, backward through autograd).

Minimal bytes per float32 element: forward reads the input once and writes the output
once (8 B, limit = STREAM copy); forward + backward adds reading ∂L/∂W (or ∂L/∂y), ``dy``, and the
input again and writing the gradient (12 B more, 20 B in all; limit = triad).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..norm import (
    local_response_norm,
    local_response_norm_backward,
    weight_norm,
    weight_norm_backward,
)
from ..reference import local_response_norm as ref_lrn
from ..reference import weight_norm as ref_wn
from .harness import Bench

WN_CASES = [(1024, 9 * 256), (4096, 4096)]
LRN_CASES = [(32, 96, 55, 55), (64, 256, 27, 27)]
LRN_QUICK = [(8, 96, 55, 55)]


def _wn(bench: Bench, torch: Any, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    v = rng.standard_normal(shape, dtype=np.float32)
    g = rng.standard_normal(shape[0], dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    w = np.empty_like(v)
    dv, dg = np.empty_like(v), np.empty_like(g)
    n = v.size
    case = "x".join(map(str, shape)) + " f32"
    if bench.wants("wn_fwd"):
        bench.measure(
            "wn_fwd",
            case,
            "nndl_fast",
            lambda: weight_norm(v, g, out=w),
            nbytes=8 * n,
            limit="copy",
        )
        bench.measure(
            "wn_fwd",
            case,
            "numpy reference",
            lambda: ref_wn.weight_norm(v, g),
            nbytes=8 * n,
            limit="copy",
            note="float64 inside",
        )
        if torch is not None:
            tv, tg = torch.from_numpy(v), torch.from_numpy(g).reshape(-1, *([1] * (v.ndim - 1)))
            bench.measure(
                "wn_fwd",
                case,
                "torch._weight_norm",
                lambda: torch._weight_norm(tv, tg, 0),
                nbytes=8 * n,
                limit="copy",
            )

    if bench.wants("wn_fwd+bwd"):

        def ours() -> None:
            weight_norm(v, g, out=w)
            weight_norm_backward(dy, v, g, out=(dv, dg))

        def numpy_ref() -> None:
            ref_wn.weight_norm(v, g)
            ref_wn.weight_norm_backward(dy, v, g)

        bench.measure("wn_fwd+bwd", case, "nndl_fast", ours, nbytes=20 * n, limit="triad")
        bench.measure(
            "wn_fwd+bwd",
            case,
            "numpy reference",
            numpy_ref,
            nbytes=20 * n,
            limit="triad",
            note="float64 inside",
        )
        if torch is not None:
            tv = torch.from_numpy(v).clone().requires_grad_(True)
            tg = torch.from_numpy(g).reshape(-1, *([1] * (v.ndim - 1))).clone().requires_grad_(True)
            tdy = torch.from_numpy(dy)

            def torch_autograd() -> None:
                tv.grad = tg.grad = None
                torch._weight_norm(tv, tg, 0).backward(tdy)

            bench.measure("wn_fwd+bwd", case, "torch autograd", torch_autograd, nbytes=20 * n, limit="triad")


def _lrn(bench: Bench, torch: Any, shape: tuple[int, ...], beta: float = 0.75) -> None:
    """AlexNet's hyper-parameters (β = 3/4: square roots); another β takes the general
    power (exp(−β ln d)), a case of its own."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    y, dx = np.empty_like(x), np.empty_like(x)
    n = x.size
    case = "x".join(map(str, shape)) + " f32" + ("" if beta == 0.75 else f" β={beta}")
    # torch rows use torch's convention (α/n), same cost.
    hp: dict[str, Any] = {"size": 5, "alpha": 1e-4, "beta": beta, "k": 2.0}
    if bench.wants("lrn_fwd"):
        bench.measure(
            "lrn_fwd",
            case,
            "nndl_fast",
            lambda: local_response_norm(x, **hp, out=y),
            nbytes=8 * n,
            limit="copy",
        )
        bench.measure(
            "lrn_fwd",
            case,
            "numpy reference",
            lambda: ref_lrn.local_response_norm(x, **hp),
            nbytes=8 * n,
            limit="copy",
            note="float64 inside",
            min_seconds=0.1,
        )
        if torch is not None:
            tx = torch.from_numpy(x)
            F = torch.nn.functional
            bench.measure(
                "lrn_fwd",
                case,
                "torch F.lrn",
                lambda: F.local_response_norm(tx, 5, 1e-4, beta, 2.0),
                nbytes=8 * n,
                limit="copy",
            )
    if bench.wants("lrn_fwd+bwd"):

        def ours() -> None:
            local_response_norm(x, **hp, out=y)
            local_response_norm_backward(dy, x, **hp, out=dx)

        def numpy_ref() -> None:
            ref_lrn.local_response_norm(x, **hp)
            ref_lrn.local_response_norm_backward(dy, x, **hp)

        bench.measure("lrn_fwd+bwd", case, "nndl_fast", ours, nbytes=20 * n, limit="triad")
        bench.measure(
            "lrn_fwd+bwd",
            case,
            "numpy reference",
            numpy_ref,
            nbytes=20 * n,
            limit="triad",
            note="float64 inside",
            min_seconds=0.1,
        )
        if torch is not None:
            tx = torch.from_numpy(x).clone().requires_grad_(True)
            tdy = torch.from_numpy(dy)
            F = torch.nn.functional

            def torch_autograd() -> None:
                tx.grad = None
                F.local_response_norm(tx, 5, 1e-4, beta, 2.0).backward(tdy)

            bench.measure("lrn_fwd+bwd", case, "torch autograd", torch_autograd, nbytes=20 * n, limit="triad")


def run(bench: Bench, torch: Any) -> None:
    for wn_shape in WN_CASES[:1] if bench.quick else WN_CASES:
        _wn(bench, torch, wn_shape)
    for lrn_shape in LRN_QUICK if bench.quick else LRN_CASES:
        _lrn(bench, torch, lrn_shape)
    if not bench.quick:
        _lrn(bench, torch, LRN_CASES[0], beta=0.6)
