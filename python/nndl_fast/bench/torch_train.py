"""A PyTorch training step: torch's modules and torch.optim against ``nndl_fast.torch.nn.convert(model)``
with ``nndl_fast.torch.optim`` and our ``CrossEntropyLoss``.

The model: conv(3→16)-BN-ReLU, conv(16→32)-BN-ReLU, 2×2 max-pool, Dropout(0.25), linear(→10),
on a (128, 3, 32, 32) float32 batch; one step is zero_grad, forward, cross-entropy, backward
and the optimizer's step, with the same kind of optimizer on both sides (one case per kind: SGD
with momentum 0.9, and Adam). Both models start from the same weights and are timed in the
same interleaved rounds.

The breakdown: the layers convert() swaps (and the loss) alone, forward + backward through
autograd on the step's own activation shapes (BN on (128, 16, 32, 32) and (128, 32, 32, 32),
Dropout on (128, 32, 16, 16), the loss on (128, 10) logits), and each optimizer's step alone on
the model's parameters with gradients in place. Their times are written into the step's rows
(``extra["swapped_layers_seconds"]``, ``extra["optimizer_step_seconds"]``), so the step's gain
can be set against the parts the switch changes (the rest -- convolutions, pooling, the linear
layer, autograd -- is torch's on both sides). Bytes: the floors of the norm suite (BN forward
3·|x|, backward 5·|x|; dropout x, y, dy, dx and the packed mask), the optimizer's state and
parameters read and written once; the step's row counts its input batch only, so its GB/s
means nothing. Skipped without torch.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from .harness import Bench

BATCH = (128, 3, 32, 32)


def _model(torch: Any) -> Any:
    nn = torch.nn
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(inplace=True),
        nn.Conv2d(16, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(32 * 16 * 16, 10),
    )


def _layer_fn(torch: Any, layer: Any, shape: tuple[int, ...]) -> Any:
    """One forward + backward of layer alone on a fresh-looking activation of this shape."""
    x = torch.randn(shape).requires_grad_()
    dy = torch.randn(shape)

    def step() -> None:
        x.grad = None
        layer(x).backward(dy)

    return step


def _optimizers(torch: Any) -> dict[str, tuple[Any, Any, float]]:
    """kind -> (torch.optim's, ours, float32 bytes per parameter element a step moves at least:
    SGD momentum p, buf read+written and g read; Adam p, m, v read+written and g read)."""
    from .. import torch as ours

    return {
        "sgd-momentum": (
            lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9),
            lambda ps: ours.optim.SGD(ps, lr=0.01, momentum=0.9),
            20.0,
        ),
        "adam": (lambda ps: torch.optim.Adam(ps, lr=1e-3), lambda ps: ours.optim.Adam(ps, lr=1e-3), 28.0),
    }


def _step_fn(model: Any, opt: Any, loss_fn: Any, x: Any, target: Any) -> Any:
    def step() -> None:
        opt.zero_grad()
        loss_fn(model(x), target).backward()
        opt.step()

    return step


def _optim_fn(torch: Any, model: Any, make: Any) -> Any:
    """The optimizer's step alone on the model's parameters, with gradients already there."""
    params = list(copy.deepcopy(model).parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    return make(params).step


def run(bench: Bench, torch: Any) -> None:
    if torch is None:
        return  # the suite compares torch's modules with ours: nothing to time without torch
    from ..torch.nn import BatchNorm2d, CrossEntropyLoss, Dropout, convert

    optimizers = _optimizers(torch)
    ours_impl, theirs_impl = "nndl_fast convert()+optim", "torch modules+optim"
    step_records: dict[str, dict[str, Any]] = {}
    if bench.wants("torch_train_step"):
        theirs = _model(torch)
        mine = copy.deepcopy(theirs)
        convert(mine)
        x = torch.randn(BATCH)
        target = torch.randint(0, 10, (BATCH[0],))
        note = "zero_grad+fwd+CE+bwd+step; bytes: the batch only"
        for kind, (make_theirs, make_ours, _) in optimizers.items():
            case = f"cnn-bn 128x3x32x32 f32 {kind}"
            m_mine, m_theirs = copy.deepcopy(mine), copy.deepcopy(theirs)  # fresh optimizer state per kind
            step_mine = _step_fn(m_mine, make_ours(m_mine.parameters()), CrossEntropyLoss(), x, target)
            step_theirs = _step_fn(m_theirs, make_theirs(m_theirs.parameters()), torch.nn.CrossEntropyLoss(), x, target)
            bench.measure("torch_train_step", case, ours_impl, step_mine, nbytes=x.nbytes, note=note)
            bench.measure("torch_train_step", case, theirs_impl, step_theirs, nbytes=x.nbytes, note=note)
            step_records[kind] = {r.impl: r for r in bench.flush()}

    swapped: dict[str, float] = {}
    # (kernel, shape, ours, torch's, floor in bytes per element: BN 3 + 5 float32 passes over
    # |x|; dropout x, y, dy, dx and the packed mask written then read; the loss reads the logits
    # and writes their gradient)
    layers = [
        ("torch_train_bn", (128, 16, 32, 32), lambda: BatchNorm2d(16), lambda: torch.nn.BatchNorm2d(16), 32.0),
        ("torch_train_bn", (128, 32, 32, 32), lambda: BatchNorm2d(32), lambda: torch.nn.BatchNorm2d(32), 32.0),
        ("torch_train_dropout", (128, 32, 16, 16), lambda: Dropout(0.25), lambda: torch.nn.Dropout(0.25), 16.25),
    ]
    for kernel, shape, ours, theirs_layer, bytes_per_elem in layers:
        if not bench.wants(kernel):
            continue
        case = "x".join(map(str, shape)) + " f32 fwd+bwd"
        nbytes = int(math.prod(shape) * bytes_per_elem)
        for impl, make in (("nndl_fast", ours), ("torch", theirs_layer)):
            bench.measure(kernel, case, impl, _layer_fn(torch, make(), shape), nbytes=nbytes, limit="triad")
        for rec in bench.flush():
            swapped[rec.impl] = swapped.get(rec.impl, 0.0) + rec.seconds
    if bench.wants("torch_train_loss"):
        logits, target = torch.randn(BATCH[0], 10).requires_grad_(), torch.randint(0, 10, (BATCH[0],))
        for impl, loss_fn in (("nndl_fast", CrossEntropyLoss()), ("torch", torch.nn.CrossEntropyLoss())):

            def loss_step(loss_fn: Any = loss_fn) -> None:
                logits.grad = None
                loss_fn(logits, target).backward()

            bench.measure("torch_train_loss", "128x10 f32 fwd+bwd", impl, loss_step, nbytes=logits.nbytes * 2)
        for rec in bench.flush():
            swapped[rec.impl] = swapped.get(rec.impl, 0.0) + rec.seconds

    optim_seconds: dict[str, dict[str, float]] = {}
    model = _model(torch)
    n_params = sum(p.numel() for p in model.parameters())
    for kind, (make_theirs, make_ours, bytes_per_elem) in optimizers.items():
        if not bench.wants(f"torch_train_optim_{kind}"):
            continue
        case = f"{kind} on the CNN's {n_params} parameters f32"
        nbytes = int(n_params * bytes_per_elem)
        for impl, make in (("nndl_fast", make_ours), ("torch", make_theirs)):
            bench.measure(f"torch_train_optim_{kind}", case, impl, _optim_fn(torch, model, make), nbytes=nbytes)
        optim_seconds[kind] = {rec.impl: rec.seconds for rec in bench.flush()}

    for kind, records in step_records.items():
        mine_s, theirs_s = records[ours_impl].seconds, records[theirs_impl].seconds
        line = f"# torch_train {kind}: step {theirs_s * 1e3:.1f} ms (torch) vs {mine_s * 1e3:.1f} ms (ours), "
        line += f"saved {(theirs_s - mine_s) * 1e3:.1f} ms"
        if len(swapped) == 2:
            records[ours_impl].extra["swapped_layers_seconds"] = swapped["nndl_fast"]
            records[theirs_impl].extra["swapped_layers_seconds"] = swapped["torch"]
            line += f"; norm/dropout/loss layers {swapped['torch'] * 1e3:.1f} vs {swapped['nndl_fast'] * 1e3:.1f} ms"
        if kind in optim_seconds:
            o = optim_seconds[kind]
            records[ours_impl].extra["optimizer_step_seconds"] = o["nndl_fast"]
            records[theirs_impl].extra["optimizer_step_seconds"] = o["torch"]
            line += f"; optimizer step {o['torch'] * 1e3:.2f} vs {o['nndl_fast'] * 1e3:.2f} ms"
        print(line, flush=True)
