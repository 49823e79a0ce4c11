"""Optimizer rows: our fused step vs the NumPy reference and torch.optim (for-loop, foreach, fused).

Bytes are the minimal traffic of one step in float32: every buffer the rule reads, plus
every buffer it writes (Adam: θ, g, m, v read, θ, m, v written: 28 B per element). The
limit is the in-place read-modify-write probe, the access pattern of these updates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import optim as O
from ..reference import clip as RC
from ..reference import optim as R
from .harness import Bench

# (name, our class, kwargs, torch class name, torch kwargs, bytes per element, reference rule)
RULES: list[tuple[str, type, dict[str, Any], str, dict[str, Any], int, str]] = [
    ("adam", O.Adam, {"betas": (0.9, 0.999), "eps_inside_sqrt": False}, "Adam", {}, 28, "adam"),
    (
        "adamw",
        O.AdamW,
        {"betas": (0.9, 0.999), "eps_inside_sqrt": False, "weight_decay": 0.01, "decay_scaled_by_lr": True},
        "AdamW",
        {"weight_decay": 0.01},
        28,
        "adam",
    ),
    ("sgd_momentum", O.SGD, {"momentum": 0.9, "convention": "torch"}, "SGD", {"momentum": 0.9}, 20, "sgd"),
    ("sgd", O.SGD, {}, "SGD", {}, 12, "sgd"),
    ("nesterov", O.Nesterov, {"convention": "torch"}, "SGD", {"momentum": 0.9, "nesterov": True}, 20, "sgd"),
    ("adagrad", O.AdaGrad, {"eps_inside_sqrt": False}, "Adagrad", {}, 20, "adagrad"),
    ("rmsprop", O.RMSprop, {"beta": 0.99, "eps_inside_sqrt": False}, "RMSprop", {}, 20, "rmsprop"),
    ("adadelta", O.AdaDelta, {}, "Adadelta", {}, 28, "adadelta"),
    ("nadam", O.Nadam, {"eps_inside_sqrt": False}, "NAdam", {}, 28, "nadam"),
]
HEADLINE = ("adam", "adamw", "sgd_momentum")


def _problem(sizes: list[int], seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n, dtype=np.float32) for n in sizes]
    grads = [rng.standard_normal(n, dtype=np.float32) * np.float32(1e-2) for n in sizes]
    return params, grads


def _torch_impls(torch: Any, tname: str, tkw: dict[str, Any], params, grads):
    """(impl name, step callable) for torch's for-loop, foreach and fused paths (where they exist)."""
    out = []
    for impl, flags in (
        ("torch for-loop", {"foreach": False}),
        ("torch foreach", {"foreach": True}),
        ("torch fused", {"fused": True}),
    ):
        tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
        for t, g in zip(tp, grads):
            t.grad = torch.from_numpy(g.copy())
        try:
            opt = getattr(torch.optim, tname)(tp, lr=1e-3, **tkw, **flags)
            opt.step()
        except (RuntimeError, TypeError, ValueError):
            continue  # this torch has no such path for this rule on the CPU
        out.append((impl, opt.step))
    return out


def _ours(cls, kw, params):
    opt = cls([p.copy() for p in params], lr=1e-3, **kw)
    return opt


def _case_name(sizes: list[int]) -> str:
    if len(sizes) == 1:
        return f"1 x {sizes[0]:.0e}".replace("e+0", "e")
    return f"{len(sizes)} x {sizes[0]}"


def _rows(
    bench: Bench, torch: Any, rule, sizes: list[int], *, reference: bool, torch_paths: tuple[str, ...], note: str = ""
) -> None:
    name, cls, kw, tname, tkw, bpe, ref_rule = rule
    params, grads = _problem(sizes)
    nbytes = bpe * sum(sizes)
    case = _case_name(sizes)
    opt = _ours(cls, kw, params)
    bench.measure(name, case, "nndl_fast", lambda: opt.step(grads), nbytes=nbytes, note=note)
    if reference and len(sizes) == 1:
        hp = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
        theta = params[0].copy()
        state: dict[str, Any] = {
            k: np.zeros_like(theta)
            for k in ("momentum_buffer", "exp_avg", "exp_avg_sq", "sum", "square_avg", "acc_delta")
        }
        state["mu_product"] = 1.0
        fn = R.RULES[ref_rule]
        bench.measure(name, case, "numpy reference", lambda: fn(theta, grads[0], state, 1, hp), nbytes=nbytes)
    if torch is not None:
        for impl, step in _torch_impls(torch, tname, tkw, params, grads):
            if impl.split()[-1] in torch_paths:
                bench.measure(name, case, impl, step, nbytes=nbytes)
    if len(sizes) > 1:
        # The same number of elements as one tensor, timed in the same interleaved rounds: the
        # multi-tensor cost is the ratio of these rows, free of the machine's bandwidth drift.
        one_p, one_g = _problem([sum(sizes)], seed=1)
        one = _ours(cls, kw, one_p)
        bench.measure(
            name,
            case,
            "nndl_fast 1 tensor",
            lambda: one.step(one_g),
            nbytes=nbytes,
            note=f"1 x {sum(sizes)}: the single-tensor reference",
        )
        if torch is not None:
            for impl, step in _torch_impls(torch, tname, tkw, one_p, one_g):
                if impl == "torch fused":
                    bench.measure(name, case, "torch fused 1 tensor", step, nbytes=nbytes)


