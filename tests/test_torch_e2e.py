"""The digits run: scikit-learn's 8×8 digits, an MLP and a small CNN with BatchNorm and Dropout,
trained a few epochs by torch (torch.nn + torch.optim + torch's clipping) and by nndl_fast.torch
(convert(model) + nndl_fast.torch.optim, clipping fused with ``max_norm=``, our CrossEntropyLoss)
from the same initial weights on the same batches.

What is checked, and why these tolerances:
- without dropout (p = 0, so both runs are deterministic), the loss curves agree to float32
  rounding at the first steps (step 1 is the forward at the common initial weights; steps 2–3
  carry the first updates), and stay close over the run (differences of rounding grow slowly
  under training, they are not bitwise);
- with dropout (p = 0.2), the masks differ (ours are drawn by our kernel's generator), so the
  curves are not comparable step by step; the final test accuracies of both runs agree within
  4 points (16 of the 397 held-out digits) and both learn (> 85 %).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed")
sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn not installed")

import nndl_fast.torch.optim as our_optim  # noqa: E402
from nndl_fast.torch import convert  # noqa: E402
from nndl_fast.torch.nn import CrossEntropyLoss  # noqa: E402

# Twelve pairs of runs of a few seconds each: the module takes ~20-50 s on a busy machine.
pytestmark = pytest.mark.slow

EPOCHS, BATCH, N_TRAIN = 4, 64, 1400


@pytest.fixture(scope="module")
def digits():
    x, y = sklearn_datasets.load_digits(return_X_y=True)
    x = torch.from_numpy((x / 16.0).astype(np.float32))
    y = torch.from_numpy(y.astype(np.int64))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    g = torch.Generator().manual_seed(1)
    batches = [torch.randperm(N_TRAIN, generator=g).split(BATCH) for _ in range(EPOCHS)]
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:], [b for epoch in batches for b in epoch]


def mlp(p):
    nn = torch.nn
    return nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(p), nn.Linear(64, 10))


def cnn(p):
    nn = torch.nn
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(p),
        nn.Linear(8 * 4 * 4, 10),
    )


# (name, torch's optimizer, ours, max_norm: torch clips with clip_grad_norm_, ours inside the step)
OPTIMIZERS = [
    ("adam", lambda ps: torch.optim.Adam(ps, lr=3e-3), lambda ps: our_optim.Adam(ps, lr=3e-3), None),
    (
        "sgd-momentum-wd",
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-4),
        lambda ps: our_optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-4),
        None,
    ),
    (
        "adamw-clip",
        lambda ps: torch.optim.AdamW(ps, lr=3e-3),
        lambda ps: our_optim.AdamW(ps, lr=3e-3, max_norm=0.5),
        0.5,
    ),
]


def train(model, opt, loss_fn, data, max_norm=None):
    x, y, x_test, y_test, batches = data
    losses = []
    model.train()
    for idx in batches:
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        if max_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).double().mean().item()
    return np.array(losses), accuracy


def both_runs(make_model, opt_case, data, p):
    _, make_theirs, make_ours, max_norm = opt_case
    torch.manual_seed(0)
    theirs = make_model(p)
    ours = copy.deepcopy(theirs)
    report = convert(ours)
    assert report  # BN (and Dropout) swapped for ours
    torch.manual_seed(2)
    t_curve, t_acc = train(theirs, make_theirs(theirs.parameters()), torch.nn.CrossEntropyLoss(), data, max_norm)
    torch.manual_seed(2)
    o_curve, o_acc = train(ours, make_ours(ours.parameters()), CrossEntropyLoss(), data)
    return t_curve, t_acc, o_curve, o_acc


@pytest.mark.parametrize("opt_case", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
@pytest.mark.parametrize("make_model", [mlp, cnn])
def test_loss_curve_without_dropout(digits, make_model, opt_case):
    t_curve, t_acc, o_curve, o_acc = both_runs(make_model, opt_case, digits, p=0.0)
    np.testing.assert_allclose(o_curve[0], t_curve[0], rtol=2e-6)  # the same forward
    np.testing.assert_allclose(o_curve[:3], t_curve[:3], rtol=1e-5)  # the first updates
    np.testing.assert_allclose(o_curve, t_curve, rtol=2e-2, atol=2e-3)  # rounding, grown by training
    assert abs(o_acc - t_acc) <= 0.02, (o_acc, t_acc)
    assert t_curve[-8:].mean() < 0.5 * t_curve[:8].mean()  # it trains


@pytest.mark.parametrize("opt_case", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
@pytest.mark.parametrize("make_model", [mlp, cnn])
def test_final_accuracy_with_dropout(digits, make_model, opt_case):
    _, t_acc, _, o_acc = both_runs(make_model, opt_case, digits, p=0.2)
    assert min(o_acc, t_acc) > 0.85, (o_acc, t_acc)
    assert abs(o_acc - t_acc) <= 0.04, (o_acc, t_acc)
