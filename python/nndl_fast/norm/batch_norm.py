r"""Batch normalisation (chapter 1.5.1, eqs 1.43–1.48): fused forward / backward kernels.

For each feature (channel) c, over the m = N·prod(spatial) values z of a mini-batch B:

.. math::

    \mu_B = \frac1m \sum z \quad(1.44) \qquad
    \sigma_B^2 = \frac1m \sum (z - \mu_B)^2 \quad(1.45, \text{biased}) \\
    \hat z = \frac{z - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} \odot \gamma + \beta
    \quad(1.46\text{–}1.48)

Symbols → arguments: z → ``x``; γ → ``gamma``; β → ``beta``; ε → ``eps``; μ_B, 1/sqrt(σ²_B + ε)
→ ``save_mean``, ``save_rstd`` (returned by the forward, read by the backward).

Layouts: ``x`` of shape (N, C), (N, C, spatial...) or, with ``channels_last=True``,
(N, spatial..., C). float32 or float64, C-contiguous; per-channel arrays have shape (C,).

Inference uses population statistics, kept as moving averages during training
(the running statistics), updated in the same call as the batch statistics:

    running ← (1 − f)·running + f·batch

Presets (``convention=``): each sets ε, the momentum and what it weighs, and whether the
running variance takes the unbiased σ²_B·m/(m − 1) or the biased σ²_B. An option given
explicitly wins over its preset.

=============  =======  ===========================  ================  ==========================
preset         ε        f (``momentum`` default)     running variance  one value per channel
=============  =======  ===========================  ================  ==========================
``"chapter"``  1e-5     f = momentum (0.1)           unbiased          raises (as torch)
``"torch"``    1e-5     f = momentum (0.1)           unbiased          raises
``"keras"``    1e-3     f = 1 − momentum (0.99)      biased            raises
``"onnx"``     1e-5     f = 1 − momentum (0.9)       biased            σ²_B = 0
=============  =======  ===========================  ================  ==========================

The chapter gives no formula for the running averages, so its preset is the original
paper's, which is torch's (``torch.nn.BatchNorm2d(eps, momentum)``). Keras:
``keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3)``, ``moving_mean ←
moving_mean·momentum + mean·(1 − momentum)`` with the batch's biased variance. ONNX
``BatchNormalization(epsilon, momentum, training_mode=1)``: ``running_mean = input_mean ·
momentum + current_mean · (1 − momentum)``, biased ``current_var``. ``momentum=None`` gives
f = 1/t, a cumulative average over the t batches seen (as torch). Whenever the running
variance is biased (``unbiased_running_var=False``), one value per channel in training is
accepted: σ²_B = 0, so y = β (ONNX's reference gives the same); with the unbiased variance
it has no value (m − 1 = 0) and raises, as torch.

>>> import numpy as np
>>> from nndl_fast.norm import BatchNorm
>>> x = np.array([[1.0], [3.0]])
>>> for convention in ("chapter", "torch", "keras", "onnx"):
...     bn = BatchNorm(1, convention=convention, dtype=np.float64)
...     y = bn(x)
...     print(convention, bn.eps, bn.momentum, bn.running_mean.round(4), bn.running_var.round(4))
chapter 1e-05 0.1 [0.2] [1.1]
torch 1e-05 0.1 [0.2] [1.1]
keras 0.001 0.99 [0.02] [1.]
onnx 1e-05 0.9 [0.2] [1.]

Backward (training): the gradient flows through μ_B and σ²_B as well as through x directly:

    dβ = Σ dy,   dγ = Σ dy ⊙ x̂,
    dx = γ·rstd·(dy − mean(dy) − x̂ ⊙ mean(dy ⊙ x̂))

Backward (inference): statistics are constants, dx = dy ⊙ γ·rstd.

PyTorch: the same numbers as ``torch.nn.functional.batch_norm`` / ``aten.native_batch_norm``
(ε = 1e-5, momentum 0.1, unbiased running variance, biased normalisation). Differences:
the names γ/β (torch: weight/bias) and the other presets offered by name. As torch: one
value per channel in training with the unbiased running variance raises
``ValueError('Expected more than 1 value per channel when training ...')``; an empty batch
gives an empty output and leaves the running statistics untouched (save_mean and save_rstd
are then zeros). An input with no channels (C = 0) gives empty results.

How it is computed: statistics in one pass over x, in double — per block, sums of d = x − K
and d² around a sample K of that block (so a large common offset, 1e4 ± 1, cancels exactly
in x − K; never E[x²] − E[x]²), blocks merged by Chan's formula in a fixed order, so results
are bitwise identical for any thread count. The output pass is y = (x − μ)·a + β with
a = γ·rstd precomputed per channel (μ subtracted first keeps the low bits at large means).
The training backward is one fused pass for Σdy and Σdy·(x − μ), then one pass for dx.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _checks, _core
from ._common import PRESET, check_eps, checked_buffers, out_entries

__all__ = [
    "BatchNorm",
    "BatchNormBackward",
    "BatchNormForward",
    "batch_norm_backward",
    "batch_norm_forward",
    "batch_norm_workspace",
]

_CONVENTIONS = ("chapter", "torch", "keras", "onnx")
# Per preset: (ε, momentum, momentum weighs the old value, unbiased running variance).
_PRESETS = {
    "chapter": (1e-5, 0.1, False, True),
    "torch": (1e-5, 0.1, False, True),
    "keras": (1e-3, 0.99, True, False),
    "onnx": (1e-5, 0.9, True, False),
}


class BatchNormForward(NamedTuple):
    y: np.ndarray
    save_mean: np.ndarray  # μ used (batch mean, or running mean in inference)
    save_rstd: np.ndarray  # 1/sqrt(σ² + ε) used


class BatchNormBackward(NamedTuple):
    dx: np.ndarray
    dgamma: np.ndarray
    dbeta: np.ndarray


def batch_norm_workspace(shape: tuple[int, ...], *, channels_last: bool = False) -> np.ndarray:
    """A float64 scratch buffer for ``workspace=`` (pass it to every call of that shape)."""
    dims = _checks.shape("shape", shape)
    cl = _checks.flag("channels_last", channels_last)
    return np.empty(max(1, _core.batch_norm_workspace_size(list(dims), cl)))


def _options(convention: Any, eps: Any, momentum: Any, unbiased_running_var: Any) -> tuple[str, float, Any, bool]:
    """(convention, ε, momentum, unbiased) with the preset's value for every option not given."""
    convention = _checks.convention(convention, _CONVENTIONS)
    p_eps, p_momentum, _, p_unbiased = _PRESETS[convention]
    eps = p_eps if eps is PRESET else check_eps(eps)
    momentum = p_momentum if momentum is PRESET else momentum
    if momentum is not None:
        _checks.real("momentum", momentum, 0.0, 1.0)
    unbiased = (
        p_unbiased if unbiased_running_var is PRESET else _checks.flag("unbiased_running_var", unbiased_running_var)
    )
    return convention, eps, momentum, unbiased