def _overhead_rows(bench: Bench, torch: Any) -> None:
    """Call overhead: a 1 000-element tensor, through the class and the functional form."""
    params, grads = _problem([1000])
    opt = _ours(O.Adam, {}, params)
    bench.measure(
        "adam", "1 x 1000 (overhead)", "nndl_fast", lambda: opt.step(grads), nbytes=28_000, note="class step()"
    )
    p, m, v = params[0].copy(), np.zeros(1000, np.float32), np.zeros(1000, np.float32)
    bench.measure(
        "adam",
        "1 x 1000 (overhead)",
        "nndl_fast functional",
        lambda: O.adam([p], grads, [m], [v], step=1),
        nbytes=28_000,
    )
    if torch is not None:
        for impl, step in _torch_impls(torch, "Adam", {}, params, grads):
            if impl == "torch fused":
                bench.measure("adam", "1 x 1000 (overhead)", impl, step, nbytes=28_000)


def _clip_adam_rows(bench: Bench, torch: Any, adam_kw: dict[str, Any]) -> None:
    """Clip by global norm fused into the step: one read-only pass for the norm, the coefficient
    inside Adam's pass (32 B/element), against torch's clip_grad_norm_ then fused Adam."""
    sizes = [50_000] * 200
    params, grads = _problem(sizes)
    opt = _ours(O.Adam, adam_kw, params)
    nbytes = 32 * sum(sizes)
    bench.measure(
        "clip_adam",
        "200 x 50000",
        "nndl_fast fused",
        lambda: opt.step(grads, max_norm=1.0),
        nbytes=nbytes,
        note="norm pass + one update pass",
    )
    if torch is not None:
        tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
        for t, g in zip(tp, grads):
            t.grad = torch.from_numpy(g.copy())
        topt = torch.optim.Adam(tp, lr=1e-3, fused=True)

        def torch_clip_adam() -> None:
            torch.nn.utils.clip_grad_norm_(tp, 1.0)
            topt.step()

        bench.measure(
            "clip_adam",
            "200 x 50000",
            "torch clip + fused",
            torch_clip_adam,
            nbytes=nbytes,
            note="clip_grad_norm_ (foreach) then Adam(fused=True)",
        )


def _clip_per_tensor_adam_rows(bench: Bench, torch: Any, adam_kw: dict[str, Any]) -> None:
    """Clip each gradient by its own norm (Keras's clipnorm) fused into the step: one read-only
    pass for every tensor's norm, each tensor's coefficient inside Adam's pass (32 B/element),
    against the same unfused in NumPy (clip each, then the reference step) and torch
    (clip_grad_norm_ once per tensor, then fused Adam)."""
    sizes = [50_000] * 200
    params, grads = _problem(sizes)
    opt = _ours(O.Adam, adam_kw, params)
    nbytes = 32 * sum(sizes)
    case = "200 x 50000"
    bench.measure(
        "clip_per_tensor_adam",
        case,
        "nndl_fast fused",
        lambda: opt.step(grads, max_norm=1.0, clip_per_tensor=True),
        nbytes=nbytes,
        note="norm pass + one update pass",
    )
    hp = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    thetas, ref_grads = [p.copy() for p in params], [g.copy() for g in grads]
    states = [{k: np.zeros_like(p) for k in ("exp_avg", "exp_avg_sq")} for p in params]

    def numpy_clip_adam() -> None:
        RC.clip_per_tensor_(ref_grads, 1.0)
        for k, (theta, g, state) in enumerate(zip(thetas, ref_grads, states)):
            thetas[k] = R.adam(theta, g, state, 1, hp)

    bench.measure(
        "clip_per_tensor_adam", case, "numpy reference", numpy_clip_adam, nbytes=nbytes, note="clip each, then step"
    )
    if torch is not None:
        tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
        for t, g in zip(tp, grads):
            t.grad = torch.from_numpy(g.copy())
        topt = torch.optim.Adam(tp, lr=1e-3, fused=True)

        def torch_clip_adam() -> None:
            for t in tp:
                torch.nn.utils.clip_grad_norm_(t, 1.0)
            topt.step()

        bench.measure(
            "clip_per_tensor_adam",
            case,
            "torch clip + fused",
            torch_clip_adam,
            nbytes=nbytes,
            note="clip_grad_norm_ per tensor then Adam(fused=True)",
        )


def run(bench: Bench, torch: Any) -> None:
    by_name = {r[0]: r for r in RULES}
    big = [10_000_000] if bench.quick else [10_000_000, 64_000_000]
    all_paths = ("for-loop", "foreach", "fused")
    # Headline rules on one big tensor: memory-bound, compared with every torch path.
    for name in HEADLINE:
        if not bench.wants(name):
            continue
        for n in big:
            _rows(
                bench,
                torch,
                by_name[name],
                [n],
                reference=n <= 10_000_000,
                torch_paths=all_paths if n <= 10_000_000 else ("fused",),
            )
    # Many tensors in one call (same bytes as 1 x 1e7): one parallel region vs one per tensor.
    if bench.wants("adam"):
        _rows(bench, torch, by_name["adam"], [20_000] * 500, reference=False, torch_paths=("foreach", "fused"))
        # In cache: call overhead and thread start-up dominate.
        for n in (100_000, 1_000_000):
            _rows(bench, torch, by_name["adam"], [n], reference=False, torch_paths=("fused",))
        _overhead_rows(bench, torch)
    if bench.wants("clip_adam"):
        _clip_adam_rows(bench, torch, by_name["adam"][2])
    if bench.wants("clip_per_tensor_adam"):
        _clip_per_tensor_adam_rows(bench, torch, by_name["adam"][2])
    # Every other rule at 1e7.
    for rule in RULES:
        if rule[0] in HEADLINE or not bench.wants(rule[0]):
            continue
        _rows(bench, torch, rule, [10_000_000], reference=not bench.quick, torch_paths=("foreach", "fused"))
