r"""Softmax cross-entropy with label smoothing (section 1.7.6 of the chapter) and knowledge
distillation (Hinton, Vinyals & Dean 2015), each computed with its gradient in one call.

**Cross-entropy** (exercise 1-6's loss with smoothed targets). For a row z of K logits,
p = softmax(z), target weights a (below) and S = Σ_j a_j,

.. math::
   \ell(z) = -\sum_j a_j \log p_j, \qquad
   \frac{\partial \ell}{\partial z_k} = S\, p_k - a_k .

With a class index y, class weights w (``weight``, default all 1) and smoothing ε:

- ``convention="chapter"`` (1.7.6): 1 − ε on the true class, ε/(K − 1) on each other class,
  :math:`a_j = w_j\,[(1-\varepsilon)[j=y] + \tfrac{\varepsilon}{K-1}[j\ne y]]` (K = 1: no
  other class, the ε is dropped);
- ``convention="torch"``: ε/K on every class, :math:`a_j = w_j\,[(1-\varepsilon)[j=y] +
  \tfrac{\varepsilon}{K}]`, as ``torch.nn.functional.cross_entropy(label_smoothing=ε)``.

The two differ by :math:`\ell_\text{chapter} - \ell_\text{torch} = \varepsilon\,[\tfrac1K
\sum_j w_j \log p_j - \tfrac{1}{K-1}\sum_{j\ne y} w_j \log p_j]` (zero for ε = 0).
With soft targets q (a probability row per sample), q is smoothed the same way:
q̃ = (1 − ε)·q + ε·(1 − q)/(K − 1) (chapter) or (1 − ε)·q + ε/K (torch), and a_j = w_j·q̃_j.

Reductions, as torch: ``"none"`` (the (N,) row losses), ``"sum"``, and ``"mean"``, the sum
divided by Σ w_y over the rows not ignored (class indices) or by N (soft targets). Rows whose
target is ``ignore_index`` count 0 and get a zero gradient row. A mean over no rows is 0
(torch: NaN). The gradient written to ``dlogits`` is that of the returned loss (for
``"none"``, of the sum of the row losses), times ``grad_scale``.

**Distillation.** With student logits s, teacher logits t, temperature T and weight α,

.. math::
   L = \alpha T^2\, \mathrm{KL}\big(\mathrm{softmax}(t/T) \,\|\, \mathrm{softmax}(s/T)\big)
       + (1 - \alpha)\, \mathrm{CE}(s, y), \qquad
   \frac{\partial L}{\partial s} = \alpha T\,(\mathrm{softmax}(s/T) - \mathrm{softmax}(t/T))
       + (1 - \alpha)(S\, \mathrm{softmax}(s) - a),

per row, CE as above with label smoothing (no class weights); without ``target`` the CE term
is absent (L = α·T²·KL). The KL term is torch's ``α·T²·F.kl_div(F.log_softmax(s/T),
F.log_softmax(t/T), log_target=True)``. Reductions: ``"batchmean"`` (the sum over N, torch's
``kl_div`` batchmean), ``"sum"``, ``"none"``.

Symbols → arguments: z → ``logits``, y or q → ``target``, ε → ``label_smoothing``, w →
``weight``, s → ``student_logits``, t → ``teacher_logits``, T → ``temperature``, α → ``alpha``,
∂ℓ/∂z → ``dlogits`` (``dstudent``), which may be the logits array itself (overwritten in place).

**Numerics.** Each row is read once from memory for an online softmax (a running max and a
sum of exponentials rescaled when the max grows, in double over fixed lanes) and once from
cache for the gradient, so logits of ±1e4, −inf entries and K up to 10⁶ give results exact to
rounding; a −inf logit with positive target weight makes the loss +inf, as the formula says.
float32 logits take their exponentials in float32 (relative error under 1e-7, fused
multiply-adds) and every sum in double; the true class's gradient entry is computed in double.
Results are bitwise identical for any thread count and SIMD target.

**Non-finite rows.** A row with a NaN or +inf logit, or with every logit −inf, has no loss.
By default such a row raises RuntimeError (no loss is returned; ``dlogits`` then holds the
gradient of every finite row, and the non-finite rows are left as they were). With
``skip_nonfinite=True`` such rows are skipped: they count 0 in the loss (keeping their weight
in the mean's denominator), get a zero gradient row, and their number is reported by the
objects' ``skipped_rows``. A NaN never comes out as a loss.

**Bad input** raises before anything is written: class indices outside [0, K) other than
``ignore_index`` (ValueError), soft-target rows with an entry outside [0, 1] or whose sum
differs from 1 by more than 16·K units of rounding of the dtype (2⁻²⁴ for float32, 2⁻⁵³
for float64) (ValueError), a weight that is not finite, wrong shapes or dtypes, and
``dlogits`` overlapping anything but the logits.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from . import _checks, _core

__all__ = [
    "CrossEntropyResult",
    "Distillation",
    "DistillationResult",
    "SoftmaxCrossEntropy",
    "distillation_loss",
    "softmax_cross_entropy",
]

_CE_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
_KD_REDUCTIONS = {"none": 0, "batchmean": 1, "sum": 2}


class CrossEntropyResult(NamedTuple):
    loss: Any  # float, or the (N,) row losses with reduction="none"
    dlogits: np.ndarray


class DistillationResult(NamedTuple):
    loss: Any
    dstudent: np.ndarray


def _raise_nonfinite(fn: str, arg: str, grad: str, count: int, first: int) -> None:
    raise RuntimeError(
        f"{fn}: {count} row(s) of {arg} are non-finite (a NaN or +inf, or every entry -inf), the first "
        f"is row {first}; the loss is undefined. {grad}, if given, holds the gradient of every finite row; "
        "the others are untouched. Pass skip_nonfinite=True to skip such rows."
    )


class _CeOptions(NamedTuple):
    label_smoothing: float
    chapter: bool
    reduction: int
    ignore_index: int
    grad_scale: float
    skip: bool


# Checked options by (type, value) of every argument: a repeated call (a training loop's) skips
# the checks; only accepted values are stored, and typed=True keeps 1 and True apart.
def _remembered(check):
    cached = functools.lru_cache(maxsize=64, typed=True)(check)

    def options(*args):
        try:
            return cached(*args)
        except TypeError:  # an unhashable argument: the checks say what is wrong with it
            return check(*args)

    return options


def _check_ce_options(label_smoothing, convention, reduction, ignore_index, grad_scale, skip_nonfinite) -> _CeOptions:
    return _CeOptions(
        _checks.real("label_smoothing", label_smoothing, 0.0, 1.0),
        _checks.convention(convention) == "chapter",
        _CE_REDUCTIONS[_checks.choice("reduction", reduction, tuple(_CE_REDUCTIONS))],
        _checks.integer("ignore_index", ignore_index, -(2**63), 2**63 - 1),
        _checks.real("grad_scale", grad_scale),
        _checks.flag("skip_nonfinite", skip_nonfinite),
    )


_ce_options = _remembered(_check_ce_options)


def _ce(logits, target, weight, dlogits, want_grad: bool, o: _CeOptions):
    loss, grad, bad, first = _core.softmax_cross_entropy(
        logits, target, weight, dlogits, want_grad, o.label_smoothing, o.chapter, o.reduction, o.ignore_index,
        o.grad_scale, o.skip,
    )  # fmt: skip
    if bad and not o.skip:
        _raise_nonfinite("softmax_cross_entropy", "logits", "dlogits", bad, first)
    return loss, grad, bad


def softmax_cross_entropy(
    logits: Any,
    target: Any,
    *,
    label_smoothing: float = 0.0,
    convention: str = "chapter",
    reduction: str = "mean",
    ignore_index: int = -100,
    weight: Any = None,
    dlogits: Any = None,
    grad_scale: float = 1.0,
    skip_nonfinite: bool = False,
) -> Any:
    r"""Softmax cross-entropy of ``logits`` (N, K) against ``target``; the gradient into ``dlogits``.

    ``target``: class indices (N,) of int32 or int64, or probabilities (N, K) of the logits'
    dtype. Formulas, conventions (chapter ε/(K − 1), torch ε/K), reductions and the non-finite
    policy: the module docstring. Returns the loss as a float (the (N,) row losses with
    ``reduction="none"``). When ``dlogits`` (N, K) is given — it may be ``logits`` itself —
    it receives ``grad_scale`` times the gradient of the returned loss, in the same pass.
    """
    o = _ce_options(label_smoothing, convention, reduction, ignore_index, grad_scale, skip_nonfinite)
    return _ce(logits, target, weight, dlogits, dlogits is not None, o)[0]


class _KdOptions(NamedTuple):
    temperature: float
    alpha: float
    label_smoothing: float
    chapter: bool
    reduction: int
    skip: bool


def _check_kd_options(temperature, alpha, label_smoothing, convention, reduction, skip_nonfinite) -> _KdOptions:
    t = _checks.real("temperature", temperature, 0.0, lo_open=True)
    if not 0.0 < t * t < float("inf"):  # the loss carries T²: beyond ~1e154 it is inf for any logits
        raise ValueError(f"temperature must have a finite, non-zero square (the loss is scaled by T²), got {t!r}")
    return _KdOptions(
        t,
        _checks.real("alpha", alpha, 0.0, 1.0),
        _checks.real("label_smoothing", label_smoothing, 0.0, 1.0),
        _checks.convention(convention) == "chapter",
        _KD_REDUCTIONS[_checks.choice("reduction", reduction, tuple(_KD_REDUCTIONS))],
        _checks.flag("skip_nonfinite", skip_nonfinite),
    )


_kd_options = _remembered(_check_kd_options)


def _kd(student, teacher, target, dstudent, want_grad: bool, o: _KdOptions):
    loss, grad, bad, first = _core.distillation_loss(
        student, teacher, target, dstudent, want_grad, o.temperature, o.alpha, o.label_smoothing, o.chapter,
        o.reduction, o.skip,
    )  # fmt: skip
    if bad and not o.skip:
        _raise_nonfinite("distillation_loss", "student_logits or teacher_logits", "dstudent", bad, first)
    return loss, grad, bad


def distillation_loss(
    student_logits: Any,
    teacher_logits: Any,
    target: Any = None,
    *,
    temperature: float,
    alpha: float = 0.5,
    label_smoothing: float = 0.0,
    convention: str = "chapter",
    reduction: str = "batchmean",
    dstudent: Any = None,
    skip_nonfinite: bool = False,
) -> Any:
    r"""α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·CE(s, target), and its gradient into ``dstudent``.

    ``student_logits``, ``teacher_logits``: (N, K); ``target``: class indices (N,) of int32 or
    int64, or None (no CE term). Both rows are read once per call; ``dstudent`` (N, K), when
    given (it may be ``student_logits``), receives the gradient with respect to the student's
    logits in the same pass. Formulas and the non-finite policy: the module docstring.
    """
    o = _kd_options(temperature, alpha, label_smoothing, convention, reduction, skip_nonfinite)
    return _kd(student_logits, teacher_logits, target, dstudent, dstudent is not None, o)[0]


class SoftmaxCrossEntropy:
    """Softmax cross-entropy with its options kept: ``loss, dlogits = ce(logits, target)``.

    Same options as :func:`softmax_cross_entropy` (``weight`` is kept by reference). A call
    returns ``CrossEntropyResult(loss, dlogits)``: the gradient goes into ``dlogits=`` when
    given (it may be ``logits``), else into a new array. ``skipped_rows``: the rows the last
    call skipped (with ``skip_nonfinite=True``).
    """

    def __init__(
        self,
        *,
        label_smoothing: float = 0.0,
        convention: str = "chapter",
        reduction: str = "mean",
        ignore_index: int = -100,
        weight: Any = None,
        grad_scale: float = 1.0,
        skip_nonfinite: bool = False,
    ) -> None:
        self._o = _ce_options(label_smoothing, convention, reduction, ignore_index, grad_scale, skip_nonfinite)
        self.weight = weight
        self.skipped_rows = 0

    def __call__(self, logits: Any, target: Any, *, dlogits: Any = None) -> CrossEntropyResult:
        loss, grad, bad = _ce(logits, target, self.weight, dlogits, True, self._o)
        self.skipped_rows = bad
        return CrossEntropyResult(loss, grad)


class Distillation:
    """The distillation loss with its options kept: ``loss, dstudent = kd(s, t, target)``.

    Same options as :func:`distillation_loss`; a call returns ``DistillationResult(loss,
    dstudent)``, the gradient into ``dstudent=`` when given (it may be the student's logits),
    else into a new array. ``skipped_rows``: the rows the last call skipped.
    """

    def __init__(
        self,
        *,
        temperature: float,
        alpha: float = 0.5,
        label_smoothing: float = 0.0,
        convention: str = "chapter",
        reduction: str = "batchmean",
        skip_nonfinite: bool = False,
    ) -> None:
        self._o = _kd_options(temperature, alpha, label_smoothing, convention, reduction, skip_nonfinite)
        self.skipped_rows = 0

    def __call__(
        self, student_logits: Any, teacher_logits: Any, target: Any = None, *, dstudent: Any = None
    ) -> DistillationResult:
        loss, grad, bad = _kd(student_logits, teacher_logits, target, dstudent, True, self._o)
        self.skipped_rows = bad
        return DistillationResult(loss, grad)
