"""Hyper-parameter checks shared by every module (docs/conventions.md, "Errors").

Arrays are checked once, in C++ (``cpp/bindings/args.hpp``); numbers, flags and convention
names are checked here, before any kernel runs. A wrong type is a TypeError, a wrong value a
ValueError; each message names the argument. NumPy scalars (``np.float32(0.1)``,
``np.int64(3)``) are accepted wherever a Python number is; ``bool`` is not a number.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence
from typing import Any

CONVENTIONS = ("chapter", "torch", "keras", "optax", "onnx")


def real(
    name: str,
    value: Any,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a float in the interval [lo, hi] (ends open when asked); NaN never passes.

    ``finite=False`` lets ±inf through when the interval includes it.
    """
    if type(value) is float:  # the common case, without the slower ABC check below
        v = value
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    else:
        v = float(value)
    if math.isnan(v) or (finite and math.isinf(v)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    below = v <= lo if lo_open else v < lo
    above = v >= hi if hi_open else v > hi
    if below or above:
        left, right = ("(" if lo_open else "["), (")" if hi_open else "]")
        raise ValueError(f"{name} must be in {left}{lo:g}, {hi:g}{right}, got {value!r}")
    return v


def integer(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int (Python or NumPy integer, not bool) with lo <= value <= hi."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = operator.index(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        lo_s = "-inf" if lo is None else str(lo)
        hi_s = "inf" if hi is None else str(hi)
        raise ValueError(f"{name} must be in [{lo_s}, {hi_s}], got {value!r}")
    return v


def flag(name: str, value: Any) -> bool:
    """A bool (or NumPy bool); 0/1 and strings are refused, as they usually hide a mistake."""
    if value is True or value is False:
        return value
    if type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"):  # NumPy 2 and 1
        return bool(value)
    raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """One of ``allowed`` (strings)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {tuple(allowed)}, got {type(value).__name__}")
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return value


def convention(value: Any, allowed: Sequence[str] = ("chapter", "torch")) -> str:
    """The ``convention=`` argument: which published formula to compute."""
    return choice("convention", value, allowed)


def shape(name: str, value: Any) -> tuple[int, ...]:
    """A shape: an int or a sequence of ints >= 0 (not a string, not floats)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an int or a tuple of ints, got {type(value).__name__}")
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (integer(name, value, 0),)
    if not isinstance(value, Sequence) and not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be an int or a tuple of ints, got {type(value).__name__}")
    return tuple(integer(f"{name}[{i}]", d, 0) for i, d in enumerate(value))
