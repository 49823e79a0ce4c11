r"""Parameter initialisation (section 1.3 of the chapter): torch.nn.init's schemes, names and
signatures, on the counter-based fills of :mod:`nndl_fast.random`.

Every random scheme takes ``seed=`` or ``generator=`` (a :class:`nndl_fast.random.Generator`,
which then advances by one offset) — at most one; with neither, a seed is drawn from the
operating system. The same (seed, shape, dtype) gives the same bits on any thread count, SIMD
target and machine (orthogonal_ excepted: its QR is LAPACK's).

**Fans**, as torch computes them, for a weight of shape (out, in) or (out, in, *kernel):
n_in = in·∏kernel, n_out = out·∏kernel (:func:`fans`). Fewer than 2 dimensions: ValueError.

**Schemes** (U(−r, r) uniform, N(0, σ²) normal):

- Xavier / Glorot (1.37; Glorot & Bengio 2010): σ² = gain²·2/(n_in + n_out),
  r = gain·√(6/(n_in + n_out)) = √3·σ. :func:`xavier_uniform_`, :func:`xavier_normal_`.
- He / Kaiming (He et al. 2015): σ² = gain²/n with n = n_in (``mode="fan_in"``) or n_out,
  r = √3·σ, gain = :func:`calculate_gain` (nonlinearity, a). :func:`kaiming_uniform_`,
  :func:`kaiming_normal_`.
- LeCun (the chapter's σ² = 1/n_in): σ² = 1/n_in, r = √(3/n_in). :func:`lecun_uniform_`,
  :func:`lecun_normal_` (a plain normal; JAX's ``lecun_normal`` truncates it).
- :func:`orthogonal_` (Saxe et al. 2014): the Q of the QR of a Gaussian matrix (LAPACK, through
  ``numpy.linalg.qr``), signs fixed by diag(R), times gain — as torch.
- :func:`uniform_`, :func:`normal_`, :func:`trunc_normal_` (absolute bounds a, b, as torch),
  :func:`constant_`, :func:`zeros_`, :func:`ones_`, :func:`eye_`.

**Gains** (:func:`calculate_gain`), ``convention=``: the chapter's Xavier factors, corrected
(SPEC §3 **fix**: the chapter swaps them; Glorot's paper has r for tanh and 4r for the
logistic, whose slope at 0 is 1/4), or torch's.

========================  ==========================  =====================
nonlinearity              ``convention="chapter"``    ``convention="torch"``
========================  ==========================  =====================
linear, conv*             1                           1
sigmoid                   4                           1
tanh                      1                           5/3
relu                      √2                          √2
leaky_relu (slope a)      √(2/(1 + a²))               √(2/(1 + a²))
selu                      3/4                         3/4
========================  ==========================  =====================

torch differences: ``seed=``/``generator=`` are keyword-only; the generator is ours;
kaiming_* take ``convention=`` for their gain (the same as torch's for relu and leaky_relu,
their default); lecun_* are not in torch.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from . import _checks, _core
from . import random as _random

__all__ = [
    "Fans",
    "calculate_gain",
    "constant_",
    "eye_",
    "fans",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

_LINEAR = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
_NONLINEARITIES = (*_LINEAR, "sigmoid", "tanh", "relu", "leaky_relu", "selu")
_CONVENTIONS = ("chapter", "torch")


class Fans(NamedTuple):
    fan_in: int
    fan_out: int


def fans(shape: Any) -> Fans:
    """(n_in, n_out) of a weight of ``shape`` (a shape, or an array): for (out, in, *kernel),
    n_in = in·∏kernel and n_out = out·∏kernel, as torch's ``_calculate_fan_in_and_fan_out``."""
    return _fans_of(_checks.shape("shape", shape.shape if hasattr(shape, "shape") else shape), "shape")


def _fans_of(shape_t: tuple[int, ...], name: str) -> Fans:
    if len(shape_t) < 2:
        raise ValueError(f"{name} needs at least 2 dimensions (out, in, *kernel) for its fans, got shape {shape_t}")
    receptive = math.prod(shape_t[2:])
    return Fans(shape_t[1] * receptive, shape_t[0] * receptive)


def calculate_gain(nonlinearity: str, param: float | None = None, *, convention: str = "chapter") -> float:
    """The gain of a nonlinearity (the table in the module docstring). ``param``: leaky_relu's
    negative slope (default 0.01)."""
    nonlinearity = _checks.choice("nonlinearity", nonlinearity, _NONLINEARITIES)
    convention = _checks.convention(convention, _CONVENTIONS)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else _checks.real("param", param)
        return math.sqrt(2.0) / math.hypot(1.0, slope)  # √(2/(1 + slope²)); slope² may overflow
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "sigmoid":
        return 4.0 if convention == "chapter" else 1.0
    if nonlinearity == "tanh":
        return 1.0 if convention == "chapter" else 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    return 0.75  # selu


