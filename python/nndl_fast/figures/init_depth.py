"""Initialisation (1.3): the spread of the activations, layer by layer, of a 10-layer tanh and a
10-layer ReLU network (square layers, no bias, a batch of N(0, 1) inputs) for the schemes of
:mod:`nndl_fast.init`: N(0, 0.01²); Xavier (1.37, σ² = gain²·2/(n_in + n_out)) with the
nonlinearity's gain (``calculate_gain(..., convention="torch")``: 5/3 for tanh, √2 for ReLU), as
torch.nn.init's documentation uses it, and with gain 1, the chapter's bare formula; He
(``kaiming_normal_``, σ = gain/√n_in with the same gains).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import init
from . import _mlp

TITLE = "Initialisation: activation spread by depth for N(0, 0.01²), Xavier and He"
DEPTH = 10
SCHEMES = ("gaussian(0.01)", "xavier", "xavier gain 1", "he")
LABELS = {
    "gaussian(0.01)": "N(0, 0.01²)",
    "xavier": "Xavier, gain {gain}",
    "xavier gain 1": "Xavier, gain 1",
    "he": "He, gain {gain}",
}
GAINS = {"tanh": "5/3", "relu": "√2"}
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}


def weight(scheme: str, nonlinearity: str, width: int, seed: int) -> np.ndarray:
    w = np.empty((width, width), np.float32)
    if scheme == "gaussian(0.01)":
        return init.normal_(w, 0.0, 0.01, seed=seed)
    if scheme == "xavier":
        return init.xavier_normal_(w, gain=init.calculate_gain(nonlinearity, convention="torch"), seed=seed)
    if scheme == "xavier gain 1":
        return init.xavier_normal_(w, seed=seed)
    return init.kaiming_normal_(w, nonlinearity=nonlinearity, convention="torch", seed=seed)


def compute(quick: bool = False) -> dict[str, Any]:
    """std[nonlinearity][scheme]: the activations' standard deviation after each of the 10 layers,
    and var_ratio[nonlinearity][scheme]: the largest layer variance over the smallest."""
    width, batch = (256, 256) if quick else (512, 1000)
    x = np.random.default_rng(0).standard_normal((batch, width)).astype(np.float32)
    std: dict[str, dict[str, np.ndarray]] = {}
    with _mlp.one_blas_thread():
        for act, f in ACTIVATIONS.items():
            std[act] = {}
            for scheme in SCHEMES:
                h, s = x, []
                for layer in range(DEPTH):
                    h = f(h @ weight(scheme, act, width, seed=layer).T)
                    s.append(float(h.std()))
                std[act][scheme] = np.array(s)
    ratio = {act: {k: float(v.max() ** 2 / v.min() ** 2) for k, v in d.items()} for act, d in std.items()}
    return {"std": std, "var_ratio": ratio, "width": width, "batch": batch}


def plot(r: dict[str, Any], path: str) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    layers = np.arange(1, DEPTH + 1)
    for ax, (act, d) in zip(axes, r["std"].items()):
        for scheme, s in d.items():
            label = LABELS[scheme].format(gain=GAINS[act])
            style = (
                {"ls": "--", "marker": "s", "ms": 7, "mfc": "none"} if scheme == "xavier" else {"marker": "o", "ms": 4}
            )
            ax.semilogy(layers, s, **style, label=f"{label}: max/min variance {r['var_ratio'][act][scheme]:.3g}")
        ax.set(xlabel="layer", title=f"10-layer {'ReLU' if act == 'relu' else act}, width {r['width']}", xticks=layers)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("std of the activations")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def describe(r: dict[str, Any]) -> str:
    q = r["var_ratio"]
    s = r["std"]
    return (
        f"Over 10 layers of width {r['width']}, Xavier and He with the nonlinearity's gain (for square layers the "
        f"same σ, so their curves coincide) keep the activations' variance within a factor of "
        f"{max(q['tanh']['xavier'], q['tanh']['he']):.2f} (tanh, gain 5/3) and "
        f"{max(q['relu']['xavier'], q['relu']['he']):.2f} (ReLU, gain √2); the chapter's bare Xavier (gain 1) "
        f"lets it drift down by {q['tanh']['xavier gain 1']:.1f}× on tanh (std {s['tanh']['xavier gain 1'][0]:.2f} "
        f"→ {s['tanh']['xavier gain 1'][-1]:.2f}) and halve at every ReLU layer "
        f"({q['relu']['xavier gain 1']:.0f}×), while "
        f"N(0, 0.01²) collapses it: the last layer's std is {s['tanh']['gaussian(0.01)'][-1]:.1e} (tanh) and "
        f"{s['relu']['gaussian(0.01)'][-1]:.1e} (ReLU)."
    )
