r"""The small parts of a training loop beside the kernels: early stopping (1.7.3), reproducible
mini-batches and a progress bar. Not a framework: the loop, the layers and the model stay
the user's (``examples/mlp_numpy.py`` is one such loop).

**Early stopping** (:class:`EarlyStopping`) watches one validation quantity per epoch and
says when to stop. With E_va(t) the validation error after epoch t, E_tr(t) the training
error, E_opt(t) = min_{t' ≤ t} E_va(t') and a *strip* of length k the epochs
n + 1, …, n + k with n divisible by k (Prechelt 1998, "Early stopping — but when?"):

=================  ====================================================================
``criterion``      stop after the first epoch t at which
=================  ====================================================================
``"patience"``     ``patience`` epochs in a row brought no improvement (Keras's
                   ``EarlyStopping``): a value v improves on the best b when
                   v + min_delta < b (``mode="min"``) or v − min_delta > b (``"max"``)
``"GL"``           GL(t) = 100 · (E_va(t) / E_opt(t) − 1) > α   (generalisation loss, %)
``"PQ"``           t ends a strip and GL(t) / P_k(t) > α, with the training progress
                   P_k(t) = 1000 · (Σ_{t'=t−k+1}^{t} E_tr(t') / (k · min_{t'=t−k+1}^{t} E_tr(t')) − 1)
``"UP"``           t ends a strip and the validation error rose at the ends of s strips
                   in a row: E_va(t) > E_va(t − k), E_va(t − k) > E_va(t − 2k), …, s times
=================  ====================================================================

α is ``alpha`` (GL default 5, PQ default 0.5), s is ``patience`` (UP default 3), k is
``strip`` (5, Prechelt's). Strips are counted from the first :meth:`~EarlyStopping.update`:
the strip ends are its k-th, 2k-th, … calls, whatever the epoch numbers given. Prechelt's
criteria are for an error to minimise (``mode="min"``, values ≥ 0); E_opt = 0 gives
GL = 0 while E_va = 0 and +∞ after, P_k = 0 (a flat strip) gives GL/P_k = +∞ when GL > 0.

The best epoch is the one with the best value (Prechelt: the lowest validation error; with
``"patience"``, the last improvement in the sense above). With ``restore_best=True`` and
``params`` passed to :meth:`~EarlyStopping.update`, the parameters are copied when the
best changes — into buffers allocated at the first copy and reused (``np.copyto``) — and
copied back in place, bitwise, when ``update`` decides to stop (Keras's
``restore_best_weights``) or when :meth:`~EarlyStopping.restore` is called (say, after
the last epoch when no criterion fired).

**Non-finite values.** A NaN or infinite validation value (or training value, given) means
the run diverged: ``update`` stops at once, says so in ``stop_reason`` and with a
RuntimeWarning, and keeps the best epoch seen before. A rejected call (a wrong type, an
epoch not after the last one, params that do not match the snapshot) raises and changes
nothing.

**Mini-batches** (:func:`minibatches`) come from a permutation drawn with the project's
counter-based Philox generator (:mod:`nndl_fast.random`, ``offset=epoch``): the batches of
(seed, epoch) are the same on any machine, thread count and run, and a resumed run draws
the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

import numpy as np

from . import _checks
from . import random as _random

__all__ = ["EarlyStopping", "minibatches", "progress"]

CRITERIA = ("patience", "GL", "PQ", "UP")
_DEFAULT_ALPHA = {"GL": 5.0, "PQ": 0.5}
_DEFAULT_PATIENCE = {"patience": 5, "UP": 3}
_U64_MAX = 2**64 - 1


# -- early stopping ---------------------------------------------------------------------------
def _number(name: str, value: Any) -> float:
    """A real number (Python, NumPy scalar, 0-d array or one-element tensor) as a float; NaN/inf pass."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got bool")
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray) or hasattr(value, "numel"):  # a one-element array or tensor
        size = value.size if isinstance(value, np.ndarray) else value.numel()
        v = value.item() if size == 1 else None
        if isinstance(v, numbers.Real) and not isinstance(v, bool):
            return float(v)
    raise TypeError(f"{name} must be a real number, got {type(value).__name__}")