# -- the stream a call draws from -------------------------------------------------------
def _draw(seed: Any, generator: Any, fill: Any) -> Any:
    """fill(seed, offset) with the caller's seed (offset 0), its generator's next stream (the
    generator advances only if fill succeeds) or a fresh seed from the operating system."""
    if seed is not None and generator is not None:
        raise TypeError("give at most one of seed= and generator=")
    if generator is not None:
        if not isinstance(generator, _random.Generator):
            raise TypeError(f"generator must be an nndl_fast.random.Generator, got {type(generator).__name__}")
        return generator._take(fill)
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    return fill(_checks.integer("seed", seed, 0, 2**64 - 1), 0)


def _shape(tensor: Any) -> tuple[int, ...]:
    """The shape of an array or tensor; for anything else the compiled fill's own error."""
    shape = getattr(tensor, "shape", None)
    if shape is None or isinstance(tensor, type):
        _core.constant_fill(tensor, "tensor", 0.0)  # raises: not an array (Args says what it got)
        raise TypeError(f"tensor must be an array, got {type(tensor).__name__}")
    return tuple(int(d) for d in shape)


def _fans(tensor: Any) -> Fans:
    return _fans_of(_shape(tensor), "tensor")


def _uniform(tensor: Any, bound: float, seed: Any, generator: Any) -> Any:
    """U(−bound, bound); a zero bound (an empty tensor's) still checks the tensor."""
    if bound == 0.0:
        _core.constant_fill(tensor, "tensor", 0.0)
        return tensor
    return _draw(seed, generator, lambda s, o: _core.uniform_fill(tensor, "tensor", None, "", s, o, 0, -bound, bound))


def _normal(tensor: Any, std: float, seed: Any, generator: Any) -> Any:
    return _draw(seed, generator, lambda s, o: _core.normal_fill(tensor, "tensor", None, "", s, o, 0, 0.0, std))


def _std(gain: float, fan: int) -> float:
    """gain/√fan, or 0 for an empty tensor (torch: a no-op)."""
    return gain / math.sqrt(fan) if fan > 0 else 0.0


# -- plain fills ------------------------------------------------------------------------
def uniform_(tensor: Any, a: float = 0.0, b: float = 1.0, *, seed: int | None = None, generator: Any = None) -> Any:
    """U[a, b) in place."""
    a, b = _checks.real("a", a), _checks.real("b", b)
    if not (a < b and math.isfinite(b - a)):
        raise ValueError(f"a must be < b (and b - a finite), got a={a!r}, b={b!r}")
    _draw(seed, generator, lambda s, o: _core.uniform_fill(tensor, "tensor", None, "", s, o, 0, a, b))
    return tensor


def normal_(tensor: Any, mean: float = 0.0, std: float = 1.0, *, seed: int | None = None, generator: Any = None) -> Any:
    """N(mean, std²) in place."""
    mean, std = _random._normal_params(mean, std)
    _draw(seed, generator, lambda s, o: _core.normal_fill(tensor, "tensor", None, "", s, o, 0, mean, std))
    return tensor


def trunc_normal_(
    tensor: Any,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    *,
    seed: int | None = None,
    generator: Any = None,
) -> Any:
    """N(mean, std²) truncated to [a, b], **absolute** bounds as torch's (a = −2, b = 2 are
    −2 and 2, not ±2σ): :func:`nndl_fast.random.truncated_normal_` with low = (a − mean)/std,
    high = (b − mean)/std. std > 0."""
    mean = _checks.real("mean", mean)
    std = _checks.real("std", std, 0.0, lo_open=True)
    a = _checks.real("a", a, finite=False)
    b = _checks.real("b", b, finite=False)
    if not a < b:
        raise ValueError(f"a must be < b, got a={a!r}, b={b!r}")
    try:
        mean, std, low, high = _random._truncated_params(mean, std, (a - mean) / std, (b - mean) / std)
    except ValueError as e:
        raise ValueError(f"[a, b] = [{a!r}, {b!r}]: {e}") from None
    _draw(
        seed,
        generator,
        lambda s, o: _core.truncated_normal_fill(tensor, "tensor", None, "", s, o, 0, mean, std, low, high),
    )
    return tensor


def constant_(tensor: Any, val: float) -> Any:
    """tensor ← val."""
    _core.constant_fill(tensor, "tensor", _checks.real("val", val, finite=False))
    return tensor


def zeros_(tensor: Any) -> Any:
    """tensor ← 0."""
    _core.constant_fill(tensor, "tensor", 0.0)
    return tensor


