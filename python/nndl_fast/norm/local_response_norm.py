r"""Local response normalisation (chapter eq. 1.56; Krizhevsky et al. 2012, AlexNet).

Over the channel axis 1 of x, shape (N, C, spatial...), at every sample and position:

.. math::

    d_p = k + a \sum_{j=\max(0,\,p-lo)}^{\min(C-1,\,p+hi)} (x_j)^2, \qquad
    y_p = \frac{x_p}{d_p^{\,\beta}}                                        \qquad (1.56)

and the backward pass (every d_p whose window holds channel q depends on x_q):

.. math::

    \frac{\partial L}{\partial x_q} = \frac{\partial L}{\partial y_q}\, d_q^{-\beta}
        - 2a\beta\, x_q \sum_{p=q-hi}^{q+lo} \frac{\partial L}{\partial y_p}\,\frac{y_p}{d_p}

Symbol → argument: n → ``size``, k → ``k``, α → ``alpha``, β → ``beta``, P (the chapter's
channel count) → x.shape[1], ∂L/∂y → ``dy``; channels are 0-based here, 1-based in the
chapter.
Defaults are AlexNet's: n = 5, k = 2, α = 1e-4 (the chapter's "10e-4" is a typo), β = 0.75.

``convention`` says how n turns into the window and a:

* ``"chapter"`` (default), eq. 1.56 as written: lo = hi = ⌊n/2⌋ and a = α. For an even
  n the window holds n + 1 channels, as the formula says.
* ``"torch"``, ``torch.nn.LocalResponseNorm(size, alpha, beta, k)`` /
  ``F.local_response_norm``: a = α / n (torch averages the squares), lo = ⌊n/2⌋,
  hi = ⌊(n−1)/2⌋ (n channels; zero padding); k defaults to torch's 1.
* ``"onnx"``, ONNX ``LRN(size, alpha, beta, bias)``: a = α / n, lo = ⌊(n−1)/2⌋,
  hi = ⌈(n−1)/2⌉ -- for an even n the mirror image of torch's window (n = 4: torch takes
  channels p−2 … p+1, ONNX p−1 … p+2); k (ONNX's ``bias``) defaults to 1 and may be any
  finite number, ≤ 0 included, as ONNX allows (a denominator ≤ 0 then gives ±Inf or NaN,
  as ONNX's formula does). The chapter's and torch's k must be > 0.

=============  ================  =========================  ===========
preset         a                 window (lo, hi)            k default
=============  ================  =========================  ===========
``"chapter"``  α                 (⌊n/2⌋, ⌊n/2⌋)             2
``"torch"``    α / n             (⌊n/2⌋, ⌊(n−1)/2⌋)         1
``"onnx"``     α / n             (⌊(n−1)/2⌋, ⌈(n−1)/2⌉)     1 (``bias``)
=============  ================  =========================  ===========

For an odd n the three windows agree and only a differs by the factor n.

>>> import numpy as np
>>> from nndl_fast.norm import local_response_norm
>>> x = np.ones((1, 4, 1))                          # n = 2: the windows at the edges differ
>>> for convention in ("chapter", "torch", "onnx"):
...     print(convention, local_response_norm(x, 2, alpha=1.0, beta=1.0, convention=convention).ravel())
chapter [0.25 0.2  0.2  0.25]
torch [0.66666667 0.5        0.5        0.5       ]
onnx [0.5        0.5        0.5        0.66666667]

Numerics and cost: the window sum is a running sum over channels per position, in
double (each channel adds the entering square and subtracts the leaving one), so the
cost per element does not grow with n; results are bitwise identical for every thread
count and SIMD target. d^{-β} is taken in the input's precision (float for float32) and
special-cased with sqrt / division for β ∈ {0.5, 0.75, 1}, which vectorise; any other β
calls the scalar libm ``pow`` per element, several times slower. The backward needs
nothing saved by the forward: it recomputes d from x in the same sweep, reading x and
∂L/∂y and writing ∂L/∂x (a saved d would cost the forward a write and the backward a
read, for no saving: the recomputation is cheap next to the memory traffic).

Non-finite x (documented, not checked): the running sum cannot forget a NaN or an Inf.
A NaN in channel p makes every output at that sample and position from channel p − hi
onward NaN (torch: only the channels whose window holds p). An ±Inf in channel p gives
0 in the other channels whose window holds it (x / ∞, as torch), NaN in channel p itself
(torch: NaN too), and NaN in every later channel (∞ − ∞ once it leaves the window;
torch: the finite values).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _checks, _core
from ._common import PRESET

__all__ = ["local_response_norm", "local_response_norm_backward"]

CONVENTIONS = ("chapter", "torch", "onnx")
_K = {"chapter": 2.0, "torch": 1.0, "onnx": 1.0}


def _window(size: Any, alpha: Any, beta: Any, k: Any, convention: Any) -> tuple[int, int, float, float, float]:
    """Range checks, then (lo, hi, a, beta, k) for the kernel."""
    size = _checks.integer("size", size, 1)
    alpha = _checks.real("alpha", alpha, 0.0)
    beta = _checks.real("beta", beta, 0.0)
    convention = _checks.convention(convention, CONVENTIONS)
    if k is PRESET:
        k = _K[convention]
    elif convention == "onnx":
        k = _checks.real("k", k)  # ONNX's bias: any finite number
    else:
        k = _checks.real("k", k, 0.0, lo_open=True)  # keeps k + a·Σx² away from 0
    if convention == "chapter":
        lo, hi, a = size // 2, size // 2, alpha
    elif convention == "torch":
        lo, hi, a = size // 2, (size - 1) // 2, alpha / size
    else:
        lo, hi, a = (size - 1) // 2, size // 2, alpha / size
    # A window wider than the channels is clipped at both ends: cap what crosses into C++
    # (which caps again at C − 1) so that any Python int fits an int64.
    cap = 2**40
    return min(lo, cap), min(hi, cap), a, beta, k


def _empty_like(a: Any) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return np.empty(a.shape, a.dtype)  # C-contiguous whatever a's order
    try:
        return np.empty_like(a, order="C")  # a torch tensor, through its NumPy view
    except (TypeError, ValueError):
        return np.empty(0)  # placeholder: the compiled checks reject `a` itself first


def local_response_norm(
    x: np.ndarray,
    size: int = 5,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = PRESET,
    *,
    convention: str = "chapter",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """y = x / (k + a Σ_window x²)^β over channels (eq. 1.56; see the module docstring).

    x: (N, C, spatial...) float32 or float64, C-contiguous (a 2-D (N, C) is allowed).
    ``convention``: "chapter" (a = alpha, window ±⌊size/2⌋, k = 2), "torch" (a = alpha/size,
    torch's window, k = 1) or "onnx" (a = alpha/size, ONNX's window, k = 1, any k allowed);
    k: the preset's unless given. out: optional preallocated result (shape and dtype of x), returned.
    """
    lo, hi, a, beta_, k_ = _window(size, alpha, beta, k, convention)
    if out is None:
        out = _empty_like(x)
    _core.local_response_norm_forward(out, x, lo, hi, k_, a, beta_)
    return out


def local_response_norm_backward(
    dy: np.ndarray,
    x: np.ndarray,
    size: int = 5,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = PRESET,
    *,
    convention: str = "chapter",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """∂L/∂x from ∂L/∂y = ``dy`` and the forward's input ``x`` (same hyper-parameters).

    out: optional preallocated result (shape and dtype of x), returned.
    """
    lo, hi, a, beta_, k_ = _window(size, alpha, beta, k, convention)
    if out is None:
        out = _empty_like(x)
    _core.local_response_norm_backward(out, dy, x, lo, hi, k_, a, beta_)
    return out
