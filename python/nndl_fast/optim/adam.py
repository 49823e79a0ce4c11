r"""Adam (1.19–1.23), AdamW (1.64) and Nadam (1.2.3.3): one kernel, ``_core.adam_step``."""

from __future__ import annotations

import math
from typing import Any

from .. import _checks, _core
from .base import COMMON_DOC, LR, UNSET, Optimizer, Rule, check_betas, check_common, eps_split, functional

_ADAM_PEERS = {"betas": (0.9, 0.999), "eps_inside_sqrt": False}  # what torch, Keras, optax and ONNX share
# torch's, Keras's and optax's decoupled decay is α·w (AdamW, Keras's weight_decay, optax's
# add_decayed_weights before the learning rate); ONNX's norm_coefficient_post is w.
_SCALED = {"decay_scaled_by_lr": True}

# The formula options another convention sets (AdamRule.variant): computed by _AdamVariants.
_ADAM_VARIANT_DEFAULTS = {"eps_hat": False, "bias_correction_exponent": "t", "decay_after_step": False}


def _check_adam_options(hp):
    _checks.real("eps", hp["eps"], 0.0)
    _checks.flag("eps_inside_sqrt", hp["eps_inside_sqrt"])
    _checks.real("eps_root", hp["eps_root"], 0.0)


class AdamRule(Rule):
    name = "adam"
    defaults = {
        "lr": 1e-3,
        "betas": (0.9, 0.99),
        "eps": 1e-8,
        "eps_inside_sqrt": True,
        "amsgrad": False,
        "convention": "chapter",
        "eps_root": 0.0,
        "eps_hat": False,
        "amsgrad_v_hat": False,
        "bias_correction_exponent": "t",
        "decay_after_step": False,
    }
    presets = {
        "chapter": {},
        "torch": {**_ADAM_PEERS, **_SCALED},
        "keras": {**_ADAM_PEERS, **_SCALED, "eps": 1e-7, "eps_hat": True},
        "optax": {**_ADAM_PEERS, **_SCALED, "amsgrad_v_hat": True},
        "onnx": {
            **_ADAM_PEERS,
            "eps": 1e-6,
            "eps_hat": True,
            "bias_correction_exponent": "n",
            "decay_after_step": True,
        },
    }
    state = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    needs = {"max_exp_avg_sq": "amsgrad=True"}
    variant_options = tuple(_ADAM_VARIANT_DEFAULTS)

    def check(self, hp):
        check_common(hp)
        check_betas(hp["betas"])
        _check_adam_options(hp)
        _checks.flag("amsgrad", hp["amsgrad"])
        _checks.convention(hp["convention"], tuple(self.presets))
        _checks.flag("eps_hat", hp["eps_hat"])
        _checks.flag("amsgrad_v_hat", hp["amsgrad_v_hat"])
        _checks.choice("bias_correction_exponent", hp["bias_correction_exponent"], ("t", "n"))
        _checks.flag("decay_after_step", hp["decay_after_step"])

    def buffers(self, hp):
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq" if hp["amsgrad"] else None)

    def variant(self, hp):
        return self if all(hp.get(k, v) == v for k, v in _ADAM_VARIANT_DEFAULTS.items()) else ADAM_VARIANTS

    def constants(self, hp):
        # The group's coefficient record: each step rewrites only its step-dependent fields.
        eps_in, eps_out = eps_split(float(hp["eps"]), hp["eps_inside_sqrt"])
        eps_in += float(hp.get("eps_root", 0.0))  # optax's eps_root: ε inside the root as well
        beta1, beta2 = float(hp["betas"][0]), float(hp["betas"][1])
        k = {"beta1": beta1, "beta2": beta2, "c_m": 0.0, "c_g": 0.0, "c2": 0.0, "eps_in": eps_in, "eps_out": eps_out}
        if hp.get("amsgrad_v_hat", False):
            k["amsgrad_v_hat"] = True  # the kernel's optional flag: the max of the bias-corrected v
        return k

    def coefficients(self, k, t, lr, scalars):
        k["c_m"] = lr / (1.0 - k["beta1"] ** t)  # α / (1 − β1ᵗ): M̂ (1.21) folded into the step size
        k["c2"] = 1.0 / (1.0 - k["beta2"] ** t)  # Ĝ = G / (1 − β2ᵗ) (1.22)
        return k, {}

    kernel = staticmethod(_core.adam_step)


