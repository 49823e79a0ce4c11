r"""Learning-rate schedules: callables of n, the number of updates already done (0, 1, 2, …).

Pass one as any optimizer's ``lr``: before its n-th update (n = 0 for the first) the optimizer
evaluates α_n = schedule(n) and hands the kernel a plain number. So the first update uses α₀,
as in torch's ``lr_scheduler`` (stepped after each update), optax (its ``count``) and Keras
(``optimizer.iterations``); any callable of n works the same way. The chapter writes α_t with
t counted from the start of training: its t is our n.

With ``decay_steps`` = k the chapter's decays count k updates as one (e.g. the updates of an
epoch): τ = n / k, or ⌊n / k⌋ with ``staircase=True``.

====================================  ===================================================  ==========================
class                                 α_n                                                  source
====================================  ===================================================  ==========================
:class:`InverseTimeDecay`             α₀ / (1 + β τ)                                       (1.5)
:class:`ExponentialDecay`             α₀ β^τ                                               (1.6); torch ExponentialLR
:class:`NaturalExpDecay`              α₀ exp(−β τ)                                         (1.7)
:class:`InverseSqrtDecay`             α₀ / √(n + 1), Adam's α₀/√t with t = n + 1           (1.23, text)
:class:`StepDecay`                    α₀ γ^⌊n / step_size⌋                                 torch StepLR
:class:`MultiStepDecay`               α₀ γ^(number of milestones ≤ n)                      torch MultiStepLR
:class:`CosineAnnealing`              η_min + (α₀ − η_min)(1 + cos(π n / T_max)) / 2       torch CosineAnnealingLR
:class:`CosineAnnealingWarmRestarts`  the same, n counted from the last restart            SGDR; torch's
:class:`LinearWarmup`                 a₀ (f + (1 − f) n / w) for n < w, then after(n − w)  torch LinearLR, SequentialLR
:class:`ReduceLROnPlateau`            × factor after each plateau of a metric              torch ReduceLROnPlateau
====================================  ===================================================  ==========================

β = 0.96 is the chapter's example value. Each torch-named schedule equals the torch scheduler
stepped once after every update (ReduceLROnPlateau: once per metric), to rounding (torch
computes most of them recursively, we in closed form). The classes are plain and picklable,
so an optimizer's state_dict holding one pickles; :class:`ReduceLROnPlateau`, the one with
state, also has ``state_dict`` / ``load_state_dict``. Arguments may be Python or NumPy
numbers. A value that does not fit in a float (``ExponentialDecay(1e-3, beta=10)(400)``)
raises ValueError naming the schedule and n.
"""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from . import _checks

__all__ = [
    "CosineAnnealing",
    "CosineAnnealingWarmRestarts",
    "ExponentialDecay",
    "InverseSqrtDecay",
    "InverseTimeDecay",
    "LinearWarmup",
    "MultiStepDecay",
    "NaturalExpDecay",
    "ReduceLROnPlateau",
    "Schedule",
    "StepDecay",
]


class Schedule:
    """Base: ``schedule(n)`` checks n (an integer ≥ 0, the updates already done) and returns
    α_n as a float, refusing a value that does not fit in one."""

    _fields: tuple[str, ...] = ()  # constructor arguments, for repr

    def _at(self, n: int) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def __call__(self, n: int) -> float:
        n = _checks.integer("n (the number of updates done)", n, 0)
        try:
            value = self._at(n)
        except OverflowError:  # from n / k with a huge n, or from β^τ
            value = math.inf
        if not math.isfinite(value):
            raise ValueError(f"{self!r} overflows at n={n}: the learning rate does not fit in a float")
        return value

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)


# -- the chapter's decays (1.5–1.7) ------------------------------------------------------
class _ChapterDecay(Schedule):
    """α₀, β ≥ 0, decay_steps ≥ 1, staircase: the arguments of 1.5–1.7."""

    _fields = ("lr0", "beta", "decay_steps", "staircase")

    def __init__(self, lr0: float, beta: float = 0.96, decay_steps: int = 1, staircase: bool = False) -> None:
        self.lr0 = _checks.real("lr0", lr0, 0.0)
        self.beta = _checks.real("beta", beta, 0.0)
        self.decay_steps = _checks.integer("decay_steps", decay_steps, 1)
        self.staircase = _checks.flag("staircase", staircase)

    def tau(self, n: int) -> float:
        """τ = n / k (⌊n / k⌋ with staircase)."""
        tau = n / self.decay_steps
        return float(math.floor(tau)) if self.staircase else tau


class InverseTimeDecay(_ChapterDecay):
    """α_n = α₀ / (1 + β τ)  (1.5); Keras's ``InverseTimeDecay``."""

    def _at(self, n: int) -> float:
        return self.lr0 / (1.0 + self.beta * self.tau(n))


class ExponentialDecay(_ChapterDecay):
    """α_n = α₀ β^τ  (1.6); β < 1 decays. torch's ``ExponentialLR(gamma=β)`` (k = 1), Keras's
    ``ExponentialDecay``; with staircase, torch's ``StepLR(step_size=k, gamma=β)``."""

    def _at(self, n: int) -> float:
        return self.lr0 * self.beta ** self.tau(n)


