r"""Weight normalisation (chapter eq. 1.55; Salimans & Kingma 2016).

Each output unit's weight row is reparametrised by a direction v_i and a length g_i:

.. math::

    W_i = g_i \, \frac{v_i}{\lVert v_i \rVert}                      \qquad (1.55)

and the backward pass, with :math:`\hat v_i = v_i / \lVert v_i \rVert`:

.. math::

    \frac{\partial L}{\partial g_i} = \frac{\partial L}{\partial W_i} \cdot \hat v_i, \qquad
    \frac{\partial L}{\partial v_i} = \frac{g_i}{\lVert v_i \rVert}
        \Big(\frac{\partial L}{\partial W_i} - \frac{\partial L}{\partial g_i}\, \hat v_i\Big)

Symbol → argument: v_i → ``v[i]`` (row i = everything after the first axis, so a
convolution kernel (out, in, kh, kw) has rows of in·kh·kw), g_i → ``g[i]``,
W → the result (shaped like v), ∂L/∂W → ``dy``; ∂L/∂v, ∂L/∂g → ``dv``, ``dg``
(:class:`WeightNormBackward`).

PyTorch: the same formula as ``torch.nn.utils.parametrizations.weight_norm(module,
dim=0)`` / ``torch._weight_norm(v, g, 0)``. torch stores g with shape (out, 1, ..., 1);
both that shape and (out,) are accepted here, and ∂L/∂g comes back in the shape given.
Only torch's default ``dim=0`` is offered: for another axis, move it first
(``np.moveaxis(...)`` then ``np.ascontiguousarray``).

Numerics: ‖v_i‖² and ∂L/∂W_i·v_i are accumulated in double in a fixed order, so the
results are bitwise identical for every thread count and SIMD target; the per-row
coefficients (g_i/‖v_i‖, ...) are computed in double and rounded once to the array's
dtype, and the elementwise products are taken in that dtype (as torch does). A zero row
(‖v_i‖ = 0) gives NaN in W_i, ∂L/∂g_i
and ∂L/∂v_i (0/0), as torch does; nothing raises. A v with rows of no elements, shape
(out, 0), is such a case (∂L/∂g is NaN); a v with no rows gives empty results. NaN or
±Inf in v, g or ∂L/∂W propagate through the formula unchecked.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _core
from ._common import tensor_view

__all__ = ["WeightNorm", "WeightNormBackward", "weight_norm", "weight_norm_backward"]


class WeightNormBackward(NamedTuple):
    """Result of :func:`weight_norm_backward`: ∂L/∂v (shaped like v) and ∂L/∂g (like g)."""

    dv: np.ndarray
    dg: np.ndarray


def _rows_view(a: Any, rows: int) -> Any:
    """g of torch's shape (rows, 1, ..., 1) as a (rows,) view; anything else unchanged
    (the compiled checks then name what is wrong with it). A torch tensor is viewed first."""
    a = tensor_view(a)
    if isinstance(a, np.ndarray) and a.ndim > 1 and a.flags.c_contiguous and a.shape == (rows,) + (1,) * (a.ndim - 1):
        return a.reshape(rows)  # a view: writes land in the caller's array
    return a


def _empty_like(a: Any) -> np.ndarray:
    """C-contiguous even for a Fortran-ordered `a`; for a torch tensor, through its NumPy
    view; a placeholder when `a` is no array (the compiled checks reject `a` itself first)."""
    if isinstance(a, np.ndarray):
        return np.empty(a.shape, a.dtype)
    try:
        return np.empty_like(a, order="C")
    except (TypeError, ValueError):
        return np.empty(0)


def _num_rows(v: Any) -> int:
    shape: Any = getattr(v, "shape", ())
    return int(shape[0]) if len(shape) >= 1 else 0


def weight_norm(v: np.ndarray, g: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """W_i = g_i v_i / ‖v_i‖ (eq. 1.55), shaped like ``v``.

    v: (out_features, ...) float32 or float64, C-contiguous. g: (out_features,) or
    (out_features, 1, ..., 1), same dtype. out: optional preallocated result (shape and
    dtype of v), returned.
    """
    if out is None:
        out = _empty_like(v)
    _core.weight_norm_forward(out, v, _rows_view(g, _num_rows(v)))
    return out


def weight_norm_backward(
    dy: np.ndarray,
    v: np.ndarray,
    g: np.ndarray,
    *,
    out: tuple[np.ndarray | None, np.ndarray | None] | None = None,
) -> WeightNormBackward:
    """(∂L/∂v, ∂L/∂g) from ∂L/∂W = ``dy`` (see the module docstring).

    ∂L/∂v is shaped like v, ∂L/∂g like g. ``out``: optional preallocated (dv, dg), either
    entry None to allocate that one; written in place and returned.
    """
    dv, dg = _outs(out)
    rows = _num_rows(v)
    if dv is None:
        dv = _empty_like(v)
    if dg is None:
        dg = _empty_like(g)
    _core.weight_norm_backward(dv, _rows_view(dg, rows), dy, v, _rows_view(g, rows))
    return WeightNormBackward(dv, dg)


def _outs(out: Any) -> tuple[Any, Any]:
    """``out=`` of the backward: None, or a pair (dv, dg) whose entries may be None."""
    if out is None:
        return None, None
    if not isinstance(out, (tuple, list)):
        raise TypeError(f"out must be a tuple (dv, dg) or None, got {type(out).__name__}")
    if len(out) != 2:
        raise ValueError(f"out must be a pair (dv, dg), got {len(out)} entries")
    return out[0], out[1]


def _row_norms(v: np.ndarray) -> np.ndarray:
    v2 = v.reshape(v.shape[0], -1).astype(np.float64)
    return np.sqrt(np.sum(v2 * v2, axis=1))


class WeightNorm:
    """The parameters (v, g) of one weight-normalised weight, and its W and gradients.

    ``WeightNorm(v, g)`` copies v (out_features, ...) and g (out_features,); with g
    omitted, g_i = ‖v_i‖, so that W equals v at the start (torch's initialisation).
    ``WeightNorm.from_weight(w)`` is the same from an existing weight.

    ``weight()`` computes W (eq. 1.55); ``backward(dy)`` computes and stores ``dv`` and
    ``dg`` for an optimizer to apply to ``v`` and ``g`` in place (both None until the first
    backward succeeds; a rejected backward changes neither).
    ``state_dict()`` / ``load_state_dict()`` round-trip v and g bitwise.
    """

    def __init__(self, v: np.ndarray, g: np.ndarray | None = None) -> None:
        v, g = tensor_view(v), tensor_view(g)  # torch tensors: copied from their memory below
        if not isinstance(v, np.ndarray):
            raise TypeError(f"v must be a numpy.ndarray, got {type(v).__name__}")
        if v.dtype not in (np.float32, np.float64):
            raise TypeError(f"v must be float32 or float64, got {v.dtype}")
        if v.ndim < 1:
            raise ValueError("v must have at least 1 dimension (out_features, ...)")
        self.v = np.array(v, order="C", copy=True)
        if g is None:
            self.g = _row_norms(self.v).astype(self.v.dtype)
        else:
            g = np.asarray(g)
            if g.dtype != self.v.dtype:
                raise TypeError(f"g has dtype {g.dtype} but v has {self.v.dtype}")
            if g.size != self.v.shape[0] or g.shape[:1] != self.v.shape[:1]:
                raise ValueError(f"g has shape {g.shape} but must have shape ({self.v.shape[0]},)")
            self.g = np.array(g.reshape(self.v.shape[0]), order="C", copy=True)
        self.dv: np.ndarray | None = None
        self.dg: np.ndarray | None = None

    @classmethod
    def from_weight(cls, w: np.ndarray) -> WeightNorm:
        """v = w, g_i = ‖w_i‖: W equals w until v or g change."""
        return cls(w)

    def weight(self, out: np.ndarray | None = None) -> np.ndarray:
        """W = g_i v_i / ‖v_i‖ (eq. 1.55)."""
        return weight_norm(self.v, self.g, out=out)

    def backward(self, dy: np.ndarray) -> WeightNormBackward:
        """Stores and returns (dv, dg) for ∂L/∂W = dy; reuses their buffers after the first."""
        if self.dv is None or self.dg is None:
            # Fresh buffers are kept only once the call has checked dy and filled them.
            result = weight_norm_backward(dy, self.v, self.g, out=(np.empty_like(self.v), np.empty_like(self.g)))
            self.dv, self.dg = result
            return result
        return weight_norm_backward(dy, self.v, self.g, out=(self.dv, self.dg))

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of v and g."""
        return {"v": self.v.copy(), "g": self.g.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copies v and g in place (references held by an optimizer stay valid).

        Checks everything first: a rejected state changes nothing.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict, got {type(state).__name__}")
        missing = sorted({"v", "g"} - set(state))
        unknown = sorted(str(k) for k in set(state) - {"v", "g"})
        if missing or unknown:
            raise ValueError(
                "state must have exactly the keys ['v', 'g'] of WeightNorm.state_dict(); "
                f"missing {missing}, unknown {unknown}"
            )
        given = {name: np.asarray(tensor_view(state[name])) for name in ("v", "g")}
        for name in ("v", "g"):
            mine, theirs = getattr(self, name), given[name]
            if theirs.shape != mine.shape:
                raise ValueError(f"state[{name!r}] has shape {theirs.shape} but {name} has {mine.shape}")
            if theirs.dtype != mine.dtype:
                raise TypeError(f"state[{name!r}] has dtype {theirs.dtype} but {name} has {mine.dtype}")
        np.copyto(self.v, given["v"])
        np.copyto(self.g, given["g"])

    def __repr__(self) -> str:
        return f"WeightNorm(v: {self.v.shape} {self.v.dtype}, g: {self.g.shape})"
