r"""RMSprop (1.10–1.12; Tieleman and Hinton 2012)."""

from __future__ import annotations

from typing import Any

from .. import _checks, _core
from .base import COMMON_DOC, LR, UNSET, Optimizer, Rule, check_common, eps_split, functional


class RmspropRule(Rule):
    name = "rmsprop"
    defaults = {
        "lr": 1e-3,
        "beta": 0.9,
        "eps": 1e-8,
        "eps_inside_sqrt": True,
        "momentum": 0.0,
        "centered": False,
        "convention": "chapter",
        "nesterov": False,
        "bias_correction": False,
        "initial_accumulator_value": 0.0,
    }
    presets = {
        "chapter": {},
        "torch": {"lr": 1e-2, "beta": 0.99, "eps_inside_sqrt": False, "decay_scaled_by_lr": True},
        "keras": {"eps": 1e-7, "decay_scaled_by_lr": True},
        "optax": {"decay_scaled_by_lr": True},
    }
    state = ("square_avg", "momentum_buffer", "grad_avg")
    needs = {"momentum_buffer": "momentum > 0", "grad_avg": "centered=True"}
    variant_options = ("bias_correction",)

    def check(self, hp):
        check_common(hp)
        _checks.real("beta", hp["beta"], 0.0, 1.0, hi_open=True)
        _checks.real("eps", hp["eps"], 0.0)
        _checks.flag("eps_inside_sqrt", hp["eps_inside_sqrt"])
        _checks.real("momentum", hp["momentum"], 0.0)
        _checks.flag("centered", hp["centered"])
        _checks.convention(hp["convention"], tuple(self.presets))
        if _checks.flag("nesterov", hp["nesterov"]) and hp["momentum"] <= 0:
            raise ValueError("nesterov requires momentum > 0")
        _checks.flag("bias_correction", hp["bias_correction"])
        _checks.real("initial_accumulator_value", hp["initial_accumulator_value"], 0.0)

    def buffers(self, hp):
        return ("square_avg", "momentum_buffer" if hp["momentum"] > 0 else None, "grad_avg" if hp["centered"] else None)

    def initial(self, name, hp):
        return float(hp.get("initial_accumulator_value", 0.0)) if name == "square_avg" else 0.0

    def variant(self, hp):
        return RMSPROP_VARIANTS if hp.get("bias_correction", False) else self

    def constants(self, hp):
        eps_in, eps_out = eps_split(float(hp["eps"]), hp["eps_inside_sqrt"])
        k = {
            "lr": 0.0,
            "beta": float(hp["beta"]),
            "eps_in": eps_in,
            "eps_out": eps_out,
            "momentum": float(hp["momentum"]),
        }
        if hp.get("nesterov", False):
            k["nesterov"] = True  # the kernel's optional flag
        return k

    def coefficients(self, k, t, lr, scalars):
        # G ← βG + (1−β)g'² [ḡ ← βḡ + (1−β)g'] ; θ ← decay·θ − lr·g'/(sqrt(G̃ + eps_in) + eps_out)
        k["lr"] = lr
        return k, {}

    kernel = staticmethod(_core.rmsprop_step)


class _RmspropVariants(RmspropRule):
    """With ``bias_correction``: the kernel's optional c2 = 1/(1 − βᵗ) changes at every step."""

    def variant(self, hp):
        return self

    def constants(self, hp):
        k = super().constants(hp)
        return (k, k["beta"]) if hp.get("bias_correction", False) else (k, None)

    def coefficients(self, k, t, lr, scalars):
        rec, beta = k
        rec["lr"] = lr
        if beta is not None:
            rec["c2"] = 1.0 / (1.0 - beta**t)  # the kernel's optional field: Ĝ = G/(1 − βᵗ)
        return rec, {}


RMSPROP_RULE = RmspropRule()
RMSPROP_VARIANTS = _RmspropVariants()


