r"""``CrossEntropyLoss``: ``torch.nn.CrossEntropyLoss`` over our fused softmax cross-entropy.

A subclass of ``torch.nn.CrossEntropyLoss`` (``weight``, ``size_average``, ``ignore_index``,
``reduce``, ``reduction``, ``label_smoothing``; the legacy ``size_average``/``reduce`` are mapped
to ``reduction`` by torch's own constructor). The forward is
:func:`nndl_fast.loss.softmax_cross_entropy` with ``convention="torch"``, which writes the
gradient with respect to the logits in the same pass; the ``torch.autograd.Function``'s
backward only scales that saved gradient by ``grad_output`` (per row for
``reduction="none"``). Targets: class indices (N,) int64, or probabilities (N, C) of the
logits' dtype.

Our kernel takes (N, C) CPU float32/float64 logits (and a weight of their dtype). Any other
input — (C,) or (N, C, d1, ...) logits, half precision, int32/uint8 targets, a target that
requires grad — runs torch's own ``F.cross_entropy``, as does a batch torch's formula leaves
undefined: a mean over rows that are all ``ignore_index`` (torch: NaN, ours would say 0) and
logits with a NaN or +inf (torch propagates them; our kernel refuses such rows).
"""

from __future__ import annotations

from typing import Any

import torch

from ... import loss
from ._common import kernel_ready

# Layer 1, annotated for NumPy arrays: its compiled checks take torch tensors zero-copy.
_loss: Any = loss

__all__ = ["CrossEntropyLoss"]


class _CrossEntropyFn(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        logits: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None,
        reduction: str,
        ignore_index: int,
        label_smoothing: float,
    ) -> torch.Tensor:
        dlogits = torch.empty_like(logits) if ctx.needs_input_grad[0] else None
        value = _loss.softmax_cross_entropy(
            logits,
            target,
            label_smoothing=label_smoothing,
            convention="torch",
            reduction=reduction,
            ignore_index=ignore_index,
            weight=weight,
            dlogits=dlogits,
        )
        ctx.reduction = reduction
        if dlogits is not None:
            ctx.save_for_backward(dlogits)
        return torch.as_tensor(value, dtype=logits.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (dlogits,) = ctx.saved_tensors
        # The saved gradient is that of the loss (for "none", of the sum of the row losses, each
        # row depending on its own logits only), so the chain rule is a scale per row.
        scale = grad_output.unsqueeze(1) if ctx.reduction == "none" else grad_output
        return dlogits * scale, None, None, None, None, None


def _kernel_target(logits: torch.Tensor, target: torch.Tensor) -> bool:
    if target.requires_grad or target.device.type != "cpu":
        return False
    if target.dtype == torch.int64:
        return target.shape == logits.shape[:1]
    return target.dtype == logits.dtype and target.shape == logits.shape


class CrossEntropyLoss(torch.nn.CrossEntropyLoss):
    """``torch.nn.CrossEntropyLoss`` on our fused kernel (see the module docstring)."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if (
            input.dim() != 2
            or input.shape[0] == 0  # torch's mean over no rows is NaN, ours 0
            or not kernel_ready(input, weight)
            or (weight is not None and weight.requires_grad)
            or not _kernel_target(input, target)
        ):
            return super().forward(input, target)
        if self.reduction == "mean" and target.dtype == torch.int64 and bool((target == self.ignore_index).all()):
            return super().forward(input, target)  # torch's NaN for a mean over no rows
        try:
            return _CrossEntropyFn.apply(
                input.contiguous(),
                target.contiguous(),
                weight,
                self.reduction,
                self.ignore_index,
                float(self.label_smoothing),
            )
        except RuntimeError:
            if bool(torch.isfinite(input).all()):
                raise
            return super().forward(input, target)  # torch propagates a NaN or +inf into the loss
