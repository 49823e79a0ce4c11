"""Hyper-parameter search rows: simple regret over seeds, and the GP sampler's time per suggestion.

Simple regret after N evaluations is f(best configuration found) − f*, averaged over seeds
(20; 5 with --quick), every method with the same evaluations:

- Branin (2-D), 50 evaluations; Hartmann6 (6-D), 50 and 100 (the first 50 of the same runs):
  GPSampler (10 random start points, EI) against RandomSampler.
- A multi-fidelity case whose learning curves cross (``functions.crossing_curves``, maximum
  resource R = 27, a budget of 27 full trainings = 729 resource units): random search at full
  fidelity (27 configurations at R), successive halving (Algorithm 1.2, B = 729, N = 64; the
  algorithm's own accounting, no resuming) and Hyperband (R = 27, η = 3, as many full runs as fit
  in 729 units with resuming: two). The regret is that of the configuration each recommends,
  after unlimited training; the "spent" column is the resource each trained.

Timing: the wall time of ``study.ask()`` while the GP holds 50 to 100 observations (Hartmann6),
the hyper-parameter fit and the acquisition's maximisation included. Rows go through
``Bench.add`` (time only: a sampler moves no bandwidth worth a probe), the regrets to the
record's ``extra`` and to the lines marked ``# search``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..search import GPSampler, RandomSampler, Study
from ..search import functions as fx
from ..search.schedulers import Hyperband, SuccessiveHalving
from .harness import Bench

TARGETS = {"branin@50": 2e-4, "hartmann6@50": 0.064}  # the figures (a well-known library's GP)


def _run(space: Any, objective: Any, sampler: Any, seed: int, n: int, checkpoints: list[int], ask_times: list[float]):
    study = Study(space, sampler, seed=seed)
    best, out = np.inf, {}
    for i in range(n):
        done = sum(t.state == "complete" for t in study.trials)
        t0 = time.perf_counter()
        trial = study.ask()
        if 50 <= done <= 100:
            ask_times.append(time.perf_counter() - t0)
        value = objective(trial)
        study.tell(trial, value)
        best = min(best, value)
        if i + 1 in checkpoints:
            out[i + 1] = best
    return out


def _recommended(study: Study) -> float:
    assert study.best_params is not None
    return fx.crossing_curves_final(study.best_params)


def _multi_fidelity(seed: int) -> dict[str, tuple[float, float]]:
    budget, R = 729, 27
    out: dict[str, tuple[float, float]] = {}
    study = Study(fx.crossing_curves_space(), seed=seed)
    for _ in range(budget // R):
        t = study.ask()
        t.resource = R
        study.tell(t, fx.crossing_curves_objective(t))
    out["random (full fidelity)"] = (_recommended(study), budget)
    study = Study(fx.crossing_curves_space(), seed=seed)
    sh = SuccessiveHalving(budget, 64)
    sh.optimize(study, fx.crossing_curves_objective)
    out["successive halving"] = (_recommended(study), sh.cost(resumable=False))
    study = Study(fx.crossing_curves_space(), seed=seed)
    spent = 0.0
    while spent + Hyperband(R, 3).cost() <= budget:
        hb = Hyperband(R, 3)
        hb.optimize(study, fx.crossing_curves_objective)
        spent += hb.spent
    out["hyperband"] = (_recommended(study), spent)
    return out


def run(bench: Bench, torch: Any) -> None:
    if not bench.wants("search_regret") and not bench.wants("search_suggest"):
        return
    seeds = range(5 if bench.quick else 20)
    note = f"{len(seeds)} seeds" + (" (--quick; the full run takes 20)" if bench.quick else "")
    print(f"# search: simple regret, mean (median) over {note}; GP = GPSampler(), 10 random starts, EI")
    ask_times: dict[str, list[float]] = {"gp": [], "random": []}
    regret: dict[str, list[float]] = {}
    problems = [
        ("branin", fx.branin_space(), fx.branin, fx.BRANIN_MIN, 50, [50]),
        ("hartmann6", fx.hartmann6_space(), fx.hartmann6, fx.HARTMANN6_MIN, 100, [50, 100]),
    ]
    for name, space, f, fmin, n, checkpoints in problems:
        for method, make in (("gp", GPSampler), ("random", RandomSampler)):
            for seed in seeds:
                got = _run(space, lambda t, f=f: f(t.params), make(), seed, n, checkpoints, ask_times[method])
                for k, v in got.items():
                    regret.setdefault(f"{name}@{k} {method}", []).append(v - fmin)
    for key, values in regret.items():
        problem, method = key.split()
        target = TARGETS.get(problem) if method == "gp" else None
        goal = ""
        if target is not None and bench.quick:  # a few seeds decide little: a local minimum is 0.12 away
            goal = f"  target <= {target:g} over 20 seeds: run without --quick"
        elif target is not None:
            goal = f"  target <= {target:g}: {'met' if np.mean(values) <= target else 'MISSED'}"
        print(f"# search {problem:<14} {method:<8} {np.mean(values):.3g} ({np.median(values):.3g}){goal}")
    mf: dict[str, list[tuple[float, float]]] = {}
    for seed in seeds:
        for method, r in _multi_fidelity(seed).items():
            mf.setdefault(method, []).append(r)
    for method, rs in mf.items():
        reg = [r for r, _ in rs]
        print(
            f"# search crossing-curves 27 full trainings: {method:<22} regret {np.mean(reg):.3g} "
            f"({np.median(reg):.3g})  spent {np.mean([s for _, s in rs]):.0f} units"
        )
    extra: dict[str, Any] = {
        "regret_mean": {k: float(np.mean(v)) for k, v in regret.items()},
        "regret_median": {k: float(np.median(v)) for k, v in regret.items()},
        "multi_fidelity_regret_mean": {k: float(np.mean([r for r, _ in v])) for k, v in mf.items()},
        "seeds": len(seeds),
    }
    case = "ask() at 50-100 obs"
    for method, impl in (("gp", "nndl_fast GPSampler"), ("random", "RandomSampler (baseline)")):
        times = ask_times[method]
        bench.add(
            "search_suggest",
            case,
            impl,
            float(np.mean(times)),
            nbytes=0,
            note=f"mean of {len(times)} suggestions; target <= 10 ms" if method == "gp" else "",
            **(extra if method == "gp" else {}),
        )
    bench.flush()
