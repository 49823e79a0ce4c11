r"""Gradient clipping (section 1.2.3.4 of the chapter, equations 1.24–1.25).

Clip by value (1.24), element by element, into the interval [a, b]:

.. math:: g \leftarrow \max(\min(g, b), a)

Clip by norm (1.25), with the chapter's typo fixed (the text tests :math:`\|g\|^2 \le b`;
the norm itself is meant). For a list of arrays, :math:`\|g\|` is the global p-norm of all
of them together, :math:`\|g\|_p = (\sum_k \sum_i |g_{k,i}|^p)^{1/p}`
(:math:`\max |g_{k,i}|` for p = ∞):

.. math::
   c = \begin{cases} b / \|g\| & \text{if } \|g\| > b \\ 1 & \text{otherwise} \end{cases}
   \qquad g \leftarrow c\, g \qquad \text{(rule="chapter", the default)}

PyTorch's ``torch.nn.utils.clip_grad_norm_`` uses instead
:math:`c = \min(b / (\|g\| + 10^{-6}), 1)` (``rule="torch"``): it scales by slightly less
than b/‖g‖ and always multiplies. Both rules return the norm *before* clipping.

Symbols → arguments: g → ``grads`` (a list of float32 or float64 arrays, updated in
place), b → ``max_norm``, p → ``norm_type``, a, b of 1.24 → ``lower``, ``upper``.

Non-finite gradients: with ``error_if_nonfinite=True`` a NaN or ±Inf total norm raises
RuntimeError and leaves every array untouched. Otherwise the rule decides, exactly as
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
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from . import _core

__all__ = ["clip_coefficient", "clip_grad_norm_", "clip_grad_value_", "global_norm", "global_norm_of_groups"]

_RULES = ("chapter", "torch")


def _as_list(grads: Any) -> list[Any]:
    """A single array or any iterable of arrays, as a list (what torch accepts)."""
    if isinstance(grads, np.ndarray):
        return [grads]
    if isinstance(grads, (str, bytes)) or not isinstance(grads, Iterable):
        raise TypeError(f"grads must be an array or a list of arrays, got {type(grads).__name__}")
    return list(grads)


def _norm_type(norm_type: Any) -> float:
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise TypeError(f"norm_type must be a number or 'inf', got {norm_type!r}") from None
    if not (p > 0.0):
        raise ValueError(f"norm_type must be > 0 (1, 2, inf or any p > 0), got {norm_type!r}")
    return p


def _check_rule(rule: str) -> None:
    if rule not in _RULES:
        raise ValueError(f"rule must be 'chapter' or 'torch', got {rule!r}")


def global_norm(grads: Any, norm_type: float | str = 2.0) -> float:
    r"""The global p-norm :math:`\|g\|_p` of a list of arrays, read-only, as a Python float.

    p = 1, 2, ∞ (``float('inf')`` or ``'inf'``) or any p > 0. Accumulated in double;
    an empty list has norm 0. A NaN anywhere gives NaN; an Inf (and no NaN) gives Inf.
    """
    p = _norm_type(norm_type)
    gs = _as_list(grads)
    if not gs:
        return 0.0
    return float(_core.clip_global_norm(gs, p))


def global_norm_of_groups(groups: Sequence[Sequence[Any]], norm_type: float | str = 2.0) -> float:
    """The global p-norm over several lists (each one dtype, e.g. an optimizer's param groups).

    Each list's norm is computed as :func:`global_norm`; they are combined in list order
    ((Σ nᵢᵖ)^{1/p}, or the max for p = ∞), so the result is as deterministic as theirs.
    """
    p = _norm_type(norm_type)
    norms = [global_norm(g, p) for g in groups]
    if len(norms) == 1:
        return norms[0]
    if math.isinf(p):
        return max(norms) if not any(math.isnan(n) for n in norms) else math.nan
    return math.fsum(n**p for n in norms) ** (1.0 / p)


def clip_coefficient(total_norm: float, max_norm: float, rule: str = "chapter") -> float:
    r"""The factor c of clip by norm (1.25), computed in double.

    ``rule="chapter"``: c = b/‖g‖ when ‖g‖ > b, else 1. ``rule="torch"``:
    c = min(b/(‖g‖ + 1e-6), 1). Multiplying the gradients by c (for instance through an
    optimizer's gradient scale) clips them.
    """
    _check_rule(rule)
    _check_max_norm(max_norm)
    return float(_core.clip_coefficient(float(total_norm), float(max_norm), rule))


def _check_max_norm(max_norm: float) -> None:
    if isinstance(max_norm, bool) or not isinstance(
        max_norm, (int, float, np.floating, np.integer)
    ):
        raise TypeError(f"max_norm must be a number, got {type(max_norm).__name__}")
    if not (max_norm >= 0.0):  # NaN and negatives; +inf is allowed (never clips)
        raise ValueError(f"max_norm must be >= 0, got {max_norm!r}")


def clip_grad_norm_(
    grads: Any,
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    *,
    rule: str = "chapter",
) -> float:
    r"""Clip a list of arrays in place by their global norm (1.25); return the norm before.

    Same call shape as ``torch.nn.utils.clip_grad_norm_`` (arrays instead of parameters);
    ``rule`` selects the chapter's coefficient (default) or PyTorch's (see the module
    docstring). One read-only pass computes the norm; a read-write pass scales only when
    c ≠ 1. Raises RuntimeError, touching nothing, when ``error_if_nonfinite`` and the norm
    is NaN or Inf.
    """
    _check_max_norm(max_norm)
    p = _norm_type(norm_type)
    _check_rule(rule)
    gs = _as_list(grads)
    if not gs:
        return 0.0
    total, applied = _core.clip_grad_norm(gs, float(max_norm), p, rule, bool(error_if_nonfinite))
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
        if not (float(clip_value) >= 0.0):
            raise ValueError(f"clip_value must be >= 0, got {clip_value!r}")
        lo, hi = -float(clip_value), float(clip_value)
    else:
        if lower is None and upper is None:
            raise TypeError("clip_grad_value_ needs clip_value, or lower and/or upper")
        lo = -math.inf if lower is None else float(lower)
        hi = math.inf if upper is None else float(upper)
        if not (lo <= hi):
            raise ValueError(f"lower must be <= upper, got lower={lower!r}, upper={upper!r}")
    gs = _as_list(grads)
    if gs:
        _core.clip_grad_value(gs, lo, hi)