def ones_(tensor: Any) -> Any:
    """tensor ← 1."""
    _core.constant_fill(tensor, "tensor", 1.0)
    return tensor


def eye_(tensor: Any) -> Any:
    """The identity of a 2-D tensor (ones on the diagonal of a rectangular one)."""
    _core.eye_fill(tensor, "tensor")
    return tensor


# -- the schemes --------------------------------------------------------------------------
def xavier_uniform_(tensor: Any, gain: float = 1.0, *, seed: int | None = None, generator: Any = None) -> Any:
    r"""Xavier/Glorot uniform (1.37): U(−r, r), r = gain·√(6/(n_in + n_out))."""
    gain = _checks.real("gain", gain, 0.0)
    f = _fans(tensor)
    _uniform(tensor, math.sqrt(3.0) * _std(gain * math.sqrt(2.0), f.fan_in + f.fan_out), seed, generator)
    return tensor


def xavier_normal_(tensor: Any, gain: float = 1.0, *, seed: int | None = None, generator: Any = None) -> Any:
    r"""Xavier/Glorot normal: N(0, σ²), σ = gain·√(2/(n_in + n_out))."""
    gain = _checks.real("gain", gain, 0.0)
    f = _fans(tensor)
    _normal(tensor, _std(gain * math.sqrt(2.0), f.fan_in + f.fan_out), seed, generator)
    return tensor


def _kaiming_std(tensor: Any, a: Any, mode: Any, nonlinearity: Any, convention: Any) -> float:
    mode = _checks.choice("mode", mode, ("fan_in", "fan_out"))
    gain = calculate_gain(nonlinearity, a, convention=convention)
    f = _fans(tensor)
    return _std(gain, f.fan_in if mode == "fan_in" else f.fan_out)


def kaiming_uniform_(
    tensor: Any,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    convention: str = "chapter",
    seed: int | None = None,
    generator: Any = None,
) -> Any:
    r"""He/Kaiming uniform: U(−r, r), r = √3·gain/√n, n = n_in or n_out (``mode``), gain =
    calculate_gain(nonlinearity, a) (``a``: leaky_relu's negative slope)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, convention)
    _uniform(tensor, math.sqrt(3.0) * std, seed, generator)
    return tensor


def kaiming_normal_(
    tensor: Any,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    convention: str = "chapter",
    seed: int | None = None,
    generator: Any = None,
) -> Any:
    r"""He/Kaiming normal: N(0, σ²), σ = gain/√n (see :func:`kaiming_uniform_`)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, convention)
    _normal(tensor, std, seed, generator)
    return tensor


def lecun_uniform_(tensor: Any, *, seed: int | None = None, generator: Any = None) -> Any:
    r"""LeCun uniform: U(−r, r), r = √(3/n_in) (variance 1/n_in, the chapter's σ² = 1/n_in)."""
    _uniform(tensor, math.sqrt(3.0) * _std(1.0, _fans(tensor).fan_in), seed, generator)
    return tensor


def lecun_normal_(tensor: Any, *, seed: int | None = None, generator: Any = None) -> Any:
    r"""LeCun normal: N(0, 1/n_in) (the chapter's σ = √(1/n_in))."""
    _normal(tensor, _std(1.0, _fans(tensor).fan_in), seed, generator)
    return tensor


def orthogonal_(tensor: Any, gain: float = 1.0, *, seed: int | None = None, generator: Any = None) -> Any:
    r"""A (semi-)orthogonal matrix times gain, as torch: with rows = shape[0], cols = the rest,
    A ~ N(0, 1) of (rows, cols) (transposed when rows < cols), A = QR (``numpy.linalg.qr``),
    Q ← Q·diag(sign(diag R)), transposed back; the tensor ← gain·Q. At least 2 dimensions."""
    gain = _checks.real("gain", gain)
    shape = _shape(tensor)
    if len(shape) < 2:
        raise ValueError(f"tensor needs at least 2 dimensions for orthogonal_, got {len(shape)}")
    rows = shape[0]
    cols = math.prod(shape) // rows if rows else 0
    if rows == 0 or cols == 0:
        _core.constant_fill(tensor, "tensor", 0.0)  # empty: nothing to draw, the tensor still checked
        return tensor

    def fill(s: int, o: int) -> None:
        flat = np.empty((max(rows, cols), min(rows, cols)))
        _core.normal_fill(flat, "tensor", None, "", s, o, 0, 0.0, 1.0)
        q, r = np.linalg.qr(flat)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        _core.assign_fill(tensor, "tensor", np.ascontiguousarray(gain * q).reshape(shape))

    _draw(seed, generator, fill)
    return tensor
