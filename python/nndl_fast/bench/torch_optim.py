"""nndl_fast.torch.optim rows: the per-step cost of torch tensors through our torch.optim classes,
against the same step on NumPy arrays (nndl_fast.optim) and torch.optim's foreach and fused paths.

The issue's target: with torch tensors the step stays within 1.3x of the NumPy-array path (the
views of parameters and state are cached; only the gradients are viewed at each step). Cases:
200 tensors of mixed sizes (a small network's weights and biases), where per-tensor overhead
shows, and one big tensor, where the pass over memory dominates.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import optim as O
from .harness import Bench

# (row name, our torch class, nndl_fast.optim class and kwargs that are the same rule, bytes per element)
RULES: list[tuple[str, str, type, dict[str, Any], dict[str, Any], int]] = [
    ("adam", "Adam", O.Adam, {"betas": (0.9, 0.999), "eps_inside_sqrt": False}, {}, 28),
    ("sgd_momentum", "SGD", O.SGD, {"momentum": 0.9, "convention": "torch"}, {"momentum": 0.9}, 20),
]


def mixed_sizes(n: int = 200, seed: int = 0) -> list[int]:
    """n sizes, log-uniform between 16 and 65 536 elements (biases to large weight matrices)."""
    rng = np.random.default_rng(seed)
    return [int(s) for s in np.exp(rng.uniform(np.log(16), np.log(65_536), n))]


def _rows(bench: Bench, torch: Any, rule, sizes: list[int], case: str) -> None:
    from ..torch import optim as TO

    name, tname, np_cls, np_kw, torch_kw, bpe = rule
    rng = np.random.default_rng(1)
    params = [rng.standard_normal(n, dtype=np.float32) for n in sizes]
    grads = [rng.standard_normal(n, dtype=np.float32) * np.float32(1e-2) for n in sizes]
    nbytes = bpe * sum(sizes)

    def torch_params() -> list[Any]:
        ps = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params]
        for p, g in zip(ps, grads):
            p.grad = torch.from_numpy(g.copy())
        return ps

    ours = getattr(TO, tname)(torch_params(), lr=1e-3, **torch_kw)
    bench.measure(name, case, "nndl_fast", ours.step, nbytes=nbytes, note="nndl_fast.torch.optim, torch tensors")
    arrays = np_cls([p.copy() for p in params], lr=1e-3, **np_kw)
    np_grads = [g.copy() for g in grads]
    bench.measure(
        name,
        case,
        "nndl_fast numpy arrays",
        lambda: arrays.step(np_grads),
        nbytes=nbytes,
        note="nndl_fast.optim, the same rule on NumPy arrays",
    )
    for impl, flags in (("torch foreach", {"foreach": True}), ("torch fused", {"fused": True})):
        try:
            opt = getattr(torch.optim, tname)(torch_params(), lr=1e-3, **torch_kw, **flags)
            opt.step()
        except (RuntimeError, TypeError, ValueError):
            continue  # this torch has no such path for this rule on the CPU
        bench.measure(name, case, impl, opt.step, nbytes=nbytes)


def run(bench: Bench, torch: Any) -> None:
    if torch is None:
        return  # nndl_fast.torch needs torch
    sizes = mixed_sizes()
    big = 10_000_000 if bench.quick else 64_000_000
    for rule in RULES:
        if not bench.wants(rule[0]) and not bench.wants("torch_optim"):
            continue
        _rows(bench, torch, rule, sizes, f"{len(sizes)} x mixed (torch.optim API)")
        _rows(bench, torch, rule, [big], f"1 x {big:.0e} (torch.optim API)".replace("e+0", "e"))
