r"""Optimizer update rules of section 1.2 as fused, in-place, multi-tensor kernels.

Each rule comes twice: a class a PyTorch user recognises (``Adam(params, lr=...)``,
``step(grads)``, ``state_dict()``) and a functional form over lists of arrays for users
who keep their own state (``adam(params, grads, exp_avg, exp_avg_sq, step=t, ...)``),
both built from the rule's one definition in its module. One call updates a whole list
of tensors in one pass over memory, in one parallel region.

Defaults follow the chapter; ``convention="torch"``, ``"keras"``, ``"optax"`` or ``"onnx"``
sets another library's defaults and formula variants (each also an option of its own, which
wins over the preset), and each class docstring has the table preset → formula. Notation: θ parameters,
g gradient, α learning rate (``lr``), t the 1-based step, ⊙ elementwise.

=====================  ========================================  ======================
module                 rules                                     equations
=====================  ========================================  ======================
:mod:`.base`           the gradient terms every rule shares,     1.59, 1.62–1.64
                       :class:`Optimizer`
:mod:`.sgd`            :class:`SGD`, :class:`Momentum`,          1.3, 1.15, 1.16–1.18
                       :class:`Nesterov`
:mod:`.adagrad`        :class:`AdaGrad`                          1.8–1.9
:mod:`.rmsprop`        :class:`RMSprop`                          1.10–1.12
:mod:`.adadelta`       :class:`AdaDelta`                         1.13–1.14
:mod:`.adam`           :class:`Adam`, :class:`AdamW`,            1.19–1.23, 1.64
                       :class:`Nadam`
=====================  ========================================  ======================

``step(..., skip_nonfinite=True)`` first checks every gradient of the call; if any
holds NaN or Inf the whole step is skipped, nothing (parameters, state, step count) is
modified, and ``step`` returns False. It costs one extra read of the gradients.

Learning rates may be numbers or callables of n, the number of updates already done (α₀ at
the first step; see :mod:`nndl_fast.schedules`); a group's ``lr`` may be changed between
steps, as with torch.
"""

from __future__ import annotations

from .adadelta import AdaDelta, adadelta
from .adagrad import AdaGrad, adagrad
from .adam import Adam, AdamW, Nadam, adam, nadam
from .base import Optimizer
from .rmsprop import RMSprop, rmsprop
from .sgd import SGD, Momentum, Nesterov, sgd

__all__ = [
    "SGD",
    "AdaDelta",
    "AdaGrad",
    "Adam",
    "AdamW",
    "Momentum",
    "Nadam",
    "Nesterov",
    "Optimizer",
    "RMSprop",
    "adadelta",
    "adagrad",
    "adam",
    "nadam",
    "rmsprop",
    "sgd",
]
