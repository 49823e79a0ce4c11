"""torch.optim's optimizers on nndl_fast's fused kernels: change one import.

``from nndl_fast.torch import optim`` then ``optim.Adam(model.parameters(), lr=1e-3)``: the
classes subclass ``torch.optim.Optimizer`` with torch's names, signatures, defaults, formulas
and ``state_dict`` format, so ``zero_grad()``, ``add_param_group``, ``named_parameters()``
input, ``torch.optim.lr_scheduler`` and checkpoints written by ``torch.optim`` (both ways)
work unchanged. Each adds the keyword-only ``max_norm=``/``norm_type=``: clipping by global
norm fused into the step (``clip_per_tensor=True``: each gradient by its own norm, as a loop of
``clip_grad_norm_`` over the tensors). The chapter's forms of the same rules stay in
:mod:`nndl_fast.optim`.

===================  ========================================  ==============================
module               classes                                   layer-1 rule
===================  ========================================  ==============================
:mod:`.base`         :class:`Optimizer` (views, state, step)
:mod:`.sgd`          :class:`SGD`, :class:`Momentum`,          :class:`nndl_fast.optim.SGD`
                     :class:`Nesterov`                         (``convention="torch"``)
:mod:`.adagrad`      :class:`Adagrad`                          :class:`nndl_fast.optim.AdaGrad`
:mod:`.rmsprop`      :class:`RMSprop`                          :class:`nndl_fast.optim.RMSprop`
:mod:`.adadelta`     :class:`Adadelta`                         :class:`nndl_fast.optim.AdaDelta`
:mod:`.adam`         :class:`Adam`, :class:`AdamW`,            :class:`nndl_fast.optim.Adam`,
                     :class:`NAdam`                            :class:`nndl_fast.optim.Nadam`
===================  ========================================  ==============================

Parameters must be float32 or float64 CPU tensors, dense (C-contiguous, or a permutation of it
such as channels_last); ``capturable``/``differentiable`` are refused; ``foreach``/``fused``
are accepted and kept in the groups (the step is always the fused kernel); ``lr`` is a number
(a Tensor ``lr`` is refused with a TypeError).
"""

from __future__ import annotations

from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW, NAdam
from .base import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD, Momentum, Nesterov

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Momentum", "NAdam", "Nesterov", "Optimizer", "RMSprop"]
