"""``convert(model)``: swap a model's supported torch modules for ours, in place, with their state."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .batch_norm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .dropout import Dropout, Dropout2d, Dropout3d
from .layer_norm import LayerNorm
from .local_response_norm import LocalResponseNorm

__all__ = ["ConvertReport", "convert"]

# torch's class -> ours. Exact classes only: a user's subclass may override what ours replace.
_OURS: dict[type[torch.nn.Module], type[torch.nn.Module]] = {
    torch.nn.BatchNorm1d: BatchNorm1d,
    torch.nn.BatchNorm2d: BatchNorm2d,
    torch.nn.BatchNorm3d: BatchNorm3d,
    torch.nn.LayerNorm: LayerNorm,
    torch.nn.LocalResponseNorm: LocalResponseNorm,
    torch.nn.Dropout: Dropout,
    torch.nn.Dropout2d: Dropout2d,
    torch.nn.Dropout3d: Dropout3d,
}
# Kin of the supported modules that convert() reports as left alone (no kernel of ours).
_KIN = (
    torch.nn.modules.batchnorm._NormBase,
    torch.nn.modules.dropout._DropoutNd,
    torch.nn.LayerNorm,
    torch.nn.GroupNorm,
    torch.nn.LocalResponseNorm,
    torch.nn.RMSNorm,
)


@dataclass
class ConvertReport:
    """What :func:`convert` did: ``swapped`` holds (path, torch's class, our class) per module
    replaced; ``left`` holds (path, class, reason) per normalisation or dropout module kept."""

    swapped: list[tuple[str, str, str]] = field(default_factory=list)
    left: list[tuple[str, str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"swapped {len(self.swapped)}, left {len(self.left)}"]
        lines += [f"  {path or '(model)'}: {old} -> {new}" for path, old, new in self.swapped]
        lines += [f"  {path or '(model)'}: {cls} left ({why})" for path, cls, why in self.left]
        return "\n".join(lines)


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _unsupported(m: torch.nn.Module) -> str | None:
    """Why our kernels cannot take m's parameters and buffers, or None."""
    tensors = [*m.parameters(recurse=False), *(b for b in m.buffers(recurse=False) if b.is_floating_point())]
    if any(t.device.type != "cpu" for t in tensors):
        return "tensors not on the CPU"
    dtypes = {t.dtype for t in tensors}
    if not dtypes <= {torch.float32, torch.float64}:
        return f"dtype {sorted(map(str, dtypes))}: the kernels take float32 or float64"
    if len(dtypes) > 1:
        return f"mixed dtypes {sorted(map(str, dtypes))}"
    return None


def convert(model: torch.nn.Module) -> ConvertReport:
    """Swap, in place and recursively, every ``torch.nn`` ``BatchNorm1d/2d/3d``, ``LayerNorm``,
    ``LocalResponseNorm``, ``Dropout``, ``Dropout2d`` and ``Dropout3d`` of ``model`` (``model``
    itself included) for ours (:mod:`nndl_fast.torch.nn`).

    In place means the module objects stay: each one's class becomes ours (a subclass of its
    torch class, adding no state), so its parameters, buffers, hooks (and their handles),
    training flag and every reference to it are kept -- an optimizer made before the call still
    updates the same tensors, and ``state_dict()`` is unchanged. Left alone, and listed in the
    report's ``left`` with the reason: modules whose tensors our kernels cannot take (not on
    the CPU, not float32/float64, mixed dtypes), subclasses of the supported classes (they
    may override what ours replace) and their kin without a kernel here (GroupNorm, Dropout1d,
    SyncBatchNorm, ...). A module registered under several names is reported once, under its
    first path (``""`` for ``model`` itself).
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    report = ConvertReport()
    yours = set(_OURS.values())
    for path, m in list(model.named_modules()):  # each module once, at its first path
        cls = type(m)
        ours = _OURS.get(cls)
        if ours is not None:
            reason = _unsupported(m)
            if reason is None:
                m.__class__ = ours
                report.swapped.append((path, _name(cls), _name(ours)))
            else:
                report.left.append((path, _name(cls), reason))
        elif isinstance(m, _KIN) and cls not in yours:
            why = "a subclass of a supported class" if isinstance(m, tuple(_OURS)) else "no kernel here"
            report.left.append((path, _name(cls), why))
    return report
