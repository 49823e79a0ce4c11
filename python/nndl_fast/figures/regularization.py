"""Dropout (1.65) and L2 (1.59): training and validation loss of an MLP trained on a small subset
(so that it overfits), with and without them, and the epoch at which early stopping (1.7.3,
:class:`nndl_fast.train.EarlyStopping`) would stop under each criterion: Keras's patience and
Prechelt's GL, PQ and UP, at their default settings, on the validation loss of each epoch."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..optim import Adam
from ..train import EarlyStopping
from . import _mlp

TITLE = "Dropout, L2 and early stopping"
DROP_PROB, L2 = 0.5, 1e-3
CRITERIA = ("patience", "GL", "PQ", "UP")
SETTINGS = {
    "no regularisation": (0.0, 0.0),
    "dropout": (DROP_PROB, 0.0),
    "L2": (0.0, L2),
    "dropout + L2": (DROP_PROB, L2),
}


def stopping(train: np.ndarray, val: np.ndarray) -> dict[str, dict[str, int | None]]:
    """For each criterion: the epoch at which it stops (None: not within the epochs run) and
    the best epoch it would restore. ``train``, ``val``: losses before training and after each epoch."""
    out = {}
    for criterion in CRITERIA:
        es = EarlyStopping(criterion=criterion)
        for epoch in range(1, len(val)):
            if es.update(epoch, float(val[epoch]), train=float(train[epoch])):
                break
        out[criterion] = {"stop": es.stopped_epoch, "best": es.best_epoch}
    return out


def compute(quick: bool = False) -> dict[str, Any]:
    data = _mlp.load(quick)
    n_train, hidden, epochs, lr = (300, 128, 40, 1e-2) if quick else (1000, 256, 80, 1e-3)
    data = data._replace(x_train=data.x_train[:n_train], y_train=data.y_train[:n_train])
    runs = {}
    for name, (drop_prob, l2) in SETTINGS.items():
        model = _mlp.MLP([data.x_train.shape[1], hidden, 10], seed=0, drop_prob=drop_prob)
        r = _mlp.train(model, Adam(model.params, lr=lr, weight_decay=l2), data, batch_size=32, epochs=epochs)
        runs[name] = {"train": r["train"], "val": r["val"], "stopping": stopping(r["train"], r["val"])}
    return {"data": data.name, "n_train": n_train, "n_val": len(data.x_val), "lr": lr, "epochs": epochs, "runs": runs}


def plot(r: dict[str, Any], path: str) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True, sharey=True)
    top = 1.4 * max(float(run["val"][1:].max()) for run in r["runs"].values())  # epoch 0's loss is off the scale
    for ax, (name, run) in zip(axes.flat, r["runs"].items()):
        epochs = np.arange(len(run["val"]))
        ax.plot(epochs, run["train"], "--", color="0.4", label="training loss")
        ax.plot(epochs, run["val"], "-", color="black", label="validation loss")
        best = int(np.argmin(run["val"]))
        ax.plot(best, run["val"][best], "o", color="black", ms=5, label=f"lowest validation loss, epoch {best}")
        for i, (criterion, s) in enumerate(run["stopping"].items()):
            if s["stop"] is not None:
                ax.axvline(s["stop"], color=f"C{i}", lw=1.2, label=f"{criterion} stops at {s['stop']}")
            else:
                ax.plot([], [], color=f"C{i}", label=f"{criterion}: no stop")
        ax.set(title=name, ylim=(0, top))
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("loss")
    fig.suptitle(
        f"Adam (lr {r['lr']:g}) on {r['n_train']} training images of {r['data']}; "
        f"dropout p = {DROP_PROB}, L2 λ = {L2:g}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def describe(r: dict[str, Any]) -> str:
    runs = r["runs"]
    plain = runs["no regularisation"]
    best = int(np.argmin(plain["val"]))
    ends = ", ".join(f"{name} {run['val'][-1]:.3g} (lowest {run['val'].min():.3g})" for name, run in runs.items())

    def stops(run: dict[str, Any]) -> str:
        return ", ".join(f"{c} {s['stop'] if s['stop'] is not None else 'none'}" for c, s in run["stopping"].items())

    return (
        f"Trained on {r['n_train']} images of {r['data']} without regularisation, the validation loss is lowest "
        f"({plain['val'][best]:.3g}) at epoch {best} and then rises while the training loss falls to "
        f"{plain['train'][-1]:.2g} by epoch {r['epochs']}. Validation loss after {r['epochs']} epochs: {ends}. "
        f"The epoch each criterion stops at (none: not within {r['epochs']} epochs) — without regularisation: "
        f"{stops(plain)}; dropout: {stops(runs['dropout'])}; L2: {stops(runs['L2'])}; dropout + L2: "
        f"{stops(runs['dropout + L2'])}."
    )
