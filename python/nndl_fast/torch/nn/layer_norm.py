r"""``LayerNorm``: ``torch.nn.LayerNorm`` over our layer-norm kernels.

A subclass of ``torch.nn.LayerNorm``: the same constructor (``normalized_shape``, ``eps``,
``elementwise_affine``, ``bias``, ``device``, ``dtype``), parameters and state_dict keys
(``weight``, ``bias``). Only ``forward`` differs: :mod:`nndl_fast.norm.layer_norm`'s formulas
(eqs 1.50–1.52, the same numbers as torch's), forward and backward in a
``torch.autograd.Function`` (once differentiable).

Layout: the kernel normalises the trailing ``normalized_shape`` of a C-contiguous x; any other
x (channels-last included: its normalised block is not one contiguous row) is copied with
``.contiguous()`` first. Inputs our kernels do not take (another device, half precision, a
dtype other than the parameters') and a negative eps run torch's own forward.
"""

from __future__ import annotations

from typing import Any

import torch

from ... import norm
from ._common import in_range, kernel_ready, module_workspaces, workspace

# Layer 1, annotated for NumPy arrays: its compiled checks take torch tensors zero-copy.
_norm: Any = norm

__all__ = ["LayerNorm"]


class _LayerNormFn(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        normalized_shape: tuple[int, ...],
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        eps: float,
        cache: dict | None,
    ) -> torch.Tensor:
        x = x.contiguous()
        lead = x.shape[: x.dim() - len(normalized_shape)]
        y = torch.empty(x.shape, dtype=x.dtype)
        save_mean = torch.empty(lead, dtype=x.dtype)
        save_rstd = torch.empty(lead, dtype=x.dtype)
        _norm.layer_norm_forward(x, normalized_shape, weight, bias, eps=eps, out=(y, save_mean, save_rstd))
        ctx.save_for_backward(x, weight, save_mean, save_rstd)
        ctx.normalized_shape, ctx.cache, ctx.has_bias = normalized_shape, cache, bias is not None
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        x, weight, save_mean, save_rstd = ctx.saved_tensors
        shape = ctx.normalized_shape
        need = ctx.needs_input_grad
        param_grads = weight is not None and (need[2] or need[3])
        dx = torch.empty(x.shape, dtype=x.dtype)
        dgamma = torch.empty(shape, dtype=x.dtype) if param_grads else None
        dbeta = torch.empty(shape, dtype=x.dtype) if param_grads else None
        ws = workspace(ctx.cache, tuple(x.shape), lambda: _norm.layer_norm_workspace(tuple(x.shape), shape))
        _norm.layer_norm_backward(
            dy.contiguous(),
            x,
            save_mean,
            save_rstd,
            shape,
            weight,
            param_grads=param_grads,
            out=(dx, dgamma, dbeta),
            workspace=ws,
        )
        return (
            dx,
            None,
            dgamma if need[2] else None,
            dbeta if need[3] and ctx.has_bias else None,
            None,
            None,
        )


class LayerNorm(torch.nn.LayerNorm):
    """``torch.nn.LayerNorm`` on our kernels (see the module docstring)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        shape = tuple(self.normalized_shape)
        if (
            not kernel_ready(input, self.weight, self.bias)
            or not in_range(self.eps)
            or tuple(input.shape[input.dim() - len(shape) :]) != shape
        ):
            return super().forward(input)  # torch's result, or torch's error for a wrong shape
        cache = module_workspaces(self)
        return _LayerNormFn.apply(input, shape, self.weight, self.bias, self.eps, cache)
