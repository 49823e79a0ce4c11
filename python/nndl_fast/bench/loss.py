"""Loss rows of the benchmark harness: softmax cross-entropy with label smoothing, and the
distillation loss, each forward + backward, float32, at (4096, 32 000), (65 536, 1 000) and
(256, 10).

Floor: cross-entropy reads the logits once and writes the gradient once, 8 bytes per element
(the copy probe); distillation reads the student's and the teacher's logits and writes the
gradient, 12 bytes per element (the triad probe). At (256, 10) the time is per-call overhead.
torch's rows are ``F.cross_entropy(label_smoothing=0.1)`` and ``α·T²·F.kl_div(log_target=True)
+ (1 − α)·F.cross_entropy``, each with ``.backward()``; the NumPy row is the float64
reference, up to 10⁸ elements (10⁷ in --quick runs): beyond, it takes tens of seconds per call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import loss
from ..reference import loss as ref
from .harness import Bench

CASES = ((4096, 32_000), (65_536, 1_000), (256, 10))
SMOOTHING = 0.1
TEMPERATURE, ALPHA = 2.0, 0.5


def _torch_ce(torch: Any, z: np.ndarray, y: np.ndarray):
    zt = torch.from_numpy(z).requires_grad_(True)
    yt = torch.from_numpy(y)

    def call() -> None:
        zt.grad = None
        torch.nn.functional.cross_entropy(zt, yt, label_smoothing=SMOOTHING).backward()

    return call


def _torch_kd(torch: Any, s: np.ndarray, t: np.ndarray, y: np.ndarray):
    F = torch.nn.functional
    st = torch.from_numpy(s).requires_grad_(True)
    tt, yt = torch.from_numpy(t), torch.from_numpy(y)

    def call() -> None:
        st.grad = None
        kl = F.kl_div(F.log_softmax(st / TEMPERATURE, 1), F.log_softmax(tt / TEMPERATURE, 1), reduction="batchmean",
                      log_target=True)  # fmt: skip
        (ALPHA * TEMPERATURE**2 * kl + (1 - ALPHA) * F.cross_entropy(st, yt)).backward()

    return call


def run(bench: Bench, torch: Any) -> None:
    rng = np.random.default_rng(0)
    for N, K in CASES:
        if bench.wants("ce_fwd_bwd") or bench.wants("kd_fwd_bwd"):
            _one_case(bench, torch, rng, N, K)


def _one_case(bench: Bench, torch: Any, rng: np.random.Generator, N: int, K: int) -> None:
    z = rng.standard_normal((N, K), dtype=np.float32)
    y = rng.integers(0, K, N)
    d = np.empty_like(z)
    case = f"({N}, {K}) f32"
    with_ref = N * K <= (10**7 if bench.quick else 10**8)  # the float64 reference takes seconds per call beyond
    if bench.wants("ce_fwd_bwd"):
        bench.measure(
            "ce_fwd_bwd",
            case,
            "nndl_fast",
            lambda: loss.softmax_cross_entropy(z, y, label_smoothing=SMOOTHING, convention="torch", dlogits=d),
            nbytes=8 * N * K,
            limit="copy",
            note="loss + dlogits, ls=0.1",
        )
        if with_ref:
            bench.measure(
                "ce_fwd_bwd",
                case,
                "numpy (reference)",
                lambda: ref.softmax_cross_entropy(z, y, label_smoothing=SMOOTHING, convention="torch"),
                nbytes=8 * N * K,
                limit="copy",
                min_seconds=0.1,
                note="float64",
            )
        if torch is not None:
            bench.measure(
                "ce_fwd_bwd",
                case,
                "torch cross_entropy",
                _torch_ce(torch, z, y),
                nbytes=8 * N * K,
                limit="copy",
                min_seconds=0.3,
                note="label_smoothing=0.1, .backward()",
            )
        bench.flush()
    if bench.wants("kd_fwd_bwd"):
        t = rng.standard_normal((N, K), dtype=np.float32)
        kd_case = case + " T=2"
        bench.measure(
            "kd_fwd_bwd",
            kd_case,
            "nndl_fast",
            lambda: loss.distillation_loss(z, t, y, temperature=TEMPERATURE, alpha=ALPHA, dstudent=d),
            nbytes=12 * N * K,
            limit="triad",
            note="loss + dstudent",
        )
        if with_ref:
            bench.measure(
                "kd_fwd_bwd",
                kd_case,
                "numpy (reference)",
                lambda: ref.distillation_loss(z, t, y, temperature=TEMPERATURE, alpha=ALPHA),
                nbytes=12 * N * K,
                limit="triad",
                min_seconds=0.1,
                note="float64",
            )
        if torch is not None:
            bench.measure(
                "kd_fwd_bwd",
                kd_case,
                "torch kl_div+CE",
                _torch_kd(torch, z, t, y),
                nbytes=12 * N * K,
                limit="triad",
                min_seconds=0.3,
                note="kl_div(log_target) + cross_entropy, .backward()",
            )
        bench.flush()
