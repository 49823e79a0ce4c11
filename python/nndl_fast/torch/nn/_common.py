"""What the modules share: when our kernels take an input, and how a tensor's memory is laid
out for them (without a copy where its strides allow)."""

from __future__ import annotations

import math
import weakref
from typing import Any

import torch

_DTYPES = (torch.float32, torch.float64)


def kernel_ready(x: torch.Tensor, *params: torch.Tensor | None) -> bool:
    """Our kernels take CPU float32/float64 tensors whose parameters share x's dtype; any other
    input (another device, half precision, mixed dtypes) goes to torch's own forward."""
    if x.device.type != "cpu" or x.dtype not in _DTYPES:
        return False
    return all(p is None or (p.device.type == "cpu" and p.dtype == x.dtype) for p in params)


def in_range(eps: Any, momentum: Any = None) -> bool:
    """eps >= 0 and momentum None or in [0, 1], finite: what our layer-1 checks take. torch checks
    neither, so a module given other values runs torch's forward (which computes something)."""
    try:
        ok = math.isfinite(eps) and eps >= 0
        return ok and (momentum is None or (math.isfinite(momentum) and 0 <= momentum <= 1))
    except TypeError:
        return False


def channels_last_perm(x: torch.Tensor) -> tuple[int, ...] | None:
    """(0, 2, ..., d − 1, 1) when x, of shape (N, C, spatial...), is stored channels-last (its
    permutation to (N, spatial..., C) is C-contiguous) and not also plainly contiguous; else None."""
    if x.dim() < 3 or x.is_contiguous():
        return None
    perm = (0, *range(2, x.dim()), 1)
    return perm if x.permute(perm).is_contiguous() else None


def inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def dense_perm(x: torch.Tensor) -> tuple[int, ...] | None:
    """A permutation under which x is C-contiguous (any dense layout: contiguous, channels-last,
    a transpose), or None for a tensor with gaps or overlaps. For elementwise kernels."""
    if x.is_contiguous():
        return tuple(range(x.dim()))
    strides, sizes = x.stride(), x.shape
    perm = tuple(sorted(range(x.dim()), key=lambda d: (-strides[d], -sizes[d])))
    return perm if x.permute(perm).is_contiguous() else None


def in_layout(t: torch.Tensor, perm: tuple[int, ...] | None) -> torch.Tensor:
    """t (a gradient, shaped like the forward's x) permuted by perm and made C-contiguous: a view
    when t is already stored like x, a copy otherwise (autograd's dy can have any strides)."""
    return (t if perm is None else t.permute(perm)).contiguous()


# Scratch buffers per module, kept outside the module so that pickling, deepcopy and convert()
# never carry them.
_WORKSPACES: weakref.WeakKeyDictionary[torch.nn.Module, dict] = weakref.WeakKeyDictionary()


def module_workspaces(m: torch.nn.Module) -> dict:
    """m's scratch buffers, one per input shape (filled by :func:`workspace`)."""
    cache = _WORKSPACES.get(m)
    if cache is None:
        cache = _WORKSPACES[m] = {}
    return cache


def workspace(cache: dict | None, key: Any, make: Any) -> Any:
    """A scratch buffer kept per key in a module's cache (no cache: None, the kernel allocates)."""
    if cache is None:
        return None
    ws = cache.get(key)
    if ws is None:
        ws = cache[key] = make()
    return ws
