r"""Adam (1.19–1.23), AdamW (1.64) and Nadam (1.2.3.3): one kernel, ``_core.adam_step``."""

from __future__ import annotations

from typing import Any

from .. import _checks, _core
from .base import COMMON_DOC, LR, Optimizer, Rule, check_betas, check_common, eps_split, functional


class AdamRule(Rule):
    name = "adam"
    defaults = {"lr": 1e-3, "betas": (0.9, 0.99), "eps": 1e-8, "eps_inside_sqrt": True, "amsgrad": False}
    state = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    needs = {"max_exp_avg_sq": "amsgrad=True"}

    def check(self, hp):
        check_common(hp)
        check_betas(hp["betas"])
        _checks.real("eps", hp["eps"], 0.0)
        _checks.flag("eps_inside_sqrt", hp["eps_inside_sqrt"])
        _checks.flag("amsgrad", hp["amsgrad"])

    def buffers(self, hp):
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq" if hp["amsgrad"] else None)

    def constants(self, hp):
        # The group's coefficient record: each step rewrites only its step-dependent fields.
        eps_in, eps_out = eps_split(float(hp["eps"]), hp["eps_inside_sqrt"])
        beta1, beta2 = float(hp["betas"][0]), float(hp["betas"][1])
        return {"beta1": beta1, "beta2": beta2, "c_m": 0.0, "c_g": 0.0, "c2": 0.0, "eps_in": eps_in, "eps_out": eps_out}

    def coefficients(self, k, t, lr, scalars):
        k["c_m"] = lr / (1.0 - k["beta1"] ** t)  # α / (1 − β1ᵗ): M̂ (1.21) folded into the step size
        k["c2"] = 1.0 / (1.0 - k["beta2"] ** t)  # Ĝ = G / (1 − β2ᵗ) (1.22)
        return k, {}

    kernel = staticmethod(_core.adam_step)


def _nadam_mu(beta1: float, momentum_decay: float, t: int) -> float:
    """μ_t = β1 (1 − ½·0.96^{tψ}) (Dozat 2016; torch NAdam)."""
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))


class NadamRule(Rule):
    name = "nadam"
    defaults = {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8, "eps_inside_sqrt": True, "momentum_decay": 4e-3}
    state = ("exp_avg", "exp_avg_sq")
    scalars = {"mu_product": 1.0}  # Π_{i<t} μ_i, before step t
    pad = (None,)  # Adam's kernel without max_exp_avg_sq

    def check(self, hp):
        check_common(hp)
        check_betas(hp["betas"])
        _checks.real("eps", hp["eps"], 0.0)
        _checks.flag("eps_inside_sqrt", hp["eps_inside_sqrt"])
        _checks.real("momentum_decay", hp["momentum_decay"], 0.0)

    def check_scalar(self, where, name, value):
        # a product of μ_i ∈ [0, 1): outside [0, 1], 1 − Π μ could vanish (a division by zero)
        return _checks.real(where, value, 0.0, 1.0)

    def coefficients(self, hp, t, lr, scalars):
        beta1, beta2 = float(hp["betas"][0]), float(hp["betas"][1])
        mu = _nadam_mu(beta1, float(hp["momentum_decay"]), t)
        mu_next = _nadam_mu(beta1, float(hp["momentum_decay"]), t + 1)
        mu_product = scalars["mu_product"] * mu
        c_g = lr * (1.0 - mu) / (1.0 - mu_product)
        c_m = lr * mu_next / (1.0 - mu_product * mu_next)
        c2 = 1.0 / (1.0 - beta2**t)
        eps_in, eps_out = eps_split(float(hp["eps"]), hp["eps_inside_sqrt"])
        return {
            "beta1": beta1,
            "beta2": beta2,
            "c_m": c_m,
            "c_g": c_g,
            "c2": c2,
            "eps_in": eps_in,
            "eps_out": eps_out,
        }, {"mu_product": mu_product}

    kernel = staticmethod(_core.adam_step)


ADAM_RULE = AdamRule()
NADAM_RULE = NadamRule()