class NaturalExpDecay(_ChapterDecay):
    """α_n = α₀ exp(−β τ)  (1.7)."""

    def _at(self, n: int) -> float:
        return self.lr0 * math.exp(-self.beta * self.tau(n))


class InverseSqrtDecay(Schedule):
    """α_n = α₀ / √(n + 1): the chapter's α₀/√t for Adam (after 1.23), t = n + 1 its step."""

    _fields = ("lr0",)

    def __init__(self, lr0: float) -> None:
        self.lr0 = _checks.real("lr0", lr0, 0.0)

    def _at(self, n: int) -> float:
        return self.lr0 / math.sqrt(n + 1)


# -- the schedules of torch.optim.lr_scheduler ------------------------------------------------
class StepDecay(Schedule):
    """α_n = α₀ γ^⌊n / step_size⌋: torch's ``StepLR(step_size, gamma)``."""

    _fields = ("lr0", "step_size", "gamma")

    def __init__(self, lr0: float, step_size: int, gamma: float = 0.1) -> None:
        self.lr0 = _checks.real("lr0", lr0, 0.0)
        self.step_size = _checks.integer("step_size", step_size, 1)
        self.gamma = _checks.real("gamma", gamma, 0.0)

    def _at(self, n: int) -> float:
        return self.lr0 * self.gamma ** (n // self.step_size)


class MultiStepDecay(Schedule):
    """α_n = α₀ γ^m, m the number of milestones ≤ n (a milestone listed twice counts twice):
    torch's ``MultiStepLR(milestones, gamma)``."""

    _fields = ("lr0", "milestones", "gamma")

    def __init__(self, lr0: float, milestones: Sequence[int], gamma: float = 0.1) -> None:
        self.lr0 = _checks.real("lr0", lr0, 0.0)
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
            raise TypeError(f"milestones must be a sequence of integers, got {type(milestones).__name__}")
        self.milestones = tuple(sorted(_checks.integer(f"milestones[{i}]", m, 1) for i, m in enumerate(milestones)))
        self.gamma = _checks.real("gamma", gamma, 0.0)

    def _at(self, n: int) -> float:
        return self.lr0 * self.gamma ** bisect.bisect_right(self.milestones, n)


class CosineAnnealing(Schedule):
    r"""α_n = η_min + (α₀ − η_min)(1 + cos(π n / T_max)) / 2: torch's
    ``CosineAnnealingLR(T_max, eta_min)`` (Loshchilov & Hutter 2017, without restarts).

    α₀ at n = 0, η_min at n = T_max; past T_max the cosine rises again (period 2·T_max), as
    torch's does. To stay at η_min, make T_max the number of updates, or use
    :class:`CosineAnnealingWarmRestarts` to restart.
    """

    _fields = ("lr0", "T_max", "eta_min")

    def __init__(self, lr0: float, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803 - torch's and the paper's name
        self.lr0 = _checks.real("lr0", lr0, 0.0)
        self.T_max = _checks.integer("T_max", T_max, 1)
        self.eta_min = _checks.real("eta_min", eta_min, 0.0)

    def _at(self, n: int) -> float:
        return self.eta_min + (self.lr0 - self.eta_min) * (1.0 + math.cos(math.pi * n / self.T_max)) / 2.0


class CosineAnnealingWarmRestarts(Schedule):
    r"""SGDR (Loshchilov & Hutter 2017): α_n = η_min + (α₀ − η_min)(1 + cos(π T_cur / T_i)) / 2,
    with T_cur the updates since the last restart and T_i the current period: T_0 first, then
    T_0·T_mult, T_0·T_mult², …. torch's ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)``
    stepped once per update (T_cur and T_i exact integers here)."""

    _fields = ("lr0", "T_0", "T_mult", "eta_min")

    def __init__(self, lr0: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> None:  # noqa: N803
        self.lr0 = _checks.real("lr0", lr0, 0.0)
        self.T_0 = _checks.integer("T_0", T_0, 1)
        self.T_mult = _checks.integer("T_mult", T_mult, 1)
        self.eta_min = _checks.real("eta_min", eta_min, 0.0)

    def period(self, n: int) -> tuple[int, int]:
        """(T_cur, T_i) at n."""
        if self.T_mult == 1:
            return n % self.T_0, self.T_0
        t_cur, t_i = n, self.T_0
        while t_cur >= t_i:  # at most log_{T_mult}(n / T_0) + 1 rounds
            t_cur -= t_i
            t_i *= self.T_mult
        return t_cur, t_i

    def _at(self, n: int) -> float:
        t_cur, t_i = self.period(n)
        return self.eta_min + (self.lr0 - self.eta_min) * (1.0 + math.cos(math.pi * t_cur / t_i)) / 2.0


class LinearWarmup(Schedule):
    r"""A linear warm-up before another schedule: with a₀ = after(0),

    α_n = a₀ (f + (1 − f) n / w) for n < w, then α_n = after(n − w)

    (f = ``start_factor``, w = ``warmup_steps``); ``after`` is a schedule (any callable of n)
    or a constant learning rate. torch's ``SequentialLR([LinearLR(start_factor=f,
    total_iters=w), after], milestones=[w])``, or ``LinearLR`` alone for a constant. torch's
    default f = 1/3 is kept; f = 0 (allowed here, not in torch) starts from zero.
    """

    _fields = ("after", "warmup_steps", "start_factor")

    def __init__(
        self, after: Callable[[int], float] | float, warmup_steps: int, start_factor: float = 1.0 / 3.0
    ) -> None:
        if not callable(after):
            after = _checks.real("after", after, 0.0)
        self.after = after
        self.warmup_steps = _checks.integer("warmup_steps", warmup_steps, 1)
        self.start_factor = _checks.real("start_factor", start_factor, 0.0, 1.0)

    def _after(self, n: int) -> float:
        if not callable(self.after):
            return self.after
        return _checks.real(f"after({n}), the schedule after the warm-up,", self.after(n), 0.0)

    def _at(self, n: int) -> float:
        w = self.warmup_steps
        if n >= w:
            return self._after(n - w)
        f = self.start_factor
        return self._after(0) * (f + (1.0 - f) * n / w)


def _metric(value: Any) -> float:
    """A metric as a float: a real number (NaN allowed: never better) or a one-element tensor/array."""
    if not isinstance(value, numbers.Real) and hasattr(value, "item"):
        try:
            value = value.item()
        except (ValueError, RuntimeError):  # NumPy's and torch's error for several elements
            raise TypeError(f"metric must be a real number or a one-element tensor, got {value!r}") from None
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isnan(value):
        return math.nan
    return _checks.real("metric", value, finite=False)


class ReduceLROnPlateau(Schedule):
    r"""Divides the learning rate when a metric stops improving: torch's ``ReduceLROnPlateau``.

    Call :meth:`step` with the metric (a validation loss, an accuracy) after each epoch; the
    optimizer reads the current rate through ``schedule(n)`` (n is checked, not used). A
    metric a is better than the best so far, b, when

    - ``mode="min"``: a < b (1 − threshold) (``threshold_mode="rel"``) or a < b − threshold
      (``"abs"``); ``mode="max"``: a > b (1 + threshold) or a > b + threshold.

    Each epoch that is not better counts as bad; after more than ``patience`` bad epochs in a
    row the rate becomes max(lr · factor, min_lr) (unchanged if that lowers it by ``eps`` or
    less), then ``cooldown`` epochs are not counted. A NaN metric is never better. The state
    (rate, best, counters) round-trips through :meth:`state_dict` / :meth:`load_state_dict`
    and pickle.
    """

    _fields = ("lr0", "mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps")
    _STATE = ("lr", "best", "num_bad_epochs", "cooldown_counter", "last_epoch")

    def __init__(
        self,
        lr0: float,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        self.lr0 = _checks.real("lr0", lr0, 0.0)
        self.mode = _checks.choice("mode", mode, ("min", "max"))
        self.factor = _checks.real("factor", factor, 0.0, 1.0, hi_open=True)
        self.patience = _checks.integer("patience", patience, 0)
        self.threshold = _checks.real("threshold", threshold, 0.0)
        self.threshold_mode = _checks.choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = _checks.integer("cooldown", cooldown, 0)
        self.min_lr = _checks.real("min_lr", min_lr, 0.0)
        self.eps = _checks.real("eps", eps, 0.0)
        self.lr = self.lr0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0  # metrics seen

    def _at(self, n: int) -> float:
        return self.lr

    def is_better(self, a: float, best: float) -> bool:
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metric: Any) -> float:
        """Records one epoch's metric; returns the learning rate from now on."""
        current = _metric(metric)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.lr * self.factor, self.min_lr)
            if self.lr - new_lr > self.eps:
                self.lr = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        return self.lr

    def state_dict(self) -> dict[str, Any]:
        """The hyper-parameters and the state, as plain numbers and strings."""
        return {k: getattr(self, k) for k in self._fields + self._STATE}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`state_dict`; checks every key first, so a rejected state changes nothing."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        keys = self._fields + self._STATE
        missing = [k for k in keys if k not in state]
        unknown = sorted(str(k) for k in state if k not in keys)
        if missing or unknown:
            raise ValueError(
                "state must have exactly the keys of ReduceLROnPlateau.state_dict(); "
                f"missing {missing}, unknown {unknown}"
            )
        fresh = ReduceLROnPlateau(**{k: state[k] for k in self._fields})
        fresh.lr = _checks.real("state['lr']", state["lr"], 0.0)
        fresh.best = _checks.real("state['best']", state["best"], finite=False)
        for k in ("num_bad_epochs", "cooldown_counter", "last_epoch"):
            setattr(fresh, k, _checks.integer(f"state[{k!r}]", state[k], 0))
        self.__dict__.update(fresh.__dict__)
