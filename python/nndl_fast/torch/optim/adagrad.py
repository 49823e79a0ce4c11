"""Adagrad, as torch: nndl_fast.optim's AdaGrad rule with ε outside the root (:class:`nndl_fast.optim.AdaGrad`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ...optim.adagrad import ADAGRAD_RULE
from .base import Optimizer, check_flags, check_impl, check_nonneg, common, scalar_dtype


class Adagrad(Optimizer):
    r"""``torch.optim.Adagrad`` (same signature, defaults, state and formula) on the fused kernel.

    G ← G + g², θ ← θ − α/(1 + (t − 1)·lr_decay) · g/(√G + ε). State: ``step`` and ``sum``,
    created at construction with ``initial_accumulator_value`` (as torch, which also uses the
    constructor's value for groups added later).
    """

    _rule = ADAGRAD_RULE

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        max_norm: float | None = None,
        norm_type: float | str = 2.0,
        clip_per_tensor: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults, max_norm, norm_type, clip_per_tensor)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = {
                    "step": torch.tensor(0.0, dtype=scalar_dtype()),
                    "sum": torch.full_like(p, float(initial_accumulator_value), memory_format=torch.preserve_format),
                }

    def _check(self, group: Mapping[str, Any]) -> None:
        check_nonneg(group, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")
        check_flags(group, "maximize")
        check_impl(group)

    def _hp(self, group: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **common(group),
            "lr": float(group["lr"]),
            "eps": float(group["eps"]),
            "eps_inside_sqrt": False,
            "lr_decay": float(group["lr_decay"]),
            "initial_accumulator_value": float(group["initial_accumulator_value"]),
        }

    def _initial(self, name: str, group: Mapping[str, Any]) -> float:
        return float(self.defaults["initial_accumulator_value"])
