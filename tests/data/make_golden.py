"""Writes golden_optim.npz: optimizer and clipping outputs of the build before the API pass.

Run from the repository root with the ORIGINAL build first on the path:

    PYTHONPATH=/work/orig python3 tests/data/make_golden.py

tests/test_golden.py replays the same CASES through the current API and compares bits. The
table is written in the current names; ``run_case(..., old=True)`` translates them to the
names the original build took (``momentum_form=``, ``clip_rule=``, ``rule=``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

F32, F64 = "float32", "float64"
# float64 uses a smaller odd size so that the file stays under 1 MB
SIZES = {"float32": (7, 4099), "float64": (7, 1031)}
STEPS = 4

# (id, class, hyper-parameters, dtype, step keywords, lr schedule or None)
OPTIM_CASES: list[tuple[str, str, dict[str, Any], str, dict[str, Any], Any]] = []


def _add(cid, cls, hp, dtypes=(F32, F64), step_kw=None, sched=None):
    for dt in dtypes:
        OPTIM_CASES.append((f"{cid}-{dt}", cls, hp, dt, step_kw or {}, sched))


_add("sgd", "SGD", {"lr": 0.1})
_add("sgd-terms", "SGD", {"lr": 0.05, "weight_decay": 0.01, "l1": 0.002, "decoupled_weight_decay": 0.001})
_add(
    "sgd-max-decay-lr",
    "SGD",
    {"lr": 0.05, "maximize": True, "decoupled_weight_decay": 0.01, "decay_scaled_by_lr": True},
)
_add("momentum", "Momentum", {"lr": 0.05})
_add("momentum-sched", "Momentum", {}, sched=("ExponentialDecay", 0.05, 0.9))
_add("momentum-torch", "Momentum", {"lr": 0.05, "convention": "torch", "dampening": 0.1})
_add("nesterov", "Nesterov", {"lr": 0.05})
_add("nesterov-torch", "Nesterov", {"lr": 0.05, "convention": "torch", "weight_decay": 0.01})
_add("adagrad", "AdaGrad", {})
_add("adagrad-torch", "AdaGrad", {"eps_inside_sqrt": False, "lr_decay": 0.01, "initial_accumulator_value": 0.1})
_add("rmsprop", "RMSprop", {})
_add("rmsprop-centered-mom", "RMSprop", {"eps_inside_sqrt": False, "centered": True, "momentum": 0.9, "beta": 0.99})
_add("rmsprop-l1", "RMSprop", {"centered": True, "l1": 0.01}, dtypes=(F32,))
_add("adadelta", "AdaDelta", {})
_add("adadelta-wd", "AdaDelta", {"weight_decay": 0.01, "lr": 0.5}, dtypes=(F32,))
_add("adam", "Adam", {})
_add("adam-amsgrad", "Adam", {"eps_inside_sqrt": False, "betas": (0.9, 0.999), "amsgrad": True, "weight_decay": 0.01})
_add("adam-sched-max", "Adam", {"maximize": True, "l1": 1e-3}, dtypes=(F32,), sched=("InverseSqrtDecay", 1e-2))
_add("adamw", "AdamW", {})
_add(
    "adamw-torch", "AdamW", {"weight_decay": 0.01, "decay_scaled_by_lr": True, "eps_inside_sqrt": False}, dtypes=(F32,)
)
_add("nadam", "Nadam", {})
_add("nadam-torch", "Nadam", {"eps_inside_sqrt": False, "weight_decay": 0.01, "momentum_decay": 0.0}, dtypes=(F32,))
_add("adam-scale", "Adam", {}, dtypes=(F32,), step_kw={"grad_scale": 0.25})
# fused clipping: the norm pass, then the coefficient inside the update pass
for p in (1.0, 2.0, "inf"):
    for conv in ("chapter", "torch"):
        _add(
            f"sgd-clip-{p}-{conv}",
            "SGD",
            {"lr": 0.1},
            dtypes=(F32,),
            step_kw={"max_norm": 1.0, "norm_type": p, "convention": conv},
        )
_add("adam-clip-scale", "Adam", {}, step_kw={"max_norm": 2.0, "grad_scale": 0.5, "convention": "torch"})
_add("rmsprop-clip-noclip", "RMSprop", {}, dtypes=(F64,), step_kw={"max_norm": 1e6})
_add("adam-skip", "Adam", {}, dtypes=(F32,), step_kw={"skip_nonfinite": True})

CLIP_CASES = [
    (f"clip-{p}-{conv}-{dt}", p, conv, dt)
    for p in (1.0, 2.0, 3.0, "inf")
    for conv in ("chapter", "torch")
    for dt in (F32, F64)
]


def _grads(dtype, seed, steps=STEPS, sizes=None):
    sizes = sizes or SIZES[dtype]
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(n).astype(dtype) for n in sizes] for _ in range(steps)]


def _params(dtype, seed=0, sizes=None):
    sizes = sizes or SIZES[dtype]
    rng = np.random.default_rng(1000 + seed)
    return [rng.standard_normal(n).astype(dtype) for n in sizes]


def _rename(d, old, mapping):
    return {mapping.get(k, k) if old else k: v for k, v in d.items()}


def _schedule(nf, sched, old):
    """The case's schedule. Since #11 a schedule is called at n = t − 1 (the updates done), where
    the original build called it at the 1-based step t; for old=True the original build's own
    schedule is called so that it gives the current values: ExponentialDecay α₀β^n is the
    original's value at t − 1 (and α₀β⁰ = α₀ at t = 1), InverseSqrtDecay α₀/√(n + 1) is the
    original's α₀/√t unchanged."""
    s = getattr(nf.schedules, sched[0])(*sched[1:])
    if not old or sched[0] == "InverseSqrtDecay":
        return s
    assert sched[0] == "ExponentialDecay" and s.decay_steps == 1 and not s.staircase
    return lambda t: s(t - 1) if t > 1 else s.lr0 * s.beta**0.0


