r"""Stochastic gradient descent (1.3), with momentum (1.15) and Nesterov (1.16–1.18)."""

from __future__ import annotations

from typing import Any

from .. import _checks, _core
from .base import COMMON_DOC, LR, Optimizer, Rule, check_common, functional


class SgdRule(Rule):
    name = "sgd"
    defaults = {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "convention": "chapter"}
    state = ("momentum_buffer",)
    needs = {"momentum_buffer": "momentum > 0"}

    def check(self, hp):
        check_common(hp)
        _checks.real("momentum", hp["momentum"], 0.0)
        _checks.real("dampening", hp["dampening"], 0.0, 1.0)
        _checks.flag("nesterov", hp["nesterov"])
        _checks.convention(hp["convention"])
        if hp["convention"] == "chapter" and hp["dampening"] != 0:
            raise ValueError("dampening exists only in convention='torch'")
        if hp["nesterov"] and (hp["momentum"] <= 0 or hp["dampening"] != 0):
            raise ValueError("nesterov requires momentum > 0 and zero dampening")

    def buffers(self, hp):
        return ("momentum_buffer",) if hp["momentum"] != 0 else (None,)

    def coefficients(self, hp, t, lr, scalars):
        # u ← a·u + c·g' ;  θ ← decay·θ + s·u [+ n·g']   (cpp/optim/sgd.hpp)
        mu = float(hp["momentum"])
        if mu == 0.0:
            return {"lr": lr, "a": 0.0, "c": 0.0, "s": 0.0, "n": 0.0, "nesterov": False}, {}  # θ ← decay·θ − α g' (1.3)
        nesterov = bool(hp["nesterov"])
        if hp["convention"] == "chapter":
            # Δθ ← ρΔθ − α g' ; θ ← θ + Δθ  (1.15); Nesterov on look-ahead parameters (1.18)
            a, c, s, n = mu, -lr, (mu if nesterov else 1.0), (-lr if nesterov else 0.0)
        else:
            # torch: b ← μ b + (1 − dampening) g' (b = g' at the first step) ; θ ← θ − α (b | g' + μ b)
            a, c = (0.0, 1.0) if t == 1 else (mu, 1.0 - float(hp["dampening"]))
            s, n = (-lr * mu, -lr) if nesterov else (-lr, 0.0)
        return {"lr": lr, "a": a, "c": c, "s": s, "n": n, "nesterov": nesterov}, {}

    kernel = staticmethod(_core.sgd_step)


SGD_RULE = SgdRule()


class SGD(Optimizer):
    r"""Stochastic gradient descent (1.3), with momentum (1.15) and Nesterov (1.18).

    .. math::

        \theta_t = \theta_{t-1} - \alpha\, g_t                        \quad (1.3)

    With ``momentum`` ρ > 0 and ``convention="chapter"`` (default):

    .. math::

        \Delta\theta_t = \rho\,\Delta\theta_{t-1} - \alpha_t g_t,\qquad
        \theta_t = \theta_{t-1} + \Delta\theta_t                       \quad (1.15)

    ``convention="torch"`` keeps torch's buffer b instead: b ← μ b + (1 − dampening) g
    (b = g at the first step), θ ← θ − α b. The two agree while α is constant and differ
    under a schedule (the chapter's Δθ remembers past learning rates).
    ``nesterov=True``: see :class:`Nesterov`.

    Symbols → arguments: α ``lr``, ρ (μ) ``momentum``. State: ``momentum_buffer``
    (Δθ in the chapter's form, b in torch's). To reproduce ``torch.optim.SGD``:
    ``SGD(params, lr, momentum=μ, convention="torch", dampening=..., nesterov=...)``.
    """

    _rule = SGD_RULE

    def __init__(
        self,
        params,
        lr: LR = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        convention: str = "chapter",
        **common: Any,
    ) -> None:
        super().__init__(
            params, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, convention=convention, **common
        )


class Momentum(SGD):
    """SGD with the chapter's momentum (1.15), ρ = 0.9 by default. See :class:`SGD`."""

    def __init__(self, params, lr: LR = 1e-3, momentum: float = 0.9, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, momentum=momentum, **kwargs)


class Nesterov(SGD):
    r"""Nesterov accelerated gradient (1.16–1.18), ρ = 0.9 by default.

    .. math::

        \Delta\theta_t = \rho\,\Delta\theta_{t-1}
            - \alpha\, g(\theta_{t-1} + \rho\,\Delta\theta_{t-1})            \quad (1.18)

    The gradient is taken at the look-ahead point θ̂ = θ + ρΔθ (1.16). The optimizer
    therefore holds the look-ahead parameters φ = θ + ρΔθ, at which the user evaluates
    the gradient (the usual reformulation, Sutskever et al. 2013):

    .. math::

        \Delta\theta_t = \rho\,\Delta\theta_{t-1} - \alpha\, g(\varphi_{t-1}),\qquad
        \varphi_t = \varphi_{t-1} + \rho\,\Delta\theta_t - \alpha\, g(\varphi_{t-1})

    so that θ_t = φ_t − ρΔθ_t follows (1.18) exactly. Since Δθ₀ = 0, φ₀ = θ₀. This is
    torch's ``SGD(nesterov=True)`` (b ← μb + g; θ ← θ − α(g + μb)) up to the learning-rate
    schedule, as for :class:`Momentum`; ``convention="torch"`` reproduces it exactly.
    """

    def __init__(self, params, lr: LR = 1e-3, momentum: float = 0.9, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, momentum=momentum, nesterov=True, **kwargs)


SGD.__doc__ = (SGD.__doc__ or "") + COMMON_DOC
sgd = functional(SGD_RULE, "SGD")
