"""A PyTorch training step, torch's modules against ``nndl_fast.torch.nn.convert(model)``.

The model: conv(3→16)-BN-ReLU, conv(16→32)-BN-ReLU, 2×2 max-pool, Dropout(0.25), linear(→10),
on a (128, 3, 32, 32) float32 batch; one step is zero_grad, forward, cross-entropy, backward
and ``torch.optim.SGD(momentum=0.9)``. Both models start from the same weights and are timed
in the same interleaved rounds.

The breakdown times the layers convert() swaps alone, forward + backward through autograd
on the step's own activation shapes (BN on (128, 16, 32, 32) and (128, 32, 32, 32), Dropout
on (128, 32, 16, 16)); their sum, per implementation, is written into the step's rows
(``extra["swapped_layers_seconds"]``), so the step's gain can be set against the part of the
step convert() changes (the rest -- convolutions, pooling, the linear layer and the optimizer
-- is torch's in both). Bytes: the floors of the norm suite (BN forward 3·|x|, backward
5·|x|; dropout x, y, dy, dx and the packed mask); the step's row counts its input batch only,
so its GB/s means nothing. Skipped without torch.
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


def run(bench: Bench, torch: Any) -> None:
    if torch is None:
        return  # the suite compares torch's modules with ours: nothing to time without torch
    from ..torch.nn import BatchNorm2d, Dropout, convert

    step_records = {}
    if bench.wants("torch_train_step"):
        theirs = _model(torch)
        mine = copy.deepcopy(theirs)
        convert(mine)
        x = torch.randn(BATCH)
        target = torch.randint(0, 10, (BATCH[0],))

        def step_of(model: Any) -> Any:
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

            def step() -> None:
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x), target).backward()
                opt.step()

            return step

        case = "cnn-bn 128x3x32x32 f32"
        note = "zero_grad+fwd+bwd+SGD; bytes: the batch only"
        bench.measure("torch_train_step", case, "nndl_fast convert()", step_of(mine), nbytes=x.nbytes, note=note)
        bench.measure("torch_train_step", case, "torch modules", step_of(theirs), nbytes=x.nbytes, note=note)
        step_records = {r.impl: r for r in bench.flush()}

    swapped: dict[str, float] = {}
    # (kernel, shape, ours, torch's, floor in bytes per element: BN 3 + 5 float32 passes over
    # |x|; dropout x, y, dy, dx and the packed mask written then read)
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
    if step_records and len(swapped) == 2:
        for impl, key in (("nndl_fast convert()", "nndl_fast"), ("torch modules", "torch")):
            step_records[impl].extra["swapped_layers_seconds"] = swapped[key]
        mine_s, theirs_s = step_records["nndl_fast convert()"].seconds, step_records["torch modules"].seconds
        print(
            f"# torch_train: step {theirs_s * 1e3:.1f} ms (torch) vs {mine_s * 1e3:.1f} ms (convert), "
            f"saved {(theirs_s - mine_s) * 1e3:.1f} ms; swapped layers alone {swapped['torch'] * 1e3:.1f} ms "
            f"(torch) vs {swapped['nndl_fast'] * 1e3:.1f} ms (ours)",
            flush=True,
        )
