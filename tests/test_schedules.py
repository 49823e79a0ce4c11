"""Learning-rate schedules: α₀ at the first update (n = 0 updates done), the closed forms of
their docstrings, torch.optim.lr_scheduler over 200 steps (when torch is installed), the
optimizers' use of them, and ReduceLROnPlateau's state."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
from conftest import torch_or_skip

from nndl_fast import optim as O
from nndl_fast import schedules as S

N = 200
STEPS = np.arange(N)

# (schedule, its closed form over the NumPy array n of updates done)
CLOSED_FORMS = {
    "inverse-time": (S.InverseTimeDecay(0.1, 0.96), lambda n: 0.1 / (1 + 0.96 * n)),
    "inverse-time-k": (S.InverseTimeDecay(0.1, 0.5, decay_steps=7), lambda n: 0.1 / (1 + 0.5 * n / 7)),
    "exponential": (S.ExponentialDecay(0.1, 0.96), lambda n: 0.1 * 0.96**n),
    "exponential-stair": (
        S.ExponentialDecay(0.1, 0.5, decay_steps=10, staircase=True),
        lambda n: 0.1 * 0.5 ** np.floor(n / 10),
    ),
    "natural-exp": (S.NaturalExpDecay(0.1, 0.05, decay_steps=3), lambda n: 0.1 * np.exp(-0.05 * n / 3)),
    "inverse-sqrt": (S.InverseSqrtDecay(0.01), lambda n: 0.01 / np.sqrt(n + 1)),
    "step": (S.StepDecay(0.1, 30, 0.5), lambda n: 0.1 * 0.5 ** (n // 30)),
    "multi-step": (
        S.MultiStepDecay(0.1, [150, 30, 80, 80], 0.5),
        lambda n: 0.1 * 0.5 ** ((n >= 30) + 2 * (n >= 80) + (n >= 150)),
    ),
    "cosine": (S.CosineAnnealing(0.1, 50, 1e-3), lambda n: 1e-3 + (0.1 - 1e-3) * (1 + np.cos(np.pi * n / 50)) / 2),
    "warm-restarts": (
        S.CosineAnnealingWarmRestarts(0.1, 10, 1, 1e-3),
        lambda n: 1e-3 + (0.1 - 1e-3) * (1 + np.cos(np.pi * (n % 10) / 10)) / 2,
    ),
    "warm-restarts-mult": (
        S.CosineAnnealingWarmRestarts(0.1, 10, 2),
        # restarts at 10, 30, 70, 150: periods 10, 20, 40, 80, 160
        lambda n: (
            0.1
            * (
                1
                + np.cos(
                    np.pi
                    * (n - np.select([n < 10, n < 30, n < 70, n < 150], [0, 10, 30, 70], 150))
                    / np.select([n < 10, n < 30, n < 70, n < 150], [10, 20, 40, 80], 160)
                )
            )
            / 2
        ),
    ),
    "warmup-constant": (S.LinearWarmup(0.1, 10, 0.25), lambda n: np.where(n < 10, 0.1 * (0.25 + 0.75 * n / 10), 0.1)),
    "warmup-cosine": (
        S.LinearWarmup(S.CosineAnnealing(0.1, 190), 10, 0.0),
        lambda n: np.where(n < 10, 0.1 * n / 10, 0.1 * (1 + np.cos(np.pi * (n - 10) / 190)) / 2),
    ),
}


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_schedule_is_its_closed_form(name):
    sched, formula = CLOSED_FORMS[name]
    got = np.array([sched(n) for n in range(N)])
    np.testing.assert_allclose(got, formula(STEPS.astype(np.float64)), rtol=1e-13, atol=1e-17)


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_first_update_uses_lr0(name):
    """α at n = 0 is α₀ (the chapter's decays gave α₀·β at the first update before #11)."""
    sched, _ = CLOSED_FORMS[name]
    lr0 = 0.01 if name == "inverse-sqrt" else 0.1
    assert sched(0) == (0.0 if name == "warmup-cosine" else 0.025 if name == "warmup-constant" else lr0)


def test_optimizer_evaluates_the_schedule_at_the_updates_done():
    """SGD with α₀β^n: the first update uses α₀, the k-th α₀β^(k−1) (as torch's ExponentialLR)."""
    p = [np.zeros(3)]
    opt = O.SGD(p, lr=S.ExponentialDecay(0.1, 0.5))
    seen = []
    for _ in range(4):
        before = p[0].copy()
        opt.step([np.ones(3)])
        seen.append(float(before[0] - p[0][0]))
    np.testing.assert_allclose(seen, [0.1, 0.05, 0.025, 0.0125], rtol=1e-15)
    calls = []
    p = [np.zeros(3)]
    opt = O.Adam(p, lr=lambda n: calls.append(n) or 1e-3)
    for _ in range(3):
        opt.step([np.ones(3)])
    assert calls == [0, 1, 2]
    calls.clear()
    O.adam(p, [np.ones(3)], [np.zeros(3)], [np.zeros(3)], step=5, lr=lambda n: calls.append(n) or 1e-3)
    assert calls == [4]  # the functional form's 1-based step t: n = t − 1


# ---- torch.optim.lr_scheduler ------------------------------------------------------------------


def _torch_lrs(torch, make, n=N, metrics=None):
    """The learning rate each of n updates of torch's SGD uses, its scheduler stepped after each."""
    prm = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([prm], lr=0.1)
    sched = make(opt)
    lrs = []
    for k in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(*(() if metrics is None else (metrics[k],)))
    return np.array(lrs)


def _torch_cases(torch):
    L = torch.optim.lr_scheduler
    return {
        "ExponentialLR": (lambda o: L.ExponentialLR(o, 0.96), S.ExponentialDecay(0.1, 0.96)),
        "StepLR": (lambda o: L.StepLR(o, 30, 0.5), S.StepDecay(0.1, 30, 0.5)),
        "StepLR-as-staircase": (
            lambda o: L.StepLR(o, 7, 0.8),
            S.ExponentialDecay(0.1, 0.8, decay_steps=7, staircase=True),
        ),
        "MultiStepLR": (
            lambda o: L.MultiStepLR(o, [30, 80, 80, 150], 0.5),
            S.MultiStepDecay(0.1, [30, 80, 80, 150], 0.5),
        ),
        "CosineAnnealingLR": (lambda o: L.CosineAnnealingLR(o, 50, 1e-3), S.CosineAnnealing(0.1, 50, 1e-3)),
        "CosineAnnealingLR-T200": (lambda o: L.CosineAnnealingLR(o, 200), S.CosineAnnealing(0.1, 200)),
        "WarmRestarts": (
            lambda o: L.CosineAnnealingWarmRestarts(o, 10, 1, 1e-3),
            S.CosineAnnealingWarmRestarts(0.1, 10, 1, 1e-3),
        ),
        "WarmRestarts-mult": (
            lambda o: L.CosineAnnealingWarmRestarts(o, 7, 2, 1e-4),
            S.CosineAnnealingWarmRestarts(0.1, 7, 2, 1e-4),
        ),
        "LinearLR": (lambda o: L.LinearLR(o, 0.25, total_iters=10), S.LinearWarmup(0.1, 10, 0.25)),
        "LinearLR-default": (lambda o: L.LinearLR(o), S.LinearWarmup(0.1, 5)),
        "SequentialLR": (
            lambda o: L.SequentialLR(
                o, [L.LinearLR(o, 0.1, total_iters=20), L.CosineAnnealingLR(o, 180, 1e-3)], milestones=[20]
            ),
            S.LinearWarmup(S.CosineAnnealing(0.1, 180, 1e-3), 20, 0.1),
        ),
    }


def test_torch_schedulers_match_over_200_updates():
    torch = torch_or_skip()
    for name, (make, ours) in _torch_cases(torch).items():
        want = _torch_lrs(torch, make)
        got = np.array([ours(n) for n in range(N)])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=name)


