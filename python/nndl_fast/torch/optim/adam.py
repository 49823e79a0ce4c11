"""Adam, AdamW (torch's decoupled decay α·λ) and NAdam: nndl_fast.optim's Adam kernel with ε
outside the root, as torch (:class:`nndl_fast.optim.Adam`, :class:`nndl_fast.optim.Nadam`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ...optim import base as _base
from ...optim.adam import ADAM_RULE, NadamRule
from .base import Optimizer, check_flags, check_impl, check_nonneg, common


def _check_adam(group: Mapping[str, Any]) -> None:
    check_nonneg(group, "lr", "eps", "weight_decay")
    _base.check_betas(group["betas"])
    check_flags(group, "maximize", "decoupled_weight_decay")
    check_impl(group)


def _adam_hp(group: Mapping[str, Any]) -> dict[str, Any]:
    """What Adam and NAdam share of nndl_fast.optim's hyper-parameters: torch's ε outside the root."""
    return {
        **common(group, decoupled=group["decoupled_weight_decay"]),
        "lr": float(group["lr"]),
        "betas": (float(group["betas"][0]), float(group["betas"][1])),
        "eps": float(group["eps"]),
        "eps_inside_sqrt": False,
    }


class Adam(Optimizer):
    r"""``torch.optim.Adam`` (same signature, defaults, state and formula) on the fused kernel.

    m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², θ ← θ − α/(1 − β₁ᵗ) · m / (√(v/(1 − β₂ᵗ)) + ε),
    with t the parameter's own step count; ``amsgrad`` uses the running max of v
    (``max_exp_avg_sq``). ``weight_decay`` is L2, or with ``decoupled_weight_decay`` AdamW's
    θ ← (1 − αλ)θ. State: ``step``, ``exp_avg``, ``exp_avg_sq`` [, ``max_exp_avg_sq``].
    ``max_norm``, ``norm_type``: clip by global norm inside the step.
    """

    _rule = ADAM_RULE

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
        max_norm: float | None = None,
        norm_type: float | str = 2.0,
        clip_per_tensor: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults, max_norm, norm_type, clip_per_tensor)

    def _check(self, group: Mapping[str, Any]) -> None:
        _check_adam(group)
        check_flags(group, "amsgrad")

    def _hp(self, group: Mapping[str, Any]) -> dict[str, Any]:
        return {**_adam_hp(group), "amsgrad": group["amsgrad"]}


class AdamW(Adam):
    """``torch.optim.AdamW``: :class:`Adam` with ``decoupled_weight_decay=True`` and weight_decay 0.01."""

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        max_norm: float | None = None,
        norm_type: float | str = 2.0,
        clip_per_tensor: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
            max_norm=max_norm,
            norm_type=norm_type,
            clip_per_tensor=clip_per_tensor,
        )


class _Float32Product(NadamRule):
    """torch keeps μ's running product in a float32 tensor: ``mu_product *= mu`` rounds μ, then
    the product, to float32; the coefficients then use that rounded product."""

    def product(self, mu_product: float, mu: float) -> float:
        return float(np.float32(mu_product) * np.float32(mu))


NADAM_RULE = NadamRule()
NADAM_RULE_F32 = _Float32Product()


class NAdam(Optimizer):
    r"""``torch.optim.NAdam`` (same signature, defaults, state and formula) on the fused kernel.

    With μ_t = β₁(1 − ½·0.96^{tψ}) (ψ = ``momentum_decay``) and m, v as :class:`Adam`:
    θ ← θ − α[(1 − μ_t) g/(1 − Πᵢ≤ₜ μᵢ) + μ_{t+1} m/(1 − Πᵢ≤ₜ₊₁ μᵢ)] / (√(v/(1 − β₂ᵗ)) + ε).
    State: ``step``, ``mu_product`` (a 0-d tensor of torch's scalar dtype, rounded as torch's),
    ``exp_avg``, ``exp_avg_sq``.
    """

    _rule = NADAM_RULE
    _scalar_state = ("mu_product",)

    def __init__(
        self,
        params: Any,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        max_norm: float | None = None,
        norm_type: float | str = 2.0,
        clip_per_tensor: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults, max_norm, norm_type, clip_per_tensor)

    def _check(self, group: Mapping[str, Any]) -> None:
        _check_adam(group)
        check_nonneg(group, "momentum_decay")

    def _hp(self, group: Mapping[str, Any]) -> dict[str, Any]:
        return {**_adam_hp(group), "momentum_decay": float(group["momentum_decay"])}

    def _plan(self, gc: Any, hp: dict[str, Any], t: int, scalars: dict[str, float]) -> Any:
        rule = NADAM_RULE_F32 if gc.scalars["mu_product"].dtype == torch.float32 else NADAM_RULE
        return _base._plan(rule, hp, gc.consts, t, scalars)
