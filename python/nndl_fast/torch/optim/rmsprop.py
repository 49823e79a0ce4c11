"""RMSprop, as torch: nndl_fast.optim's RMSprop rule with ε outside the root and torch's
``alpha`` for its β (:class:`nndl_fast.optim.RMSprop`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...optim.rmsprop import RMSPROP_RULE
from .base import Optimizer, check_flags, check_impl, check_nonneg, common


class RMSprop(Optimizer):
    r"""``torch.optim.RMSprop`` (same signature, defaults, state and formula) on the fused kernel.

    G ← αG + (1 − α)g² [``centered``: ḡ ← αḡ + (1 − α)g, G̃ = G − ḡ²], then θ ← θ − lr·g/(√G̃ + ε),
    or with ``momentum`` μ: b ← μb + g/(√G̃ + ε), θ ← θ − lr·b. State: ``step``,
    ``square_avg`` [, ``momentum_buffer``] [, ``grad_avg``].
    """

    _rule = RMSPROP_RULE

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        *,
        max_norm: float | None = None,
        norm_type: float | str = 2.0,
        clip_per_tensor: bool = False,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults, max_norm, norm_type, clip_per_tensor)

    def _check(self, group: Mapping[str, Any]) -> None:
        check_nonneg(group, "lr", "eps", "momentum", "weight_decay", "alpha")
        check_flags(group, "centered", "maximize")
        check_impl(group)

    def _hp(self, group: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **common(group),
            "lr": float(group["lr"]),
            "beta": float(group["alpha"]),
            "eps": float(group["eps"]),
            "eps_inside_sqrt": False,
            "momentum": float(group["momentum"]),
            "centered": group["centered"],
        }
