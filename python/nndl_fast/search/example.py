"""Tune an MLP on scikit-learn's digits with Hyperband: ``python -m nndl_fast.search.example``.

The MLP (64 → 128 ReLU → dropout → 10, softmax cross-entropy, float32, forward and backward in
NumPy) trains with nndl_fast's kernels: ``nndl_fast.optim.AdamW`` (the chapter's decoupled
weight decay, 1.64) and ``nndl_fast.dropout.Dropout`` (inverted dropout, masks regenerated from
their seed in the backward pass). Hyperband (R = 27 epochs, η = 3) tunes the learning rate, the
weight decay, the drop probability and the batch size; the resource is the epoch count and
training resumes (a configuration promoted from r_a to r_b epochs trains r_b − r_a more). The
objective is the validation error. Needs scikit-learn; tqdm draws the progress bar when installed.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from ..dropout import Dropout
from ..optim import AdamW
from . import Categorical, Float, RandomSampler, Space, Study
from .schedulers import Hyperband

SPACE = Space(
    {
        "lr": Float(1e-4, 1e-1, log=True),
        "weight_decay": Float(1e-6, 1e-2, log=True),
        "drop_prob": Float(0.0, 0.6),
        "batch_size": Categorical([16, 32, 64, 128]),
    }
)


def load_digits_split(seed: int = 0) -> tuple[np.ndarray, ...]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError("the example needs scikit-learn (its digits data set): pip install scikit-learn") from e
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(X))
    cut = int(0.8 * len(X))
    return X[order[:cut]], y[order[:cut]], X[order[cut:]], y[order[cut:]]


class MLP:
    """64 → hidden (ReLU, dropout) → 10; state kept between calls so training can resume."""

    def __init__(self, params: dict[str, Any], seed: int, hidden: int = 128) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.W1 = (rng.standard_normal((64, hidden)) * math.sqrt(2 / 64)).astype(np.float32)  # He (1.3)
        self.b1 = np.zeros(hidden, np.float32)
        self.W2 = (rng.standard_normal((hidden, 10)) * math.sqrt(1 / hidden)).astype(np.float32)
        self.b2 = np.zeros(10, np.float32)
        self.params = [self.W1, self.b1, self.W2, self.b2]
        self.opt = AdamW(self.params, lr=params["lr"], weight_decay=params["weight_decay"])
        p = params["drop_prob"]
        self.dropout = Dropout(drop_prob=p, convention="torch", seed=seed) if p > 0 else None
        self.batch_size = params["batch_size"]

    def logits(self, X: np.ndarray, train: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = X @ self.W1 + self.b1
        h = np.maximum(a, 0)
        hd = self.dropout(h) if (train and self.dropout is not None) else h
        return hd @ self.W2 + self.b2, a, hd

    def epoch(self, X: np.ndarray, y: np.ndarray) -> None:
        order = self.rng.permutation(len(X))
        for start in range(0, len(X), self.batch_size):
            idx = order[start : start + self.batch_size]
            xb, yb = X[idx], y[idx]
            z, a, hd = self.logits(xb, train=True)
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1  # d(mean cross-entropy)/dz, times the batch size
            dz = p / len(yb)
            dW2, db2 = hd.T @ dz, dz.sum(0)
            dh = dz @ self.W2.T
            if self.dropout is not None:
                dh = self.dropout.backward(np.ascontiguousarray(dh, np.float32))
            da = dh * (a > 0)
            dW1, db1 = xb.T @ da, da.sum(0)
            self.opt.step([g.astype(np.float32) for g in (dW1, db1, dW2, db2)])

    def error(self, X: np.ndarray, y: np.ndarray) -> float:
        return float((self.logits(X, train=False)[0].argmax(1) != y).mean())


def make_objective(data: tuple[np.ndarray, ...]) -> Any:
    X_tr, y_tr, X_va, y_va = data
    models: dict[int, MLP] = {}  # the resumable state, per trial (in this process)

    def objective(trial: Any) -> float:
        model = models.setdefault(trial.number, MLP(trial.params, seed=trial.number))
        epochs = int(round(trial.resource)) - int(round(trial.resumed_from))
        for e in range(epochs):
            model.epoch(X_tr, y_tr)
            trial.report(model.error(X_va, y_va), trial.resumed_from + e + 1)
        return model.error(X_va, y_va)

    return objective


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nndl_fast.search.example", description=__doc__)
    ap.add_argument("--max-epochs", type=int, default=27, help="Hyperband's R (default 27)")
    ap.add_argument("--eta", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", metavar="PATH", help="write the study (JSON) here")
    args = ap.parse_args(argv)
    try:
        import tqdm  # noqa: F401

        progress = True
    except ImportError:
        progress = False
    study = Study(SPACE, RandomSampler(), seed=args.seed)
    hb = Hyperband(args.max_epochs, args.eta)
    best = hb.optimize(study, make_objective(load_digits_split(args.seed)), progress=progress)
    assert best is not None
    print(
        f"{len(study.trials)} configurations, {hb.spent:g} epochs trained (Hyperband R={args.max_epochs}, η={args.eta})"
    )
    print(f"best validation error {best.value:.4f} after {best.resource} epochs with")
    for k, v in best.params.items():
        print(f"  {k} = {v:.4g}" if isinstance(v, float) else f"  {k} = {v}")
    if args.save:
        study.save(args.save)
        print(f"study saved to {args.save}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
