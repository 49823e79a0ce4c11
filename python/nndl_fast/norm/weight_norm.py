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
W → the result (shaped like v), ∂L/∂W → ``grad_w``.

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

from typing import Any

import numpy as np

from .. import _core

__all__ = ["WeightNorm", "weight_norm", "weight_norm_backward"]


def _rows_view(a: Any, rows: int) -> Any:
    """g of torch's shape (rows, 1, ..., 1) as a (rows,) view; anything else unchanged
    (the compiled checks then name what is wrong with it)."""
    if (
        isinstance(a, np.ndarray)
        and a.ndim > 1
        and a.flags.c_contiguous
        and a.shape == (rows,) + (1,) * (a.ndim - 1)
    ):
        return a.reshape(rows)  # a view: writes land in the caller's array
    return a


def _empty_like(a: Any) -> np.ndarray:
    # C-contiguous even for a Fortran-ordered `a`; a placeholder when `a` is not an array
    # (the compiled checks reject `a` itself first).
    if isinstance(a, np.ndarray):
        return np.empty(a.shape, a.dtype)
    return np.empty(0)


def _num_rows(v: Any) -> int:
    return v.shape[0] if isinstance(v, np.ndarray) and v.ndim >= 1 else 0


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
    grad_w: np.ndarray,
    v: np.ndarray,
    g: np.ndarray,
    *,
    out_v: np.ndarray | None = None,
    out_g: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(∂L/∂v, ∂L/∂g) from ∂L/∂W = ``grad_w`` (see the module docstring).

    ∂L/∂v is shaped like v, ∂L/∂g like g. out_v / out_g: optional preallocated results.
    """
    rows = _num_rows(v)
    if out_v is None:
        out_v = _empty_like(v)
    if out_g is None:
        out_g = _empty_like(g)
    _core.weight_norm_backward(out_v, _rows_view(out_g, rows), grad_w, v, _rows_view(g, rows))
    return out_v, out_g


def _row_norms(v: np.ndarray) -> np.ndarray:
    v2 = v.reshape(v.shape[0], -1).astype(np.float64)
    return np.sqrt(np.sum(v2 * v2, axis=1))


class WeightNorm:
    """The parameters (v, g) of one weight-normalised weight, and its W and gradients.

    ``WeightNorm(v, g)`` copies v (out_features, ...) and g (out_features,); with g
    omitted, g_i = ‖v_i‖, so that W equals v at the start (torch's initialisation).
    ``WeightNorm.from_weight(w)`` is the same from an existing weight.

    ``weight()`` computes W (eq. 1.55); ``backward(grad_w)`` computes and stores
    ``grad_v`` and ``grad_g`` for an optimizer to apply to ``v`` and ``g`` in place.
    ``state_dict()`` / ``load_state_dict()`` round-trip v and g bitwise.
    """

    def __init__(self, v: np.ndarray, g: np.ndarray | None = None) -> None:
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
        self.grad_v: np.ndarray | None = None
        self.grad_g: np.ndarray | None = None

    @classmethod
    def from_weight(cls, w: np.ndarray) -> WeightNorm:
        """v = w, g_i = ‖w_i‖: W equals w until v or g change."""
        return cls(w)

    def weight(self, out: np.ndarray | None = None) -> np.ndarray:
        """W = g_i v_i / ‖v_i‖ (eq. 1.55)."""
        return weight_norm(self.v, self.g, out=out)

    def backward(self, grad_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stores and returns (grad_v, grad_g) for ∂L/∂W = grad_w; reuses their buffers."""
        if self.grad_v is None or self.grad_g is None:
            self.grad_v = np.empty_like(self.v)
            self.grad_g = np.empty_like(self.g)
        return weight_norm_backward(grad_w, self.v, self.g, out_v=self.grad_v, out_g=self.grad_g)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of v and g."""
        return {"v": self.v.copy(), "g": self.g.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copies v and g in place (references held by an optimizer stay valid).

        Checks everything first: a rejected state changes nothing.
        """
        missing = {"v", "g"} - set(state)
        if missing:
            raise KeyError(f"state is missing {sorted(missing)}")
        for name in ("v", "g"):
            mine, theirs = getattr(self, name), np.asarray(state[name])
            if theirs.shape != mine.shape:
                raise ValueError(
                    f"state[{name!r}] has shape {theirs.shape} but {name} has {mine.shape}"
                )
            if theirs.dtype != mine.dtype:
                raise TypeError(
                    f"state[{name!r}] has dtype {theirs.dtype} but {name} has {mine.dtype}"
                )
        np.copyto(self.v, state["v"])
        np.copyto(self.g, state["g"])

    def __repr__(self) -> str:
        return f"WeightNorm(v: {self.v.shape} {self.v.dtype}, g: {self.g.shape})"