class RMSprop(Optimizer):
    r"""RMSprop (1.10–1.12; Tieleman and Hinton 2012).

    .. math::

        G_t = \beta G_{t-1} + (1-\beta)\, g_t \odot g_t \quad (1.10)\qquad
        \theta_t = \theta_{t-1} - \frac{\alpha}{\sqrt{G_t + \epsilon}} \odot g_t \quad (1.12)

    Symbols → arguments: α ``lr`` (0.001), β ``beta`` (0.9; torch calls it ``alpha`` and
    uses 0.99), ε ``eps`` (1e-8), G state ``square_avg``. Options:

    * ``eps_inside_sqrt=False``: ε outside the root (torch's);
    * ``centered``: G − ḡ² with ḡ the mean gradient (state ``grad_avg``);
    * ``momentum`` μ: b ← μ b + g/√…, θ ← θ − α b (state ``momentum_buffer``); with
      ``nesterov=True`` (optax's), θ ← θ − α (g/√… + μ b);
    * ``bias_correction=True`` (optax's): G/(1 − βᵗ) (and ḡ/(1 − βᵗ)) in the root;
    * ``initial_accumulator_value``: G₀ (optax's ``initial_scale``).

    ============  ==================================================  ==============================
    convention    formula                                             the peer's names
    ============  ==================================================  ==============================
    ``chapter``   α g/√(G + ε), β = 0.9, ε = 1e-8                     (1.12)
    ``torch``     α g/(√G + ε), β = 0.99, α = 0.01                    ``torch.optim.RMSprop(lr,
                                                                      alpha`` β``, eps, momentum,
                                                                      centered)``
    ``keras``     α g/√(G + ε), β = 0.9, ε = 1e-7; momentum on         ``keras.optimizers.RMSprop(
                  α g/√…                                              learning_rate, rho`` β``,
                                                                      momentum, epsilon, centered)``
    ``optax``     α g/√(Ĝ + ε), β = 0.9, ε = 1e-8, Ĝ = G (or          ``optax.rmsprop(learning_rate,
                  G/(1 − βᵗ)); momentum on α g/√…                      decay`` β``, eps,
                                                                      initial_scale, eps_in_sqrt,
                                                                      centered, momentum, nesterov,
                                                                      bias_correction)``
    ============  ==================================================  ==============================

    Keras and optax keep the momentum of α·g/√…, this class of g/√… (torch's): the same while
    α is constant, as SGD's two momentum forms.

    >>> import numpy as np
    >>> from nndl_fast.optim import RMSprop
    >>> for convention, options in [("chapter", {}), ("torch", {}), ("keras", {}),
    ...                             ("optax", {"bias_correction": True, "momentum": 0.9, "nesterov": True})]:
    ...     theta = np.zeros(1)
    ...     opt = RMSprop([theta], lr=0.1, convention=convention, **options)
    ...     _ = opt.step([np.array([0.3])])
    ...     g = opt.param_groups[0]
    ...     print(convention, g["beta"], g["eps"], g["eps_inside_sqrt"], theta.round(6))
    chapter 0.9 1e-08 True [-0.316228]
    torch 0.99 1e-08 False [-1.]
    keras 0.9 1e-07 True [-0.316226]
    optax 0.9 1e-08 True [-0.19]
    """

    _rule = RMSPROP_RULE

    def __init__(
        self,
        params,
        lr: LR = UNSET,
        beta: float = UNSET,
        eps: float = UNSET,
        eps_inside_sqrt: bool = UNSET,
        momentum: float = UNSET,
        centered: bool = UNSET,
        *,
        convention: str = "chapter",
        nesterov: bool = UNSET,
        bias_correction: bool = UNSET,
        initial_accumulator_value: float = UNSET,
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
            convention=convention,
            nesterov=nesterov,
            bias_correction=bias_correction,
            initial_accumulator_value=initial_accumulator_value,
            **common,
        )


RMSprop.__doc__ = (RMSprop.__doc__ or "") + COMMON_DOC
rmsprop = functional(RMSPROP_RULE, "RMSprop")
