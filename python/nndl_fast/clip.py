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
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from . import _checks, _core

__all__ = ["clip_coefficient", "clip_grad_norm_", "clip_grad_value_", "global_norm", "global_norm_of_groups"]


def _as_list(grads: Any) -> list[Any]:
    """A single array or any iterable of arrays, as a list (what torch accepts)."""
    if isinstance(grads, np.ndarray):
        return [grads]
    if isinstance(grads, (str, bytes)) or not isinstance(grads, Iterable):
        raise TypeError(f"grads must be an array or a list of arrays, got {type(grads).__name__}")
    return list(grads)


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
    *,
    convention: str = "chapter",
) -> float:
    r"""Clip a list of arrays in place by their global norm (1.25); return the norm before.

    Same call shape as ``torch.nn.utils.clip_grad_norm_`` (arrays instead of parameters);
    ``convention`` selects the chapter's coefficient (default) or PyTorch's (see the module
    docstring). One read-only pass computes the norm; a read-write pass scales only when
    c ≠ 1. Raises RuntimeError, touching nothing, when ``error_if_nonfinite`` and the norm
    is NaN or Inf.
    """
    b = check_max_norm(max_norm)
    p = check_norm_type(norm_type)
    convention = _checks.convention(convention)
    error = _checks.flag("error_if_nonfinite", error_if_nonfinite)
    gs = _as_list(grads)
    if not gs:
        return 0.0
    total, applied = _core.clip_grad_norm(gs, b, p, convention, error)
    if not applied:
        raise RuntimeError(
            f"The total norm of order {p} of the gradients is non-finite ({total}), so they "
            "cannot be clipped; nothing was modified. Pass error_if_nonfinite=False to clip anyway."
        )
    return float(total)


def clip_grad_value_(
    grads: Any,
    clip_value: float | None = None,
    *,
    lower: float | None = None,
    upper: float | None = None,
) -> None:
    r"""Clip every element of a list of arrays into [a, b] in place (1.24): g ← max(min(g, b), a).

    Either ``clip_value`` (PyTorch's form: a = −clip_value, b = clip_value) or the
    chapter's bounds ``lower`` = a and ``upper`` = b (either may be omitted: no bound on
    that side). NaN stays NaN.
    """
    if clip_value is not None:
        if lower is not None or upper is not None:
            raise TypeError("pass either clip_value or lower/upper, not both")
        c = _checks.real("clip_value", clip_value, 0.0, finite=False)
        lo, hi = -c, c
    else:
        if lower is None and upper is None:
            raise TypeError("clip_grad_value_ needs clip_value, or lower and/or upper")
        lo = -math.inf if lower is None else _checks.real("lower", lower, finite=False)
        hi = math.inf if upper is None else _checks.real("upper", upper, finite=False)
        if not (lo <= hi):
            raise ValueError(f"lower must be <= upper, got lower={lower!r}, upper={upper!r}")
    gs = _as_list(grads)
    if gs:
        _core.clip_grad_value(gs, lo, hi)
