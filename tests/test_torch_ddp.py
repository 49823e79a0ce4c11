"""DistributedDataParallel with nndl_fast.torch: two processes (gloo, localhost) train with our
optimizers, our CrossEntropyLoss and convert()'s BatchNorm, and match a single process.

What DDP promises, and so what is checked (float64, to rounding: the all-reduce sums in another
order than the single process):
- a model without BatchNorm (Linear-ReLU-Linear, ``nndl_fast.torch.optim.Adam`` with a fused
  ``max_norm=``): each rank takes half of the global batch and DDP averages the gradients, so
  after N steps every rank's parameters equal those of one process trained on the whole global
  batch (the clipping sees the averaged gradient, as in the single process);
- a model with our BatchNorm1d (SGD with momentum and weight decay): BN normalises each rank's
  shard with that shard's statistics (SyncBatchNorm, which would share them, is torch's, not
  ours), so the single-process run it must equal is the per-shard one: the loss is the mean of
  the two shards' losses, each shard normalised by its own statistics. With
  ``broadcast_buffers=False`` each rank keeps its shard's running statistics, and those equal
  the single-process run's statistics kept per shard. The parameters are identical across ranks.

The worker is this file run as a script; each process has a timeout, so a hung rendezvous fails
the test instead of hanging it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="torch not installed")

# Two interpreters importing torch, then a rendezvous: several seconds.
pytestmark = pytest.mark.slow

WORLD, GLOBAL_BATCH, STEPS, FEATURES, CLASSES = 2, 16, 5, 12, 4
TIMEOUT = 180  # seconds for the whole run; the process group times out sooner


def make_model(with_bn: bool):
    nn = torch.nn
    torch.manual_seed(0)
    layers = [nn.Linear(FEATURES, 24)]
    if with_bn:
        layers.append(nn.BatchNorm1d(24))
    layers += [nn.ReLU(), nn.Linear(24, CLASSES)]
    return nn.Sequential(*layers).double()


def make_optimizer(with_bn: bool, params):
    import nndl_fast.torch.optim as optim

    if with_bn:
        return optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    return optim.Adam(params, lr=1e-2, max_norm=0.5)


def batches():
    g = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        x = torch.randn(GLOBAL_BATCH, FEATURES, generator=g, dtype=torch.float64)
        yield x, torch.randint(0, CLASSES, (GLOBAL_BATCH,), generator=g)


def shard(t, rank):
    n = GLOBAL_BATCH // WORLD
    return t[rank * n : (rank + 1) * n]


def converted(with_bn: bool):
    from nndl_fast.torch import convert
    from nndl_fast.torch.nn import BatchNorm1d

    model = make_model(with_bn)
    convert(model)
    assert not with_bn or isinstance(model[1], BatchNorm1d)
    return model


def worker(rank: int, port: int, out: str) -> None:
    """One DDP rank: train both models, save the parameters and buffers."""
    from datetime import timedelta

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from nndl_fast.torch.nn import CrossEntropyLoss

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60)
    )
    result = {}
    for with_bn in (False, True):
        model = converted(with_bn)
        ddp = DistributedDataParallel(model, broadcast_buffers=False)
        opt = make_optimizer(with_bn, ddp.parameters())
        loss_fn = CrossEntropyLoss()
        for x, y in batches():
            opt.zero_grad()
            loss_fn(ddp(shard(x, rank)), shard(y, rank)).backward()
            opt.step()
        result[with_bn] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    dist.destroy_process_group()
    torch.save(result, out)


def single_process(with_bn: bool) -> dict:
    """The run DDP must reproduce: the global batch (no BN), or the mean of per-shard losses with
    each shard's BN statistics and running buffers kept apart (BN). Returns the state per rank."""
    from nndl_fast.torch.nn import CrossEntropyLoss

    model = converted(with_bn)
    opt = make_optimizer(with_bn, model.parameters())
    loss_fn = CrossEntropyLoss()
    buffers = [{k: v.clone() for k, v in model.named_buffers()} for _ in range(WORLD)]
    for x, y in batches():
        opt.zero_grad()
        if not with_bn:
            loss_fn(model(x), y).backward()
        else:
            losses = []
            for r in range(WORLD):
                for k, v in model.named_buffers():
                    v.copy_(buffers[r][k])
                losses.append(loss_fn(model(shard(x, r)), shard(y, r)))
                buffers[r] = {k: v.clone() for k, v in model.named_buffers()}
            (sum(losses) / WORLD).backward()
        opt.step()
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    return [{**params, **buffers[r]} if with_bn else {**params, **dict(model.named_buffers())} for r in range(WORLD)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_matches_single_process(tmp_path):
    port = free_port()
    import nndl_fast

    # The workers import the nndl_fast this test runs (installed, or the source tree with its _core).
    home = str(Path(nndl_fast.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([home, *sys.path])}
    outs = [tmp_path / f"rank{r}.pt" for r in range(WORLD)]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(r), str(port), str(outs[r])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for r in range(WORLD)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=TIMEOUT)[0].decode(errors="replace"))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    ranks = [torch.load(o) for o in outs]

    for with_bn in (False, True):
        expected = single_process(with_bn)
        for r in range(WORLD):
            got = ranks[r][with_bn]
            assert got.keys() == expected[r].keys()
            for k in got:
                torch.testing.assert_close(got[k], expected[r][k], rtol=1e-11, atol=1e-13, msg=f"{with_bn=} {r=} {k}")
        for k, v in make_model(with_bn).named_parameters():
            assert not torch.equal(ranks[0][with_bn][k], v)  # training moved it
            torch.testing.assert_close(ranks[0][with_bn][k], ranks[1][with_bn][k], rtol=0, atol=0)


if __name__ == "__main__":
    worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
