r"""Layer normalisation (chapter 1.5.2, eqs 1.49–1.52; in an RNN cell, 1.53–1.54).

For each sample (each index of the leading dimensions), over the D = prod(normalized_shape)
values z of a layer (the trailing dimensions of ``x``):

.. math::

    \mu = \frac1D \sum_j z_j \quad(1.50) \qquad
    \sigma^2 = \frac1D \sum_j (z_j - \mu)^2 \quad(1.51) \\
    \hat z = \frac{z - \mu}{\sqrt{\sigma^2 + \epsilon}} \odot \gamma + \beta \quad(1.52)

Symbols → arguments: z → ``x``; γ → ``gamma`` and β → ``beta`` (shape ``normalized_shape``,
each optional); ε → ``eps``; μ, 1/sqrt(σ² + ε) → ``save_mean``, ``save_rstd`` (shape
x.shape[:-len(normalized_shape)]).

Backward: with g = dy ⊙ γ and x̂ = (z − μ)·rstd,

    dx = rstd·(g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)),   dγ = Σ_samples dy ⊙ x̂,   dβ = Σ_samples dy.

An RNN step (1.53–1.54), h_t = f(LN_γ,β(U h_{t−1} + W x_t)), is this kernel applied to the
(batch, hidden) pre-activation of each step: pass that array as ``x`` with
``normalized_shape=hidden``.

Presets (``convention=``; an option given explicitly wins):

=============  ========================================================================
``"chapter"``  (default) and ``"torch"`` (``torch.nn.LayerNorm``): ε = 1e-5 (torch's
               ``eps``), the trailing ``normalized_shape``; γ, β are torch's weight, bias.
``"keras"``    ``keras.layers.LayerNormalization``: ε = 1e-3 (``epsilon``); ``axis`` (default
               −1) is Keras's: the axes normalised, an int or a list of contiguous axes
               (``axis=1`` on (N, C, H, W) normalises over C alone); γ, β are Keras's
               ``gamma``, ``beta`` (``scale``, ``center``), of the block's shape.
``"onnx"``     ONNX ``LayerNormalization``: ε = 1e-5 (``epsilon``); ``axis`` (default −1) is
               ONNX's: the first normalised axis, every later one normalised too (``axis=1``
               on (N, C, H, W) normalises over C, H, W); γ, β are ``Scale``, ``B``, of the
               block's shape or, in this preset only, broadcastable to it (shape (1,));
               save_mean, save_rstd are ``Mean``, ``InvStdDev`` without their size-1 axes.
=============  ========================================================================

The formula is the same in all four (biased variance, ε inside the root); only ε and how
the normalised axes are named differ. ``axis=`` with the chapter's or torch's preset is read
as Keras reads it (torch has no such argument). A block of axes in the middle (outer, D, inner) is
read where it lies, without a transpose copy: the statistics of kLnInnerBlock (64) columns
are taken at once, striding over D.

>>> import numpy as np
>>> from nndl_fast.norm import layer_norm_forward
>>> x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
>>> layer_norm_forward(x, 4).y[0, 0].round(4)                      # chapter / torch
array([-1.3416, -0.4472,  0.4472,  1.3416])
>>> layer_norm_forward(x, axis=1, convention="keras").y[0, :, 0].round(4)  # over axis 1 only
array([-1.2247,  0.    ,  1.2247])
>>> layer_norm_forward(x, axis=1, convention="onnx").save_mean.shape       # over axes 1 and 2
(2,)

PyTorch: the same numbers as ``torch.nn.functional.layer_norm`` / ``aten.native_layer_norm``
(ε = 1e-5, biased variance); names γ/β for torch's weight/bias; save_mean/save_rstd have
the leading shape without torch's trailing 1s.

How it is computed: per row, statistics in double from shifted sums around the row's first
value (blocks of 4096 merged by Chan's formula), then the output while the row is in cache:
one read of x, one write of y. The backward takes four rows at a time: their Σg, Σg·x̂ and
the dγ, dβ partials in one pass, dx in a second pass over rows still in cache; dγ, dβ
partials of fixed row chunks are merged in chunk order (bitwise identical for any thread
count).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _core
from ._common import PRESET, check_eps, checked_buffers, out_entries

__all__ = [
    "LayerNorm",
    "LayerNormBackward",
    "LayerNormForward",
    "layer_norm_backward",
    "layer_norm_forward",
    "layer_norm_workspace",
]


class LayerNormForward(NamedTuple):
    y: np.ndarray
    save_mean: np.ndarray
    save_rstd: np.ndarray


class LayerNormBackward(NamedTuple):
    dx: np.ndarray
    dgamma: np.ndarray | None
    dbeta: np.ndarray | None


_CONVENTIONS = ("chapter", "torch", "keras", "onnx")
_EPS = {"chapter": 1e-5, "torch": 1e-5, "keras": 1e-3, "onnx": 1e-5}


def _normalized(normalized_shape: Any) -> tuple[int, ...]:
    """normalized_shape as a non-empty tuple of sizes >= 1 (an int is a 1-tuple)."""
    shape = _checks.shape("normalized_shape", normalized_shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"normalized_shape must be non-empty with sizes >= 1, got {shape}")
    return shape


def _block(normalized_shape: Any, axis: Any, convention: str) -> tuple[list[int] | None, list[int], bool]:
    """(normalized_shape, axes, to_end) for the compiled call: the trailing normalized_shape, or
    ``axis`` as the convention reads it (Keras's list of axes; ONNX's first axis, to the end).
    Keras and ONNX default to axis=-1; the chapter and torch need one of the two."""
    if normalized_shape is not None and axis is not None:
        raise TypeError("give normalized_shape= or axis=, not both")
    if normalized_shape is not None:
        return list(_normalized(normalized_shape)), [], False
    if axis is None:
        if convention in ("chapter", "torch"):
            raise TypeError(f"convention={convention!r} needs normalized_shape= (or axis=)")
        axis = -1
    # Axes count from -64 to 63 (NumPy's most dimensions); the compiled call checks them against x.
    if convention == "onnx":
        return None, [_checks.integer("axis", axis, -64, 63)], True
    if isinstance(axis, (list, tuple)):
        if not axis:
            raise ValueError("axis must name at least one axis")
        return None, [_checks.integer(f"axis[{i}]", a, -64, 63) for i, a in enumerate(axis)], False
    return None, [_checks.integer("axis", axis, -64, 63)], False


def _eps(eps: Any, convention: str) -> float:
    return _EPS[convention] if eps is PRESET else check_eps(eps)


def layer_norm_workspace(
    x_shape: tuple[int, ...],
    normalized_shape: int | tuple[int, ...] | None = None,
    *,
    axis: int | tuple[int, ...] | None = None,
    convention: str = "chapter",
) -> np.ndarray:
    """A float64 scratch buffer for the backward's ``workspace=`` (dγ, dβ partials)."""
    shape = _checks.shape("x_shape", x_shape)
    convention = _checks.convention(convention, _CONVENTIONS)
    norm, axes, to_end = _block(normalized_shape, axis, convention)
    nd = len(shape)
    if norm is not None:
        if len(norm) > nd or list(shape[nd - len(norm) :]) != norm:
            raise ValueError(f"normalized_shape {tuple(norm)} must be the trailing dimensions of x_shape {shape}")
        first, last = nd - len(norm), nd - 1
    else:
        if any(not -nd <= a < nd for a in axes):
            raise ValueError(f"axis {axis} is out of range for x_shape {shape}")
        ax = sorted(a % nd for a in axes)
        first, last = ax[0], (nd - 1 if to_end else ax[-1])
        if len(set(ax)) != len(ax) or (not to_end and last - first + 1 != len(ax)):
            raise ValueError(f"axis {axis} must be a contiguous block of distinct axes")
    return np.empty(max(1, _core.layer_norm_workspace_size(list(shape), first, last)))


