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
holding one pickles.
"""

from __future__ import annotations

import math

__all__ = ["ExponentialDecay", "InverseSqrtDecay", "InverseTimeDecay", "NaturalExpDecay", "Schedule"]


class Schedule:
    """Base: checks α₀ ≥ 0, β ≥ 0, decay_steps ≥ 1 and t ≥ 1."""

    def __init__(self, lr0: float, beta: float = 0.96, decay_steps: int = 1, staircase: bool = False) -> None:
        if not (isinstance(lr0, (int, float)) and lr0 >= 0):
            raise ValueError(f"lr0 must be a number >= 0, got {lr0!r}")
        if not (isinstance(beta, (int, float)) and beta >= 0):
            raise ValueError(f"beta must be a number >= 0, got {beta!r}")
        if not (isinstance(decay_steps, int) and decay_steps >= 1):
            raise ValueError(f"decay_steps must be an int >= 1, got {decay_steps!r}")
        self.lr0, self.beta, self.decay_steps, self.staircase = float(lr0), float(beta), decay_steps, staircase

    def tau(self, t: int) -> float:
        if t < 1:
            raise ValueError(f"t is the 1-based step, got {t}")
        tau = t / self.decay_steps
        return float(math.floor(tau)) if self.staircase else tau

    def __call__(self, t: int) -> float:  # pragma: no cover - overridden
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(lr0={self.lr0}, beta={self.beta}, decay_steps={self.decay_steps}, "
                f"staircase={self.staircase})")

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)


class InverseTimeDecay(Schedule):
    """α_t = α₀ / (1 + β τ)  (1.5)."""

    def __call__(self, t: int) -> float:
        return self.lr0 / (1.0 + self.beta * self.tau(t))


class ExponentialDecay(Schedule):
    """α_t = α₀ β^τ  (1.6); β < 1 decays."""

    def __call__(self, t: int) -> float:
        return self.lr0 * self.beta ** self.tau(t)


class NaturalExpDecay(Schedule):
    """α_t = α₀ exp(−β τ)  (1.7)."""

    def __call__(self, t: int) -> float:
        return self.lr0 * math.exp(-self.beta * self.tau(t))


class InverseSqrtDecay(Schedule):
    """α_t = α₀ / √t, the decay the chapter suggests for Adam (after 1.23)."""

    def __init__(self, lr0: float) -> None:
        super().__init__(lr0)

    def __call__(self, t: int) -> float:
        return self.lr0 / math.sqrt(self.tau(t))

    def __repr__(self) -> str:
        return f"InverseSqrtDecay(lr0={self.lr0})"
