r"""AdaDelta (1.13–1.14; Zeiler 2012)."""

from __future__ import annotations

from typing import Any

from .. import _checks, _core
from .base import COMMON_DOC, LR, UNSET, Optimizer, Rule, check_common, functional


class AdadeltaRule(Rule):
    name = "adadelta"
    defaults = {"lr": 1.0, "rho": 0.9, "eps": 1e-6, "convention": "chapter"}
    presets = {
        "chapter": {},
        "torch": {"decay_scaled_by_lr": True},
        "keras": {"lr": 1e-3, "rho": 0.95, "eps": 1e-7, "decay_scaled_by_lr": True},
        "optax": {"decay_scaled_by_lr": True},
    }
    state = ("square_avg", "acc_delta")

    def check(self, hp):
        check_common(hp)
        _checks.real("rho", hp["rho"], 0.0, 1.0, hi_open=True)
        _checks.real("eps", hp["eps"], 0.0, lo_open=True)
        _checks.convention(hp["convention"], tuple(self.presets))

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

    ============  ===============================================  ==================================
    convention    formula (the same rule; the defaults differ)     the peer's names
    ============  ===============================================  ==================================
    ``chapter``   α = 1, ρ = 0.9, ε = 1e-6                         (1.13–1.14)
    ``torch``     α = 1, ρ = 0.9, ε = 1e-6                         ``torch.optim.Adadelta(lr, rho,
                                                                   eps, weight_decay)``
    ``keras``     α = 0.001, ρ = 0.95, ε = 1e-7                    ``keras.optimizers.Adadelta(
                                                                   learning_rate, rho, epsilon)``
    ``optax``     ρ = 0.9, ε = 1e-6                                ``optax.adadelta(learning_rate,
                                                                   rho, eps, weight_decay)``
    ============  ===============================================  ==================================

    optax's ``weight_decay`` is L2 added to the gradient (``weight_decay`` here).

    >>> import numpy as np
    >>> from nndl_fast.optim import AdaDelta
    >>> for convention in ("chapter", "torch", "keras", "optax"):
    ...     theta = np.zeros(1)
    ...     opt = AdaDelta([theta], convention=convention)
    ...     _ = opt.step([np.array([0.5])])
    ...     g = opt.param_groups[0]
    ...     print(convention, g["lr"], g["rho"], g["eps"], theta.round(9))
    chapter 1.0 0.9 1e-06 [-0.00316221]
    torch 1.0 0.9 1e-06 [-0.00316221]
    keras 0.001 0.95 1e-07 [-1.414e-06]
    optax 1.0 0.9 1e-06 [-0.00316221]
    """

    _rule = ADADELTA_RULE

    def __init__(
        self,
        params,
        lr: LR = UNSET,
        rho: float = UNSET,
        eps: float = UNSET,
        *,
        convention: str = "chapter",
        **common: Any,
    ) -> None:
        super().__init__(params, lr=lr, rho=rho, eps=eps, convention=convention, **common)


AdaDelta.__doc__ = (AdaDelta.__doc__ or "") + COMMON_DOC
adadelta = functional(ADADELTA_RULE, "AdaDelta")