def _running_factor(momentum: Any, convention: str, num_batches_tracked: Any) -> float:
    """f of running ← (1 − f)·running + f·batch (see the module docstring); momentum checked."""
    if momentum is None:
        if num_batches_tracked is None:
            raise ValueError(
                "momentum=None (a cumulative average) needs num_batches_tracked, the number of batches "
                "including this one"
            )
        return 1.0 / _checks.integer("num_batches_tracked", num_batches_tracked, 1)
    return 1.0 - momentum if _PRESETS[convention][2] else momentum


def batch_norm_forward(
    x: np.ndarray,
    gamma: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    *,
    training: bool = True,
    momentum: float | None = PRESET,
    convention: str = "chapter",
    num_batches_tracked: int | None = None,
    unbiased_running_var: bool = PRESET,
    eps: float = PRESET,
    channels_last: bool = False,
    out: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None] | None = None,
    workspace: np.ndarray | None = None,
) -> BatchNormForward:
    """Batch-norm forward (1.44–1.48); see the module docstring for the formulas.

    training=True: batch statistics; ``running_mean`` / ``running_var`` (both or neither)
    are updated in place in the same call. training=False: ``running_mean`` / ``running_var``
    are required and used as μ and σ².
    ``out=(y, save_mean, save_rstd)`` (entries may be None) and ``workspace``
    (:func:`batch_norm_workspace`): preallocated buffers, so that a training loop allocates
    nothing per step. Returns (y, save_mean, save_rstd); pass the last two to
    :func:`batch_norm_backward`. ``eps``, ``momentum``, ``unbiased_running_var``: the
    ``convention``'s preset (the module docstring's table) unless given.
    """
    training = _checks.flag("training", training)
    convention, eps, momentum, unbiased = _options(convention, eps, momentum, unbiased_running_var)
    factor = _running_factor(momentum, convention, num_batches_tracked) if training else 0.0
    cl = _checks.flag("channels_last", channels_last)
    if not training and (running_mean is None or running_var is None):
        raise ValueError("training=False normalises with running_mean and running_var: both are required")
    y, sm, sr = out_entries(out, BatchNormForward._fields)
    res = _core.batch_norm_forward(
        x,
        gamma,
        beta,
        running_mean,
        running_var,
        y,
        sm,
        sr,
        workspace,
        cl,
        training,
        eps,
        factor,
        unbiased,
    )
    return BatchNormForward(*res)