class Adam(Optimizer):
    r"""Adam (1.19–1.23; Kingma and Ba 2015).

    .. math::

        M_t = \beta_1 M_{t-1} + (1-\beta_1) g_t \quad (1.19)\qquad
        G_t = \beta_2 G_{t-1} + (1-\beta_2)\, g_t\odot g_t \quad (1.20)

        \hat M_t = \frac{M_t}{1-\beta_1^t}\quad (1.21)\qquad
        \hat G_t = \frac{G_t}{1-\beta_2^t}\quad (1.22)\qquad
        \theta_t = \theta_{t-1} - \frac{\alpha}{\sqrt{\hat G_t + \epsilon}}\, \hat M_t \quad (1.23)

    Symbols → arguments: α ``lr`` (0.001; a schedule such as α₀/√t is a callable),
    β₁, β₂ ``betas`` (the chapter's (0.9, 0.99)), ε ``eps`` (1e-8), M state ``exp_avg``,
    G state ``exp_avg_sq``.

    .. warning:: ε placement. The chapter puts ε inside the root; torch (and the paper)
       outside: θ ← θ − α M̂/(√Ĝ + ε). Set ``eps_inside_sqrt=False`` for torch's.

    torch's ``torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=λ,
    amsgrad=..., maximize=...)`` = ``Adam(lr, betas=(0.9, 0.999), eps=1e-8,
    eps_inside_sqrt=False, weight_decay=λ, amsgrad=..., maximize=...)``. ``amsgrad``
    keeps max Ĝ (state ``max_exp_avg_sq``) as Reddi et al. 2018.
    """

    _rule = ADAM_RULE

    def __init__(
        self,
        params,
        lr: LR = 1e-3,
        betas: tuple[float, float] = (0.9, 0.99),
        eps: float = 1e-8,
        eps_inside_sqrt: bool = True,
        amsgrad: bool = False,
        **common: Any,
    ) -> None:
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, eps_inside_sqrt=eps_inside_sqrt, amsgrad=amsgrad, **common
        )


class AdamW(Adam):
    r"""Adam with decoupled weight decay (1.64; Loshchilov and Hutter 2019).

    Before each Adam step (see :class:`Adam`), θ ← (1 − w)·θ: the chapter's weight decay
    (1.64), with w = ``weight_decay`` (default 5e-4, the chapter's example value). Unlike
    L2 regularisation, the decay does not pass through Adam's per-coordinate scaling.
    torch's AdamW multiplies by α·λ instead: ``decay_scaled_by_lr=True``.
    ``torch.optim.AdamW(lr, weight_decay=0.01)`` = ``AdamW(lr, betas=(0.9, 0.999),
    weight_decay=0.01, decay_scaled_by_lr=True, eps_inside_sqrt=False)``.
    """

    def __init__(
        self,
        params,
        lr: LR = 1e-3,
        betas: tuple[float, float] = (0.9, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 5e-4,
        decay_scaled_by_lr: bool = False,
        eps_inside_sqrt: bool = True,
        amsgrad: bool = False,
        l2_weight_decay: float = 0.0,
        **common: Any,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            eps_inside_sqrt=eps_inside_sqrt,
            amsgrad=amsgrad,
            decoupled_weight_decay=weight_decay,
            decay_scaled_by_lr=decay_scaled_by_lr,
            weight_decay=l2_weight_decay,
            **common,
        )


class Nadam(Optimizer):
    r"""Nadam: Adam with Nesterov momentum (chapter 1.2.3.3; Dozat 2016).

    With the momentum schedule μ_t = β₁(1 − ½·0.96^{tψ}) (ψ = ``momentum_decay``):

    .. math::

        M_t, G_t \text{ as Adam (1.19–1.20)},\qquad
        \theta_t = \theta_{t-1} - \frac{\alpha}{\sqrt{\hat G_t + \epsilon}} \left(
            \frac{(1-\mu_t)\, g_t}{1 - \prod_{i\le t}\mu_i}
            + \frac{\mu_{t+1} M_t}{1 - \prod_{i\le t+1}\mu_i} \right)

    Defaults are Dozat's and torch's (the chapter gives none): α = 0.002,
    β = (0.9, 0.999), ψ = 0.004, ε = 1e-8 inside the root as in the chapter's Adam
    (``eps_inside_sqrt=False`` for torch's ``NAdam``). State: ``exp_avg``, ``exp_avg_sq``
    and the scalar ``mu_product`` (Π_{i<t} μ_i, in [0, 1]). torch's
    ``decoupled_weight_decay=True`` is ``decoupled_weight_decay=λ, decay_scaled_by_lr=True`` here.
    """

    _rule = NADAM_RULE

    def __init__(
        self,
        params,
        lr: LR = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        eps_inside_sqrt: bool = True,
        momentum_decay: float = 4e-3,
        **common: Any,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            eps_inside_sqrt=eps_inside_sqrt,
            momentum_decay=momentum_decay,
            **common,
        )


for _cls in (Adam, Nadam):
    _cls.__doc__ = (_cls.__doc__ or "") + COMMON_DOC

adam = functional(ADAM_RULE, "Adam")
nadam = functional(NADAM_RULE, "Nadam")
