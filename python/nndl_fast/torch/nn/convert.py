"""``convert(model)``: swap a model's supported torch modules for ours, in place, with their state."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .batch_norm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .dropout import Dropout
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


def _swapped(m: torch.nn.Module, ours: type[torch.nn.Module]) -> torch.nn.Module:
    """An instance of ours holding m's very attributes: the same Parameter and buffer objects
    (an optimizer built on model.parameters() keeps updating them), hooks and training flag."""
    new = ours.__new__(ours)
    # Shallow copies of the registries (_parameters, _buffers, hooks): the same tensors, own dicts.
    new.__dict__.update({k: dict.copy(v) if isinstance(v, dict) else v for k, v in m.__dict__.items()})
    return new


def convert(model: torch.nn.Module) -> ConvertReport:
    """Swap, in place and recursively, every ``torch.nn`` ``BatchNorm1d/2d/3d``, ``LayerNorm``,
    ``LocalResponseNorm`` and ``Dropout`` of ``model`` for ours (:mod:`nndl_fast.torch.nn`).

    The new modules hold the old ones' own parameters, buffers, hooks and training flag (not
    copies), so an optimizer made before the call still updates them, and ``state_dict()`` is
    unchanged. Left alone, and listed in the report's ``left``: the modules whose tensors our
    kernels cannot take (not on the CPU, not float32/float64, mixed dtypes), subclasses of the
    supported classes (they may override what ours replace) and their kin without a kernel here
    (GroupNorm, Dropout2d, SyncBatchNorm, ...). A module registered under several names is
    swapped once (one new module under every name). ``model`` itself, when it is a supported
    module, cannot be replaced in place: it is left and reported so -- wrap it in a container.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    report = ConvertReport()
    done: dict[int, torch.nn.Module] = {}
    if type(model) in _OURS or isinstance(model, _KIN):
        report.left.append(("", _name(type(model)), "the model itself: wrap it in a container to convert it"))
    # Every (parent, name, child) first, then the swaps: the walk never sees a half-converted tree.
    edges = [
        (path, parent, name, child)
        for path, parent in model.named_modules(remove_duplicate=False)
        for name, child in parent.named_children()
    ]
    for path, parent, name, child in edges:
        full = f"{path}.{name}" if path else name
        if id(child) in done:
            setattr(parent, name, done[id(child)])
            continue
        ours = _OURS.get(type(child))
        if ours is None:
            if isinstance(child, _KIN) and type(child) not in _OURS.values():
                why = "a subclass of a supported class" if isinstance(child, tuple(_OURS)) else "no kernel here"
                report.left.append((full, _name(type(child)), why))
            continue
        reason = _unsupported(child)
        if reason is not None:
            report.left.append((full, _name(type(child)), reason))
            continue
        new = done[id(child)] = _swapped(child, ours)
        setattr(parent, name, new)
        report.swapped.append((full, _name(type(child)), _name(ours)))
    return report
