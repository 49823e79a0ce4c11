"""Optimizer.step(max_norm=..., clip_per_tensor=True): each gradient clipped by its own norm
inside the update pass, against the NumPy reference (clip each tensor, then the rule's
reference step), Keras 3's ``clipnorm``, the global path, and bad input."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from conftest import SIMD_TARGETS

import nndl_fast
from nndl_fast import optim as O
from nndl_fast.reference import clip as RC
from nndl_fast.reference import optim as R

# The nine rules, each with options that exercise its state buffers.
RULES = [
    (O.SGD, {"lr": 0.1}),
    (O.Momentum, {"lr": 0.05}),
    (O.Nesterov, {"lr": 0.05, "weight_decay": 0.01}),
    (O.AdaGrad, {"initial_accumulator_value": 0.1}),
    (O.RMSprop, {"centered": True, "momentum": 0.9}),
    (O.AdaDelta, {}),
    (O.Adam, {"amsgrad": True, "maximize": True}),
    (O.AdamW, {"weight_decay": 0.01}),
    (O.Nadam, {}),
]
IDS = [cls.__name__ for cls, _ in RULES]
SIZES = [0, 1, 7, 4099, 40_001]
TOL = {np.float32: {"rtol": 2e-4, "atol": 2e-5}, np.float64: {"rtol": 1e-10, "atol": 1e-12}}


def make_problem(sizes, dtype, seed=0, steps=6):
    """Gradients whose norms straddle max_norm = 5: tensors of a few elements are left alone,
    the large ones clipped, one tensor scaled up at every other step."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(dtype) for n in sizes]
    grads = [
        [(rng.standard_normal(n) * (20.0 if (t + k) % 2 else 1.0)).astype(dtype) for k, n in enumerate(sizes)]
        for t in range(steps)
    ]
    return params, grads


def reference(opt, params0, grads, max_norm, norm_type=2.0, convention="chapter", grad_scale=1.0):
    """Each tensor on its own, in float64: its gradient clipped by its own norm (of grad_scale·g),
    then the rule's reference step."""
    hp = {k: v for k, v in opt.param_groups[0].items() if k != "params"}
    rule = R.RULES[opt._rule.name]
    out = []
    for k, p0 in enumerate(params0):
        theta = p0.astype(np.float64)
        state = {n: np.zeros_like(theta) for n in ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")}
        state.update({n: np.zeros_like(theta) for n in ("square_avg", "acc_delta", "grad_avg")})
        state["sum"] = np.full_like(theta, hp.get("initial_accumulator_value", 0.0))
        state["mu_product"] = 1.0
        for t, g in enumerate(grads, start=1):
            gk = [g[k].astype(np.float64) * grad_scale]
            RC.clip_per_tensor_(gk, max_norm, norm_type, convention=convention)
            theta = rule(theta, gk[0], state, t, hp)
        out.append(theta)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "hp"), RULES, ids=IDS)
def test_parity_with_clip_each_then_reference_step(cls, hp, dtype, simd, nthreads):
    params, grads = make_problem(SIZES, dtype)
    params0 = [p.copy() for p in params]
    opt = cls(params, **hp)
    for g in grads:
        assert opt.step(g, max_norm=5.0, clip_per_tensor=True) is True
        want = [np.linalg.norm(x.astype(np.float64)) for x in g]
        np.testing.assert_allclose(opt.last_grad_norm, want, rtol=1e-12)
    for k, (ours, want) in enumerate(zip(params, reference(opt, params0, grads, 5.0))):
        np.testing.assert_allclose(ours, want, **TOL[dtype], err_msg=f"tensor {k} (n={SIZES[k]})")


