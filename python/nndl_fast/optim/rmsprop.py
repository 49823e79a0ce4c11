r"""RMSprop (1.10–1.12; Tieleman and Hinton 2012)."""

from __future__ import annotations

from typing import Any

from .. import _checks, _core
from .base import COMMON_DOC, LR, Optimizer, Rule, check_common, eps_split, functional


class RmspropRule(Rule):
    name = "rmsprop"
    defaults = {"lr": 1e-3, "beta": 0.9, "eps": 1e-8, "eps_inside_sqrt": True, "momentum": 0.0, "centered": False}
    state = ("square_avg", "momentum_buffer", "grad_avg")
    needs = {"momentum_buffer": "momentum > 0", "grad_avg": "centered=True"}

    def check(self, hp):
        check_common(hp)
        _checks.real("beta", hp["beta"], 0.0, 1.0, hi_open=True)
        _checks.real("eps", hp["eps"], 0.0)
        _checks.flag("eps_inside_sqrt", hp["eps_inside_sqrt"])
        _checks.real("momentum", hp["momentum"], 0.0)
        _checks.flag("centered", hp["centered"])

    def buffers(self, hp):
        return ("square_avg", "momentum_buffer" if hp["momentum"] > 0 else None, "grad_avg" if hp["centered"] else None)

    def coefficients(self, hp, t, lr, scalars):
        # G ← βG + (1−β)g'² [ḡ ← βḡ + (1−β)g'] ; θ ← decay·θ − lr·g'/(sqrt(G̃ + eps_in) + eps_out)
        eps_in, eps_out = eps_split(float(hp["eps"]), hp["eps_inside_sqrt"])
        return {
            "lr": lr,
            "beta": float(hp["beta"]),
            "eps_in": eps_in,
            "eps_out": eps_out,
            "momentum": float(hp["momentum"]),
        }, {}

    kernel = staticmethod(_core.rmsprop_step)


RMSPROP_RULE = RmspropRule()


class RMSprop(Optimizer):
    r"""RMSprop (1.10–1.12; Tieleman and Hinton 2012).

    .. math::

        G_t = \beta G_{t-1} + (1-\beta)\, g_t \odot g_t \quad (1.10)\qquad
        \theta_t = \theta_{t-1} - \frac{\alpha}{\sqrt{G_t + \epsilon}} \odot g_t \quad (1.12)

    Symbols → arguments: α ``lr`` (0.001), β ``beta`` (0.9; torch calls it ``alpha`` and
    uses 0.99), ε ``eps`` (1e-8), G state ``square_avg``. torch options: ε outside the
    root (``eps_inside_sqrt=False``), ``centered`` (G − ḡ² with ḡ the mean gradient, state
    ``grad_avg``), ``momentum`` μ (b ← μ b + g/√…; θ ← θ − α b, state ``momentum_buffer``).
    ``torch.optim.RMSprop(lr, alpha=a, eps=e)`` = ``RMSprop(lr, beta=a, eps=e, eps_inside_sqrt=False)``.
    """

    _rule = RMSPROP_RULE

    def __init__(
        self,
        params,
        lr: LR = 1e-3,
        beta: float = 0.9,
        eps: float = 1e-8,
        eps_inside_sqrt: bool = True,
        momentum: float = 0.0,
        centered: bool = False,
        **common: Any,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            beta=beta,
            eps=eps,
            eps_inside_sqrt=eps_inside_sqrt,
            momentum=momentum,
            centered=centered,
            **common,
        )


RMSprop.__doc__ = (RMSprop.__doc__ or "") + COMMON_DOC
rmsprop = functional(RMSPROP_RULE, "RMSprop")