def _metrics():
    """A validation loss: falls, plateaus, is noisy, has a NaN and a late improvement."""
    rng = np.random.default_rng(5)
    m = np.concatenate([np.linspace(1.0, 0.5, 40), np.full(40, 0.5), 0.5 + 0.01 * rng.standard_normal(80)])
    m = np.concatenate([m, np.linspace(0.45, 0.3, 40)])
    m[100] = np.nan
    return m


PLATEAU_CASES = [
    {},
    {"patience": 3},
    {"patience": 2, "cooldown": 4, "factor": 0.5},
    {"patience": 1, "threshold": 0.01, "threshold_mode": "abs", "min_lr": 2e-3},
    {"mode": "max", "patience": 2, "factor": 0.3},
    {"mode": "max", "patience": 0, "threshold_mode": "abs", "threshold": 0.0, "eps": 1e-3, "factor": 0.9},
]


@pytest.mark.parametrize("kw", PLATEAU_CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) for c in PLATEAU_CASES])
def test_reduce_on_plateau_matches_torch(kw):
    torch = torch_or_skip()
    metrics = _metrics() * (-1 if kw.get("mode") == "max" else 1)
    want = _torch_lrs(torch, lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, **kw), metrics=metrics)
    ours = S.ReduceLROnPlateau(0.1, **kw)
    got = []
    for m in metrics:
        got.append(ours(0))
        ours.step(m)
    assert len(set(got)) > 1, "the case never reduces: it tests nothing"
    np.testing.assert_array_equal(got, want)  # the same multiplications, in the same order


