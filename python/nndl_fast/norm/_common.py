"""Small helpers shared by the normalisation modules."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _checks


def tensor_view(obj: Any) -> Any:
    """A torch tensor as the NumPy view of its memory (what the compiled checks see, zero-copy);
    anything else unchanged. For the few places that reshape or copy an array in Python."""
    if not isinstance(obj, np.ndarray) and hasattr(obj, "detach") and hasattr(obj, "numpy"):
        return obj.detach().numpy()
    return obj


def out_entries(out: Any, fields: tuple[str, ...]) -> tuple[Any, ...]:
    """The entries of ``out=`` for a call with several results (docs/conventions.md): None, or
    a tuple (or list) with one entry per result in the order of ``fields``, None meaning
    "allocate this one". The arrays themselves are checked by the compiled call."""
    if out is None:
        return (None,) * len(fields)
    if not isinstance(out, (tuple, list)):
        raise TypeError(
            f"out must be None or a tuple ({', '.join(fields)}) of arrays or None, got {type(out).__name__}"
        )
    if len(out) != len(fields):
        raise ValueError(f"out must have {len(fields)} entries ({', '.join(fields)}), got {len(out)}")
    return tuple(out)


def check_eps(eps: Any) -> float:
    """ε added to the variance: a finite number >= 0."""
    return _checks.real("eps", eps, 0.0)


def checked_buffers(state: dict, want: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """state[k] as copies of want[k]'s shape and dtype (from a same-kind cast), for every k:
    all checked before the caller assigns any (copies: a value that is a view of another
    buffer cannot change under the assignment)."""
    values = {}
    for k, buf in want.items():
        v = np.asarray(tensor_view(state[k]))
        if v.shape != buf.shape:
            raise ValueError(f"state_dict[{k!r}] has shape {v.shape}, expected {buf.shape}")
        if not np.can_cast(v.dtype, buf.dtype, casting="same_kind"):
            raise TypeError(f"state_dict[{k!r}] has dtype {v.dtype}, which does not cast to {buf.dtype}")
        values[k] = v.astype(buf.dtype, casting="same_kind", copy=True)
    return values


class _Preset:
    """The default of an option that ``convention=`` sets (docs/conventions.md): give the
    option to override the preset."""

    _instance: _Preset | None = None

    def __new__(cls) -> _Preset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<preset>"

    def __reduce__(self) -> str:
        return "PRESET"


PRESET: Any = _Preset()
"""The default of an option that ``convention=`` sets."""
