"""Test functions of the benchmark (``python -m nndl_fast.bench --only search``) and the tests.

Each takes a configuration dict, as an objective's ``trial.params``; they live in the package
(not in a test file) so that worker processes of a pool or a Dask cluster can import them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .space import Float, Space

BRANIN_MIN = 0.397887357729738  # at (−π, 12.275), (π, 2.275), (9.42478, 2.475)
HARTMANN6_MIN = -3.32236801141551

_A = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
)
_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def branin_space() -> Space:
    return Space({"x1": Float(-5, 10), "x2": Float(0, 15)})


def branin(p: dict[str, Any]) -> float:
    """Branin-Hoo on [−5, 10] × [0, 15]; three global minima of 0.397887."""
    x1, x2 = p["x1"], p["x2"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6_space() -> Space:
    return Space({f"x{i}": Float(0, 1) for i in range(6)})


def hartmann6(p: dict[str, Any]) -> float:
    """Hartmann 6-D on [0, 1]^6; global minimum −3.32237, a local one at −3.20316."""
    x = np.array([p[f"x{i}"] for i in range(6)])
    return float(-(_ALPHA * np.exp(-(_A * (x - _P) ** 2).sum(1))).sum())


def branin_objective(trial: Any) -> float:
    return branin(trial.params)


def hartmann6_objective(trial: Any) -> float:
    return hartmann6(trial.params)


def crossing_curves_space() -> Space:
    return Space({"x1": Float(0, 1), "x2": Float(0, 1)})


def crossing_curves_final(p: dict[str, Any]) -> float:
    """The loss after unlimited training: Branin rescaled to [0, 1]², minimum 0."""
    return (branin({"x1": 15 * p["x1"] - 5, "x2": 15 * p["x2"]}) - BRANIN_MIN) / 50.0


def crossing_curves(p: dict[str, Any], resource: float) -> float:
    """A learning curve f∞(x) + exp(−r/τ(x)) whose good configurations learn slowly
    (τ = 1 + 4 e^{−5 f∞}): at small r a poor configuration can look better than a good one,
    the curves cross, and early stopping can drop the eventual winner."""
    f = crossing_curves_final(p)
    tau = 1.0 + 4.0 * math.exp(-5.0 * f)
    return f + math.exp(-resource / tau)


def crossing_curves_objective(trial: Any) -> float:
    """The curve at ``trial.resource`` (a resumable training: cost r − resumed_from)."""
    return crossing_curves(trial.params, trial.resource)