class _AdamVariants(AdamRule):
    """AdamRule's coefficients with the peers' formula options (eps_hat, bias_correction_exponent,
    decay_after_step); an optimizer steps with it only when a group sets one of them."""

    def variant(self, hp):
        return self

    def constants(self, hp):
        w = float(hp["decoupled_weight_decay"])
        after = (w, bool(hp["decay_scaled_by_lr"])) if hp.get("decay_after_step", False) else None
        lag = hp.get("bias_correction_exponent", "t") == "n"
        return super().constants(hp), (bool(hp.get("eps_hat", False)), lag, after)

    def coefficients(self, k, t, lr, scalars):
        rec, (eps_hat, lag, after) = k
        n = t - 1 if lag else t  # ONNX corrects with the updates done before this one, none at 0
        corr1 = 1.0 - rec["beta1"] ** n if n > 0 else 1.0
        corr2 = 1.0 - rec["beta2"] ** n if n > 0 else 1.0
        if eps_hat:  # Keras's ε̂: ε joins the uncorrected v, the correction √(1−β2ᵗ) the step size
            rec["c_m"] = lr * math.sqrt(corr2) / corr1
            rec["c2"] = 1.0
        else:
            rec["c_m"] = lr / corr1
            rec["c2"] = 1.0 / corr2
        if after is not None:  # θ ← d·(θ − Δ): the decay also scales the step
            w, scaled = after
            rec["c_m"] *= 1.0 - (lr * w if scaled else w)
        return rec, {}


def _nadam_mu(beta1: float, momentum_decay: float, t: int) -> float:
    """μ_t = β1 (1 − ½·0.96^{tψ}) (Dozat 2016; torch NAdam); ψ = inf gives the constant μ_t = β1."""
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))


