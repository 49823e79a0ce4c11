"""Fig 1.6: the nine update rules of :mod:`nndl_fast.optim` at their default (the chapter's)
learning rates, on the same MLP, initialisation and minibatches."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import optim
from . import _mlp

TITLE = "Fig 1.6: the optimizers compared"
RULES = ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "AdaDelta", "Adam", "Nadam", "AdamW")
ADAPTIVE = ("AdaGrad", "RMSprop", "AdaDelta", "Adam", "Nadam", "AdamW")
BATCH_SIZE = 32


def epochs_to_reach(curve: np.ndarray, level: float) -> float:
    """The first epoch at whose end the loss is ≤ level (inf if never)."""
    hit = np.flatnonzero(curve <= level)
    return float(hit[0]) if hit.size else float("inf")


def compute(quick: bool = False) -> dict[str, Any]:
    """Per rule: its default lr and the training loss before training and after each epoch;
    and the epochs each rule takes to reach the loss SGD ends at."""
    data = _mlp.load(quick)
    epochs, hidden = (5, 64) if quick else (20, 100)
    curves, lrs = {}, {}
    for name in RULES:
        model = _mlp.MLP([data.x_train.shape[1], hidden, 10], seed=0)
        opt = getattr(optim, name)(model.params)
        lrs[name] = opt.param_groups[0]["lr"]
        curves[name] = _mlp.train(model, opt, data, batch_size=BATCH_SIZE, epochs=epochs)["train"]
    level = float(curves["SGD"][-1])
    return {
        "data": data.name,
        "epochs": epochs,
        "lr": lrs,
        "train": curves,
        "level": level,
        "epochs_to_level": {name: epochs_to_reach(c, level) for name, c in curves.items()},
    }


def plot(r: dict[str, Any], path: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, (name, curve) in enumerate(r["train"].items()):
        style = {"SGD": "--", "Momentum": "-.", "Nesterov": ":"}.get(name, "-")
        ax.plot(np.arange(len(curve)), curve, style, color=f"C{i}", label=f"{name} (lr {r['lr'][name]:g})")
    ax.axhline(r["level"], color="0.5", lw=0.8, ls=":")
    ax.set(
        xlabel="epoch",
        ylabel="training loss",
        yscale="log",
        title=f"same MLP, initialisation and batches of {BATCH_SIZE}\n{r['data']}",
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def describe(r: dict[str, Any]) -> str:
    reach = r["epochs_to_level"]
    adaptive = ", ".join(f"{n} {reach[n]:.0f}" for n in ADAPTIVE)
    final = ", ".join(f"{n} {c[-1]:.3g}" for n, c in r["train"].items())
    return (
        f"At their default learning rates, plain SGD (lr {r['lr']['SGD']:g}) takes {reach['SGD']:.0f} epochs to "
        f"bring the training loss on {r['data']} down to {r['level']:.3g}; the adaptive methods take (epochs): "
        f"{adaptive}; Momentum {reach['Momentum']:g} and Nesterov {reach['Nesterov']:g}. Training loss after "
        f"{r['epochs']} epochs: {final}."
    )
