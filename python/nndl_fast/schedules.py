r"""Learning-rate decay (1.5–1.7, and Adam's α₀/√t): callables of the 1-based step t.

Pass one as any optimizer's ``lr``: the optimizer evaluates α_t = schedule(t) at each
step and hands the kernel a plain number. With ``decay_steps`` = k the exponent counts
k steps as one (e.g. the steps of an epoch): τ = t / k.

============================  ======================================  ========
class                         α_t                                     equation
============================  ======================================  ========
:class:`InverseTimeDecay`     α₀ / (1 + β τ)                           (1.5)
:class:`ExponentialDecay`     α₀ β^τ                                   (1.6)
:class:`NaturalExpDecay`      α₀ exp(−β τ)                             (1.7)
:class:`InverseSqrtDecay`     α₀ / √t                                  (1.23, text)
============================  ======================================  ========

β = 0.96 is the chapter's example value. ``staircase=True`` uses ⌊τ⌋ (decay per whole
block of k steps). The classes are plain and picklable, so an optimizer's state_dict
holding one pickles. Arguments may be Python or NumPy numbers. A value that does not fit
in a float (``ExponentialDecay(1e-3, beta=10)(400)``) raises ValueError naming the
schedule and the step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from . import _checks

__all__ = ["ExponentialDecay", "InverseSqrtDecay", "InverseTimeDecay", "NaturalExpDecay", "Schedule"]


class Schedule:
    """Base: checks α₀ ≥ 0, β ≥ 0, decay_steps ≥ 1 and t ≥ 1."""

    def __init__(self, lr0: float, beta: float = 0.96, decay_steps: int = 1, staircase: bool = False) -> None:
        self.lr0 = _checks.real("lr0", lr0, 0.0)
        self.beta = _checks.real("beta", beta, 0.0)
        self.decay_steps = _checks.integer("decay_steps", decay_steps, 1)
        self.staircase = _checks.flag("staircase", staircase)

    def tau(self, t: int) -> float:
        """τ = t / k (⌊t / k⌋ with staircase) for the 1-based step t."""
        tau = _checks.integer("t (the 1-based step)", t, 1) / self.decay_steps
        return float(math.floor(tau)) if self.staircase else tau

    def _value(self, t: int, formula: Callable[[float], float]) -> float:
        """formula(τ), refused with a ValueError naming the schedule when it does not fit in a float."""
        try:
            value = formula(self.tau(t))
        except OverflowError:  # from t / k with a huge t, or from β^τ
            value = math.inf
        if not math.isfinite(value):
            raise ValueError(f"{self!r} overflows at step t={t}: the learning rate does not fit in a float")
        return value

    def __call__(self, t: int) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(lr0={self.lr0}, beta={self.beta}, decay_steps={self.decay_steps}, "
            f"staircase={self.staircase})"
        )

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)


class InverseTimeDecay(Schedule):
    """α_t = α₀ / (1 + β τ)  (1.5)."""

    def __call__(self, t: int) -> float:
        return self._value(t, lambda tau: self.lr0 / (1.0 + self.beta * tau))


class ExponentialDecay(Schedule):
    """α_t = α₀ β^τ  (1.6); β < 1 decays."""

    def __call__(self, t: int) -> float:
        return self._value(t, lambda tau: self.lr0 * self.beta**tau)


class NaturalExpDecay(Schedule):
    """α_t = α₀ exp(−β τ)  (1.7)."""

    def __call__(self, t: int) -> float:
        return self._value(t, lambda tau: self.lr0 * math.exp(-self.beta * tau))


class InverseSqrtDecay(Schedule):
    """α_t = α₀ / √t, the decay the chapter suggests for Adam (after 1.23)."""

    def __init__(self, lr0: float) -> None:
        super().__init__(lr0)

    def __call__(self, t: int) -> float:
        return self._value(t, lambda tau: self.lr0 / math.sqrt(tau))

    def __repr__(self) -> str:
        return f"InverseSqrtDecay(lr0={self.lr0})"
