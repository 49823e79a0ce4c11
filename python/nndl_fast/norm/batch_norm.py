r"""Batch normalisation (chapter 1.5.1, eqs 1.43–1.48): fused forward / backward kernels.

For each feature (channel) c, over the m = N·prod(spatial) values z of a mini-batch B:

.. math::

    \mu_B = \frac1m \sum z \quad(1.44) \qquad
    \sigma_B^2 = \frac1m \sum (z - \mu_B)^2 \quad(1.45, \text{biased}) \\
    \hat z = \frac{z - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} \odot \gamma + \beta
    \quad(1.46\text{–}1.48)

Symbols → arguments: z → ``x``; γ → ``gamma``; β → ``beta``; ε → ``eps``; μ_B, 1/sqrt(σ²_B + ε)
→ ``save_mean``, ``save_invstd`` (returned by the forward, read by the backward).

Layouts: ``x`` of shape (N, C), (N, C, spatial...) or, with ``channels_last=True``,
(N, spatial..., C). float32 or float64, C-contiguous; per-channel arrays have shape (C,).

Inference uses population statistics, kept as moving averages during training
(the running statistics), updated in the same call as the batch statistics:

    running ← (1 − f)·running + f·batch,   the batch variance taken unbiased (σ²_B·m/(m − 1))

with f = ``momentum`` (``momentum_convention="torch"``, default, m = 0.1), f = 1 − ``momentum``
(``"keras"``: Keras' momentum 0.99 weighs the old value), or f = 1/t for a cumulative
average over the t batches seen (``momentum=None``, as torch). ``unbiased_running_var=False``
keeps the biased σ²_B instead (as Keras).

Backward (training): the gradient flows through μ_B and σ²_B as well as through x directly:

    dβ = Σ dy,   dγ = Σ dy ⊙ x̂,
    dx = γ·invstd·(dy − mean(dy) − x̂ ⊙ mean(dy ⊙ x̂))

Backward (inference): statistics are constants, dx = dy ⊙ γ·invstd.

PyTorch: the same numbers as ``torch.nn.functional.batch_norm`` / ``aten.native_batch_norm``
(ε = 1e-5, momentum 0.1, unbiased running variance, biased normalisation). Differences:
the names γ/β (torch: weight/bias) and the Keras convention offered by name. As torch: one
value per channel in training raises ``ValueError('Expected more than 1 value per channel
when training ...')``; an empty batch gives an empty output and leaves the running
statistics untouched (save_mean and save_invstd are then zeros).

How it is computed: statistics in one pass over x, in double — per block, sums of d = x − K
and d² around a sample K of that block (so a large common offset, 1e4 ± 1, cancels exactly
in x − K; never E[x²] − E[x]²), blocks merged by Chan's formula in a fixed order, so results
are bitwise identical for any thread count. The output pass is y = (x − μ)·a + β with
a = γ·invstd precomputed per channel (μ subtracted first keeps the low bits at large means).
The training backward is one fused pass for Σdy and Σdy·(x − μ), then one pass for dx.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple, cast

import numpy as np

from .. import _core
from ._common import check_eps, kernel_dtype, out_or_new, require_ndarray

__all__ = [
    "BatchNorm",
    "BatchNormBackward",
    "BatchNormForward",
    "batch_norm_backward",
    "batch_norm_forward",
    "batch_norm_workspace",
]

_CONVENTIONS = ("torch", "keras")


class BatchNormForward(NamedTuple):
    y: np.ndarray
    save_mean: np.ndarray  # μ used (batch mean, or running mean in inference)
    save_invstd: np.ndarray  # 1/sqrt(σ² + ε) used


class BatchNormBackward(NamedTuple):
    dx: np.ndarray
    dgamma: np.ndarray
    dbeta: np.ndarray


def _channels(x: np.ndarray, channels_last: bool) -> int:
    if x.ndim < 2:
        raise ValueError(
            f"x must have at least 2 dimensions, (N, C, ...) or (N, ..., C); got shape {x.shape}"
        )
    return int(x.shape[-1] if (channels_last and x.ndim > 2) else x.shape[1])


def batch_norm_workspace(shape: tuple[int, ...], *, channels_last: bool = False) -> np.ndarray:
    """A float64 scratch buffer for ``workspace=`` (pass it to every call of that shape)."""
    return np.empty(max(1, _core.bn_workspace_size(list(shape), bool(channels_last))))


def _running_factor(
    momentum: object, momentum_convention: str, num_batches_tracked: object
) -> float:
    # object: this validates whatever the caller passed, so nothing is assumed of the types.
    if momentum_convention not in _CONVENTIONS:
        raise ValueError(
            f"momentum_convention must be one of {_CONVENTIONS}, got {momentum_convention!r}"
        )
    if momentum is None:
        if (
            isinstance(num_batches_tracked, bool)
            or not isinstance(num_batches_tracked, numbers.Integral)
            or num_batches_tracked < 1
        ):
            raise ValueError(
                "momentum=None (cumulative average) needs num_batches_tracked >= 1, "
                "the number of batches including this one"
            )
        return 1.0 / float(num_batches_tracked)
    if (
        isinstance(momentum, bool)
        or not isinstance(momentum, numbers.Real)
        # cast: typeshed's numbers.Real has no __ge__, so float <= Real does not type-check;
        # comparing the value itself (not float(momentum)) keeps the check exact.
        or not (0.0 <= cast(float, momentum) <= 1.0)
    ):
        raise ValueError(f"momentum must be a number in [0, 1] or None, got {momentum!r}")
    return float(momentum) if momentum_convention == "torch" else 1.0 - float(momentum)


def batch_norm_forward(
    x: np.ndarray,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    *,
    training: bool = True,
    momentum: float | None = 0.1,
    momentum_convention: str = "torch",
    num_batches_tracked: int | None = None,
    unbiased_running_var: bool = True,
    eps: float = 1e-5,
    channels_last: bool = False,
    out: np.ndarray | None = None,
    save_mean: np.ndarray | None = None,
    save_invstd: np.ndarray | None = None,
    workspace: np.ndarray | None = None,
) -> BatchNormForward:
    """Batch-norm forward (1.44–1.48); see the module docstring for the formulas.

    training=True: batch statistics; ``running_mean`` / ``running_var`` (both or neither)
    are updated in place in the same call. training=False: ``running_mean`` / ``running_var``
    are required and used as μ and σ².
    ``out``, ``save_mean``, ``save_invstd``, ``workspace`` (:func:`batch_norm_workspace`):
    optional preallocated buffers, so that a training loop allocates nothing per step.
    Returns (y, save_mean, save_invstd); pass the last two to :func:`batch_norm_backward`.
    """
    require_ndarray(x, "x")
    eps = check_eps(eps)
    factor = (
        _running_factor(momentum, momentum_convention, num_batches_tracked) if training else 0.0
    )
    if not training and (running_mean is None or running_var is None):
        raise ValueError(
            "training=False normalises with running_mean and running_var: both are required"
        )
    c = _channels(x, channels_last)
    dt = kernel_dtype(x)
    y = out_or_new(out, x.shape, dt)
    sm = out_or_new(save_mean, (c,), dt)
    si = out_or_new(save_invstd, (c,), dt)
    _core.bn_forward(
        x,
        gamma,
        beta,
        running_mean,
        running_var,
        y,
        sm,
        si,
        workspace,
        bool(channels_last),
        bool(training),
        eps,
        factor,
        bool(unbiased_running_var),
    )
    return BatchNormForward(y, sm, si)


def batch_norm_backward(
    dy: np.ndarray,
    x: np.ndarray,
    save_mean: np.ndarray,
    save_invstd: np.ndarray,
    gamma: np.ndarray | None = None,
    *,
    training: bool = True,
    channels_last: bool = False,
    dx: np.ndarray | None = None,
    dgamma: np.ndarray | None = None,
    dbeta: np.ndarray | None = None,
    workspace: np.ndarray | None = None,
) -> BatchNormBackward:
    """Batch-norm backward: (dx, dγ, dβ) from dy and the forward's saved μ and invstd.

    training=True: the gradient flows through μ_B and σ²_B (two passes: fused reductions
    Σdy and Σdy·(x − μ), then dx). training=False: statistics are constants, dx = dy·γ·invstd
    (one pass, reductions fused with it). dγ, dβ are always returned (γ = 1 when None).
    """
    require_ndarray(x, "x")
    require_ndarray(dy, "dy")
    c = _channels(x, channels_last)
    dt = kernel_dtype(x)
    dxo = out_or_new(dx, x.shape, dt)
    dg = out_or_new(dgamma, (c,), dt)
    db = out_or_new(dbeta, (c,), dt)
    _core.bn_backward(
        dy,
        x,
        save_mean,
        save_invstd,
        gamma,
        dxo,
        dg,
        db,
        workspace,
        bool(channels_last),
        bool(training),
    )
    return BatchNormBackward(dxo, dg, db)


class BatchNorm:
    """A batch-norm layer: learnable γ (``gamma``), β (``beta``), running statistics, state_dict.

    Parameters follow ``torch.nn.BatchNorm*d`` (see the module docstring for the formulas):
    ``num_features`` C; ``eps`` (1e-5); ``momentum`` (0.1, or None for a cumulative average);
    ``momentum_convention`` ("torch": momentum weighs the batch; "keras": it weighs the old
    value, use momentum=0.99, eps=1e-3 for Keras' defaults); ``affine`` (learn γ, β);
    ``track_running_stats``; ``unbiased_running_var``; ``channels_last``; ``dtype``.

    ``forward(x)`` uses batch statistics in training mode (``train()``, the default) and
    the running ones after ``eval()`` (unless track_running_stats=False). ``backward(dy)``
    returns dx and stores dγ, dβ in ``grad_gamma``, ``grad_beta``. Scratch and saved
    statistics are kept per input shape; pass ``out=`` / ``dx=`` to reuse outputs too.
    """

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        momentum_convention: str = "torch",
        affine: bool = True,
        track_running_stats: bool = True,
        unbiased_running_var: bool = True,
        channels_last: bool = False,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        # Checked as an object: for mypy an int cannot also be a numbers.Integral, which would
        # make everything after this check unreachable (and its attributes untyped).
        nf: object = num_features
        if isinstance(nf, bool) or not isinstance(nf, numbers.Integral) or nf < 1:
            raise ValueError(f"num_features must be an int >= 1, got {num_features!r}")
        self.eps = check_eps(eps)
        _running_factor(momentum, momentum_convention, 1)  # validates both
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        c = int(num_features)
        self.num_features = c
        self.momentum = momentum
        self.momentum_convention = momentum_convention
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.unbiased_running_var = bool(unbiased_running_var)
        self.channels_last = bool(channels_last)
        self.training = True
        self.gamma = np.ones(c, self.dtype) if self.affine else None
        self.beta = np.zeros(c, self.dtype) if self.affine else None
        self.grad_gamma = np.zeros(c, self.dtype)
        self.grad_beta = np.zeros(c, self.dtype)
        if self.track_running_stats:
            self.running_mean: np.ndarray | None = np.zeros(c, self.dtype)
            self.running_var: np.ndarray | None = np.ones(c, self.dtype)
        else:
            self.running_mean = self.running_var = None
        self.num_batches_tracked = 0
        self._save_mean = np.empty(c, self.dtype)
        self._save_invstd = np.empty(c, self.dtype)
        self._workspace: dict[tuple[int, ...], np.ndarray] = {}
        self._saved: tuple[np.ndarray, bool] | None = None

    def train(self, mode: bool = True) -> BatchNorm:
        self.training = bool(mode)
        return self

    def eval(self) -> BatchNorm:
        return self.train(False)

    def _ws(self, shape: tuple[int, ...]) -> np.ndarray:
        ws = self._workspace.get(shape)
        if ws is None:
            ws = self._workspace[shape] = batch_norm_workspace(
                shape, channels_last=self.channels_last
            )
        return ws

    def forward(self, x: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        require_ndarray(x, "x")
        batch_stats = self.training or not self.track_running_stats
        factor_momentum = self.momentum
        update = self.training and self.track_running_stats
        if update:
            self.num_batches_tracked += 1
        try:
            res = batch_norm_forward(
                x,
                self.gamma,
                self.beta,
                self.running_mean if (update or not batch_stats) else None,
                self.running_var if (update or not batch_stats) else None,
                training=batch_stats,
                momentum=factor_momentum,
                momentum_convention=self.momentum_convention,
                num_batches_tracked=max(self.num_batches_tracked, 1),
                unbiased_running_var=self.unbiased_running_var,
                eps=self.eps,
                channels_last=self.channels_last,
                out=out,
                save_mean=self._save_mean,
                save_invstd=self._save_invstd,
                workspace=self._ws(x.shape) if x.ndim >= 2 else None,
            )
        except Exception:
            if update:
                self.num_batches_tracked -= 1
            raise
        self._saved = (x, batch_stats)
        return res.y

    __call__ = forward

    def backward(self, dy: np.ndarray, *, dx: np.ndarray | None = None) -> np.ndarray:
        """dx for the last forward's input; dγ, dβ go to grad_gamma, grad_beta."""
        if self._saved is None:
            raise RuntimeError("backward() needs a forward() first")
        x, batch_stats = self._saved
        res = batch_norm_backward(
            dy,
            x,
            self._save_mean,
            self._save_invstd,
            self.gamma,
            training=batch_stats,
            channels_last=self.channels_last,
            dx=dx,
            dgamma=self.grad_gamma,
            dbeta=self.grad_beta,
            workspace=self._ws(x.shape),
        )
        return res.dx

    def state_dict(self) -> dict[str, np.ndarray | int]:
        """Copies, under torch's names: weight, bias, running_mean, running_var,
        num_batches_tracked."""
        sd: dict[str, np.ndarray | int] = {}
        if self.affine:
            assert self.gamma is not None and self.beta is not None  # affine: both allocated
            sd["weight"] = self.gamma.copy()
            sd["bias"] = self.beta.copy()
        if self.track_running_stats:
            assert self.running_mean is not None and self.running_var is not None  # allocated
            sd["running_mean"] = self.running_mean.copy()
            sd["running_var"] = self.running_var.copy()
            sd["num_batches_tracked"] = int(self.num_batches_tracked)
        return sd

    def load_state_dict(self, state: dict) -> None:
        """Copies values into the existing buffers (checked first: nothing changes on error)."""
        want = {
            k: v
            for k, v in (
                ("weight", self.gamma),
                ("bias", self.beta),
                ("running_mean", self.running_mean),
                ("running_var", self.running_var),
            )
            if v is not None
        }
        keys = set(want) | ({"num_batches_tracked"} if self.track_running_stats else set())
        if set(state) != keys:
            raise ValueError(f"state_dict keys {sorted(state)} do not match {sorted(keys)}")
        for k, buf in want.items():
            v = np.asarray(state[k])
            if v.shape != buf.shape:
                raise ValueError(f"state_dict[{k!r}] has shape {v.shape}, expected {buf.shape}")
        for k, buf in want.items():
            np.copyto(buf, np.asarray(state[k]), casting="same_kind")
        if self.track_running_stats:
            self.num_batches_tracked = int(state["num_batches_tracked"])
