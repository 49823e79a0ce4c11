r"""Stochastic gradient descent (1.3), with momentum (1.15) and Nesterov (1.16–1.18)."""

from __future__ import annotations

from typing import Any

from .. import _checks, _core
from .base import COMMON_DOC, LR, UNSET, Optimizer, Rule, check_common, functional


class SgdRule(Rule):
    name = "sgd"
    defaults = {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "convention": "chapter"}
    presets = {
        "chapter": {},
        "torch": {"decay_scaled_by_lr": True},
        "keras": {"lr": 1e-2, "decay_scaled_by_lr": True},
        "optax": {"decay_scaled_by_lr": True},
        "onnx": {},
    }
    state = ("momentum_buffer",)
    needs = {"momentum_buffer": "momentum > 0"}

    def check(self, hp):
        check_common(hp)
        _checks.real("momentum", hp["momentum"], 0.0)
        _checks.real("dampening", hp["dampening"], 0.0, 1.0)
        _checks.flag("nesterov", hp["nesterov"])
        convention = _checks.convention(hp["convention"], tuple(self.presets))
        if convention not in ("torch", "onnx") and hp["dampening"] != 0:
            raise ValueError("dampening exists only in convention='torch' and 'onnx'")
        if hp["nesterov"] and hp["momentum"] <= 0:
            raise ValueError("nesterov requires momentum > 0")
        if hp["nesterov"] and hp["dampening"] != 0 and convention != "onnx":
            raise ValueError("nesterov requires zero dampening (but in convention='onnx')")

    def buffers(self, hp):
        return ("momentum_buffer",) if hp["momentum"] != 0 else (None,)

    def coefficients(self, hp, t, lr, scalars):
        # u ← a·u + c·g' ;  θ ← decay·θ + s·u [+ n·g']   (cpp/optim/sgd.hpp)
        mu = float(hp["momentum"])
        if mu == 0.0:
            return {"lr": lr, "a": 0.0, "c": 0.0, "s": 0.0, "n": 0.0, "nesterov": False}, {}  # θ ← decay·θ − α g' (1.3)
        nesterov = bool(hp["nesterov"])
        convention = hp["convention"]
        if convention == "chapter" or convention == "keras":
            # Δθ ← ρΔθ − α g' ; θ ← θ + Δθ  (1.15); Nesterov on look-ahead parameters (1.18)
            a, c, s, n = mu, -lr, (mu if nesterov else 1.0), (-lr if nesterov else 0.0)
        else:
            # torch: b ← μ b + (1 − dampening) g' (b = g' at the first step) ; θ ← θ − α (b | g' + μ b)
            # optax, ONNX: the same, but the first step keeps μ b (b ← μ b + g', a loaded b counts)
            if t == 1:
                a, c = (0.0 if convention == "torch" else mu), 1.0
            else:
                a, c = mu, 1.0 - float(hp["dampening"])
            s, n = (-lr * mu, -lr) if nesterov else (-lr, 0.0)
        return {"lr": lr, "a": a, "c": c, "s": s, "n": n, "nesterov": nesterov}, {}

    kernel = staticmethod(_core.sgd_step)


SGD_RULE = SgdRule()


class SGD(Optimizer):
    r"""Stochastic gradient descent (1.3), with momentum (1.15) and Nesterov (1.18).

    .. math::

        \theta_t = \theta_{t-1} - \alpha\, g_t                        \quad (1.3)

    With ``momentum`` ρ > 0, ``convention=`` chooses the momentum's form (and the defaults):

    ============  =====================================================  ==========================
    convention    momentum form (state ``momentum_buffer``)              the peer's names
    ============  =====================================================  ==========================
    ``chapter``   Δθ_t = ρΔθ_{t−1} − α_t g_t, θ_t = θ_{t−1} + Δθ_t        (1.15), (1.18); α = 0.001
    ``torch``     b ← μ b + (1 − dampening) g (b = g at the first        ``torch.optim.SGD(lr,
                  step), θ ← θ − α b; Nesterov θ ← θ − α(g + μ b)         momentum, dampening,
                                                                         nesterov)``
    ``keras``     the chapter's Δθ (Keras's ``m = momentum·m − lr·g``),  ``keras.optimizers.SGD(
                  Nesterov θ ← θ + ρΔθ − α g; α = 0.01                   learning_rate, momentum,
                                                                         nesterov)``
    ``optax``     b ← μ b + g from the first step on (a loaded b         ``optax.sgd(learning_rate,
                  counts), θ ← θ − α b; Nesterov θ ← θ − α(g + μ b)       momentum, nesterov)``
    ``onnx``      ONNX ``Momentum``: V ← αV + β g (β = 1 at T = 0, but   ``alpha`` μ, ``beta``
                  V is kept), X ← X − R V; ``mode="nesterov"``:          1 − ``dampening``,
                  X ← X − R(g + αV)                                      ``norm_coefficient``
                                                                         ``weight_decay``, R ``lr``
    ============  =====================================================  ==========================

    The chapter's Δθ and torch's b agree while α is constant and differ under a schedule (the
    chapter's Δθ remembers past learning rates); torch's first step discards a loaded buffer,
    optax's and ONNX's keep it. ``nesterov=True``: see :class:`Nesterov`. ONNX's input T (the
    updates done) is ``step − 1`` of :func:`sgd`.

    Symbols → arguments: α ``lr``, ρ (μ) ``momentum``.

    >>> import numpy as np
    >>> from nndl_fast.optim import SGD
    >>> for convention in ("chapter", "torch", "keras", "optax", "onnx"):
    ...     theta, buf = np.zeros(1), np.ones(1)  # a momentum buffer loaded from a checkpoint
    ...     opt = SGD([theta], momentum=0.5, convention=convention)
    ...     opt.state[0]["momentum_buffer"] = buf
    ...     _ = opt.step([np.array([2.0])])
    ...     print(convention, opt.param_groups[0]["lr"], buf, theta)
    chapter 0.001 [0.498] [0.498]
    torch 0.001 [2.] [-0.002]
    keras 0.01 [0.48] [0.48]
    optax 0.001 [2.5] [-0.0025]
    onnx 0.001 [2.5] [-0.0025]
    """

    _rule = SGD_RULE

    def __init__(
        self,
        params,
        lr: LR = UNSET,
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
    """SGD with the chapter's momentum (1.15), ρ = 0.9 by default. See :class:`SGD`, whose
    ``convention=`` table (chapter, torch, keras, optax, onnx) applies as it is."""

    def __init__(self, params, lr: LR = UNSET, momentum: float = 0.9, **kwargs: Any) -> None:
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
    schedule, as for :class:`Momentum`; ``convention="torch"`` reproduces it exactly, and
    :class:`SGD`'s table gives the other presets (Keras's ``nesterov=True`` is this form; optax's
    and ONNX's ``mode="nesterov"`` torch's, keeping a loaded buffer at the first step).
    """

    def __init__(self, params, lr: LR = UNSET, momentum: float = 0.9, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, momentum=momentum, nesterov=True, **kwargs)


SGD.__doc__ = (SGD.__doc__ or "") + COMMON_DOC
sgd = functional(SGD_RULE, "SGD")
