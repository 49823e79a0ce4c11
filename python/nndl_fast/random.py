r"""Counter-based random fills: uniform, normal and truncated normal, the same bits on any
thread count, SIMD target and machine.

Every value comes from the counter-based generator Philox4x32-10 (Salmon et al. 2011; the
Random123 known-answer vectors are checked), which dropout's masks use too. **Element i of
the array (in C order) depends only on (seed, offset, i)**, so any slice can be regenerated
on its own, and threads share the work without sharing a state. With

    words(j) = Philox4x32-10(counter = (lo32(j), hi32(j), lo32(offset), hi32(offset)),
                             key = (lo32(seed), hi32(seed)))        (four 32-bit words)

float32 element i = 64·b + 16·w + l (w < 4, l < 16) uses counter j = 16·b + l, and float64
element i = 32·b + 16·h + l (h < 2, l < 16) uses counter j = 16·b + l:

- **uniform** on [low, high): x = low + (high − low)·u, in double, rounded once;
  u = (word w >> 8)·2⁻²⁴ (float32), u = k·2⁻⁵³ with k the top 53 bits of words (2h, 2h + 1)
  (27 of the first, 26 of the second; float64). (Rounding to the dtype can give ``high``
  when high − low is not a power of two times the dtype's spacing, as torch's can.)
- **normal** N(mean, std²), by Box–Muller: z = √(−2 ln u1)·cos(2π u2) or ·sin(2π u2),
  x = mean + std·z. float32: u1 = 1 − word(w & 2)·2⁻³², u2 = (word(w | 1) >> 8)·2⁻²⁴ (24 bits:
  the quarter-turn reduction of 2π u2 is exact in float32); even w takes the cosine, odd w the
  sine; z is computed in float32 and x = fma(std, z, mean) in float32 (std and mean rounded
  to float32). float64: u1 = 1 − k₀₁·2⁻⁵³, u2 = k₂₃·2⁻⁵³ (53 bits of words 0, 1 and
  of words 2, 3); h = 0 takes the cosine, h = 1 the sine. u1 is in (0, 1], so |z| ≤ 6.66
  (float32) or 8.57 (float64): tails beyond have probability under 3e-11.
- **truncated normal** on [mean + low·std, mean + high·std] (``low``, ``high`` in **std
  units**), by the inverse CDF, one draw per element and no rejection:
  z = Φ⁻¹(Φ(low) + u·(Φ(high) − Φ(low))), clamped to [low, high]; u = (word w + ½)·2⁻³²
  (float32) or (k + ½)·2⁻⁵² with k the top 52 bits of words (2h, 2h + 1) (float64). An
  interval above 0 is drawn as the mirror image of its negative (z → −z), where Φ keeps its
  relative precision. Φ⁻¹ is Wichura's AS241 (relative error ~1e-16); Φ(low), Φ(high) come
  from the C library's ``erfc``, once per call. torch's ``trunc_normal_(a, b)`` takes
  **absolute** bounds: :func:`nndl_fast.init.trunc_normal_` is that form.

**Accuracy of the transform.** log, sin, cos and Φ⁻¹ are the project's own vectorised
functions (``cpp/simd/vmath.hpp``, ``cpp/rng/random_block.hpp``), not libm's (whose bits
differ between platforms). The float32 normal runs in float32 lanes (polynomials with fused
multiply-adds, ln u1 and √ carried as float pairs), the others in double. Measured against a
double-precision transform of the same uniforms with libm (:mod:`nndl_fast.reference.random`):
normal float32 within 2 ulp (on 4.9·10⁷ draws, edge words included: 94 % equal, 6 % at 1 ulp,
3 in a million at 2 ulp), float64 within 4 ulp (87 % equal, 2·10⁷ draws); truncated normal (AS241 against
the same with libm's log) float32 within 1 ulp, float64 within 2e-15 relative. Uniform fills
equal the reference to the bit.

**Slices.** ``start=`` fills the array with elements start, start + 1, … of the stream
instead of 0, 1, …: ``normal(n, seed=s, start=k)`` equals ``normal(k + n, seed=s)[k:]``, so a
worker can regenerate its own slice of a tensor alone.

**Streams.** ``offset`` numbers the calls made with one seed: each offset is its own stream of
2⁶⁴ counters (2⁶⁶ float32 values), disjoint from every other offset's. :class:`Generator`
hands out one offset per call. The fills of a (seed, offset) are the words of dropout's mask
for the same (seed, offset): do not reuse a seed across the two.

Arrays (NumPy, or torch CPU tensors, zero-copy) are filled in place: float32 or float64,
C-contiguous, writeable; anything else is rejected and left unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _checks, _core

__all__ = [
    "Generator",
    "normal",
    "normal_",
    "truncated_normal",
    "truncated_normal_",
    "uniform",
    "uniform_",
]

_U64_MAX = 2**64 - 1
_START_MAX = 2**62  # element indices stay below 2**63
_TRUNC_REACH = 30.0  # the interval must meet [−30, 30] std: beyond, Φ leaves double's range


# -- hyper-parameters, checked once -----------------------------------------------------
def _stream(seed: Any, offset: Any) -> tuple[int, int]:
    if seed is None:
        raise TypeError("seed= is required (an integer in [0, 2**64)), or use a Generator, which hands out offsets")
    return _checks.integer("seed", seed, 0, _U64_MAX), _checks.integer("offset", offset, 0, _U64_MAX)


def _start(start: Any) -> int:
    return _checks.integer("start", start, 0, _START_MAX)


def _uniform_params(low: Any, high: Any) -> tuple[float, float]:
    low = _checks.real("low", low)
    high = _checks.real("high", high)
    if not low < high:
        raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")
    if not math.isfinite(high - low):
        raise ValueError(f"high - low must be finite, got low={low!r}, high={high!r}")
    return low, high


def _normal_params(mean: Any, std: Any) -> tuple[float, float]:
    return _checks.real("mean", mean), _checks.real("std", std, 0.0)


def _truncated_params(mean: Any, std: Any, low: Any, high: Any) -> tuple[float, float, float, float]:
    mean, std = _normal_params(mean, std)
    low = _checks.real("low", low, finite=False)
    high = _checks.real("high", high, finite=False)
    if not low < high:
        raise ValueError(f"low must be < high (bounds in std units), got low={low!r}, high={high!r}")
    if high <= -_TRUNC_REACH or low >= _TRUNC_REACH:
        raise ValueError(f"the interval [low, high] = [{low!r}, {high!r}] (std units) must meet (-30, 30)")
    return mean, std, low, high


def _dtype(dtype: Any) -> str:
    """'' (any: the out array's), 'float32' or 'float64'."""
    if dtype is None:
        return ""
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if d not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {d}")
    return d.name


def _alloc(shape: Any, dtype: Any, out: Any) -> tuple[Any, list[int] | None, str]:
    """The array a functional form fills, the shape and dtype the binding must check it has."""
    shape_t = _checks.shape("shape", shape)
    dt = _dtype(dtype)
    if out is not None:
        return out, list(shape_t), dt
    return np.empty(shape_t, dt or np.float32), None, ""


# -- in-place fills ---------------------------------------------------------------------
def uniform_(
    a: Any, low: float = 0.0, high: float = 1.0, *, seed: int | None = None, offset: int = 0, start: int = 0
) -> Any:
    """Fills ``a`` in place with U[low, high) (see the module docstring); returns ``a``."""
    low, high = _uniform_params(low, high)
    seed, offset = _stream(seed, offset)
    start = _start(start)
    _core.uniform_fill(a, "a", None, "", seed, offset, start, low, high)
    return a


def normal_(
    a: Any, mean: float = 0.0, std: float = 1.0, *, seed: int | None = None, offset: int = 0, start: int = 0
) -> Any:
    """Fills ``a`` in place with N(mean, std²) (Box–Muller; see the module docstring); returns ``a``."""
    mean, std = _normal_params(mean, std)
    seed, offset = _stream(seed, offset)
    start = _start(start)
    _core.normal_fill(a, "a", None, "", seed, offset, start, mean, std)
    return a


def truncated_normal_(
    a: Any,
    mean: float = 0.0,
    std: float = 1.0,
    low: float = -2.0,
    high: float = 2.0,
    *,
    seed: int | None = None,
    offset: int = 0,
    start: int = 0,
) -> Any:
    """Fills ``a`` with N(mean, std²) truncated to [mean + low·std, mean + high·std]: ``low`` and
    ``high`` are in std units (torch's ``trunc_normal_`` takes absolute bounds; see
    :func:`nndl_fast.init.trunc_normal_`). Inverse CDF, one draw per element. Returns ``a``."""
    mean, std, low, high = _truncated_params(mean, std, low, high)
    seed, offset = _stream(seed, offset)
    start = _start(start)
    _core.truncated_normal_fill(a, "a", None, "", seed, offset, start, mean, std, low, high)
    return a


# -- functional forms -------------------------------------------------------------------
def uniform(
    shape: int | tuple[int, ...],
    low: float = 0.0,
    high: float = 1.0,
    *,
    dtype: Any = None,
    seed: int | None = None,
    offset: int = 0,
    start: int = 0,
    out: Any = None,
) -> Any:
    """A new array of ``shape`` (``dtype`` float32 by default, or float64) from U[low, high), or
    ``out`` (of that shape, and that dtype when given) filled in place."""
    low, high = _uniform_params(low, high)
    seed, offset = _stream(seed, offset)
    start = _start(start)
    a, want_shape, dt = _alloc(shape, dtype, out)
    _core.uniform_fill(a, "out", want_shape, dt, seed, offset, start, low, high)
    return a


def normal(
    shape: int | tuple[int, ...],
    mean: float = 0.0,
    std: float = 1.0,
    *,
    dtype: Any = None,
    seed: int | None = None,
    offset: int = 0,
    start: int = 0,
    out: Any = None,
) -> Any:
    """A new array of ``shape`` from N(mean, std²), or ``out`` filled in place (see :func:`uniform`)."""
    mean, std = _normal_params(mean, std)
    seed, offset = _stream(seed, offset)
    start = _start(start)
    a, want_shape, dt = _alloc(shape, dtype, out)
    _core.normal_fill(a, "out", want_shape, dt, seed, offset, start, mean, std)
    return a


def truncated_normal(
    shape: int | tuple[int, ...],
    mean: float = 0.0,
    std: float = 1.0,
    low: float = -2.0,
    high: float = 2.0,
    *,
    dtype: Any = None,
    seed: int | None = None,
    offset: int = 0,
    start: int = 0,
    out: Any = None,
) -> Any:
    """A new array of ``shape`` from the truncated normal of :func:`truncated_normal_` (bounds in
    std units), or ``out`` filled in place."""
    mean, std, low, high = _truncated_params(mean, std, low, high)
    seed, offset = _stream(seed, offset)
    start = _start(start)
    a, want_shape, dt = _alloc(shape, dtype, out)
    _core.truncated_normal_fill(a, "out", want_shape, dt, seed, offset, start, mean, std, low, high)
    return a


# -- the generator object -----------------------------------------------------------------
class Generator:
    """A seed and the next offset: each call takes the next offset, so no two calls share a
    stream (as JAX's key splitting, without keys to pass around).

    ``Generator(seed)`` starts at ``offset=0``; ``seed=None`` draws a seed from the operating
    system. Every fill method of this module is here, without ``seed``/``offset``: each call
    uses ``(seed, offset)`` and then advances ``offset`` by one — only if it succeeded (a
    rejected call changes nothing). :meth:`next_stream` hands out a ``(seed, offset)`` pair
    for use elsewhere (:mod:`nndl_fast.dropout`, say). The state is ``(seed, offset)``:
    :meth:`state_dict`/:meth:`load_state_dict`, or pickle, restore it, and a restored
    generator continues bitwise.
    """

    _STATE_KEYS = ("seed", "offset")

    def __init__(self, seed: int | None = None, *, offset: int = 0) -> None:
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        self.seed, self.offset = _stream(seed, offset)

    def _take(self, fill: Any) -> Any:
        """Runs fill(seed, offset); advances the offset once it returned."""
        if self.offset > _U64_MAX:
            raise ValueError("this Generator has used all 2**64 offsets of its seed")
        result = fill(self.seed, self.offset)
        self.offset += 1
        return result

    def next_stream(self) -> tuple[int, int]:
        """(seed, offset) for one call elsewhere; advances the offset."""
        return self._take(lambda s, o: (s, o))

    def uniform_(self, a: Any, low: float = 0.0, high: float = 1.0) -> Any:
        return self._take(lambda s, o: uniform_(a, low, high, seed=s, offset=o))

    def normal_(self, a: Any, mean: float = 0.0, std: float = 1.0) -> Any:
        return self._take(lambda s, o: normal_(a, mean, std, seed=s, offset=o))

    def truncated_normal_(
        self, a: Any, mean: float = 0.0, std: float = 1.0, low: float = -2.0, high: float = 2.0
    ) -> Any:
        return self._take(lambda s, o: truncated_normal_(a, mean, std, low, high, seed=s, offset=o))

    def uniform(self, shape: Any, low: float = 0.0, high: float = 1.0, *, dtype: Any = None, out: Any = None) -> Any:
        return self._take(lambda s, o: uniform(shape, low, high, dtype=dtype, seed=s, offset=o, out=out))

    def normal(self, shape: Any, mean: float = 0.0, std: float = 1.0, *, dtype: Any = None, out: Any = None) -> Any:
        return self._take(lambda s, o: normal(shape, mean, std, dtype=dtype, seed=s, offset=o, out=out))

    def truncated_normal(
        self,
        shape: Any,
        mean: float = 0.0,
        std: float = 1.0,
        low: float = -2.0,
        high: float = 2.0,
        *,
        dtype: Any = None,
        out: Any = None,
    ) -> Any:
        return self._take(
            lambda s, o: truncated_normal(shape, mean, std, low, high, dtype=dtype, seed=s, offset=o, out=out)
        )

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "offset": self.offset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores a :meth:`state_dict`; checks both keys before assigning either."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        if set(state) != set(self._STATE_KEYS):
            raise ValueError(f"state must have exactly the keys {self._STATE_KEYS}, got {tuple(state)}")
        self.seed, self.offset = _stream(state["seed"], state["offset"])

    def __repr__(self) -> str:
        return f"Generator(seed={self.seed}, offset={self.offset})"