def layer_norm_forward(
    x: np.ndarray,
    normalized_shape: int | tuple[int, ...] | None = None,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    *,
    axis: int | tuple[int, ...] | None = None,
    eps: float = PRESET,
    convention: str = "chapter",
    out: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None] | None = None,
) -> LayerNormForward:
    """Layer-norm forward (1.50–1.52); returns (y, save_mean, save_rstd).

    The normalised axes: the trailing ``normalized_shape`` (torch) or ``axis`` (as
    ``convention`` reads it; see the module docstring). ``gamma``, ``beta``: the block's
    shape (with ``convention="onnx"``, any shape that broadcasts to it, as ONNX's Scale and
    B). ε: the preset's unless given.
    ``out=(y, save_mean, save_rstd)``: preallocated results (entries may be None).
    """
    convention = _checks.convention(convention, _CONVENTIONS)
    eps = _eps(eps, convention)
    norm, axes, to_end = _block(normalized_shape, axis, convention)
    y, sm, sr = out_entries(out, LayerNormForward._fields)
    return LayerNormForward(
        *_core.layer_norm_forward(x, norm, axes, to_end, convention == "onnx", gamma, beta, y, sm, sr, eps)
    )


def layer_norm_backward(
    dy: np.ndarray,
    x: np.ndarray,
    save_mean: np.ndarray,
    save_rstd: np.ndarray,
    normalized_shape: int | tuple[int, ...] | None = None,
    gamma: np.ndarray | None = None,
    *,
    axis: int | tuple[int, ...] | None = None,
    convention: str = "chapter",
    param_grads: bool = True,
    out: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None] | None = None,
    workspace: np.ndarray | None = None,
) -> LayerNormBackward:
    """Layer-norm backward: (dx, dγ, dβ); dγ, dβ are None when ``param_grads`` is False.

    One pass per row: Σg and Σg·x̂ then dx with the row in cache; dγ, dβ accumulated in the
    same pass into per-chunk partials merged in a fixed order. ``out=(dx, dgamma, dbeta)``:
    preallocated results (entries may be None; dgamma, dbeta must be None without
    param_grads). With ``convention="onnx"``, dγ has gamma's shape, dβ the block's, unless
    ``out`` gives another shape that broadcasts to the block (the gradient is then summed
    over the broadcast axes); otherwise both have the block's shape.
    """
    convention = _checks.convention(convention, _CONVENTIONS)
    norm, axes, to_end = _block(normalized_shape, axis, convention)
    param_grads = _checks.flag("param_grads", param_grads)
    dx, dg, db = out_entries(out, LayerNormBackward._fields)
    if not param_grads and (dg is not None or db is not None):
        raise ValueError("out[1] and out[2] must be None when param_grads is False")
    res = _core.layer_norm_backward(
        dy, x, save_mean, save_rstd, norm, axes, to_end, convention == "onnx", gamma, dx, dg, db, workspace, param_grads
    )
    return LayerNormBackward(*res)


