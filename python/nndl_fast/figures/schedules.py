"""The learning-rate decays 1.5–1.7 with the chapter's β = 0.96, and inverse-sqrt (after 1.23).

The values are those the schedules of :mod:`nndl_fast.schedules` hand an optimizer before its
n-th update (α₀ = 1, one decay step per update).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import schedules

TITLE = "Learning-rate decay: inverse time (1.5), exponential (1.6), natural exponential (1.7), inverse sqrt"
BETA = 0.96


def compute(quick: bool = False) -> dict[str, Any]:
    n = np.arange(101)
    made = {
        "inverse time (1.5)": schedules.InverseTimeDecay(1.0, beta=BETA),
        "exponential (1.6)": schedules.ExponentialDecay(1.0, beta=BETA),
        "natural exponential (1.7)": schedules.NaturalExpDecay(1.0, beta=BETA),
        "inverse sqrt": schedules.InverseSqrtDecay(1.0),
    }
    return {"n": n, "lr": {name: np.array([s(int(k)) for k in n]) for name, s in made.items()}, "beta": BETA}


def plot(r: dict[str, Any], path: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, lr in r["lr"].items():
        ax.semilogy(r["n"], lr, label=name)
    ax.set(
        xlabel="n (updates done)",
        ylabel=r"$\alpha_n / \alpha_0$",
        title=f"decay schedules, β = {r['beta']}",
        ylim=(1e-6, 1.5),
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def describe(r: dict[str, Any]) -> str:
    n = int(r["n"][-1])
    parts = [f"{name} {lr[-1]:.3g}" for name, lr in r["lr"].items()]
    return (
        f"With β = {r['beta']} and one decay step per update, after {n} updates the rate is, as a fraction "
        f"of α₀: {', '.join(parts)}; the natural exponential decay (e^(−βn)) has all but stopped learning "
        f"after {int(np.argmax(r['lr']['natural exponential (1.7)'] < 1e-3))} updates, where it falls below "
        "10⁻³·α₀ (the plot's floor is 10⁻⁶)."
    )
