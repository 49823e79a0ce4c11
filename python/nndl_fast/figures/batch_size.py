"""Fig 1.3: the loss against iterations and against epochs for batch sizes 1, 8, 32, 128 and the
full batch (SGD, one learning rate, the same initialisation).

A small batch gives a noisy gradient, so its per-iteration loss is rough; but it makes many more
updates per epoch, so per epoch its loss falls faster.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..optim import SGD
from . import _mlp

TITLE = "Fig 1.3: batch size, per iteration and per epoch"
BATCH_SIZES = (1, 8, 32, 128, None)  # None: the full batch
LR = 0.05


def roughness(steps: np.ndarray) -> float:
    """Mean |Δloss| between successive iterations."""
    return float(np.abs(np.diff(steps)).mean())


def compute(quick: bool = False) -> dict[str, Any]:
    """For each batch size: the minibatch loss of its first ``iterations`` steps and their
    roughness, and the training loss at each epoch."""
    data = _mlp.load(quick)
    epochs, iterations, hidden = (1, 100, 64) if quick else (10, 300, 100)
    n = len(data.x_train)
    runs = {}
    for bs in BATCH_SIZES:
        size = bs or n
        model = _mlp.MLP([data.x_train.shape[1], hidden, 10], seed=0)
        r = _mlp.train(model, SGD(model.params, lr=LR), data, batch_size=size, epochs=epochs, min_iterations=iterations)
        steps = r["steps"][:iterations]
        runs["full" if bs is None else str(bs)] = {
            "batch_size": size,
            "steps": steps,
            "roughness": roughness(steps),
            "epochs": r["train"],
        }
    return {"data": data.name, "n": n, "lr": LR, "iterations": iterations, "runs": runs}


def plot(r: dict[str, Any], path: str) -> None:
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in r["runs"].items():
        label = f"full batch ({run['batch_size']})" if name == "full" else f"batch {name}"
        ax.plot(np.arange(1, len(run["steps"]) + 1), run["steps"], lw=0.6 if name == "1" else 1.2, label=label)
        bx.plot(np.arange(len(run["epochs"])), run["epochs"], "o-", ms=3, label=label)
    ax.set(xlabel="iteration", ylabel="minibatch loss", title=f"per iteration (SGD, lr = {r['lr']})", ylim=(0, 4))
    bx.set(xlabel="epoch", ylabel="training loss", title=f"per epoch, {r['data']}", yscale="log")
    for a in (ax, bx):
        a.grid(True, which="major", alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def describe(r: dict[str, Any]) -> str:
    runs = r["runs"]
    rough = ", ".join(f"{v['roughness']:.3g}" for v in runs.values())
    after = ", ".join(f"{v['epochs'][1]:.3g}" for v in runs.values())
    sizes = ", ".join(str(v["batch_size"]) for v in runs.values())
    return (
        f"SGD (lr = {r['lr']}) on {r['n']} training images of {r['data']} with batch sizes {sizes}: over the first "
        f"{r['iterations']} iterations the mean |Δloss| between successive iterations is {rough} — the larger "
        f"the batch, the smoother the curve — while the training loss after one epoch is {after}: the smaller "
        "the batch, the more updates an epoch makes and the faster the loss falls per epoch."
    )