@pytest.mark.parametrize("convention", ["chapter", "torch"])
@pytest.mark.parametrize("norm_type", [1.0, 3.0, "inf"])
@pytest.mark.parametrize(("cls", "hp"), [RULES[0], RULES[6]], ids=["SGD", "Adam"])
def test_norm_types_conventions_and_grad_scale(cls, hp, norm_type, convention):
    params, grads = make_problem([7, 4099, 1], np.float64, seed=1)
    params0 = [p.copy() for p in params]
    opt = cls(params, **hp)
    for g in grads:
        opt.step(g, grad_scale=0.5, max_norm=2.0, norm_type=norm_type, convention=convention, clip_per_tensor=True)
    p = math.inf if norm_type == "inf" else norm_type
    np.testing.assert_allclose(
        opt.last_grad_norm, [RC.global_norm([0.5 * x], p) for x in grads[-1]], rtol=1e-12
    )  # the norms of grad_scale·g
    want = reference(opt, params0, grads, 2.0, p, convention, grad_scale=0.5)
    for ours, w in zip(params, want):
        np.testing.assert_allclose(ours, w, **TOL[np.float64])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "hp"), RULES, ids=IDS)
def test_bitwise_across_targets_threads_and_the_global_path(cls, hp, dtype):
    """Every SIMD target, 1 and 2 threads: the same bits; and a tensor clipped on its own equals
    the global clip of a list holding only it (both fold scale·c into one rounding)."""
    sizes = [3, 70_001, 1]
    params0, grads = make_problem(sizes, dtype, seed=2, steps=4)
    results = []
    for target in SIMD_TARGETS:
        for n in (1, 2):
            with nndl_fast.simd_target(target), nndl_fast.threads(n):
                params = [p.copy() for p in params0]
                opt = cls(params, **hp)
                for g in grads:
                    opt.step(g, grad_scale=0.75, max_norm=5.0, clip_per_tensor=True)
                results.append((f"{target}/{n}thr", params))
    singles = []
    for k in range(len(sizes)):
        p = [params0[k].copy()]
        opt = cls(p, **hp)
        for g in grads:
            opt.step([g[k]], grad_scale=0.75, max_norm=5.0)
        singles.append(p[0])
    results.append(("global clip, one tensor at a time", singles))
    base_name, base = results[0]
    for name, got in results[1:]:
        for k, (a, b) in enumerate(zip(base, got)):
            assert np.array_equal(a, b), f"{name} differs from {base_name} in tensor {k}"


def test_none_grads_param_groups_and_step_counts():
    """A None grad leaves its parameter out (norm NaN); groups of two dtypes and parameters at
    different step counts each get their own tensors' coefficients."""
    rng = np.random.default_rng(3)
    a, b, c = rng.standard_normal(50), rng.standard_normal(9), rng.standard_normal(300).astype(np.float32)
    params = [a, b, c]
    params0 = [x.copy() for x in params]
    opt = O.Adam([{"params": [a, b]}, {"params": [c], "lr": 1e-2}], lr=1e-3)
    steps = [
        [rng.standard_normal(50) * 4, None, (rng.standard_normal(300) * 4).astype(np.float32)],
        [rng.standard_normal(50) * 4, rng.standard_normal(9) * 4, (rng.standard_normal(300) * 4).astype(np.float32)],
    ]
    for g in steps:
        assert opt.step(g, max_norm=1.0, clip_per_tensor=True)
    norms = opt.last_grad_norm
    assert norms.shape == (3,) and norms.dtype == np.float64 and np.all(np.isfinite(norms))
    # each tensor alone: its own optimizer, fed its own clipped gradients
    for k, (p0, ours) in enumerate(zip(params0, params)):
        p = [p0.copy()]
        alone = O.Adam(p, lr=1e-2 if k == 2 else 1e-3)
        for g in steps:
            if g[k] is not None:
                gk = [g[k].copy()]
                RC.clip_per_tensor_(gk, 1.0)
                alone.step(gk)
        np.testing.assert_allclose(ours, p[0], rtol=1e-5 if k == 2 else 1e-12, atol=1e-7)
    # the None step's norm is NaN at its index
    opt.step([steps[0][0], None, steps[0][2]], max_norm=1.0, clip_per_tensor=True)
    assert np.isnan(opt.last_grad_norm[1]) and np.isfinite(opt.last_grad_norm[[0, 2]]).all()
    assert [opt.state_dict()["state"][i]["step"] for i in range(3)] == [3, 1, 3]


