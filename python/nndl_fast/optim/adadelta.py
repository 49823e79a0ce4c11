r"""AdaDelta (1.13–1.14; Zeiler 2012)."""

from __future__ import annotations

from typing import Any

from .. import _checks, _core
from .base import COMMON_DOC, LR, Optimizer, Rule, check_common, functional


class AdadeltaRule(Rule):
    name = "adadelta"
    defaults = {"lr": 1.0, "rho": 0.9, "eps": 1e-6}
    state = ("square_avg", "acc_delta")

    def check(self, hp):
        check_common(hp)
        _checks.real("rho", hp["rho"], 0.0, 1.0, hi_open=True)
        _checks.real("eps", hp["eps"], 0.0, lo_open=True)

    def coefficients(self, hp, t, lr, scalars):
        # G ← ρG + (1−ρ)g'² ; Δ = sqrt(X + ε)/sqrt(G + ε)·g' ; X ← ρX + (1−ρ)Δ² ; θ ← decay·θ − lr·Δ
        return {"lr": lr, "rho": float(hp["rho"]), "eps": float(hp["eps"])}, {}

    kernel = staticmethod(_core.adadelta_step)


ADADELTA_RULE = AdadeltaRule()


class AdaDelta(Optimizer):
    r"""AdaDelta (1.13–1.14; Zeiler 2012).

    .. math::

        G_t = \rho G_{t-1} + (1-\rho)\, g_t\odot g_t,\quad
        \Delta\theta_t = -\frac{\sqrt{\Delta X^2_{t-1} + \epsilon}}{\sqrt{G_t + \epsilon}}\, g_t
        \quad (1.14),\quad
        \Delta X^2_t = \rho\,\Delta X^2_{t-1} + (1-\rho)\,\Delta\theta_t\odot\Delta\theta_t \quad (1.13)

    and θ_t = θ_{t−1} + α·Δθ_t with α = ``lr`` = 1 (the chapter's rule has no α; torch's
    ``lr`` factor). ρ ``rho`` (0.9; the chapter's β₁, used for both averages as in Zeiler's
    paper and torch), ε ``eps`` (1e-6). State: ``square_avg`` (G), ``acc_delta`` (ΔX²).
    Identical to ``torch.optim.Adadelta``.
    """

    _rule = ADADELTA_RULE

    def __init__(self, params, lr: LR = 1.0, rho: float = 0.9, eps: float = 1e-6, **common: Any) -> None:
        super().__init__(params, lr=lr, rho=rho, eps=eps, **common)


AdaDelta.__doc__ = (AdaDelta.__doc__ or "") + COMMON_DOC
adadelta = functional(ADADELTA_RULE, "AdaDelta")
