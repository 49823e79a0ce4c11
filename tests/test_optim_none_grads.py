"""A grad of None (a frozen or unused parameter) leaves its tensor out of the fused step: its
parameter and state are not touched, and (in the classes) its step count does not move, as in
torch. Never a zero-fill: a zero gradient would still move a parameter through its momentum."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from conftest import torch_or_skip

from nndl_fast import optim as O

SIZES = (7, 4099, 1, 33)
SKIP = 1  # the tensor whose grad is None

# (functional form, its state lists, extra arguments)
FUNCTIONAL = [
    (O.sgd, ("momentum_buffer",), {"momentum": 0.9, "lr": 0.1}),
    (O.adagrad, ("sum",), {}),
    (O.rmsprop, ("square_avg", "momentum_buffer", "grad_avg"), {"momentum": 0.5, "centered": True}),
    (O.adadelta, ("square_avg", "acc_delta"), {}),
    (O.adam, ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), {"amsgrad": True}),
    (O.nadam, ("exp_avg", "exp_avg_sq"), {"mu_product": 1.0}),
]


def problem(dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    grads = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    return params, grads


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("fn", "names", "kw"), FUNCTIONAL, ids=[f[0].__name__ for f in FUNCTIONAL])
def test_functional_skips_a_none_grad(fn, names, kw, dtype, simd, nthreads):
    params, grads = problem(dtype)
    rng = np.random.default_rng(1)
    state = {n: [np.abs(rng.standard_normal(p.size)).astype(dtype) for p in params] for n in names}
    alone_p = [p.copy() for k, p in enumerate(params) if k != SKIP]
    alone_s = {n: [b.copy() for k, b in enumerate(bufs) if k != SKIP] for n, bufs in state.items()}
    skipped_p, skipped_s = params[SKIP].copy(), {n: bufs[SKIP].copy() for n, bufs in state.items()}
    holes = [None if k == SKIP else g for k, g in enumerate(grads)]
    for t in (1, 2, 3):
        fn(params, holes, *state.values(), step=t, **kw)
        fn(alone_p, [g for k, g in enumerate(grads) if k != SKIP], *alone_s.values(), step=t, **kw)
    np.testing.assert_array_equal(params[SKIP], skipped_p)  # bitwise: untouched
    for n in names:
        np.testing.assert_array_equal(state[n][SKIP], skipped_s[n])
    others = [k for k in range(len(SIZES)) if k != SKIP]
    for j, k in enumerate(others):  # bitwise as the call without it
        np.testing.assert_array_equal(params[k], alone_p[j])
        for n in names:
            np.testing.assert_array_equal(state[n][k], alone_s[n][j])


def test_all_none_changes_nothing_and_a_none_is_not_checked():
    params, grads = problem(np.float32)
    m, v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    before = [p.copy() for p in params]
    assert O.adam(params, [None] * len(params), m, v, step=1)
    assert all(np.array_equal(p, q) for p, q in zip(params, before))
    # a skipped tensor's other lists are not read: a placeholder there is fine
    m[SKIP] = None
    O.adam(params, [None if k == SKIP else g for k, g in enumerate(grads)], m, v, step=1)
    assert np.array_equal(params[SKIP], before[SKIP]) and not np.array_equal(params[0], before[0])


def test_none_grad_with_skip_nonfinite():
    params, grads = problem(np.float64)
    m, v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    grads[2][0] = np.nan
    holes = [None if k == SKIP else g for k, g in enumerate(grads)]
    before = [p.copy() for p in params]
    assert not O.adam(params, holes, m, v, step=1, skip_nonfinite=True)
    assert all(np.array_equal(p, q) for p, q in zip(params, before))


def test_a_none_param_is_still_an_error():
    params, grads = problem(np.float32)
    m, v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    params[0] = None
    with pytest.raises(TypeError, match=r"params\[0\]"):
        O.adam(params, grads, m, v, step=1)


# -- the classes: per-parameter step counts, as torch ----------------------------------------------
CLASSES = [
    (O.Adam, {"lr": 0.05, "amsgrad": True}),
    (O.Nadam, {}),
    (O.SGD, {"lr": 0.05, "momentum": 0.9, "convention": "torch"}),
    (O.AdaGrad, {"lr_decay": 0.1}),
    (O.RMSprop, {"momentum": 0.5}),
    (O.AdaDelta, {}),
]


def run(opt, grads, skip_at):
    for t, gs in enumerate(grads):
        opt.step([None if (k == SKIP and t in skip_at) else g for k, g in enumerate(gs)])


@pytest.mark.parametrize(("cls", "kw"), CLASSES, ids=[c.__name__ for c, _ in CLASSES])
def test_class_skips_the_parameter_and_its_step_count(cls, kw):
    rng = np.random.default_rng(2)
    p0 = [rng.standard_normal(n) for n in SIZES]
    grads = [[rng.standard_normal(n) for n in SIZES] for _ in range(6)]
    opt = cls([p.copy() for p in p0], **kw)
    run(opt, grads[:2], ())
    frozen = opt.param_groups[0]["params"][SKIP].copy()
    sd = copy.deepcopy(opt.state_dict()["state"][SKIP])
    run(opt, grads[2:4], (0, 1))  # two steps without a grad for SKIP
    assert np.array_equal(opt.param_groups[0]["params"][SKIP], frozen)  # momentum did not move it
    now = opt.state_dict()["state"]
    assert now[SKIP]["step"] == 2 and now[0]["step"] == 4
    for key, val in sd.items():
        np.testing.assert_array_equal(now[SKIP][key], val)
    # The same run as one optimizer per tensor, each stepped only when it has a grad.
    singles = [cls([p.copy()], **kw) for p in p0]
    for t, gs in enumerate(grads[:4]):
        for k, (o, g) in enumerate(zip(singles, gs)):
            if not (k == SKIP and t in (2, 3)):
                o.step([g])
    run(opt, grads[4:], ())  # SKIP at its own step 3 and 4, the others at 5 and 6
    for gs in grads[4:]:
        for o, g in zip(singles, gs):
            o.step([g])
    for k, o in enumerate(singles):
        np.testing.assert_array_equal(opt.param_groups[0]["params"][k], o.param_groups[0]["params"][0])


@pytest.mark.parametrize("max_norm", [None, 1.0])
def test_class_with_groups_and_clipping(max_norm):
    rng = np.random.default_rng(3)
    p0 = [rng.standard_normal(n) for n in SIZES]
    grads = [[rng.standard_normal(n) for n in SIZES] for _ in range(4)]
    opt = O.Adam([{"params": [p.copy() for p in p0[:2]]}, {"params": [p.copy() for p in p0[2:]], "lr": 0.01}])
    ref = O.Adam([{"params": [p.copy() for p in p0[:2]]}, {"params": [p.copy() for p in p0[2:]], "lr": 0.01}])
    for t, gs in enumerate(grads):
        holes = [None if (k == SKIP and t == 1) else g for k, g in enumerate(gs)]
        opt.step(holes, max_norm=max_norm)
        if t == 1:  # the reference: the skipped tensor's grad zero for the norm, its step undone
            saved_p = ref.param_groups[0]["params"][SKIP].copy()
            saved_s = copy.deepcopy(ref.state_dict())
            ref.step([np.zeros_like(g) if k == SKIP else g for k, g in enumerate(gs)], max_norm=max_norm)
            ref.param_groups[0]["params"][SKIP][...] = saved_p
            sd = ref.state_dict()
            sd["state"][SKIP] = saved_s["state"][SKIP]
            ref.load_state_dict(sd)
        else:
            ref.step(gs, max_norm=max_norm)
    for a, b in zip(opt.param_groups, ref.param_groups):
        for p, q in zip(a["params"], b["params"]):
            np.testing.assert_array_equal(p, q)
    assert opt.state_dict()["state"][SKIP]["step"] == 3


def test_state_dict_round_trip_keeps_per_parameter_steps():
    params, grads = problem(np.float64)
    opt = O.Nadam(params)
    opt.step(grads)
    opt.step([None if k == SKIP else g for k, g in enumerate(grads)])
    sd = opt.state_dict()
    assert [sd["state"][k]["step"] for k in range(len(SIZES))] == [2, 1, 2, 2]
    assert sd["state"][SKIP]["mu_product"] != sd["state"][0]["mu_product"]
    other = O.Nadam([p.copy() for p in params])
    other.load_state_dict(sd)
    for o in (opt, other):
        o.step(grads)
    for p, q in zip(opt.param_groups[0]["params"], other.param_groups[0]["params"]):
        np.testing.assert_array_equal(p, q)
    assert other.state_dict()["state"][SKIP]["step"] == 2


def test_class_matches_torch_with_none_grads():
    torch = torch_or_skip()
    rng = np.random.default_rng(4)
    p0 = [rng.standard_normal(n) for n in SIZES]
    ours = O.Adam([p.copy() for p in p0], lr=0.05, betas=(0.9, 0.999), eps_inside_sqrt=False)
    tp = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in p0]
    theirs = torch.optim.Adam(tp, lr=0.05)
    for t in range(8):
        gs = [rng.standard_normal(n) for n in SIZES]
        none = t % 3 == 1
        ours.step([None if (k == SKIP and none) else g for k, g in enumerate(gs)])
        for k, (p, g) in enumerate(zip(tp, gs)):
            p.grad = None if (k == SKIP and none) else torch.from_numpy(g)
        theirs.step()
    for p, q in zip(ours.param_groups[0]["params"], tp):
        np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_wrong_grads_count_after_counts_differ_is_a_clear_error():
    params, grads = problem(np.float64)
    opt = O.Adam(params)
    opt.step([None if k == SKIP else g for k, g in enumerate(grads)])  # the counts now differ
    before = [p.copy() for p in params]
    with pytest.raises(ValueError, match="grads has 3 arrays"):
        opt.step(grads[:3])
    with pytest.raises(TypeError, match="grads must be a list"):
        opt.step(grads[0])
    assert all(np.array_equal(p, q) for p, q in zip(params, before))
