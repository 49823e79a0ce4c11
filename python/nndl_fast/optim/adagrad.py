r"""AdaGrad (1.8–1.9; Duchi et al. 2011)."""

from __future__ import annotations

from typing import Any

from .. import _checks, _core
from .base import COMMON_DOC, LR, UNSET, Optimizer, Rule, check_common, eps_split, functional


class AdagradRule(Rule):
    name = "adagrad"
    defaults = {
        "lr": 1e-2,
        "eps": 1e-10,
        "eps_inside_sqrt": True,
        "lr_decay": 0.0,
        "initial_accumulator_value": 0.0,
        "convention": "chapter",
    }
    presets = {
        "chapter": {},
        "torch": {"eps_inside_sqrt": False, "decay_scaled_by_lr": True},
        "keras": {"lr": 1e-3, "eps": 1e-7, "initial_accumulator_value": 0.1, "decay_scaled_by_lr": True},
        "optax": {"eps": 1e-7, "initial_accumulator_value": 0.1, "decay_scaled_by_lr": True},
        "onnx": {"eps": 1e-6, "eps_inside_sqrt": False},
    }
    state = ("sum",)

    def check(self, hp):
        check_common(hp)
        _checks.real("eps", hp["eps"], 0.0)
        _checks.flag("eps_inside_sqrt", hp["eps_inside_sqrt"])
        _checks.real("lr_decay", hp["lr_decay"], 0.0)
        _checks.real("initial_accumulator_value", hp["initial_accumulator_value"], 0.0)
        _checks.convention(hp["convention"], tuple(self.presets))

    def initial(self, name, hp):
        return float(hp["initial_accumulator_value"])

    def step_lr(self, hp, t, lr):
        return lr / (1.0 + (t - 1) * float(hp["lr_decay"]))  # torch's lr_decay

    def coefficients(self, hp, t, lr, scalars):
        # G ← G + g'² ;  θ ← decay·θ − lr·g' / (sqrt(G + eps_in) + eps_out)
        eps_in, eps_out = eps_split(float(hp["eps"]), hp["eps_inside_sqrt"])
        return {"lr": lr, "eps_in": eps_in, "eps_out": eps_out}, {}

    kernel = staticmethod(_core.adagrad_step)


ADAGRAD_RULE = AdagradRule()


class AdaGrad(Optimizer):
    r"""AdaGrad (1.8–1.9; Duchi et al. 2011).

    .. math::

        G_t = G_{t-1} + g_t \odot g_t \quad (1.8)\qquad
        \theta_t = \theta_{t-1} - \frac{\alpha}{\sqrt{G_t + \epsilon}} \odot g_t \quad (1.9)

    Symbols → arguments: α ``lr`` (the chapter gives no value; torch's 0.01), ε ``eps``
    (1e-10, in the chapter's range 1e-7…1e-10), G state ``sum``. Options: ε outside the root
    (``eps_inside_sqrt=False``), ``lr_decay`` (α/(1 + (t−1)·lr_decay)),
    ``initial_accumulator_value`` (G₀).

    ============  ===================================================  ===========================
    convention    formula                                              the peer's names
    ============  ===================================================  ===========================
    ``chapter``   α g/√(G + ε), ε = 1e-10, G₀ = 0                       (1.9)
    ``torch``     α/(1 + (t−1)·lr_decay) · g/(√G + ε), ε = 1e-10        ``torch.optim.Adagrad(lr,
                                                                       lr_decay, weight_decay,
                                                                       initial_accumulator_value,
                                                                       eps)``
    ``keras``     α g/√(G + ε), ε = 1e-7, G₀ = 0.1, α = 0.001           ``keras.optimizers.Adagrad(
                                                                       learning_rate,
                                                                       initial_accumulator_value,
                                                                       epsilon)``
    ``optax``     α g/√(G + ε), ε = 1e-7, G₀ = 0.1                      ``optax.adagrad(
                                                                       learning_rate,
                                                                       initial_accumulator_value,
                                                                       eps)``
    ``onnx``      ONNX ``Adagrad``: R/(1 + T·decay_factor) ·             ``decay_factor``
                  g/(√H + ε), ε = 1e-6, T = t − 1                      ``lr_decay``,
                                                                       ``norm_coefficient``
                                                                       ``weight_decay``
    ============  ===================================================  ===========================

    >>> import numpy as np
    >>> from nndl_fast.optim import AdaGrad
    >>> for convention in ("chapter", "torch", "keras", "optax", "onnx"):
    ...     theta = np.zeros(1)
    ...     opt = AdaGrad([theta], lr=0.1, convention=convention)
    ...     _ = opt.step([np.array([0.3])])
    ...     g = opt.param_groups[0]
    ...     print(convention, g["eps"], g["eps_inside_sqrt"], g["initial_accumulator_value"], theta.round(6))
    chapter 1e-10 True 0.0 [-0.1]
    torch 1e-10 False 0.0 [-0.1]
    keras 1e-07 True 0.1 [-0.068825]
    optax 1e-07 True 0.1 [-0.068825]
    onnx 1e-06 False 0.0 [-0.1]
    """

    _rule = ADAGRAD_RULE

    def __init__(
        self,
        params,
        lr: LR = UNSET,
        eps: float = UNSET,
        eps_inside_sqrt: bool = UNSET,
        lr_decay: float = UNSET,
        initial_accumulator_value: float = UNSET,
        *,
        convention: str = "chapter",
        **common: Any,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            eps=eps,
            eps_inside_sqrt=eps_inside_sqrt,
            lr_decay=lr_decay,
            initial_accumulator_value=initial_accumulator_value,
            convention=convention,
            **common,
        )


AdaGrad.__doc__ = (AdaGrad.__doc__ or "") + COMMON_DOC
adagrad = functional(ADAGRAD_RULE, "AdaGrad")
