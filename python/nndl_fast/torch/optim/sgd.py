"""SGD, with torch's momentum buffer, dampening and Nesterov: nndl_fast.optim's SGD rule in
``convention="torch"`` (:class:`nndl_fast.optim.SGD`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ... import _checks
from ...optim.sgd import SGD_RULE
from .base import Optimizer, check_flags, check_impl, check_nonneg, common


class SGD(Optimizer):
    r"""``torch.optim.SGD`` (same signature, defaults, state and formula) on the fused kernel.

    b ← μ b + (1 − dampening) g (b = g at a parameter's first step), θ ← θ − α b, or with
    ``nesterov`` θ ← θ − α (g + μ b); g includes ``weight_decay``·θ and is negated by
    ``maximize``. State: ``momentum_buffer`` (only with momentum, as torch). ``max_norm``,
    ``norm_type``: clip by global norm inside the step (see :mod:`nndl_fast.torch.optim.base`).
    """

    _rule = SGD_RULE
    _counts_steps = False

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
        max_norm: float | None = None,
        norm_type: float | str = 2.0,
        clip_per_tensor: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults, max_norm, norm_type, clip_per_tensor)

    def _check(self, group: Mapping[str, Any]) -> None:
        check_nonneg(group, "lr", "momentum", "weight_decay")
        _checks.real("dampening", group["dampening"])
        check_flags(group, "nesterov", "maximize")
        check_impl(group)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("nesterov=True requires a momentum > 0 and zero dampening")

    def _hp(self, group: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **common(group),
            "lr": float(group["lr"]),
            "momentum": float(group["momentum"]),
            "dampening": float(group["dampening"]),
            "nesterov": group["nesterov"],
            "convention": "torch",
        }

    def _first_step(self, state: Mapping[str, Any]) -> float:
        # torch's first step copies g into the buffer: it is the step without a buffer yet
        return 1.0 if isinstance(state.get("momentum_buffer"), torch.Tensor) else 0.0


class Momentum(SGD):
    """:class:`SGD` with momentum 0.9 by default (nndl_fast.optim.Momentum's torch form)."""

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0.9,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, lr, momentum, dampening, weight_decay, **kwargs)


class Nesterov(SGD):
    """:class:`SGD` with ``nesterov=True`` and momentum 0.9 by default (nndl_fast.optim.Nesterov's torch form)."""

    def __init__(
        self, params: Any, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(params, lr, momentum, 0.0, weight_decay, True, **kwargs)