def test_zero_gradient_is_left_alone_and_inf_max_norm_never_clips():
    """Keras leaves g = 0 unchanged (its ‖g‖ = 0 branch); so does the chapter coefficient."""
    p, q = [np.ones(4), np.ones(3)], [np.ones(4), np.ones(3)]
    g = [np.zeros(4), np.full(3, 10.0)]
    O.SGD(p, lr=0.5).step(g, max_norm=math.inf, clip_per_tensor=True)
    O.SGD(q, lr=0.5).step(g)
    assert all(np.array_equal(x, y) for x, y in zip(p, q))
    opt = O.SGD(p, lr=0.5)
    opt.step(g, max_norm=1.0, clip_per_tensor=True)
    assert opt.last_grad_norm[0] == 0.0 and np.array_equal(p[0], q[0])
    np.testing.assert_allclose(np.linalg.norm(q[1] - p[1]), 0.5, rtol=1e-12)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_skip_nonfinite_skips_on_any_tensors_norm(bad):
    p = [np.zeros(10, np.float32), np.zeros(3, np.float32)]
    opt = O.Adam(p)
    g = [np.ones(10, np.float32), np.ones(3, np.float32)]
    g[1][2] = bad
    assert opt.step(g, max_norm=1.0, clip_per_tensor=True, skip_nonfinite=True) is False
    assert not p[0].any() and not p[1].any() and opt.state_dict()["state"][0]["step"] == 0
    assert opt.last_grad_norm[0] == pytest.approx(math.sqrt(10)) and not np.isfinite(opt.last_grad_norm[1])
    assert opt.step([np.ones(10, np.float32), np.ones(3, np.float32)], max_norm=1.0, clip_per_tensor=True)


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"clip_per_tensor": True}, ValueError, "max_norm"),
        ({"max_norm": 0.0, "clip_per_tensor": True}, ValueError, "max_norm"),
        ({"max_norm": -1.0, "clip_per_tensor": True}, ValueError, "max_norm"),
        ({"max_norm": 1.0, "clip_per_tensor": 1}, TypeError, "clip_per_tensor"),
        ({"max_norm": 1.0, "clip_per_tensor": "yes"}, TypeError, "clip_per_tensor"),
        ({"clip_per_tensor": None}, TypeError, "clip_per_tensor"),
        ({"max_norm": 1.0, "clip_per_tensor": True, "convention": "keras"}, ValueError, "convention"),
        ({"max_norm": 1.0, "clip_per_tensor": True, "norm_type": 0.0}, ValueError, "norm_type"),
        ({"max_norm": 1.0, "clip_per_tensor": True, "grads": "f32"}, TypeError, "grads"),
    ],
)
def test_a_rejected_call_changes_nothing(kwargs, error, names):
    p = [np.zeros(4), np.zeros(3)]
    opt = O.Adam(p)
    opt.step([np.ones(4), np.ones(3)], max_norm=1.0, clip_per_tensor=True)
    before = opt.state_dict()
    norms = opt.last_grad_norm.copy()
    kwargs = dict(kwargs)
    grads = [np.ones(4), np.ones(3, np.float32) if kwargs.pop("grads", None) else np.ones(3)]
    with pytest.raises(error, match=names):
        opt.step(grads, **kwargs)
    after = opt.state_dict()
    assert np.array_equal(opt.last_grad_norm, norms)
    assert [s["step"] for s in after["state"].values()] == [s["step"] for s in before["state"].values()]
    for i in before["state"]:
        for name, v in before["state"][i].items():
            assert np.array_equal(v, after["state"][i][name])


# ---- Keras 3 -------------------------------------------------------------------------------
# Keras runs in a child process: importing jax here would make every later os.fork() of the
# test session (the process executors of test_search) warn that jax is multithreaded.
KERAS_SIZES, KERAS_MAX_NORM, KERAS_STEPS = [1, 7, 33, 500], 1.0, 50


def keras_problem():
    rng = np.random.default_rng(4)
    params0 = [rng.standard_normal(n) for n in KERAS_SIZES]
    grads = [
        [rng.standard_normal(n) * (3.0 if k % 2 else 0.2) for k, n in enumerate(KERAS_SIZES)]
        for _ in range(KERAS_STEPS)
    ]
    grads[7][2][:] = 0.0  # Keras's ‖g‖ = 0 branch
    return params0, grads