class NadamRule(Rule):
    name = "nadam"
    defaults = {
        "lr": 2e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "eps_inside_sqrt": True,
        "momentum_decay": 4e-3,
        "convention": "chapter",
        "momentum_schedule": "dozat",
        "eps_root": 0.0,
    }
    presets = {
        "chapter": {},
        "torch": {"eps_inside_sqrt": False, **_SCALED},
        "keras": {"lr": 1e-3, "eps": 1e-7, "eps_inside_sqrt": False, "momentum_decay": 1.0, **_SCALED},
        "optax": {"eps_inside_sqrt": False, "momentum_schedule": "constant", **_SCALED},
    }
    state = ("exp_avg", "exp_avg_sq")
    scalars = {"mu_product": 1.0}  # Π_{i<t} μ_i, before step t
    pad = (None,)  # Adam's kernel without max_exp_avg_sq

    def check(self, hp):
        check_common(hp)
        check_betas(hp["betas"])
        _check_adam_options(hp)
        _checks.real("momentum_decay", hp["momentum_decay"], 0.0)
        _checks.convention(hp["convention"], tuple(self.presets))
        _checks.choice("momentum_schedule", hp["momentum_schedule"], ("dozat", "constant"))

    def product(self, mu_product: float, mu: float) -> float:
        """Π_{i≤t} μ_i from Π_{i<t} μ_i, in double (torch keeps it in a float32 tensor:
        nndl_fast.torch.optim.NAdam rounds as torch does)."""
        return mu_product * mu

    def check_scalar(self, where, name, value):
        # a product of μ_i ∈ [0, 1): outside [0, 1], 1 − Π μ could vanish (a division by zero)
        return _checks.real(where, value, 0.0, 1.0)

    def constants(self, hp):
        eps_in, eps_out = eps_split(float(hp["eps"]), hp["eps_inside_sqrt"])
        eps_in += float(hp.get("eps_root", 0.0))
        constant = hp.get("momentum_schedule", "dozat") == "constant"
        psi = math.inf if constant else float(hp["momentum_decay"])  # 0.96^inf = 0: μ_t = β1
        return float(hp["betas"][0]), float(hp["betas"][1]), psi, eps_in, eps_out

    def coefficients(self, k, t, lr, scalars):
        beta1, beta2, psi, eps_in, eps_out = k
        mu = _nadam_mu(beta1, psi, t)
        mu_next = _nadam_mu(beta1, psi, t + 1)
        mu_product = self.product(scalars["mu_product"], mu)
        c_g = lr * (1.0 - mu) / (1.0 - mu_product)
        c_m = lr * mu_next / (1.0 - mu_product * mu_next)
        c2 = 1.0 / (1.0 - beta2**t)
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
ADAM_VARIANTS = _AdamVariants()
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
    G state ``exp_avg_sq``. ``amsgrad`` keeps max G (state ``max_exp_avg_sq``) as Reddi et al. 2018.

    ``convention=`` sets the defaults and formula options of a peer (an option given explicitly
    still wins; ``param_groups`` hold the resolved values):

    ============  ==========================================================  ===========================
    convention    formula (M, G as 1.19–1.20)                                 the peer's names
    ============  ==========================================================  ===========================
    ``chapter``   θ −= α M̂ / √(Ĝ + ε), β = (0.9, 0.99), ε = 1e-8             (1.23)
    ``torch``     θ −= α M̂ / (√Ĝ + ε), β = (0.9, 0.999)                      ``torch.optim.Adam(lr,
                  (``eps_inside_sqrt=False``); amsgrad: max of G             betas, eps, amsgrad)``
    ``keras``     θ −= α √(1−β₂ᵗ)/(1−β₁ᵗ) · M / (√G + ε), ε = 1e-7            ``keras.optimizers.Adam(
                  (``eps_hat=True``: Keras's ε̂); amsgrad: max of G           learning_rate, beta_1,
                                                                              beta_2, epsilon, amsgrad)``
    ``optax``     θ −= α M̂ / (√(Ĝ + ε_root) + ε) (``eps_root``);              ``optax.adam(learning_rate,
                  amsgrad: max of Ĝ (``amsgrad_v_hat=True``)                 b1, b2, eps, eps_root)``,
                                                                              ``optax.amsgrad``
    ``onnx``      ONNX ``Adam``: T = t − 1 updates done; θ ← (1 − w)(θ −     ``alpha`` β₁, ``beta`` β₂,
                  α √(1−β₂ᵀ)/(1−β₁ᵀ) · M / (√G + ε)), no correction at T = 0  ``epsilon`` (1e-6),
                  (``eps_hat``, ``bias_correction_exponent="n"``,            ``norm_coefficient`` λ₂,
                  ``decay_after_step``)                                      ``norm_coefficient_post`` w
    ============  ==========================================================  ===========================

    The formula options, each usable alone:

    * ``eps_inside_sqrt``: ε inside the root (the chapter's) or outside (the paper's, torch's).
    * ``eps_root`` (optax): a second ε, inside the root, beside ``eps`` outside.
    * ``eps_hat`` (Keras, ONNX): ε joins the *uncorrected* G, and the bias correction √(1 − β₂ᵗ)
      moves into the step size: θ −= α √(1−β₂ᵗ)/(1−β₁ᵗ) · M/(√G + ε), i.e. ε̂ = ε√(1−β₂ᵗ).
    * ``amsgrad_v_hat`` (optax): with ``amsgrad``, keep the max of the bias-corrected Ĝ in
      ``max_exp_avg_sq`` (torch and Keras keep the max of G).
    * ``bias_correction_exponent``: ``"t"`` (this update's 1-based count) or ``"n"`` (ONNX's T,
      the updates done before this one, with no correction when n = 0).
    * ``decay_after_step`` (ONNX's ``norm_coefficient_post``): the decoupled decay d = 1 − w
      multiplies the updated θ, θ ← d(θ − Δ), instead of θ before the step.

    ONNX's ``norm_coefficient`` is ``weight_decay`` (L2), its ``norm_coefficient_post`` is
    ``decoupled_weight_decay``; its input T is ``step − 1`` of the functional form :func:`adam`.
    Keras's ``weight_decay`` (and torch's ``decoupled_weight_decay=True``) is
    ``decoupled_weight_decay`` here: the torch, Keras and optax presets set
    ``decay_scaled_by_lr=True`` (θ ← (1 − αw)θ), ONNX's keeps θ ← (1 − w)·θ.

    Examples: one step from θ = 0 with g = (0.5, −1) and α = 0.1.

    >>> import numpy as np
    >>> from nndl_fast.optim import Adam
    >>> def one_step(**kw):
    ...     theta = np.zeros(2)
    ...     opt = Adam([theta], lr=0.1, **kw)
    ...     opt.step([np.array([0.5, -1.0])])
    ...     return opt.param_groups[0], theta
    >>> hp, theta = one_step()  # the chapter's: ε inside the root
    >>> hp["betas"], hp["eps_inside_sqrt"], theta.round(9)
    ((0.9, 0.99), True, array([-0.1,  0.1]))
    >>> hp, theta = one_step(convention="torch")
    >>> hp["betas"], hp["eps_inside_sqrt"], theta.round(9)
    ((0.9, 0.999), False, array([-0.1,  0.1]))
    >>> hp, theta = one_step(convention="keras", eps=0.01)  # ε̂: ε joins the uncorrected √G
    >>> hp["eps_hat"], theta.round(6)
    (True, array([-0.061257,  0.075975]))
    >>> hp, theta = one_step(convention="optax", eps_root=1e-4)
    >>> hp["amsgrad_v_hat"], theta.round(6)
    (True, array([-0.09998 ,  0.099995]))
    >>> hp, theta = one_step(convention="onnx", decoupled_weight_decay=0.5)  # T = 0: no correction
    >>> hp["bias_correction_exponent"], hp["decay_after_step"], theta.round(6)
    ('n', True, array([-0.158104,  0.158109]))
    """

    _rule = ADAM_RULE

    def __init__(
        self,
        params,
        lr: LR = UNSET,
        betas: tuple[float, float] = UNSET,
        eps: float = UNSET,
        eps_inside_sqrt: bool = UNSET,
        amsgrad: bool = UNSET,
        *,
        convention: str = "chapter",
        eps_root: float = UNSET,
        eps_hat: bool = UNSET,
        amsgrad_v_hat: bool = UNSET,
        bias_correction_exponent: str = UNSET,
        decay_after_step: bool = UNSET,
        **common: Any,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            eps_inside_sqrt=eps_inside_sqrt,
            amsgrad=amsgrad,
            convention=convention,
            eps_root=eps_root,
            eps_hat=eps_hat,
            amsgrad_v_hat=amsgrad_v_hat,
            bias_correction_exponent=bias_correction_exponent,
            decay_after_step=decay_after_step,
            **common,
        )


# AdamW's decoupled decay by convention: (w, decay_scaled_by_lr); ONNX has no AdamW (its Adam's
# norm_coefficient_post is Adam(convention="onnx", decoupled_weight_decay=w)).
_ADAMW_DECAY = {"chapter": (5e-4, False), "torch": (0.01, True), "keras": (0.004, True), "optax": (1e-4, True)}


class AdamW(Adam):
    r"""Adam with decoupled weight decay (1.64; Loshchilov and Hutter 2019).

    Before each Adam step (see :class:`Adam`), θ ← d·θ with w = ``weight_decay``: the chapter's
    d = 1 − w (1.64), or d = 1 − α·w with ``decay_scaled_by_lr=True`` (torch, Keras, optax).
    Unlike L2 regularisation, the decay does not pass through Adam's per-coordinate scaling.
    ``l2_weight_decay`` adds L2 (1.59) as well.

    ============  ==================================================  ==============================
    convention    decay and Adam formula (see :class:`Adam`)          the peer's names
    ============  ==================================================  ==============================
    ``chapter``   d = 1 − w, w = 5e-4; the chapter's Adam             (1.64)
    ``torch``     d = 1 − αw, w = 0.01; torch's Adam                  ``torch.optim.AdamW(lr, betas,
                                                                      eps, weight_decay, amsgrad)``
    ``keras``     d = 1 − αw, w = 0.004; Keras's ε̂ (``eps_hat``)      ``keras.optimizers.AdamW(
                                                                      learning_rate, weight_decay,
                                                                      beta_1, beta_2, epsilon)``
    ``optax``     d = 1 − αw, w = 1e-4; optax's Adam (``eps_root``)   ``optax.adamw(learning_rate,
                                                                      b1, b2, eps, eps_root,
                                                                      weight_decay)``
    ============  ==================================================  ==============================

    >>> import numpy as np
    >>> from nndl_fast.optim import AdamW
    >>> for convention in ("chapter", "torch", "keras", "optax"):
    ...     theta = np.ones(2)
    ...     opt = AdamW([theta], lr=0.1, convention=convention)
    ...     _ = opt.step([np.array([0.5, -1.0])])
    ...     g = opt.param_groups[0]
    ...     print(convention, g["decoupled_weight_decay"], g["decay_scaled_by_lr"], theta.round(6))
    chapter 0.0005 False [0.8995 1.0995]
    torch 0.01 True [0.899 1.099]
    keras 0.004 True [0.899601 1.0996  ]
    optax 0.0001 True [0.89999 1.09999]
    """

    def __init__(
        self,
        params,
        lr: LR = UNSET,
        betas: tuple[float, float] = UNSET,
        eps: float = UNSET,
        weight_decay: float = UNSET,
        decay_scaled_by_lr: bool = UNSET,
        eps_inside_sqrt: bool = UNSET,
        amsgrad: bool = UNSET,
        l2_weight_decay: float = 0.0,
        *,
        convention: str = "chapter",
        **options: Any,
    ) -> None:
        w, scaled = _ADAMW_DECAY[_checks.convention(convention, tuple(_ADAMW_DECAY))]
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            eps_inside_sqrt=eps_inside_sqrt,
            amsgrad=amsgrad,
            convention=convention,
            decoupled_weight_decay=w if weight_decay is UNSET else weight_decay,
            decay_scaled_by_lr=scaled if decay_scaled_by_lr is UNSET else decay_scaled_by_lr,
            weight_decay=l2_weight_decay,
            **options,
        )


class Nadam(Optimizer):
    r"""Nadam: Adam with Nesterov momentum (chapter 1.2.3.3; Dozat 2016).

    With the momentum schedule μ_t (``momentum_schedule``):

    .. math::

        M_t, G_t \text{ as Adam (1.19–1.20)},\qquad
        \theta_t = \theta_{t-1} - \frac{\alpha}{\sqrt{\hat G_t + \epsilon}} \left(
            \frac{(1-\mu_t)\, g_t}{1 - \prod_{i\le t}\mu_i}
            + \frac{\mu_{t+1} M_t}{1 - \prod_{i\le t+1}\mu_i} \right)

    * ``momentum_schedule="dozat"``: μ_t = β₁(1 − ½·0.96^{tψ}), ψ = ``momentum_decay``
      (Dozat's 0.004, torch's; ψ = 1 is Keras's 0.96ᵗ schedule);
    * ``momentum_schedule="constant"``: μ_t = β₁, so that Π μ_i = β₁ᵗ (optax's ``nadam``:
      α(β₁ M̂_{t+1} + (1 − β₁) g/(1 − β₁ᵗ)) with M̂ corrected by 1 − β₁^{t+1}).

    Defaults are Dozat's and torch's (the chapter gives none): α = 0.002,
    β = (0.9, 0.999), ψ = 0.004, ε = 1e-8 inside the root as in the chapter's Adam
    (``eps_inside_sqrt=False`` for the peers'); ``eps_root`` as :class:`Adam`. State:
    ``exp_avg``, ``exp_avg_sq`` and the scalar ``mu_product`` (Π_{i<t} μ_i, in [0, 1]).
    torch's ``decoupled_weight_decay=True`` is ``decoupled_weight_decay=λ, decay_scaled_by_lr=True`` here.

    ============  ==================================================  ==============================
    convention    formula                                             the peer's names
    ============  ==================================================  ==============================
    ``chapter``   μ_t Dozat's (ψ = 0.004), ε inside the root          (chapter 1.2.3.3)
    ``torch``     μ_t Dozat's (ψ = 0.004), ε outside                  ``torch.optim.NAdam(lr, betas,
                                                                      eps, momentum_decay)``
    ``keras``     μ_t = β₁(1 − ½·0.96ᵗ) (ψ = 1), α = 0.001,           ``keras.optimizers.Nadam(
                  ε = 1e-7 outside                                    learning_rate, beta_1, beta_2,
                                                                      epsilon)``
    ``optax``     μ_t = β₁ (``momentum_schedule="constant"``),        ``optax.nadam(learning_rate,
                  ε outside (``eps_root`` inside)                     b1, b2, eps, eps_root)``
    ============  ==================================================  ==============================

    >>> import numpy as np
    >>> from nndl_fast.optim import Nadam
    >>> for convention in ("chapter", "torch", "keras", "optax"):
    ...     theta = np.zeros(1)
    ...     opt = Nadam([theta], lr=0.1, convention=convention)
    ...     _ = opt.step([np.array([1.0])])
    ...     g = opt.param_groups[0]
    ...     print(convention, g["momentum_schedule"], g["momentum_decay"], theta.round(6))
    chapter dozat 0.004 [-0.105645]
    torch dozat 0.004 [-0.105645]
    keras dozat 1.0 [-0.106279]
    optax constant 0.004 [-0.147368]
    """

    _rule = NADAM_RULE

    def __init__(
        self,
        params,
        lr: LR = UNSET,
        betas: tuple[float, float] = UNSET,
        eps: float = UNSET,
        eps_inside_sqrt: bool = UNSET,
        momentum_decay: float = UNSET,
        *,
        convention: str = "chapter",
        momentum_schedule: str = UNSET,
        eps_root: float = UNSET,
        **common: Any,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            eps_inside_sqrt=eps_inside_sqrt,
            momentum_decay=momentum_decay,
            convention=convention,
            momentum_schedule=momentum_schedule,
            eps_root=eps_root,
            **common,
        )


for _cls in (Adam, Nadam):
    _cls.__doc__ = (_cls.__doc__ or "") + COMMON_DOC

adam = functional(ADAM_RULE, "Adam")
nadam = functional(NADAM_RULE, "Nadam")
