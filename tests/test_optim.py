"""nndl_fast.optim against its NumPy references, the chapter's facts, torch, and bad input.

One table (CASES) of (optimizer class, hyper-parameters) drives the parity, determinism,
state and functional tests; the reference of each case is reference.optim.RULES[rule]
run in float64 with the optimizer's own group dict as its hyper-parameters.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from conftest import SIMD_TARGETS, torch_or_skip
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nndl_fast
from nndl_fast import optim as O
from nndl_fast import schedules
from nndl_fast.reference import optim as R

STEPS = 20

CASES = [
    (O.SGD, {"lr": 0.1}),
    (O.SGD, {"lr": 0.05, "weight_decay": 0.01, "l1": 0.002, "decoupled_weight_decay": 0.001}),
    (O.SGD, {"lr": 0.05, "maximize": True, "decoupled_weight_decay": 0.01, "decay_scaled_by_lr": True}),
    (O.Momentum, {"lr": 0.05}),
    (O.Momentum, {"lr": schedules.ExponentialDecay(0.05, 0.9)}),
    (O.Momentum, {"lr": 0.05, "convention": "torch", "dampening": 0.1}),
    (O.Nesterov, {"lr": 0.05}),
    (O.Nesterov, {"lr": 0.05, "convention": "torch", "weight_decay": 0.01}),
    (O.AdaGrad, {}),
    (O.AdaGrad, {"eps_inside_sqrt": False, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    (O.RMSprop, {}),
    (O.RMSprop, {"eps_inside_sqrt": False, "centered": True, "momentum": 0.9, "beta": 0.99}),
    (O.RMSprop, {"centered": True, "l1": 0.01}),
    (O.AdaDelta, {}),
    (O.AdaDelta, {"weight_decay": 0.01, "lr": 0.5}),
    (O.Adam, {}),
    (O.Adam, {"eps_inside_sqrt": False, "betas": (0.9, 0.999), "amsgrad": True, "weight_decay": 0.01}),
    (O.Adam, {"maximize": True, "lr": schedules.InverseSqrtDecay(1e-2), "l1": 1e-3}),
    (O.AdamW, {}),
    (O.AdamW, {"weight_decay": 0.01, "decay_scaled_by_lr": True, "eps_inside_sqrt": False}),
    (O.Nadam, {}),
    (O.Nadam, {"eps_inside_sqrt": False, "weight_decay": 0.01, "momentum_decay": 0.0}),
    # the peers' presets and formula options (tests/test_peer_matrix.py checks them against the peers)
    (O.Momentum, {"lr": 0.05, "convention": "keras"}),
    (O.Momentum, {"lr": schedules.ExponentialDecay(0.05, 0.9), "convention": "optax"}),
    (O.Nesterov, {"lr": 0.05, "dampening": 0.2, "weight_decay": 0.01, "convention": "onnx"}),
    (O.AdaGrad, {"convention": "keras"}),
    (O.AdaGrad, {"lr_decay": 0.05, "convention": "onnx"}),
    (O.RMSprop, {"convention": "keras", "momentum": 0.5}),
    (O.RMSprop, {"momentum": 0.9, "nesterov": True, "bias_correction": True, "initial_accumulator_value": 0.1,
                 "convention": "optax"}),
    (O.RMSprop, {"centered": True, "bias_correction": True, "eps": 1e-2, "convention": "optax"}),
    (O.RMSprop, {"momentum": 0.5, "nesterov": True, "convention": "optax"}),
    (O.AdaDelta, {"lr": 1.0, "convention": "keras"}),
    (O.Adam, {"eps": 1e-3, "amsgrad": True, "convention": "keras"}),
    (O.Adam, {"amsgrad": True, "eps_root": 1e-6, "weight_decay": 0.01, "convention": "optax"}),
    (O.Adam, {"lr": schedules.InverseSqrtDecay(1e-2), "weight_decay": 0.01, "decoupled_weight_decay": 0.01,
              "convention": "onnx"}),
    (O.Adam, {"bias_correction_exponent": "n", "decay_after_step": True, "decoupled_weight_decay": 0.1,
              "decay_scaled_by_lr": True, "amsgrad": True}),
    (O.AdamW, {"convention": "keras"}),
    (O.AdamW, {"eps_root": 1e-6, "convention": "optax"}),
    (O.Nadam, {"convention": "keras"}),
    (O.Nadam, {"eps_root": 1e-6, "convention": "optax"}),
]  # fmt: skip
CASE_IDS = [f"{cls.__name__}-{i}" for i, (cls, _) in enumerate(CASES)]
SIZES = [0, 1, 7, 4099, 1_000_003]
SMALL_SIZES = [0, 1, 7, 4099, 40_001]
TOL = {np.float32: {"rtol": 2e-4, "atol": 2e-5}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}


def make_problem(sizes, dtype, seed=0, steps=STEPS):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(dtype) for n in sizes]
    grads = [[rng.standard_normal(n).astype(dtype) for n in sizes] for _ in range(steps)]
    return params, grads


def run_ours(cls, hp, params, grads, **step_kw):
    opt = cls(params, **hp)
    for g in grads:
        assert opt.step(g, **step_kw)
    return opt


def run_reference(opt_hp, params0, grads, grad_scale=1.0):
    """Reference trajectory in float64 of each tensor, one at a time."""
    rule = R.RULES[opt_hp["_rule"]]
    out = []
    for k, p0 in enumerate(params0):
        theta = p0.astype(np.float64)
        state = {
            name: np.full_like(theta, 0.0)
            for name in (
                "momentum_buffer",
                "exp_avg",
                "exp_avg_sq",
                "max_exp_avg_sq",
                "square_avg",
                "acc_delta",
                "grad_avg",
            )
        }
        state["sum"] = np.full_like(theta, opt_hp.get("initial_accumulator_value", 0.0))
        if opt_hp["_rule"] == "rmsprop":
            state["square_avg"] = np.full_like(theta, opt_hp["initial_accumulator_value"])
        state["mu_product"] = 1.0
        for t, g in enumerate(grads, start=1):
            theta = rule(theta, g[k].astype(np.float64), state, t, opt_hp, grad_scale)
        out.append(theta)
    return out


def group_hp(opt):
    hp = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    hp["_rule"] = opt._rule.name
    return hp


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "hp"), CASES, ids=CASE_IDS)
def test_parity_with_reference(cls, hp, dtype, simd, nthreads):
    sizes = SIZES if (simd == SIMD_TARGETS[-1] and nthreads == 2) else SMALL_SIZES
    params, grads = make_problem(sizes, dtype)
    params0 = [p.copy() for p in params]
    opt = run_ours(cls, hp, params, grads)
    ref = run_reference(group_hp(opt), params0, grads)
    for k, (ours, want) in enumerate(zip(params, ref)):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, want, **TOL[dtype], err_msg=f"tensor {k} (n={sizes[k]})")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "hp"), CASES, ids=CASE_IDS)
def test_bitwise_across_targets_threads_and_chunking(cls, hp, dtype):
    """Every SIMD target, 1 and 2 threads, a list or one tensor at a time: same bits."""
    sizes = [3, 4099, 70_001, 1]
    params0, grads = make_problem(sizes, dtype, seed=1, steps=5)
    results = []
    for target in SIMD_TARGETS:
        for n in (1, 2):
            with nndl_fast.simd_target(target), nndl_fast.threads(n):
                params = [p.copy() for p in params0]
                run_ours(cls, hp, params, grads)
                results.append((f"{target}/{n}thr", params))
    # one optimizer per tensor: the multi-tensor call must not differ from it
    singles = []
    for k in range(len(sizes)):
        p = [params0[k].copy()]
        run_ours(cls, hp, p, [[g[k]] for g in grads])
        singles.append(p[0])
    results.append(("one-at-a-time", singles))
    base_name, base = results[0]
    for name, got in results[1:]:
        for k, (a, b) in enumerate(zip(base, got)):
            assert np.array_equal(a, b), f"{name} differs from {base_name} in tensor {k}"


@pytest.mark.parametrize(("cls", "hp"), CASES, ids=CASE_IDS)
def test_grad_scale_is_applied_in_the_pass(cls, hp):
    params, grads = make_problem([7, 300], np.float64, seed=2, steps=4)
    params0 = [p.copy() for p in params]
    opt = run_ours(cls, hp, params, grads, grad_scale=0.25)
    ref = run_reference(group_hp(opt), params0, grads, grad_scale=0.25)
    for ours, want in zip(params, ref):
        np.testing.assert_allclose(ours, want, **TOL[np.float64])


# ---- state ---------------------------------------------------------------------------
@pytest.mark.parametrize(("cls", "hp"), CASES, ids=CASE_IDS)
def test_state_dict_resume_is_bitwise_identical(cls, hp, tmp_path):
    params0, grads = make_problem([5, 1000], np.float32, seed=3, steps=10)
    straight = [p.copy() for p in params0]
    run_ours(cls, hp, straight, grads)

    first = [p.copy() for p in params0]
    opt = run_ours(cls, hp, first, grads[:4])
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    np.savez(tmp_path / "params.npz", *first)
    # a fresh process would rebuild params from disk and the optimizer from the dict
    loaded = np.load(tmp_path / "params.npz")
    resumed = [loaded[f"arr_{k}"].copy() for k in range(len(first))]
    opt2 = cls(resumed, **hp)
    opt2.load_state_dict(saved)
    for g in grads[4:]:
        opt2.step(g)
    for a, b in zip(straight, resumed):
        assert np.array_equal(a, b)


def test_state_dict_is_a_copy_and_load_checks_everything():
    p = [np.zeros(4, np.float32)]
    opt = O.Adam(p)
    opt.step([np.ones(4, np.float32)])
    sd = opt.state_dict()
    sd["state"][0]["exp_avg"][:] = 99
    assert not np.any(opt.state[0]["exp_avg"] == 99)
    bad = copy.deepcopy(opt.state_dict())
    bad["state"][0]["exp_avg"] = np.zeros(5, np.float32)
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match="exp_avg"):
        opt.load_state_dict(bad)
    bad = copy.deepcopy(before)
    del bad["state"][0]["exp_avg_sq"]
    with pytest.raises(ValueError, match="exp_avg_sq"):
        opt.load_state_dict(bad)
    bad = copy.deepcopy(before)
    bad["param_groups"].append(bad["param_groups"][0])
    with pytest.raises(ValueError, match=r"state_dict\[.param_groups.\] has 2 groups"):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["state"][0]["step"] == before["state"][0]["step"]
    assert np.array_equal(after["state"][0]["exp_avg"], before["state"][0]["exp_avg"])


def test_param_groups_and_add_param_group():
    """Per-group hyper-parameters, and a group added later starts at its own step 1."""

    def start():
        return [np.random.default_rng(4).standard_normal(n) for n in (3, 5, 7)]

    rng = np.random.default_rng(40)
    g1 = [rng.standard_normal(3), rng.standard_normal(5)]
    g2 = [rng.standard_normal(n) for n in (3, 5, 7)]
    a, b, c = start()
    opt = O.Adam([{"params": [a]}, {"params": [b], "lr": 0.1}], lr=0.01)
    opt.step(g1)
    opt.add_param_group({"params": [c], "betas": (0.5, 0.9)})
    opt.step(g2)

    A, B, C = start()
    ma, va, mb, vb, mc, vc = (np.zeros(n) for n in (3, 3, 5, 5, 7, 7))
    O.adam([A], [g1[0]], [ma], [va], step=1, lr=0.01)
    O.adam([B], [g1[1]], [mb], [vb], step=1, lr=0.1)
    O.adam([A], [g2[0]], [ma], [va], step=2, lr=0.01)
    O.adam([B], [g2[1]], [mb], [vb], step=2, lr=0.1)
    O.adam([C], [g2[2]], [mc], [vc], step=1, lr=0.01, betas=(0.5, 0.9))
    for ours, want in zip((a, b, c), (A, B, C)):
        assert np.array_equal(ours, want)
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1], [2]]
    assert [sd["state"][i]["step"] for i in range(3)] == [2, 2, 1]


@pytest.mark.parametrize(("cls", "hp"), CASES, ids=CASE_IDS)
def test_functional_form_equals_class(cls, hp):
    params0, grads = make_problem([9, 33], np.float64, seed=5, steps=6)
    via_class = [p.copy() for p in params0]
    opt = run_ours(cls, hp, via_class, grads)
    group = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    rule = opt._rule.name
    params = [p.copy() for p in params0]
    bufs = {
        name: [np.full_like(p, opt._rule.initial(name, group)) for p in params]
        for name in opt._rule.buffers(group)
        if name is not None
    }
    mu_product = 1.0
    for t, g in enumerate(grads, start=1):
        if rule == "nadam":
            _, mu_product = O.nadam(
                params, g, bufs["exp_avg"], bufs["exp_avg_sq"], step=t, mu_product=mu_product, **group
            )
        else:
            fn = getattr(O, rule)
            names = opt._rule.buffers(group)
            args = [None if n is None else bufs[n] for n in names]
            while args and args[-1] is None and rule != "sgd":
                args.pop()
            fn(params, g, *args, step=t, **group)
    for a, b in zip(via_class, params):
        assert np.array_equal(a, b)


# ---- the chapter's facts ---------------------------------------------------------------
def test_nesterov_trajectory_is_eq_1_18_on_a_quadratic():
    """L(θ) = ½ θᵀAθ − bᵀθ: the gradient at the look-ahead point is computable exactly."""
    rng = np.random.default_rng(6)
    Q = rng.standard_normal((6, 6))
    A = Q @ Q.T / 6 + np.eye(6)
    b = rng.standard_normal(6)
    grad = lambda x: A @ x - b  # noqa: E731
    rho, alpha = 0.9, 0.05
    theta = rng.standard_normal(6)
    delta = np.zeros(6)
    phi = theta.copy()  # φ₀ = θ₀ + ρΔθ₀ = θ₀
    opt = O.Nesterov([phi], lr=alpha, momentum=rho)
    for _ in range(150):
        delta = rho * delta - alpha * grad(theta + rho * delta)  # (1.18)
        theta = theta + delta
        opt.step([grad(phi)])
        np.testing.assert_allclose(phi - rho * opt.state[0]["momentum_buffer"], theta, rtol=1e-12, atol=1e-12)
    assert np.linalg.norm(theta - np.linalg.solve(A, b)) < 1e-4  # and it reached the minimiser A⁻¹b


def test_weight_decay_equals_l2_in_sgd_but_not_in_adam():
    """Exercise 1-4: (1 − w)θ − αg equals SGD on g + λθ with λ = w/α; in Adam it does not."""
    rng = np.random.default_rng(7)
    p0 = rng.standard_normal(50)
    grads = [[rng.standard_normal(50)] for _ in range(10)]
    alpha, w = 0.1, 0.01
    decoupled, l2 = [p0.copy()], [p0.copy()]
    run_ours(O.SGD, {"lr": alpha, "decoupled_weight_decay": w}, decoupled, grads)
    run_ours(O.SGD, {"lr": alpha, "weight_decay": w / alpha}, l2, grads)
    np.testing.assert_allclose(decoupled[0], l2[0], rtol=1e-12, atol=1e-13)

    decoupled, l2 = [p0.copy()], [p0.copy()]
    run_ours(O.Adam, {"lr": alpha, "decoupled_weight_decay": w}, decoupled, grads)
    run_ours(O.Adam, {"lr": alpha, "weight_decay": w / alpha}, l2, grads)
    assert np.max(np.abs(decoupled[0] - l2[0])) > 1e-3


def test_chapter_momentum_equals_torch_form_at_constant_lr_only():
    rng = np.random.default_rng(8)
    p0 = rng.standard_normal(100)
    grads = [[rng.standard_normal(100)] for _ in range(15)]
    for nesterov in (False, True):
        chapter, torch_form = [p0.copy()], [p0.copy()]
        run_ours(O.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": nesterov}, chapter, grads)
        run_ours(O.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": nesterov, "convention": "torch"}, torch_form, grads)
        np.testing.assert_allclose(chapter[0], torch_form[0], rtol=1e-12, atol=1e-12)
    sched = schedules.ExponentialDecay(0.05, 0.8)
    chapter, torch_form = [p0.copy()], [p0.copy()]
    run_ours(O.Momentum, {"lr": sched}, chapter, grads)
    run_ours(O.Momentum, {"lr": sched, "convention": "torch"}, torch_form, grads)
    assert np.max(np.abs(chapter[0] - torch_form[0])) > 1e-4


# ---- non-finite guard ---------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(
    ("cls", "hp"), CASES[:1] + CASES[10:11] + CASES[15:16] + CASES[20:21], ids=["SGD", "RMSprop", "Adam", "Nadam"]
)
def test_nonfinite_gradient_skips_the_whole_step(cls, hp, bad):
    params, grads = make_problem([10, 50_000], np.float32, seed=9, steps=3)
    opt = run_ours(cls, hp, params, grads[:2])
    before = copy.deepcopy(opt.state_dict())
    p_before = [p.copy() for p in params]
    g = [x.copy() for x in grads[2]]
    g[1][49_999] = bad
    assert opt.step(g, skip_nonfinite=True) is False
    for a, b in zip(params, p_before):
        assert np.array_equal(a, b)
    after = opt.state_dict()
    assert after["state"][0]["step"] == before["state"][0]["step"]
    for i in before["state"]:
        for k, v in before["state"][i].items():
            assert np.array_equal(after["state"][i][k], v), k
    g[1][49_999] = 0.0
    assert opt.step(g, skip_nonfinite=True) is True
    assert opt.state_dict()["state"][0]["step"] == before["state"][0]["step"] + 1


def test_nonfinite_guard_across_param_groups():
    a, b = np.zeros(3, np.float32), np.zeros(4, np.float32)
    opt = O.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert not opt.step([np.ones(3, np.float32), np.array([0, 0, np.nan, 0], np.float32)], skip_nonfinite=True)
    assert not a.any() and not b.any()


# ---- bad input -------------------------------------------------------------------------
def fresh():
    p = [np.zeros(4, np.float32), np.zeros((2, 3), np.float32)]
    return p, O.Adam(p)


def assert_untouched(opt, params):
    assert all(not p.any() for p in params)
    assert all(not b.any() for s in opt.state.values() for b in s.values())


@pytest.mark.parametrize(
    ("grads", "exc", "match"),
    [
        ([np.ones(4, np.float64), np.ones((2, 3), np.float32)], TypeError, r"grads\[0\] has dtype float64"),
        ([np.ones(4, np.float32), np.ones((3, 2), np.float32)], ValueError, r"grads\[1\] has shape \(3, 2\)"),
        ([np.ones(4, np.float32)], ValueError, "grads has 1 arrays but params has 2"),
        ([np.ones(8, np.float32)[::2], np.ones((2, 3), np.float32)], ValueError, r"grads\[0\] must be C-contiguous"),
        ([[1.0, 2, 3, 4], np.ones((2, 3), np.float32)], TypeError, r"grads\[0\] must be a numpy.ndarray"),
        ([np.ones(4, np.int32), np.ones((2, 3), np.float32)], TypeError, r"grads\[0\] must be float32 or float64"),
        ("nope", TypeError, "grads must be a list"),
    ],
)
def test_bad_grads_raise_naming_the_argument(grads, exc, match):
    params, opt = fresh()
    with pytest.raises(exc, match=match):
        opt.step(grads)
    assert_untouched(opt, params)


def test_param_aliasing_its_grad_is_rejected():
    params, opt = fresh()
    with pytest.raises(ValueError, match=r"grads\[0\] shares memory with params\[0\]"):
        opt.step([params[0], np.ones((2, 3), np.float32)])
    # a gradient overlapping a state buffer is as bad
    with pytest.raises(ValueError, match=r"shares memory"):
        opt.step([opt.state[0]["exp_avg"], np.ones((2, 3), np.float32)])
    assert_untouched(opt, params)


def test_functional_rejects_bad_state_before_touching_anything():
    p = [np.zeros(5), np.zeros(3)]
    g = [np.ones(5), np.ones(3)]
    m = [np.zeros(5), np.zeros(3)]
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"exp_avg_sq\[1\] is read-only"):
        O.adam(p, g, m, [np.zeros(5), ro], step=1)
    with pytest.raises(ValueError, match="exp_avg_sq has 1 arrays but params has 2"):
        O.adam(p, g, m, [np.zeros(5)], step=1)
    with pytest.raises(TypeError, match=r"exp_avg\[0\] has dtype float32"):
        O.adam(p, g, [np.zeros(5, np.float32), np.zeros(3)], [np.zeros(5), np.zeros(3)], step=1)
    with pytest.raises(ValueError, match=r"exp_avg\[0\] shares memory with params\[0\]"):
        O.adam(p, g, [p[0], np.zeros(3)], [np.zeros(5), np.zeros(3)], step=1)
    with pytest.raises(ValueError, match="params is an empty list"):
        O.adam([], [], [], [], step=1)
    with pytest.raises(ValueError, match=r"step must be in \[1, inf\]"):
        O.adam(p, g, m, [np.zeros(5), np.zeros(3)], step=0)
    assert all(not x.any() for x in p + m)


@pytest.mark.parametrize(
    ("cls", "kw", "match"),
    [
        (O.Adam, {"lr": -1.0}, "lr must be in"),
        (O.Adam, {"betas": (1.0, 0.9)}, r"betas\[0\] must be in"),
        (O.Adam, {"betas": (0.9,)}, "betas must be a pair"),
        (O.Adam, {"eps": -1e-8}, "eps must be in"),
        (O.Adam, {"weight_decay": -0.1}, "weight_decay must be in"),
        (O.SGD, {"momentum": -0.5}, "momentum must be in"),
        (O.SGD, {"momentum": 0.9, "dampening": 0.1}, "dampening exists only"),
        (O.SGD, {"nesterov": True}, "nesterov requires momentum"),
        (O.SGD, {"convention": "jax"}, "convention must be"),
        (O.RMSprop, {"beta": 1.5}, "beta must be in"),
        (O.AdaDelta, {"rho": 1.0}, "rho must be in"),
        (O.AdaGrad, {"lr_decay": -1.0}, "lr_decay must be in"),
        (O.Nadam, {"momentum_decay": -1.0}, "momentum_decay must be in"),
        (O.AdamW, {"weight_decay": 2.0}, "decoupled_weight_decay must be in"),
        (O.Adam, {"lr": "fast"}, "lr must be a real number"),
        (O.Adam, {"bogus": 1}, "unexpected hyper-parameter"),
    ],
)
def test_invalid_hyper_parameters(cls, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cls([np.zeros(3)], **kw)


def test_bad_params():
    with pytest.raises(ValueError, match="params is an empty list"):
        O.Adam([])
    with pytest.raises(TypeError, match=r"params\[0\] must be float32 or float64"):
        O.Adam([np.zeros(3, np.int64)])
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\] is read-only"):
        O.Adam([ro])
    with pytest.raises(ValueError, match=r"params\[0\] must be C-contiguous"):
        O.Adam([np.zeros((3, 4)).T])
    with pytest.raises(TypeError, match="share a dtype"):
        O.Adam([np.zeros(3), np.zeros(3, np.float32)])
    a = np.zeros(3)
    with pytest.raises(ValueError, match=r"params\[1\] shares memory with params\[0\]"):
        O.Adam([a, a])


def test_group_of_float32_and_group_of_float64():
    a, b = np.zeros(3, np.float32), np.zeros(3, np.float64)
    opt = O.SGD([{"params": [a]}, {"params": [b]}], lr=1.0)
    opt.step([np.ones(3, np.float32), np.ones(3)])
    assert np.all(a == -1) and np.all(b == -1)


def test_empty_tensor_and_torch_tensor_params():
    torch = torch_or_skip()
    t = torch.zeros(5, requires_grad=True)
    opt = O.SGD([t, np.zeros(0, np.float32)], lr=0.5)
    opt.step([np.ones(5, np.float32), np.zeros(0, np.float32)])
    assert torch.equal(t.detach(), torch.full((5,), -0.5))
    t.grad = torch.ones(5)
    opt.step([t.grad, torch.zeros(0)])  # torch tensors as gradients: zero-copy views
    assert torch.equal(t.detach(), torch.full((5,), -1.0))
    with pytest.raises(ValueError, match=r"grads\[0\] must be C-contiguous"):
        opt.step([torch.ones(10)[::2], torch.zeros(0)])


# ---- PyTorch parity ----------------------------------------------------------------------
TORCH_CASES = [
    ("SGD", {"lr": 0.05}, O.SGD, {"lr": 0.05}),
    (
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
        O.SGD,
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01, "convention": "torch"},
    ),
    (
        "SGD",
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "maximize": True},
        O.SGD,
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "convention": "torch", "maximize": True},
    ),
    (
        "Adagrad",
        {"lr": 0.05, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01},
        O.AdaGrad,
        {
            "lr": 0.05,
            "lr_decay": 0.01,
            "initial_accumulator_value": 0.1,
            "weight_decay": 0.01,
            "eps_inside_sqrt": False,
        },
    ),
    ("RMSprop", {"lr": 0.01}, O.RMSprop, {"lr": 0.01, "beta": 0.99, "eps_inside_sqrt": False}),
    (
        "RMSprop",
        {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.5, "weight_decay": 0.01},
        O.RMSprop,
        {"lr": 0.01, "beta": 0.9, "centered": True, "momentum": 0.5, "weight_decay": 0.01, "eps_inside_sqrt": False},
    ),
    ("Adadelta", {"lr": 1.0, "weight_decay": 0.01}, O.AdaDelta, {"lr": 1.0, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01}, O.Adam, {"lr": 0.01, "betas": (0.9, 0.999), "eps_inside_sqrt": False}),
    (
        "Adam",
        {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01, "maximize": True},
        O.Adam,
        {
            "lr": 0.01,
            "betas": (0.9, 0.999),
            "eps_inside_sqrt": False,
            "amsgrad": True,
            "weight_decay": 0.01,
            "maximize": True,
        },
    ),
    (
        "AdamW",
        {"lr": 0.01, "weight_decay": 0.05},
        O.AdamW,
        {"lr": 0.01, "betas": (0.9, 0.999), "eps_inside_sqrt": False, "weight_decay": 0.05, "decay_scaled_by_lr": True},
    ),
    ("NAdam", {"lr": 0.01}, O.Nadam, {"lr": 0.01, "eps_inside_sqrt": False}),
    (
        "NAdam",
        {"lr": 0.01, "weight_decay": 0.01, "decoupled_weight_decay": True},
        O.Nadam,
        {"lr": 0.01, "eps_inside_sqrt": False, "decoupled_weight_decay": 0.01, "decay_scaled_by_lr": True},
    ),
    (
        "NAdam",
        {"lr": 0.01, "weight_decay": 0.01},
        O.Nadam,
        {"lr": 0.01, "eps_inside_sqrt": False, "weight_decay": 0.01},
    ),
    (
        "NAdam",
        {"lr": 0.01, "momentum_decay": 0.01, "betas": (0.8, 0.99), "maximize": True},
        O.Nadam,
        {"lr": 0.01, "eps_inside_sqrt": False, "momentum_decay": 0.01, "betas": (0.8, 0.99), "maximize": True},
    ),
    (
        "AdamW",
        {"lr": 0.01, "weight_decay": 0.05, "amsgrad": True, "maximize": True},
        O.AdamW,
        {
            "lr": 0.01,
            "betas": (0.9, 0.999),
            "eps_inside_sqrt": False,
            "weight_decay": 0.05,
            "decay_scaled_by_lr": True,
            "amsgrad": True,
            "maximize": True,
        },
    ),
    (
        "RMSprop",
        {"lr": 0.01, "maximize": True},
        O.RMSprop,
        {"lr": 0.01, "beta": 0.99, "eps_inside_sqrt": False, "maximize": True},
    ),
]


@pytest.mark.parametrize(
    ("torch_name", "torch_kw", "cls", "kw"), TORCH_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(TORCH_CASES)]
)
def test_torch_parity(torch_name, torch_kw, cls, kw):
    torch = torch_or_skip()
    params, grads = make_problem([1, 7, 4099], np.float32, seed=10)
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    topt = getattr(torch.optim, torch_name)(tparams, **torch_kw)
    opt = cls(params, **kw)
    for g in grads:
        for tp, gk in zip(tparams, g):
            tp.grad = torch.from_numpy(gk.copy())
        topt.step()
        opt.step(g)
    for ours, tp in zip(params, tparams):
        np.testing.assert_allclose(ours, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


# ---- any shapes ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    shapes=st.lists(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=9), min_size=1, max_size=6),
    case=st.sampled_from(range(len(CASES))),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_any_list_of_shapes_matches_reference(shapes, case, dtype):
    cls, hp = CASES[case]
    rng = np.random.default_rng(11)
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(3)]
    params0 = [p.copy() for p in params]
    opt = run_ours(cls, hp, params, grads)
    flat = run_reference(group_hp(opt), [p.ravel() for p in params0], [[x.ravel() for x in g] for g in grads])
    for ours, want in zip(params, flat):
        assert ours.shape == want.shape or ours.size == want.size
        np.testing.assert_allclose(ours.ravel(), want, **TOL[dtype])


# ---- fused clipping --------------------------------------------------------------------------
@pytest.mark.parametrize("norm_type", [1.0, 2.0, "inf"])
@pytest.mark.parametrize("convention", ["chapter", "torch"])
@pytest.mark.parametrize(("cls", "hp"), [CASES[0], CASES[15], CASES[11]], ids=["SGD", "Adam", "RMSprop"])
def test_fused_clip_step_equals_clip_then_step(cls, hp, norm_type, convention):
    from nndl_fast import clip

    params0, grads = make_problem([7, 4099, 30_001], np.float32, seed=12, steps=6)
    fused, separate = [p.copy() for p in params0], [p.copy() for p in params0]
    opt_f, opt_s = cls(fused, **hp), cls(separate, **hp)
    for t, g in enumerate(grads):
        max_norm = [1.0, 1e6][t % 2]  # clipping and not clipping
        assert opt_f.step(g, max_norm=max_norm, norm_type=norm_type, convention=convention)
        g_copy = [x.copy() for x in g]
        total = clip.clip_grad_norm_(g_copy, max_norm, norm_type=norm_type, convention=convention)
        opt_s.step(g_copy)
        assert opt_f.last_grad_norm == total
        for a, b in zip(fused, separate):
            # the coefficient multiplies inside the pass instead of rounding g first: ≤ 1 ulp apart per step
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fused_clip_over_param_groups_with_loss_scaling():
    from nndl_fast import clip

    rng = np.random.default_rng(13)
    a, b = rng.standard_normal(100), rng.standard_normal(50).astype(np.float32)
    a2, b2 = a.copy(), b.copy()
    opt = O.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    ga, gb = rng.standard_normal(100) * 512, (rng.standard_normal(50) * 512).astype(np.float32)
    opt.step([ga, gb], grad_scale=1 / 512, max_norm=0.5)
    true_norm = np.sqrt(np.sum((ga / 512) ** 2) + np.sum((gb.astype(np.float64) / 512) ** 2))
    assert opt.last_grad_norm == pytest.approx(true_norm, rel=1e-6)
    c = clip.clip_coefficient(opt.last_grad_norm, 0.5)
    np.testing.assert_allclose(a, a2 - 0.1 * c * ga / 512, rtol=1e-12)
    np.testing.assert_allclose(b, b2 - np.float32(0.1 * c / 512) * gb, rtol=1e-5)


def test_fused_clip_skips_nonfinite_from_the_norm_pass():
    p = [np.zeros(10, np.float32)]
    opt = O.Adam(p)
    g = [np.ones(10, np.float32)]
    g[0][3] = np.inf
    assert opt.step(g, max_norm=1.0, skip_nonfinite=True) is False
    assert not p[0].any() and opt.state_dict()["state"][0]["step"] == 0
    assert opt.last_grad_norm == np.inf


def test_changing_a_buffer_deciding_hyper_parameter_is_refused():
    p = [np.zeros(3)]
    opt = O.SGD(p, lr=0.1)
    opt.param_groups[0]["momentum"] = 0.9
    with pytest.raises(ValueError, match="decides the state buffers"):
        opt.step([np.ones(3)])
    assert not p[0].any()
    opt.param_groups[0]["momentum"] = 0.0
    opt.param_groups[0]["lr"] = 0.5  # an ordinary change, as a scheduler makes
    opt.step([np.ones(3)])
    assert np.all(p[0] == -0.5)
