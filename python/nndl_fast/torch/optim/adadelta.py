"""Adadelta, as torch: nndl_fast.optim's AdaDelta rule, which is torch's formula (:class:`nndl_fast.optim.AdaDelta`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import _checks
from ...optim.adadelta import ADADELTA_RULE
from .base import Optimizer, check_flags, check_impl, check_nonneg, common


class Adadelta(Optimizer):
    r"""``torch.optim.Adadelta`` (same signature, defaults, state and formula) on the fused kernel.

    G ← ρG + (1 − ρ)g², Δ = √(X + ε)/√(G + ε)·g, X ← ρX + (1 − ρ)Δ², θ ← θ − lr·Δ.
    State: ``step``, ``square_avg`` (G), ``acc_delta`` (X).
    """

    _rule = ADADELTA_RULE

    def __init__(
        self,
        params: Any,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
        max_norm: float | None = None,
        norm_type: float | str = 2.0,
        clip_per_tensor: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "capturable": capturable,
            "foreach": foreach,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults, max_norm, norm_type, clip_per_tensor)

    def _check(self, group: Mapping[str, Any]) -> None:
        check_nonneg(group, "lr", "eps", "weight_decay")
        _checks.real("rho", group["rho"], 0.0, 1.0)
        check_flags(group, "maximize")
        check_impl(group)

    def _hp(self, group: Mapping[str, Any]) -> dict[str, Any]:
        return {**common(group), "lr": float(group["lr"]), "rho": float(group["rho"]), "eps": float(group["eps"])}
