r"""``LocalResponseNorm``: ``torch.nn.LocalResponseNorm`` over our kernels.

A subclass of ``torch.nn.LocalResponseNorm`` (``size``, ``alpha``, ``beta``, ``k``; no
parameters or buffers). The forward is :func:`nndl_fast.norm.local_response_norm` with
``convention="torch"`` (a = α/n, torch's window), in a ``torch.autograd.Function`` whose
backward recomputes the window sums from x (once differentiable).

Layout: the kernel sweeps the channel axis of a C-contiguous (N, C, spatial...) x; any other x
is copied with ``.contiguous()`` first. A channels-last x (``torch.channels_last`` /
``channels_last_3d``) gets a channels-last output, as torch's, by a second copy. Inputs our
kernels do not take (another device, half precision, fewer than 3 dimensions, which torch
rejects) and hyper-parameters outside their range (k <= 0, a negative α or β) run torch's
own forward.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ... import norm
from ._common import kernel_ready

# Layer 1, annotated for NumPy arrays: its compiled checks take torch tensors zero-copy.
_norm: Any = norm

__all__ = ["LocalResponseNorm"]


class _LocalResponseNormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, size: int, alpha: float, beta: float, k: float) -> torch.Tensor:  # type: ignore[override]
        x = x.contiguous()
        y = torch.empty(x.shape, dtype=x.dtype)
        _norm.local_response_norm(x, size, alpha, beta, k, convention="torch", out=y)
        ctx.save_for_backward(x)
        ctx.hyper = (size, alpha, beta, k)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        dx = torch.empty(x.shape, dtype=x.dtype)
        _norm.local_response_norm_backward(dy.contiguous(), x, *ctx.hyper, convention="torch", out=dx)
        return dx, None, None, None, None


def _channels_last_format(x: torch.Tensor) -> torch.memory_format | None:
    """torch.channels_last(_3d) when x is stored so (and not also plainly contiguous)."""
    if x.is_contiguous():
        return None
    for dim, fmt in ((4, torch.channels_last), (5, torch.channels_last_3d)):
        if x.dim() == dim and x.is_contiguous(memory_format=fmt):
            return fmt
    return None


def _in_range(size: Any, alpha: Any, beta: Any, k: Any) -> bool:
    """The hyper-parameters our kernel takes (size >= 1, alpha, beta >= 0, k > 0, all finite);
    torch checks none, and computes the rest itself."""
    try:
        return (
            int(size) == size >= 1 and all(math.isfinite(v) for v in (alpha, beta, k)) and alpha >= 0 <= beta and k > 0
        )
    except (TypeError, ValueError, OverflowError):
        return False


class LocalResponseNorm(torch.nn.LocalResponseNorm):
    """``torch.nn.LocalResponseNorm`` on our kernels (see the module docstring)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not kernel_ready(input) or input.dim() < 3 or not _in_range(self.size, self.alpha, self.beta, self.k):
            return super().forward(input)
        y = _LocalResponseNormFn.apply(input, self.size, self.alpha, self.beta, self.k)
        fmt = _channels_last_format(input)
        return y if fmt is None else y.contiguous(memory_format=fmt)  # x's layout, as torch's output
