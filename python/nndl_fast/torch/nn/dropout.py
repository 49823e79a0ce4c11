r"""``Dropout`` and ``Dropout2d``: ``torch.nn.Dropout`` / ``torch.nn.Dropout2d`` over our
dropout kernels.

A subclass of ``torch.nn.Dropout`` (``p``, the probability of **dropping** a unit, and
``inplace``). Inverted dropout, as torch: y = m ⊙ x / (1 − p) in training, y = x (x itself)
in eval; :func:`nndl_fast.dropout.dropout` with ``convention="torch"``, in a
``torch.autograd.Function`` whose backward applies the packed mask (one bit per element) the
forward stored.

Masks: each training forward draws a 63-bit Philox seed from torch's default CPU generator,
so ``torch.manual_seed`` makes a run reproducible, but the masks are not torch's (torch's
dropout draws from a different generator). p = 0 returns x itself and p = 1 gives x·0, as
torch. Layout: any dense x (contiguous, channels-last, a transpose) is read where it lies and
y has x's strides; a strided x with gaps is copied with ``.contiguous()`` first, or, with
``inplace=True``, handed to torch's own dropout (an in-place update cannot go through a copy).

``Dropout2d`` and ``Dropout3d`` (whole channels: one bit per (n, c) of a 4-D (N, C, H, W) or
5-D (N, C, D, H, W)) are :func:`nndl_fast.dropout.dropout2d`; a C-contiguous input of that
rank runs our kernel, anything else
(a 3-D input, which torch treats with a warning, channels-last strides, ``inplace=True``) is
handed to torch's own forward.
"""

from __future__ import annotations

from typing import Any

import torch

from ... import dropout
from ._common import dense_perm, inverse, kernel_ready

# Layer 1, annotated for NumPy arrays: its compiled checks take torch tensors zero-copy.
_dropout: Any = dropout

__all__ = ["Dropout", "Dropout2d", "Dropout3d"]


class _DropoutFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, p: float, seed: int, inplace: bool) -> torch.Tensor:  # type: ignore[override]
        perm = dense_perm(x)
        if perm is None:
            x, perm = x.contiguous(), tuple(range(x.dim()))
        y = x if inplace else torch.empty_like(x)  # empty_like keeps a dense x's strides
        mask = torch.empty(_dropout.packed_size(x.numel()), dtype=torch.uint8)
        xk = x.permute(perm)
        _dropout.dropout(xk, drop_prob=p, convention="torch", seed=seed, out=y.permute(perm), mask_out=mask)
        if inplace:
            ctx.mark_dirty(x)
        ctx.save_for_backward(mask)
        ctx.p, ctx.perm = p, perm
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (mask,) = ctx.saved_tensors
        perm = ctx.perm
        dyk = dy.permute(perm).contiguous()  # the mask's element order is x's memory order
        dxk = torch.empty(dyk.shape, dtype=dy.dtype)
        _dropout.dropout_backward(dyk, drop_prob=ctx.p, convention="torch", mask=mask, out=dxk)
        return dxk.permute(inverse(perm)), None, None, None


def _seed() -> int:
    """A 63-bit seed from torch's default CPU generator (so torch.manual_seed governs it)."""
    return int(torch.empty((), dtype=torch.int64).random_())


class Dropout(torch.nn.Dropout):
    """``torch.nn.Dropout`` on our kernel (see the module docstring)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        p = float(self.p)
        if not self.training or p == 0.0 or input.numel() == 0:
            return input  # as torch: x itself
        if not kernel_ready(input) or p == 1.0 or (self.inplace and dense_perm(input) is None):
            return super().forward(input)
        return _DropoutFn.apply(input, p, _seed(), self.inplace)


class _ChannelDropoutFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, p: float, seed: int) -> torch.Tensor:  # type: ignore[override]
        mask = torch.empty(_dropout.packed_size(x.shape[0] * x.shape[1]), dtype=torch.uint8)
        y = torch.empty_like(x)
        _dropout.dropout2d(x, drop_prob=p, convention="torch", seed=seed, out=y, mask_out=mask)
        ctx.save_for_backward(mask)
        ctx.p = p
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (mask,) = ctx.saved_tensors
        dy = dy.contiguous()
        dx = torch.empty_like(dy)
        _dropout.dropout_backward(
            dy, drop_prob=ctx.p, convention="torch", mask=mask, noise_shape="channels_first", out=dx
        )
        return dx, None, None


def _channel_dropout(module: Any, input: torch.Tensor, ndim: int, torch_forward: Any) -> torch.Tensor:
    """Whole-channel dropout of a C-contiguous `ndim`-D input on our kernel; anything else to
    torch's own forward."""
    p = float(module.p)
    if not module.training or p == 0.0 or input.numel() == 0:
        return input  # as torch: x itself
    if input.dim() != ndim or not input.is_contiguous() or not kernel_ready(input) or p == 1.0 or module.inplace:
        return torch_forward(input)
    return _ChannelDropoutFn.apply(input, p, _seed())


class Dropout2d(torch.nn.Dropout2d):
    """``torch.nn.Dropout2d`` on our kernel (see the module docstring)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _channel_dropout(self, input, 4, super().forward)


class Dropout3d(torch.nn.Dropout3d):
    """``torch.nn.Dropout3d`` on our kernel: a C-contiguous 5-D (N, C, D, H, W), whole channels."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return _channel_dropout(self, input, 5, super().forward)