class LayerNorm:
    """A layer-norm layer with learnable γ (``gamma``, ones) and β (``beta``, zeros) of shape
    ``normalized_shape`` (``elementwise_affine=False``: neither; ``bias=False``: no β), as
    ``torch.nn.LayerNorm``. ``forward(x)`` / ``backward(dy)`` (dγ, dβ in ``dgamma``,
    ``dbeta``; ``out=``: a preallocated y / dx); ``state_dict`` under torch's names
    (weight, bias).

    ``normalized_shape`` is the shape of the normalised block (and of γ, β); without
    ``axis`` it is x's trailing dimensions (torch), with ``axis`` the block sits where
    ``axis`` says, read as ``convention`` reads it (the module docstring's table).
    ``eps``: the preset's (1e-5; Keras's 1e-3) unless given.

    >>> import numpy as np
    >>> from nndl_fast.norm import LayerNorm
    >>> ln = LayerNorm(3, axis=1, convention="keras")   # keras.layers.LayerNormalization(axis=1)
    >>> (ln.eps, ln(np.ones((2, 3, 5), np.float32)).shape)
    (0.001, (2, 3, 5))
    """

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        *,
        axis: int | tuple[int, ...] | None = None,
        eps: float = PRESET,
        convention: str = "chapter",
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        self.normalized_shape = _normalized(normalized_shape)
        self.convention = _checks.convention(convention, _CONVENTIONS)
        self.eps = _eps(eps, self.convention)
        if axis is not None:
            _block(None, axis, self.convention)
        self.axis = axis
        affine = _checks.flag("elementwise_affine", elementwise_affine)
        with_bias = _checks.flag("bias", bias)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        shp = self.normalized_shape
        self.gamma = np.ones(shp, self.dtype) if affine else None
        self.beta = np.zeros(shp, self.dtype) if (affine and with_bias) else None
        self.dgamma = np.zeros(shp, self.dtype) if self.gamma is not None else None
        self.dbeta = np.zeros(shp, self.dtype) if self.beta is not None else None
        self._saved: LayerNormForward | None = None
        self._x: Any = None
        self._workspace: dict[tuple[int, ...], np.ndarray] = {}

    def forward(self, x: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        res = layer_norm_forward(
            x,
            self.normalized_shape if self.axis is None else None,
            self.gamma,
            self.beta,
            axis=self.axis,
            eps=self.eps,
            convention=self.convention,
            out=(out, None, None),
        )
        self._saved, self._x = res, x
        return res.y

    __call__ = forward

    def backward(self, dy: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """dx for the last forward's input (``out``: a preallocated dx)."""
        if self._saved is None or self._x is None:
            raise RuntimeError("backward() needs a forward() first")
        x = self._x
        ws = self._workspace.get(x.shape)
        if ws is None:
            ws = self._workspace[x.shape] = layer_norm_workspace(
                x.shape,
                self.normalized_shape if self.axis is None else None,
                axis=self.axis,
                convention=self.convention,
            )
        param_grads = self.gamma is not None
        res = layer_norm_backward(
            dy,
            x,
            self._saved.save_mean,
            self._saved.save_rstd,
            self.normalized_shape if self.axis is None else None,
            self.gamma,
            axis=self.axis,
            convention=self.convention,
            param_grads=param_grads,
            out=(out, self.dgamma, self.dbeta) if param_grads else (out, None, None),
            workspace=ws,
        )
        return res.dx

    def state_dict(self) -> dict[str, np.ndarray]:
        sd = {}
        if self.gamma is not None:
            sd["weight"] = self.gamma.copy()
        if self.beta is not None:
            sd["bias"] = self.beta.copy()
        return sd

    def load_state_dict(self, state: dict) -> None:
        """Copies values into the existing buffers. Every key is checked before anything is
        assigned: a failing load changes nothing."""
        want = {k: v for k, v in (("weight", self.gamma), ("bias", self.beta)) if v is not None}
        if set(state) != set(want):
            raise ValueError(f"state_dict keys {sorted(state)} do not match {sorted(want)}")
        values = checked_buffers(state, want)
        for k, buf in want.items():
            np.copyto(buf, values[k])