def batch_norm_backward(
    dy: np.ndarray,
    x: np.ndarray,
    save_mean: np.ndarray,
    save_rstd: np.ndarray,
    gamma: np.ndarray | None = None,
    *,
    training: bool = True,
    channels_last: bool = False,
    out: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None] | None = None,
    workspace: np.ndarray | None = None,
) -> BatchNormBackward:
    """Batch-norm backward: (dx, dγ, dβ) from dy and the forward's saved μ and rstd.

    training=True: the gradient flows through μ_B and σ²_B (two passes: fused reductions
    Σdy and Σdy·(x − μ), then dx). training=False: statistics are constants, dx = dy·γ·rstd
    (one pass, reductions fused with it). dγ, dβ are always returned (γ = 1 when None).
    ``out=(dx, dgamma, dbeta)``: preallocated results (entries may be None).
    """
    training = _checks.flag("training", training)
    cl = _checks.flag("channels_last", channels_last)
    dx, dg, db = out_entries(out, BatchNormBackward._fields)
    res = _core.batch_norm_backward(dy, x, save_mean, save_rstd, gamma, dx, dg, db, workspace, cl, training)
    return BatchNormBackward(*res)


class BatchNorm:
    """A batch-norm layer: learnable γ (``gamma``), β (``beta``), running statistics, state_dict.

    Parameters follow ``torch.nn.BatchNorm*d`` (see the module docstring for the formulas):
    ``num_features`` C; ``convention`` ("chapter", the default, "torch", "keras", "onnx"),
    which sets the defaults of ``eps``, ``momentum`` (None: a cumulative average) and
    ``unbiased_running_var`` (the module docstring's table: ``BatchNorm(C,
    convention="keras")`` is ``keras.layers.BatchNormalization()``); ``affine`` (learn γ,
    β); ``track_running_stats``; ``channels_last``; ``dtype``.

    ``forward(x)`` uses batch statistics in training mode (``train()``, the default) and
    the running ones after ``eval()`` (unless track_running_stats=False). ``backward(dy)``
    returns dx and stores dγ, dβ in ``dgamma``, ``dbeta``. Scratch and saved
    statistics are kept per input shape; pass ``out=`` to either to reuse its result array.
    """

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = PRESET,
        momentum: float | None = PRESET,
        convention: str = "chapter",
        affine: bool = True,
        track_running_stats: bool = True,
        unbiased_running_var: bool = PRESET,
        channels_last: bool = False,
        dtype: type | np.dtype = np.float32,
    ) -> None:
        c = _checks.integer("num_features", num_features, 1)
        convention, self.eps, momentum, unbiased = _options(convention, eps, momentum, unbiased_running_var)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.num_features = c
        self.momentum = momentum
        self.convention = convention
        self.affine = _checks.flag("affine", affine)
        self.track_running_stats = _checks.flag("track_running_stats", track_running_stats)
        self.unbiased_running_var = unbiased
        self.channels_last = _checks.flag("channels_last", channels_last)
        self.training = True
        self.gamma = np.ones(c, self.dtype) if self.affine else None
        self.beta = np.zeros(c, self.dtype) if self.affine else None
        self.dgamma = np.zeros(c, self.dtype)
        self.dbeta = np.zeros(c, self.dtype)
        if self.track_running_stats:
            self.running_mean: np.ndarray | None = np.zeros(c, self.dtype)
            self.running_var: np.ndarray | None = np.ones(c, self.dtype)
        else:
            self.running_mean = self.running_var = None
        self.num_batches_tracked = 0
        self._save_mean = np.empty(c, self.dtype)
        self._save_rstd = np.empty(c, self.dtype)
        self._workspace: dict[tuple[int, ...], np.ndarray] = {}
        self._saved: tuple[Any, bool] | None = None

    def train(self, mode: bool = True) -> BatchNorm:
        self.training = _checks.flag("mode", mode)
        return self

    def eval(self) -> BatchNorm:
        return self.train(False)

    def _ws(self, x: Any) -> np.ndarray | None:
        """The workspace kept for x's shape (None, a fresh one, when x has no usable shape:
        the call then rejects x)."""
        shape = getattr(x, "shape", None)
        if not isinstance(shape, tuple) or len(shape) < 2:
            return None
        ws = self._workspace.get(shape)
        if ws is None:
            ws = self._workspace[shape] = batch_norm_workspace(shape, channels_last=self.channels_last)
        return ws

    def forward(self, x: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """y for x (``out``: a preallocated y)."""
        batch_stats = self.training or not self.track_running_stats
        update = self.training and self.track_running_stats
        res = batch_norm_forward(
            x,
            self.gamma,
            self.beta,
            self.running_mean if (update or not batch_stats) else None,
            self.running_var if (update or not batch_stats) else None,
            training=batch_stats,
            momentum=self.momentum,
            convention=self.convention,
            num_batches_tracked=self.num_batches_tracked + 1 if update else 1,
            unbiased_running_var=self.unbiased_running_var,
            eps=self.eps,
            channels_last=self.channels_last,
            out=(out, self._save_mean, self._save_rstd),
            workspace=self._ws(x),
        )
        if update:
            self.num_batches_tracked += 1
        self._saved = (x, batch_stats)
        return res.y

    __call__ = forward

    def backward(self, dy: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """dx for the last forward's input (``out``: a preallocated dx); dγ, dβ go to
        dgamma, dbeta."""
        if self._saved is None:
            raise RuntimeError("backward() needs a forward() first")
        x, batch_stats = self._saved
        res = batch_norm_backward(
            dy,
            x,
            self._save_mean,
            self._save_rstd,
            self.gamma,
            training=batch_stats,
            channels_last=self.channels_last,
            out=(out, self.dgamma, self.dbeta),
            workspace=self._ws(x),
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
        """Copies values into the existing buffers. Every key is checked before anything is
        assigned: a failing load changes nothing."""
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
        values = checked_buffers(state, want)
        nbt = (
            _checks.integer("state_dict['num_batches_tracked']", state["num_batches_tracked"], 0)
            if self.track_running_stats
            else 0
        )
        for k, buf in want.items():
            np.copyto(buf, values[k])
        if self.track_running_stats:
            self.num_batches_tracked = nbt
