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

import numbers
from typing import NamedTuple

import numpy as np

from .. import _core
from ._common import check_eps, kernel_dtype, out_or_new, require_ndarray

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


def _normalized(normalized_shape: int | tuple[int, ...]) -> tuple[int, ...]:
    # int is a registered numbers.Integral, so (int, Integral) tests exactly what Integral does;
    # listing int keeps the first branch reachable for mypy.
    if isinstance(normalized_shape, (int, numbers.Integral)) and not isinstance(
        normalized_shape, bool
    ):
        shape: tuple[int, ...] = (int(normalized_shape),)
    else:
        try:
            # ignore: a bool lands here on purpose; iterating it raises the TypeError below.
            shape = tuple(int(s) for s in normalized_shape)  # type: ignore[union-attr]
        except TypeError:
            raise TypeError(
                f"normalized_shape must be an int or a tuple of ints, got {normalized_shape!r}"
            ) from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"normalized_shape must be non-empty with sizes >= 1, got {shape}")
    return shape


def _split(x: np.ndarray, norm: tuple[int, ...]) -> tuple[int, ...]:
    k = len(norm)
    if x.ndim < k or tuple(x.shape[x.ndim - k :]) != norm:
        raise ValueError(
            f"x has shape {x.shape}, whose trailing dimensions must equal normalized_shape {norm}"
        )
    return tuple(x.shape[: x.ndim - k])


def layer_norm_workspace(
    x_shape: tuple[int, ...], normalized_shape: int | tuple[int, ...]
) -> np.ndarray:
    """A float64 scratch buffer for the backward's ``workspace=`` (dγ, dβ partials)."""
    norm = _normalized(normalized_shape)
    lead = x_shape[: len(x_shape) - len(norm)]
    return np.empty(
        max(
            1,
            _core.ln_workspace_size(
                int(np.prod(lead, dtype=np.int64)), int(np.prod(norm, dtype=np.int64))
            ),
        )
    )


def layer_norm_forward(
    x: np.ndarray,
    normalized_shape: int | tuple[int, ...],
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    *,
    eps: float = 1e-5,
    out: np.ndarray | None = None,
    save_mean: np.ndarray | None = None,
    save_rstd: np.ndarray | None = None,
) -> LayerNormForward:
    """Layer-norm forward (1.50–1.52); returns (y, save_mean, save_rstd)."""
    require_ndarray(x, "x")
    eps = check_eps(eps)
    norm = _normalized(normalized_shape)
    lead = _split(x, norm)
    dt = kernel_dtype(x)
    y = out_or_new(out, x.shape, dt)
    sm = out_or_new(save_mean, lead, dt)
    sr = out_or_new(save_rstd, lead, dt)
    _core.ln_forward(x, len(norm), gamma, beta, y, sm, sr, eps)
    return LayerNormForward(y, sm, sr)


def layer_norm_backward(
    dy: np.ndarray,
    x: np.ndarray,
    save_mean: np.ndarray,
    save_rstd: np.ndarray,
    normalized_shape: int | tuple[int, ...],
    gamma: np.ndarray | None = None,
    *,
    param_grads: bool = True,
    dx: np.ndarray | None = None,
    dgamma: np.ndarray | None = None,
    dbeta: np.ndarray | None = None,
    workspace: np.ndarray | None = None,
) -> LayerNormBackward:
    """Layer-norm backward: (dx, dγ, dβ); dγ, dβ are None when ``param_grads`` is False.

    One pass per row: Σg and Σg·x̂ then dx with the row in cache; dγ, dβ accumulated in the
    same pass into per-chunk partials merged in a fixed order.
    """
    require_ndarray(x, "x")
    require_ndarray(dy, "dy")
    norm = _normalized(normalized_shape)
    _split(x, norm)
    dt = kernel_dtype(x)
    dxo = out_or_new(dx, x.shape, dt)
    dg = out_or_new(dgamma, norm, dt) if param_grads else None
    db = out_or_new(dbeta, norm, dt) if param_grads else None
    _core.ln_backward(dy, x, save_mean, save_rstd, len(norm), gamma, dxo, dg, db, workspace)
    return LayerNormBackward(dxo, dg, db)


class LayerNorm:
    """A layer-norm layer with learnable γ (``gamma``, ones) and β (``beta``, zeros) of shape
    ``normalized_shape`` (``elementwise_affine=False``: neither; ``bias=False``: no β), as
    ``torch.nn.LayerNorm``. ``forward(x)`` / ``backward(dy)`` (dγ, dβ in ``grad_gamma``,
    ``grad_beta``); ``state_dict`` under torch's names (weight, bias)."""

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        *,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        self.normalized_shape = _normalized(normalized_shape)
        self.eps = check_eps(eps)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        shp = self.normalized_shape
        self.gamma = np.ones(shp, self.dtype) if elementwise_affine else None
        self.beta = np.zeros(shp, self.dtype) if (elementwise_affine and bias) else None
        self.grad_gamma = np.zeros(shp, self.dtype) if self.gamma is not None else None
        self.grad_beta = np.zeros(shp, self.dtype) if self.beta is not None else None
        self._saved: LayerNormForward | None = None
        self._x: np.ndarray | None = None
        self._workspace: dict[tuple[int, ...], np.ndarray] = {}

    def forward(self, x: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        res = layer_norm_forward(
            x, self.normalized_shape, self.gamma, self.beta, eps=self.eps, out=out
        )
        self._saved, self._x = res, x
        return res.y

    __call__ = forward

    def backward(self, dy: np.ndarray, *, dx: np.ndarray | None = None) -> np.ndarray:
        if self._saved is None or self._x is None:
            raise RuntimeError("backward() needs a forward() first")
        x = self._x
        ws = self._workspace.get(x.shape)
        if ws is None:
            ws = self._workspace[x.shape] = layer_norm_workspace(x.shape, self.normalized_shape)
        scratch_g = (
            self.grad_gamma
            if self.grad_gamma is not None
            else np.empty(self.normalized_shape, self.dtype)
        )
        res = layer_norm_backward(
            dy,
            x,
            self._saved.save_mean,
            self._saved.save_rstd,
            self.normalized_shape,
            self.gamma,
            param_grads=self.gamma is not None,
            dx=dx,
            dgamma=scratch_g if self.gamma is not None else None,
            dbeta=self.grad_beta,
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
        want = {k: v for k, v in (("weight", self.gamma), ("bias", self.beta)) if v is not None}
        if set(state) != set(want):
            raise ValueError(f"state_dict keys {sorted(state)} do not match {sorted(want)}")
        for k, buf in want.items():
            got = np.asarray(state[k]).shape
            if got != buf.shape:
                raise ValueError(f"state_dict[{k!r}] has shape {got}, expected {buf.shape}")
        for k, buf in want.items():
            np.copyto(buf, np.asarray(state[k]), casting="same_kind")