KERAS_CHILD = """
import json, os, sys
os.environ["KERAS_BACKEND"] = "jax"
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)  # float64 variables
import keras
sys.path.insert(0, sys.argv[1])
from test_optim_clip_per_tensor import KERAS_MAX_NORM, keras_problem
rows, out = json.loads(sys.argv[2]), {}
for i, (name, khp) in enumerate(rows):
    params0, grads = keras_problem()
    opt = getattr(keras.optimizers, name)(**khp, clipnorm=KERAS_MAX_NORM)
    variables = [keras.Variable(p, dtype="float64") for p in params0]
    for g in grads:
        opt.apply_gradients(zip([keras.ops.convert_to_tensor(x, dtype="float64") for x in g], variables))
    out.update({f"{i}_{k}": np.asarray(v.value) for k, v in enumerate(variables)})
np.savez(sys.argv[3], **out)
"""


# Learning rates are powers of 2: Keras keeps the learning rate in a float32 variable.
KERAS = [
    ("SGD", {"learning_rate": 0.125}, O.SGD, {"lr": 0.125}),
    ("SGD", {"learning_rate": 0.0625, "momentum": 0.9}, O.Momentum, {"lr": 0.0625, "momentum": 0.9}),
    (
        "SGD",
        {"learning_rate": 0.0625, "momentum": 0.9, "nesterov": True},
        O.Nesterov,
        {"lr": 0.0625, "momentum": 0.9},
    ),
    (
        "Adagrad",
        {"learning_rate": 0.125, "initial_accumulator_value": 0.1, "epsilon": 1e-7},
        O.AdaGrad,
        {"lr": 0.125, "initial_accumulator_value": 0.1, "eps": 1e-7},
    ),
    (
        "RMSprop",
        {"learning_rate": 2**-7, "rho": 0.9, "epsilon": 1e-7},
        O.RMSprop,
        {"lr": 2**-7, "beta": 0.9, "eps": 1e-7},
    ),
    ("Adadelta", {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-6}, O.AdaDelta, {"lr": 1.0, "rho": 0.9, "eps": 1e-6}),
    # ε = 0: Keras adds ε to the uncorrected √v, a placement of ε that convention presets add.
    ("Adam", {"learning_rate": 2**-7, "epsilon": 0.0}, O.Adam, {"lr": 2**-7, "betas": (0.9, 0.999), "eps": 0.0}),
    (
        "Adam",
        {"learning_rate": 2**-7, "epsilon": 0.0, "amsgrad": True},
        O.Adam,
        {"lr": 2**-7, "betas": (0.9, 0.999), "eps": 0.0, "amsgrad": True},
    ),
    (
        "AdamW",
        {"learning_rate": 2**-7, "epsilon": 0.0, "weight_decay": 0.01},
        O.AdamW,
        {"lr": 2**-7, "betas": (0.9, 0.999), "eps": 0.0, "weight_decay": 0.01, "decay_scaled_by_lr": True},
    ),
]


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory):
    """Every row of KERAS run by Keras 3 (jax backend) in one child process."""
    import importlib.util
    import json
    import subprocess
    import sys

    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("jax") is None:
        pytest.skip("keras with jax not installed: the Keras comparison is not run")
    out = tmp_path_factory.mktemp("keras") / "keras.npz"
    rows = json.dumps([[name, khp] for name, khp, _, _ in KERAS])
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, "-c", KERAS_CHILD, here, rows, str(out)], check=True, timeout=600)
    with np.load(out) as f:
        return dict(f)


@pytest.mark.slow
@pytest.mark.parametrize("row", range(len(KERAS)), ids=[f"{c.__name__}-{i}" for i, (_, _, c, _) in enumerate(KERAS)])
def test_matches_keras_clipnorm(keras_results, row):
    _, _, cls, hp = KERAS[row]
    params0, grads = keras_problem()
    ours = [p.copy() for p in params0]
    opt = cls(ours, **hp)
    for g in grads:
        opt.step(g, max_norm=KERAS_MAX_NORM, clip_per_tensor=True)
    for k, p in enumerate(ours):
        want = keras_results[f"{row}_{k}"]  # relative to the tensor's scale: an entry crossing 0 cancels
        np.testing.assert_allclose(p, want, rtol=1e-12, atol=1e-12 * np.max(np.abs(want)), err_msg=f"tensor {k}")
