"""A grad of None (a frozen or unused parameter) leaves its tensor out of the fused step: its
parameter and state are not touched, and (in the classes) its step count does not move, as in
torch. Never a zero-fill: a zero gradient would still move a parameter through its momentum."""

from __future__ import annotations

import numpy as np
import pytest

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