def test_reduce_on_plateau_rule_without_torch():
    """patience 2: the third bad epoch in a row reduces (epochs 5 and 12); cooldown 1 ignores
    the epoch after a reduction (6); a NaN is a bad epoch (11)."""
    s = S.ReduceLROnPlateau(1.0, factor=0.5, patience=2, cooldown=1, threshold=0.0)
    lrs = [s.step(m) for m in [5, 4, 4, 4, 4, 4, 4, 4, 3, np.float32(3), float("nan"), 3, 3]]
    assert lrs == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert s(123) == 0.25 and s.best == 3 and s.last_epoch == 13
    with pytest.raises(TypeError, match="metric"):
        s.step("0.5")
    with pytest.raises(TypeError, match="metric"):
        s.step(np.array([0.5, 0.6]))


def test_reduce_on_plateau_takes_a_torch_scalar():
    torch = torch_or_skip()
    s = S.ReduceLROnPlateau(1.0, patience=0)
    s.step(torch.tensor(1.0))
    assert s.step(torch.tensor([2.0])) == 0.1


def test_reduce_on_plateau_state_round_trips():
    metrics = _metrics()
    a = S.ReduceLROnPlateau(0.1, patience=3, cooldown=2, factor=0.5)
    for m in metrics[:70]:
        a.step(m)
    b = S.ReduceLROnPlateau(0.5)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    c = pickle.loads(pickle.dumps(a))
    assert b == a and c == a
    rest = [[s.step(m) for m in metrics[70:]] for s in (a, b, c)]
    assert rest[0] == rest[1] == rest[2] and len(set(rest[0])) > 1
    # inside an optimizer's state_dict, as any schedule
    p = [np.zeros(2)]
    opt = O.SGD(p, lr=a)
    opt.step([np.ones(2)])
    restored = pickle.loads(pickle.dumps(opt.state_dict()))
    assert restored["param_groups"][0]["lr"] == a


@pytest.mark.parametrize(
    ("change", "exc"),
    [
        ({"lr": -1.0}, ValueError),
        ({"best": "x"}, TypeError),
        ({"num_bad_epochs": -1}, ValueError),
        ({"mode": "mid"}, ValueError),
        ({"factor": 1.0}, ValueError),
        ({"extra": 1}, ValueError),
    ],
)
def test_reduce_on_plateau_rejected_state_changes_nothing(change, exc):
    s = S.ReduceLROnPlateau(0.1, patience=1)
    for m in (3, 2, 2, 2):
        s.step(m)
    before = s.state_dict()
    with pytest.raises(exc, match=next(iter(change))):
        s.load_state_dict({**s.state_dict(), **change})
    assert s.state_dict() == before
    with pytest.raises(ValueError, match="missing"):
        s.load_state_dict({"lr": 0.1})
    assert s.state_dict() == before


def test_schedules_check_n_and_pickle():
    for sched, _ in CLOSED_FORMS.values():
        with pytest.raises(ValueError, match=r"n \(the number of updates done\) must be in \[0, inf\]"):
            sched(-1)
        with pytest.raises(TypeError, match="n "):
            sched(1.0)
        assert pickle.loads(pickle.dumps(sched)) == sched
        assert repr(sched).startswith(type(sched).__name__ + "(")


def test_linear_warmup_checks_what_it_composes():
    with pytest.raises(ValueError, match=r"after\(0\)"):
        S.LinearWarmup(lambda n: -1.0, 5)(0)
    with pytest.raises(TypeError, match=r"after\(3\)"):
        S.LinearWarmup(lambda n: None, 2)(5)
    with pytest.raises(TypeError, match="after"):
        S.LinearWarmup("0.1", 5)
    assert S.LinearWarmup(S.ExponentialDecay(0.2, 0.5), 4, 0.5)(5) == pytest.approx(0.1)


def test_cosine_rises_past_t_max_as_torchs():
    s = S.CosineAnnealing(0.1, 10)
    assert s(10) == 0.0 and s(20) == pytest.approx(0.1) and s(15) == pytest.approx(0.05)
    assert math.isclose(S.CosineAnnealingWarmRestarts(0.1, 10)(10), 0.1)