def run_optim_case(nf, case, old):
    """Final parameters (and last_grad_norm) after STEPS steps, one array per entry."""
    cid, cls, hp, dtype, step_kw, sched = case
    hp = dict(hp)
    if sched is not None:
        hp["lr"] = _schedule(nf, sched, old)
    if old and cls in ("SGD", "Momentum", "Nesterov"):
        hp = _rename(hp, old, {"convention": "momentum_form"})
    step_kw = _rename(step_kw, old, {"convention": "clip_rule"})
    params = _params(dtype)
    opt = getattr(nf.optim, cls)(params, **hp)
    grads = _grads(dtype, seed=len(cid))
    if step_kw.get("skip_nonfinite"):
        grads[1][1][5] = np.nan  # a skipped step in the middle
    out = {}
    for g in grads:
        opt.step(g, **step_kw)
    for k, p in enumerate(params):
        out[f"{cid}/param{k}"] = p
    for i, s in sorted(opt.state.items()):
        for name, b in sorted(s.items()):
            if b.size <= 64:  # the small tensor's state: the large one's reaches its parameter
                out[f"{cid}/state{i}/{name}"] = b
    if opt.last_grad_norm is not None:
        out[f"{cid}/last_grad_norm"] = np.float64(opt.last_grad_norm)
    return out


def run_groups_case(nf, old):
    """Two param groups of different dtypes and learning rates, fused clipping across them."""
    a, b = _params(F64, 1, (7,))[0], _params(F32, 2, (4099,))[0]
    opt = nf.optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.01, "betas": (0.8, 0.9)}], lr=0.002)
    ga, gb = _grads(F64, 3, sizes=(7,)), _grads(F32, 4, sizes=(4099,))
    kw = _rename({"max_norm": 3.0, "convention": "torch"}, old, {"convention": "clip_rule"})
    for x, y in zip(ga, gb):
        opt.step([x[0], y[0]], **kw)
    return {"groups/a": a, "groups/b": b, "groups/last_grad_norm": np.float64(opt.last_grad_norm)}


def run_functional_cases(nf):
    """The functional forms of Adam (amsgrad) and Nadam over the caller's own state."""
    out = {}
    for dt in (F32, F64):
        p = _params(dt, 5)
        m, v, vmax = ([np.zeros_like(x) for x in p] for _ in range(3))
        for t, g in enumerate(_grads(dt, 6), start=1):
            nf.optim.adam(p, g, m, v, vmax, step=t, amsgrad=True, lr=0.01)
        out.update({f"fadam-{dt}/param{k}": x for k, x in enumerate(p)})
        p = _params(dt, 7)
        m, v = ([np.zeros_like(x) for x in p] for _ in range(2))
        mu = 1.0
        for t, g in enumerate(_grads(dt, 8), start=1):
            _, mu = nf.optim.nadam(p, g, m, v, step=t, mu_product=mu)
        out.update({f"fnadam-{dt}/param{k}": x for k, x in enumerate(p)})
        out[f"fnadam-{dt}/mu_product"] = np.float64(mu)
    return out


def run_clip_case(nf, case, old):
    cid, p, conv, dtype = case
    grads = _grads(dtype, seed=len(cid), steps=1)[0]
    kw = _rename({"convention": conv}, old, {"convention": "rule"})
    total = nf.clip.clip_grad_norm_(grads, 1.5, p, **kw)
    out = {f"{cid}/grad{k}": g for k, g in enumerate(grads)}
    out[f"{cid}/total"] = np.float64(total)
    out[f"{cid}/coef"] = np.float64(nf.clip.clip_coefficient(total * 3.0, 2.0, **kw))
    return out


def run_clip_value_case(nf):
    out = {}
    for dt in (F32, F64):
        grads = _grads(dt, seed=9, steps=1)[0]
        nf.clip.clip_grad_value_(grads, 0.5)
        out.update({f"clipvalue-{dt}/grad{k}": g for k, g in enumerate(grads)})
        grads = _grads(dt, seed=10, steps=1)[0]
        nf.clip.clip_grad_value_(grads, lower=-0.25, upper=1.0)
        out.update({f"clipbounds-{dt}/grad{k}": g for k, g in enumerate(grads)})
        out[f"globalnorm-{dt}"] = np.float64(nf.clip.global_norm(_grads(dt, seed=11, steps=1)[0], 2.0))
    return out


def run_all(nf, old):
    out = {}
    for case in OPTIM_CASES:
        out.update(run_optim_case(nf, case, old))
    out.update(run_groups_case(nf, old))
    out.update(run_functional_cases(nf))
    for case in CLIP_CASES:
        out.update(run_clip_case(nf, case, old))
    out.update(run_clip_value_case(nf))
    return out


if __name__ == "__main__":
    import nndl_fast

    if not os.path.dirname(nndl_fast.__file__).startswith("/work/orig"):
        sys.exit("run with PYTHONPATH=/work/orig: the golden outputs come from the original build")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_optim.npz")
    np.savez_compressed(path, **run_all(nndl_fast, old=True))
    print(path, os.path.getsize(path), "bytes")
