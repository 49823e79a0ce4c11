r"""``BatchNorm1d``, ``BatchNorm2d``, ``BatchNorm3d``: torch's modules over our batch-norm kernels.

Subclasses of the ``torch.nn`` classes: the same constructor (``num_features``, ``eps``,
``momentum`` -- None for a cumulative average --, ``affine``, ``track_running_stats``,
``device``, ``dtype``, ``bias``), parameters ``weight``/``bias``, buffers ``running_mean``,
``running_var``, ``num_batches_tracked`` and state_dict keys, so checkpoints load both ways
and ``isinstance(m, torch.nn.BatchNorm2d)`` holds. Only ``forward`` differs: the formulas are
:mod:`nndl_fast.norm.batch_norm`'s (eqs 1.43–1.48) with ``convention="torch"`` -- biased
variance for normalising, unbiased for the running variance, running ← (1 − momentum)·running
+ momentum·batch -- and training/eval behave as torch's (eval normalises with the running
statistics unless ``track_running_stats=False``).

Forward and backward run in a ``torch.autograd.Function`` (once differentiable). Layouts
taken without a copy: C-contiguous (N, C, spatial...), and channels-last storage
(``torch.channels_last`` / ``channels_last_3d``, or any (N, C, L) whose (N, L, C) permutation
is contiguous), which the kernel reads as (N, spatial..., C); the output has x's layout, as
torch's. Other strides are copied with ``.contiguous()`` first. Inputs our kernels do not take
(another device, half precision, a dtype other than the parameters') and settings outside our
checks' range (a negative eps, a momentum outside [0, 1]) run torch's own forward.
"""

from __future__ import annotations

from typing import Any

import torch

from ... import norm
from ._common import channels_last_perm, in_layout, in_range, inverse, kernel_ready, module_workspaces, workspace

# Layer 1, annotated for NumPy arrays: its compiled checks take torch tensors zero-copy.
_norm: Any = norm

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class _BatchNormFn(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor | None,
        bias: torch.Tensor | None,
        running_mean: torch.Tensor | None,
        running_var: torch.Tensor | None,
        batch_stats: bool,
        momentum: float | None,
        num_batches_tracked: int,
        eps: float,
        cache: dict | None,
    ) -> torch.Tensor:
        perm = channels_last_perm(x)
        if perm is None:
            x = x.contiguous()
        xk = x if perm is None else x.permute(perm)
        cl = perm is not None
        channels = x.shape[1]
        y = torch.empty(xk.shape, dtype=x.dtype)
        save_mean = torch.empty(channels, dtype=x.dtype)
        save_rstd = torch.empty(channels, dtype=x.dtype)
        ws = workspace(
            cache, (tuple(xk.shape), cl), lambda: _norm.batch_norm_workspace(tuple(xk.shape), channels_last=cl)
        )
        _norm.batch_norm_forward(
            xk,
            weight,
            bias,
            running_mean,
            running_var,
            training=batch_stats,
            momentum=momentum,
            convention="torch",
            num_batches_tracked=num_batches_tracked,
            eps=eps,
            channels_last=cl,
            out=(y, save_mean, save_rstd),
            workspace=ws,
        )
        ctx.save_for_backward(xk, weight, save_mean, save_rstd)
        ctx.perm, ctx.batch_stats, ctx.cache = perm, batch_stats, cache
        return y if perm is None else y.permute(inverse(perm))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        xk, weight, save_mean, save_rstd = ctx.saved_tensors
        perm = ctx.perm
        cl = perm is not None
        dx = torch.empty(xk.shape, dtype=xk.dtype)
        dgamma = torch.empty(xk.shape[-1] if cl else xk.shape[1], dtype=xk.dtype)
        dbeta = torch.empty_like(dgamma)
        ws = workspace(
            ctx.cache, (tuple(xk.shape), cl), lambda: _norm.batch_norm_workspace(tuple(xk.shape), channels_last=cl)
        )
        _norm.batch_norm_backward(
            in_layout(dy, perm),
            xk,
            save_mean,
            save_rstd,
            weight,
            training=ctx.batch_stats,
            channels_last=cl,
            out=(dx, dgamma, dbeta),
            workspace=ws,
        )
        need = ctx.needs_input_grad
        return (
            dx if perm is None else dx.permute(inverse(perm)),
            dgamma if need[1] else None,
            dbeta if need[2] else None,
            *([None] * 7),
        )


def _forward(m: torch.nn.modules.batchnorm._BatchNorm, x: torch.Tensor, torch_forward: Any) -> torch.Tensor:
    """torch's _BatchNorm.forward, on our kernels (torch_forward: the inputs they do not take)."""
    m._check_input_dim(x)
    if not kernel_ready(x, m.weight, m.bias, m.running_mean, m.running_var) or not in_range(m.eps, m.momentum):
        return torch_forward(x)
    # torch's _BatchNorm.forward, step by step: the counter, f, which statistics, which buffers.
    nbt = m.num_batches_tracked
    count = m.training and m.track_running_stats and nbt is not None
    if m.momentum is None and m.training and m.track_running_stats and nbt is None:
        return torch_forward(x)  # no counter for f = 1/t: torch takes f = 0
    batch_stats = m.training or (m.running_mean is None and m.running_var is None)
    buffers = not m.training or m.track_running_stats
    y = _BatchNormFn.apply(
        x,
        m.weight,
        m.bias,
        m.running_mean if buffers else None,
        m.running_var if buffers else None,
        batch_stats,
        m.momentum,
        int(nbt) + 1 if count and nbt is not None else 1,  # torch counts this batch before f = 1/t
        m.eps,
        module_workspaces(m),
    )
    if count and nbt is not None:
        nbt.add_(1)  # after the kernel: a rejected call changes nothing
    return y


class BatchNorm1d(torch.nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d`` on our kernels: (N, C) or (N, C, L) inputs."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _forward(self, input, super().forward)


class BatchNorm2d(torch.nn.BatchNorm2d):
    """``torch.nn.BatchNorm2d`` on our kernels: (N, C, H, W) inputs, contiguous or channels-last."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _forward(self, input, super().forward)


class BatchNorm3d(torch.nn.BatchNorm3d):
    """``torch.nn.BatchNorm3d`` on our kernels: (N, C, D, H, W) inputs, contiguous or channels-last."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _forward(self, input, super().forward)
