"""Gradient-clipping rows of the benchmark harness: global-norm clip of 200 × 50 000 arrays.

The floor is a read-only pass over the gradients (the norm) and a read-write pass (the
scaling): 4 + 8 = 12 bytes per float32 element, compared with the in-place probe (a
read-modify-write stream, the slower of the two access patterns). Every timed call
scales (see _halving), as torch's clip_grad_norm_ always does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import clip
from ..reference import clip as ref
from .harness import Bench


def _halving(grads0: list[np.ndarray], clip_fn: Callable[[list[np.ndarray], float], object]) -> Callable[[], None]:
    """A call that clips grads to half their norm, so that every call scales (c = 0.5).

    Clipping converges (after one call the norm is at most b, and nothing more happens), so
    each call asks for half the current norm. After 40 halvings the arrays are restored
    from a copy (one copy every 40 calls, about 4 % of the timed work). The gradients are
    scaled by 1e6 (norm ~2e9) so that the norm stays far above torch's 1e-6 and no value
    nears the subnormals, which would slow every implementation down. Each call works on
    its own copy of grads0 (the harness interleaves the implementations of a case).
    clip_fn(gs, b) clips the arrays gs (or what shares their memory).
    """
    grads = [g.copy() for g in grads0]
    original = [g.copy() for g in grads0]
    norm0 = clip.global_norm(grads)
    state = {"k": 0}

    def call() -> None:
        if state["k"] == 40:
            for g, o in zip(grads, original):
                np.copyto(g, o)
            state["k"] = 0
        state["k"] += 1
        clip_fn(grads, norm0 * 0.5 ** state["k"])

    return call


def run(bench: Bench, torch: Any) -> None:
    count, size = (200, 50_000)
    rng = np.random.default_rng(0)
    grads = [1e6 * rng.standard_normal(size, dtype=np.float32) for _ in range(count)]
    n = count * size
    case = f"{count}x{size} f32 p=2"
    if bench.wants("clip_norm"):
        ours = _halving(grads, lambda gs, b: clip.clip_grad_norm_(gs, b))
        bench.measure(
            "clip_norm",
            case,
            "nndl_fast",
            ours,
            nbytes=12 * n,
            limit="inplace",
            note="norm pass (read) + scale pass (read-write)",
        )
        bench.measure(
            "clip_norm",
            case,
            "nndl_fast norm only",
            lambda: clip.global_norm(grads),
            nbytes=4 * n,
            limit="copy",
            note="the read-only pass alone",
        )
        bench.measure(
            "clip_norm",
            case,
            "numpy reference",
            _halving(grads, lambda gs, b: ref.clip_grad_norm_(gs, b)),
            nbytes=12 * n,
            limit="inplace",
            min_seconds=0.3,
        )
        if torch is not None:
            params = [torch.nn.Parameter(torch.zeros(size)) for _ in grads]

            def torch_clip(gs: list[np.ndarray], b: float) -> None:
                if params[0].grad is None or params[0].grad.data_ptr() != gs[0].ctypes.data:
                    for prm, g in zip(params, gs):
                        prm.grad = torch.from_numpy(g)  # shares memory with gs: the reset reaches it
                torch.nn.utils.clip_grad_norm_(params, b)

            bench.measure(
                "clip_norm",
                case,
                "torch clip_grad_norm_",
                _halving(grads, torch_clip),
                nbytes=12 * n,
                limit="inplace",
            )
    bench.flush()  # the clip_norm rows read grads; clip_value gets fresh values
    for g, o in zip(grads, [rng.standard_normal(size, dtype=np.float32) for _ in range(count)]):
        np.copyto(g, o)
    if bench.wants("clip_value"):
        bench.measure(
            "clip_value",
            case.replace(" p=2", ""),
            "nndl_fast",
            lambda: clip.clip_grad_value_(grads, 10.0),
            nbytes=8 * n,
            limit="inplace",
        )
        bench.measure(
            "clip_value",
            case.replace(" p=2", ""),
            "numpy reference",
            lambda: ref.clip_grad_value_(grads, -10.0, 10.0),
            nbytes=8 * n,
            limit="inplace",
        )
        if torch is not None:
            params = [torch.nn.Parameter(torch.zeros(size)) for _ in grads]
            for prm, g in zip(params, grads):
                prm.grad = torch.from_numpy(g.copy())
            bench.measure(
                "clip_value",
                case.replace(" p=2", ""),
                "torch clip_grad_value_",
                lambda: torch.nn.utils.clip_grad_value_(params, 10.0),
                nbytes=8 * n,
                limit="inplace",
            )
