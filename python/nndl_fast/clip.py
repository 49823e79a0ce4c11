r"""Gradient clipping (section 1.2.3.4 of the chapter, equations 1.24–1.25).

Clip by value (1.24), element by element, into the interval [a, b]:

.. math:: g \leftarrow \max(\min(g, b), a)

Clip by norm (1.25), with the chapter's typo fixed (the text tests :math:`\|g\|^2 \le b`;
the norm itself is meant). For a list of arrays, :math:`\|g\|` is the global p-norm of all
of them together, :math:`\|g\|_p = (\sum_k \sum_i |g_{k,i}|^p)^{1/p}`
(:math:`\max |g_{k,i}|` for p = ∞):

.. math::
   c = \begin{cases} b / \|g\| & \text{if } \|g\| > b \\ 1 & \text{otherwise} \end{cases}
   \qquad g \leftarrow c\, g \qquad \text{(convention="chapter", the default)}

PyTorch's ``torch.nn.utils.clip_grad_norm_`` uses instead
:math:`c = \min(b / (\|g\| + 10^{-6}), 1)` (``convention="torch"``): it scales by slightly
less than b/‖g‖ and always multiplies. Both conventions return the norm *before* clipping.

Symbols → arguments: g → ``grads`` (a list of float32 or float64 arrays, updated in
place), b → ``max_norm``, p → ``norm_type``, a, b of 1.24 → ``lower``, ``upper``.

torch tensors: :func:`clip_grad_norm_` and :func:`clip_grad_value_` take torch's call shape,
``clip_grad_norm_(model.parameters(), 1.0)``: each torch tensor given stands for its ``.grad``,
which is clipped in place through a zero-copy view (a tensor whose ``.grad`` is None is
skipped, as torch skips it), and the norm comes back as a 0-d tensor of the gradients' dtype,
as torch returns it. A NumPy array is itself the gradient. :func:`global_norm` reads the
tensors it is given (torch's ``get_total_norm``).

Non-finite gradients: with ``error_if_nonfinite=True`` a NaN or ±Inf total norm raises
RuntimeError and leaves every array untouched. Otherwise the convention decides, exactly as
written: chapter — a NaN norm fails the test ‖g‖ > b, so nothing is scaled; an Inf norm
gives c = 0 (finite entries become 0, infinite ones NaN); torch — a NaN norm gives c = NaN
(every entry becomes NaN), an Inf norm c = 0, as PyTorch does.

Determinism: the norm is accumulated in double over fixed chunks of 16 Ki elements and
combined in a fixed order, so it is bitwise identical for any thread count and SIMD target.

The fused form (the norm pass, then the coefficient applied inside an optimizer's update
pass, so the gradients are read twice and never written) is built from
:func:`global_norm` and :func:`clip_coefficient` by :mod:`nndl_fast.optim`.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from . import _checks, _core

__all__ = ["clip_coefficient", "clip_grad_norm_", "clip_grad_value_", "global_norm", "global_norm_of_groups"]


def _tensor_type() -> Any:
    """torch.Tensor if torch is loaded (nothing can be a tensor otherwise), else None."""
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None)


def _as_list(grads: Any) -> list[Any]:
    """A single array or tensor, or any iterable of them, as a list (what torch accepts)."""
    tensor = _tensor_type()
    if isinstance(grads, np.ndarray) or (tensor is not None and isinstance(grads, tensor)):
        return [grads]
    if isinstance(grads, (str, bytes)) or not isinstance(grads, Iterable):
        raise TypeError(f"grads must be an array or a list of arrays, got {type(grads).__name__}")
    return list(grads)


def _gradients(grads: Any) -> tuple[list[Any], bool]:
    """The arrays to clip: each NumPy array itself, each torch tensor's ``.grad`` (None skipped);
    and whether any torch tensor was given (the result is then a tensor, as torch's)."""
    items = _as_list(grads)
    tensor = _tensor_type()
    if tensor is None or not any(isinstance(g, tensor) for g in items):
        return items, False
    arrays = []
    for g in items:
        if not isinstance(g, tensor):
            arrays.append(g)
        elif g.grad is not None:
            arrays.append(g.grad)
    if not arrays and any(not g.requires_grad for g in items):
        # torch's rule, kept, but silent there: [p.grad for p in params] clips nothing.
        warnings.warn(
            f"grads: none of the {len(items)} torch tensors has a .grad, so nothing is clipped; a torch "
            "tensor stands for its parameter's .grad (pass model.parameters()), a NumPy array for itself",
            UserWarning,
            stacklevel=3,
        )
    return arrays, True


def _check_foreach(foreach: Any) -> None:
    """torch's foreach=: None or a flag. Ours is always one fused multi-tensor pass."""
    if foreach is not None:
        _checks.flag("foreach", foreach)


def _torch_norm(total: float, grads: list[Any]) -> Any:
    """The norm as torch returns it: a 0-d tensor of the gradients' dtype (float32 when none)."""
    import torch

    dtype = grads[0].dtype if grads and isinstance(grads[0], torch.Tensor) else None
    if grads and dtype is None:  # a NumPy array among the tensors
        dtype = torch.from_numpy(np.empty(0, grads[0].dtype)).dtype
    return torch.tensor(total, dtype=dtype)


def check_norm_type(norm_type: Any) -> float:
    """p of the norm: a number > 0, inf, or the string 'inf' (as torch accepts)."""
    if isinstance(norm_type, str):
        if norm_type.lower() not in ("inf", "+inf", "infinity"):
            raise ValueError(f"norm_type must be a number > 0 or 'inf', got {norm_type!r}")
        return math.inf
    return _checks.real("norm_type", norm_type, 0.0, lo_open=True, finite=False)


def check_max_norm(max_norm: Any) -> float:
    """b of clip by norm: a number >= 0; +inf is allowed (never clips)."""
    return _checks.real("max_norm", max_norm, 0.0, finite=False)


def global_norm(grads: Any, norm_type: float | str = 2.0) -> float:
    r"""The global p-norm :math:`\|g\|_p` of a list of arrays, read-only, as a Python float.

    p = 1, 2, ∞ (``float('inf')`` or ``'inf'``) or any p > 0. Accumulated in double;
    an empty list has norm 0. A NaN anywhere gives NaN; an Inf (and no NaN) gives Inf.
    """
    p = check_norm_type(norm_type)
    gs = _as_list(grads)
    if not gs:
        return 0.0
    return float(_core.clip_global_norm(gs, p))


def global_norm_of_groups(groups: Sequence[Sequence[Any]], norm_type: float | str = 2.0) -> float:
    """The global p-norm over several lists (each one dtype, e.g. an optimizer's param groups).

    Each list's norm is computed as :func:`global_norm`; they are combined in list order
    ((Σ nᵢᵖ)^{1/p}, or the max for p = ∞), so the result is as deterministic as theirs.
    """
    p = check_norm_type(norm_type)
    norms = [global_norm(g, p) for g in groups]
    if len(norms) == 1:
        return norms[0]
    if math.isinf(p):
        return max(norms) if not any(math.isnan(n) for n in norms) else math.nan
    return math.fsum(n**p for n in norms) ** (1.0 / p)


def clip_coefficient(total_norm: float, max_norm: float, *, convention: str = "chapter") -> float:
    r"""The factor c of clip by norm (1.25), computed in double.

    ``convention="chapter"``: c = b/‖g‖ when ‖g‖ > b, else 1. ``convention="torch"``:
    c = min(b/(‖g‖ + 1e-6), 1). Multiplying the gradients by c (for instance through an
    optimizer's gradient scale) clips them. ``total_norm`` may be NaN or inf (see the
    module docstring for what each convention then gives).
    """
    convention = _checks.convention(convention)
    b = check_max_norm(max_norm)
    if isinstance(total_norm, bool) or not isinstance(total_norm, numbers.Real):
        raise TypeError(f"total_norm must be a real number, got {type(total_norm).__name__}")
    if total_norm < 0:
        raise ValueError(f"total_norm must be >= 0 (a norm), or NaN/inf, got {total_norm!r}")
    return float(_core.clip_coefficient(float(total_norm), b, convention))


def clip_grad_norm_(
    grads: Any,
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
    *,
    convention: str = "chapter",
) -> Any:
    r"""Clip gradients in place by their global norm (1.25); return the norm before.

    ``torch.nn.utils.clip_grad_norm_``'s call shape: ``grads`` is an array, a tensor, or an
    iterable (a generator too) of them; a torch tensor (a parameter) stands for its ``.grad``
    (None skipped), a NumPy array for itself. Returns a float, or for torch input a 0-d tensor
    as torch does. ``foreach`` is accepted for torch's signature and changes nothing: the
    kernel is always one fused multi-tensor pass. ``convention`` selects the chapter's
    coefficient (default) or PyTorch's (see the module docstring). One read-only pass computes
    the norm; a read-write pass scales only when c ≠ 1. Raises RuntimeError, touching
    nothing, when ``error_if_nonfinite`` and the norm is NaN or Inf.
    """
    b = check_max_norm(max_norm)
    p = check_norm_type(norm_type)
    convention = _checks.convention(convention)
    error = _checks.flag("error_if_nonfinite", error_if_nonfinite)
    _check_foreach(foreach)
    gs, torch_input = _gradients(grads)
    total = 0.0
    if gs:
        total, applied = _core.clip_grad_norm(gs, b, p, convention, error)
        if not applied:
            raise RuntimeError(
                f"The total norm of order {p} of the gradients is non-finite ({total}), so they "
                "cannot be clipped; nothing was modified. Pass error_if_nonfinite=False to clip anyway."
            )
    return _torch_norm(float(total), gs) if torch_input else float(total)


def clip_grad_value_(
    grads: Any,
    clip_value: float | None = None,
    foreach: bool | None = None,
    *,
    lower: float | None = None,
    upper: float | None = None,
    convention: str = "chapter",
) -> None:
    r"""Clip every element of the gradients into [a, b] in place (1.24): g ← max(min(g, b), a).

    ``grads`` as for :func:`clip_grad_norm_` (a torch tensor stands for its ``.grad``).
    Either ``clip_value`` (PyTorch's form: a = −clip_value, b = clip_value) or the
    chapter's bounds ``lower`` = a and ``upper`` = b (either may be omitted: no bound on
    that side). NaN stays NaN. ``foreach`` is accepted for torch's signature only.

    ``convention="onnx"``: ONNX's ``Clip(input, min, max)`` = min(max(g, ``lower``),
    ``upper``), in place: with lower > upper every element becomes ``upper`` (the chapter's
    and torch's presets raise), and with neither bound nothing changes. ONNX's Clip is an
    element-wise clamp of any tensor; on a copy of it this is that operator.
    """
    convention = _checks.convention(convention, ("chapter", "torch", "onnx"))
    if clip_value is not None:
        if lower is not None or upper is not None:
            raise TypeError("pass either clip_value or lower/upper, not both")
        c = _checks.real("clip_value", clip_value, 0.0, finite=False)
        lo, hi = -c, c
    else:
        if lower is None and upper is None and convention != "onnx":
            raise TypeError("clip_grad_value_ needs clip_value, or lower and/or upper")
        lo = -math.inf if lower is None else _checks.real("lower", lower, finite=False)
        hi = math.inf if upper is None else _checks.real("upper", upper, finite=False)
        if not (lo <= hi):
            if convention != "onnx":
                raise ValueError(f"lower must be <= upper, got lower={lower!r}, upper={upper!r}")
            lo = hi  # ONNX: min(max(g, lower), upper) = upper everywhere
    _check_foreach(foreach)
    gs, _ = _gradients(grads)
    if gs:
        _core.clip_grad_value(gs, lo, hi)