def _arrays(name: str, params: Any) -> list[np.ndarray]:
    """NumPy views of the parameters (an array, a sequence or a mapping of arrays or CPU tensors)."""
    if isinstance(params, Mapping):
        items = list(params.values())
    elif isinstance(params, np.ndarray) or hasattr(params, "detach"):
        items = [params]
    elif isinstance(params, Sequence) and not isinstance(params, (str, bytes)):
        items = list(params)
    else:
        raise TypeError(f"{name} must be an array or a list or dict of arrays, got {type(params).__name__}")
    out = []
    for i, p in enumerate(items):
        if isinstance(p, np.ndarray):
            out.append(p)
        elif hasattr(p, "detach") and hasattr(p, "numpy"):  # a torch tensor: a view of its memory
            if getattr(p, "device", None) is not None and str(p.device) != "cpu":
                raise ValueError(f"{name}[{i}] must be on the CPU, got device {p.device}")
            out.append(p.detach().numpy())
        else:
            raise TypeError(f"{name}[{i}] must be a NumPy array or a torch tensor, got {type(p).__name__}")
    return out


class EarlyStopping:
    """Stops a training run when its validation error stops improving (1.7.3): Keras-style
    patience or one of Prechelt's criteria GL_α, PQ_α, UP_s (module docstring).

    Arguments:
        monitor: the name of the watched quantity; when ``update`` is given a dict of
            metrics (Keras's ``logs``), the value read from it.
        mode: ``"min"`` (a loss or an error) or ``"max"`` (an accuracy); Prechelt's criteria
            need ``"min"``.
        patience: ``"patience"``: epochs without improvement before stopping (default 5);
            ``"UP"``: s, the strips of rising validation error (default 3).
        min_delta: the least change that counts as an improvement (``"patience"`` only).
        criterion: ``"patience"``, ``"GL"``, ``"PQ"`` or ``"UP"``.
        alpha: α of GL_α (default 5, in percent) and PQ_α (default 0.5).
        strip: k, the strip length of PQ and UP.
        restore_best: keep a copy of the parameters of the best epoch (when ``update`` is
            given them) and copy it back when stopping.

    Use::

        stopper = EarlyStopping(criterion="GL", alpha=2.0)
        for epoch in range(max_epochs):
            train_loss = train_one_epoch(params)
            if stopper.update(epoch, validation_loss(params), train=train_loss, params=params):
                break                      # params now hold the best epoch's values
        print(stopper.stop_reason, stopper.best_epoch, stopper.best_value)

    Attributes: ``best_epoch``, ``best_value`` (None before the first update),
    ``stopped_epoch`` (None until stopped), ``stop_reason`` (a sentence), ``history`` (a dict
    of lists, one entry per update: ``"epoch"``, ``"value"``, ``"train"`` (NaN when not
    given), ``"statistic"``: the criterion's quantity, the epochs without improvement
    (patience), GL(t) (GL), GL(t)/P_k(t) (PQ) or the strips of rising error so far (UP); NaN
    where it is not evaluated). The state round-trips through :meth:`state_dict` /
    :meth:`load_state_dict` and pickle, snapshot included, so a resumed run stops where an
    uninterrupted one would.
    """

    _CONFIG = ("monitor", "mode", "patience", "min_delta", "criterion", "alpha", "strip", "restore_best")
    _STATE = ("history", "best_value", "best_epoch", "wait", "up", "stopped_epoch", "stop_reason", "snapshot")

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "min",
        patience: int | None = None,
        min_delta: float = 0.0,
        criterion: str = "patience",
        alpha: float | None = None,
        strip: int = 5,
        restore_best: bool = True,
    ) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a str (a metric's name), got {type(monitor).__name__}")
        if not monitor:
            raise ValueError("monitor must be a metric's name, got ''")
        mode = _checks.choice("mode", mode, ("min", "max"))
        criterion = _checks.choice("criterion", criterion, CRITERIA)
        min_delta = _checks.real("min_delta", min_delta, 0.0)
        strip = _checks.integer("strip", strip, 1)
        restore_best = _checks.flag("restore_best", restore_best)
        if criterion in ("patience", "UP"):
            patience = _DEFAULT_PATIENCE[criterion] if patience is None else _checks.integer("patience", patience, 0)
            if criterion == "UP" and patience < 1:
                raise ValueError(f"patience (s of UP_s, the strips of rising error) must be >= 1, got {patience}")
        elif patience is not None:
            raise ValueError(f"patience applies to criterion 'patience' and 'UP', not {criterion!r}")
        if criterion in ("GL", "PQ"):
            alpha = _DEFAULT_ALPHA[criterion] if alpha is None else _checks.real("alpha", alpha, 0.0)
        elif alpha is not None:
            raise ValueError(f"alpha applies to criterion 'GL' and 'PQ', not {criterion!r}")
        if criterion != "patience":
            if mode != "min":
                raise ValueError(f"mode must be 'min' for criterion {criterion!r}: Prechelt's criteria watch an error")
            if min_delta != 0.0:
                raise ValueError(f"min_delta applies to criterion 'patience' only, not {criterion!r}")
        if mode == "min" and any(w in monitor.lower() for w in ("acc", "auc", "precision", "recall")):
            raise ValueError(
                f"mode='min' with monitor={monitor!r}: that quantity grows as the model improves; pass mode='max'"
            )
        self.monitor, self.mode, self.criterion = monitor, mode, criterion
        self.patience, self.min_delta, self.alpha = patience, min_delta, alpha
        self.strip, self.restore_best = strip, restore_best
        self._reset()

    def _reset(self) -> None:
        self.history: dict[str, list[float]] = {"epoch": [], "value": [], "train": [], "statistic": []}
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0  # epochs since the last improvement (patience)
        self.up = 0  # strips in a row whose validation error rose (UP)
        self.stopped_epoch: int | None = None
        self.stop_reason = ""
        self.snapshot: list[np.ndarray] | None = None

    # -- the decision ------------------------------------------------------------------------
    def _is_better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        if self.criterion != "patience":
            return value < best
        return value + self.min_delta < best if self.mode == "min" else value - self.min_delta > best  # Keras's form

    def update(self, epoch: int, val: Any, train: Any = None, params: Any = None) -> bool:
        """Records epoch ``epoch``'s validation value ``val`` (a number, or a dict of metrics
        holding ``monitor``) and training error ``train`` (needed by PQ); returns True when
        training should stop. With ``restore_best``, ``params`` (arrays or CPU tensors) are
        copied when they are the best so far, and copied back in place when stopping. Once
        stopped, further calls return True and change nothing."""
        if self.stopped_epoch is not None:
            return True
        epoch = _checks.integer("epoch", epoch, 0)
        last = self.history["epoch"][-1] if self.history["epoch"] else None
        if last is not None and epoch <= last:
            raise ValueError(f"epoch must increase from one update to the next: got {epoch} after {last}")
        if isinstance(val, Mapping):
            if self.monitor not in val:
                raise ValueError(f"monitor {self.monitor!r} is not among the metrics given: {sorted(map(str, val))}")
            val = val[self.monitor]
        value = _number(f"val ({self.monitor})", val)
        if train is None:
            if self.criterion == "PQ":
                raise ValueError("criterion 'PQ' needs train= (the training error) at every epoch")
            train_value = math.nan
        else:
            train_value = _number("train", train)
        views = _arrays("params", params) if params is not None and self.restore_best else None
        if views is not None:
            self._check_writeable(views)  # stopping copies the best values back into them
            if self.snapshot is not None:
                self._check_match(views)
        finite = math.isfinite(value) and (train is None or math.isfinite(train_value))
        if finite and self.criterion in ("GL", "PQ", "UP") and (value < 0 or train_value < 0):
            raise ValueError(
                f"criterion {self.criterion!r} takes errors >= 0, got val={value!r}, train={train_value!r}"
            )
        # -- checked; from here on the call cannot fail
        h = self.history
        h["epoch"].append(epoch)
        h["value"].append(value)
        h["train"].append(train_value)
        if not finite:
            h["statistic"].append(math.nan)
            what = f"{self.monitor} = {value!r}" if not math.isfinite(value) else f"train = {train_value!r}"
            kept = f"the best is epoch {self.best_epoch}" if self.best_epoch is not None else "no epoch was finite"
            self._stop(epoch, f"non-finite {what} at epoch {epoch}: the run diverged; {kept}", views)
            warnings.warn(f"EarlyStopping: {self.stop_reason}", RuntimeWarning, stacklevel=2)
            return True
        if self._is_better(value, self.best_value):
            self.best_value, self.best_epoch, self.wait = value, epoch, 0
            if views is not None:
                self._copy_in(views)
        else:
            self.wait += 1
        reason = getattr(self, "_decide_" + self.criterion)()
        if reason:
            self._stop(epoch, reason, views)
            return True
        return False

    def _decide_patience(self) -> str:
        assert self.patience is not None
        self.history["statistic"].append(float(self.wait))
        if self.wait > 0 and self.wait >= self.patience:
            return f"no improvement of {self.monitor} for {self.wait} epochs (patience {self.patience})"
        return ""

    def _gl(self, value: float) -> float:
        """GL(t) = 100 · (E_va(t) / E_opt(t) − 1)."""
        best = self.best_value
        assert best is not None
        if best == 0.0:
            return 0.0 if value == 0.0 else math.inf
        return 100.0 * (value / best - 1.0)

    def _strip_end(self) -> bool:
        return len(self.history["epoch"]) % self.strip == 0

    def _decide_GL(self) -> str:
        assert self.alpha is not None
        gl = self._gl(self.history["value"][-1])
        self.history["statistic"].append(gl)
        return f"generalisation loss GL = {gl:.6g} > alpha = {self.alpha:g}" if gl > self.alpha else ""

    def _decide_PQ(self) -> str:
        assert self.alpha is not None
        if not self._strip_end():
            self.history["statistic"].append(math.nan)
            return ""
        k = self.strip
        tr = self.history["train"][-k:]
        lowest = min(tr)
        progress = (math.inf if sum(tr) > 0 else 0.0) if lowest == 0.0 else 1000.0 * (sum(tr) / (k * lowest) - 1.0)
        gl = self._gl(self.history["value"][-1])
        if progress == 0.0:
            pq = math.inf if gl > 0 else 0.0
        else:
            pq = gl / progress
        self.history["statistic"].append(pq)
        if pq > self.alpha:
            return f"GL / P_k = {gl:.6g} / {progress:.6g} = {pq:.6g} > alpha = {self.alpha:g} (strip k = {k})"
        return ""

    def _decide_UP(self) -> str:
        assert self.patience is not None
        if not self._strip_end():
            self.history["statistic"].append(math.nan)
            return ""
        v = self.history["value"]
        if len(v) > self.strip:
            self.up = self.up + 1 if v[-1] > v[-1 - self.strip] else 0
        self.history["statistic"].append(float(self.up))
        if self.up >= self.patience:
            return (
                f"validation error rose at the ends of {self.up} strips in a row (UP_{self.patience}, k = {self.strip})"
            )
        return ""

    def _stop(self, epoch: int, reason: str, views: list[np.ndarray] | None) -> None:
        self.stopped_epoch, self.stop_reason = epoch, f"stopped at epoch {epoch}: {reason}"
        if views is not None and self.snapshot is not None:
            self._copy_out(views)
            self.stop_reason += f"; parameters restored to epoch {self.best_epoch}"

    # -- the snapshot ------------------------------------------------------------------------
    def _check_match(self, views: list[np.ndarray]) -> None:
        snap = self.snapshot
        assert snap is not None
        if len(views) != len(snap):
            raise ValueError(f"params must be the {len(snap)} arrays snapshotted before, got {len(views)}")
        for i, (p, s) in enumerate(zip(views, snap)):
            if p.shape != s.shape or p.dtype != s.dtype:
                raise ValueError(
                    f"params[{i}] must have the snapshot's shape {s.shape} and dtype {s.dtype}, got {p.shape} {p.dtype}"
                )

    @staticmethod
    def _check_writeable(views: list[np.ndarray]) -> None:
        for i, p in enumerate(views):
            if not p.flags.writeable:
                raise ValueError(f"params[{i}] is read-only: the best values are copied back into it")

    def _copy_in(self, views: list[np.ndarray]) -> None:
        if self.snapshot is None:
            self.snapshot = [np.empty_like(p, order="K") for p in views]  # the only allocation
        for s, p in zip(self.snapshot, views):
            np.copyto(s, p)

    def _copy_out(self, views: list[np.ndarray]) -> None:
        assert self.snapshot is not None
        for p, s in zip(views, self.snapshot):
            np.copyto(p, s)

    def restore(self, params: Any) -> None:
        """Copies the best epoch's parameters back into ``params``, in place and bitwise."""
        if self.snapshot is None:
            why = "restore_best=False" if not self.restore_best else "update() was never given params"
            raise RuntimeError(f"no snapshot to restore: {why}")
        views = _arrays("params", params)
        self._check_match(views)
        self._check_writeable(views)
        self._copy_out(views)

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The arguments and the state (history, best, counters, snapshot copies): plain values
        and arrays, for pickle or ``np.savez``."""
        state = {k: getattr(self, k) for k in self._CONFIG}
        state.update(
            history={k: list(v) for k, v in self.history.items()},
            best_value=self.best_value,
            best_epoch=self.best_epoch,
            wait=self.wait,
            up=self.up,
            stopped_epoch=self.stopped_epoch,
            stop_reason=self.stop_reason,
            snapshot=None if self.snapshot is None else [s.copy() for s in self.snapshot],
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`state_dict`; checks every key first, so a rejected state changes nothing."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        keys = self._CONFIG + self._STATE
        missing = [k for k in keys if k not in state]
        unknown = sorted(str(k) for k in state if k not in keys)
        if missing or unknown:
            raise ValueError(
                f"state must have exactly the keys of EarlyStopping.state_dict(); missing {missing}, unknown {unknown}"
            )
        fresh = EarlyStopping(**{k: state[k] for k in self._CONFIG})
        hist = state["history"]
        if not isinstance(hist, dict) or set(hist) != set(fresh.history):
            raise ValueError(f"state['history'] must be a dict with the keys {tuple(fresh.history)}")
        lengths = {len(v) for v in hist.values()}
        if len(lengths) != 1:
            raise ValueError("state['history'] lists must have one length")
        fresh.history = {
            k: [_checks.integer(f"state['history']['epoch'][{i}]", e, 0) for i, e in enumerate(v)]
            if k == "epoch"
            else [_number(f"state['history'][{k!r}][{i}]", x) for i, x in enumerate(v)]
            for k, v in hist.items()
        }
        if state["best_value"] is not None:
            fresh.best_value = _number("state['best_value']", state["best_value"])
            fresh.best_epoch = _checks.integer("state['best_epoch']", state["best_epoch"], 0)
        fresh.wait = _checks.integer("state['wait']", state["wait"], 0)
        fresh.up = _checks.integer("state['up']", state["up"], 0)
        if state["stopped_epoch"] is not None:
            fresh.stopped_epoch = _checks.integer("state['stopped_epoch']", state["stopped_epoch"], 0)
        if not isinstance(state["stop_reason"], str):
            raise TypeError("state['stop_reason'] must be a str")
        fresh.stop_reason = state["stop_reason"]
        if state["snapshot"] is not None:
            fresh.snapshot = [np.array(s, copy=True) for s in _arrays("state['snapshot']", state["snapshot"])]
        self.__dict__.update(fresh.__dict__)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._CONFIG)
        return f"EarlyStopping({args})"


# -- mini-batches ------------------------------------------------------------------------------
def minibatches(n: int, batch_size: int, seed: int, epoch: int, drop_last: bool = False) -> list[np.ndarray]:
    """The mini-batches of epoch ``epoch``: a random permutation of range(n) cut into index
    arrays (int64) of ``batch_size`` (the last one shorter, or dropped with ``drop_last``).

    The permutation sorts n uniforms from Philox4x32-10 (:func:`nndl_fast.random.uniform`,
    float64, ``seed``, ``offset=epoch``), ties (probability ~n²·2⁻⁵⁴) broken by index: (seed,
    epoch) gives the same batches on every machine and run. Each epoch is its own stream of
    ``seed``; do not give the same seed to dropout's masks. The arrays are views of one
    permutation; use them as ``x[idx]``."""
    n = _checks.integer("n", n, 0)
    batch_size = _checks.integer("batch_size", batch_size, 1)
    seed = _checks.integer("seed", seed, 0, _U64_MAX)
    epoch = _checks.integer("epoch", epoch, 0, _U64_MAX)
    drop_last = _checks.flag("drop_last", drop_last)
    if n == 0:
        return []
    keys = _random.uniform(n, dtype=np.float64, seed=seed, offset=epoch)
    perm = np.argsort(keys, kind="stable")
    end = n - n % batch_size if drop_last else n
    return [perm[i : i + batch_size] for i in range(0, end, batch_size)]


# -- progress ----------------------------------------------------------------------------------
def progress(
    iterable: Iterable[Any],
    *,
    desc: str = "",
    total: int | None = None,
    disable: bool = False,
    use_tqdm: bool | None = None,
    file: TextIO | None = None,
) -> Iterator[Any]:
    """Iterates over ``iterable`` showing progress: a tqdm bar when tqdm is importable (and
    ``use_tqdm`` is not False), else a plain text line at each tenth and at the end
    (``desc: 30/100``), to ``file`` (stderr). ``disable=True`` shows nothing."""
    if disable:
        yield from iterable
        return
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if use_tqdm is not False:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if use_tqdm:
                raise
        else:
            yield from tqdm(iterable, desc=desc or None, total=total, file=file, leave=False)
            return
    out = sys.stderr if file is None else file
    label = f"{desc}: " if desc else ""
    marks = {max(1, (total * j) // 10) for j in range(1, 11)} if total else set()
    i = 0
    for i, item in enumerate(iterable, 1):
        yield item
        if i in marks:
            print(f"{label}{i}/{total}", file=out, flush=True)
    if not marks:
        print(f"{label}{i}", file=out, flush=True)
