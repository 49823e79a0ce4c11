"""Issue 10 for the optimizers, schedules and clipping: a rejected call changes nothing.

Edited hyper-parameters are checked again before any group runs, a rejected step keeps
last_grad_norm, replaced state buffers are used, overlap across groups is refused, a shared
optimizer loses no step, grad_scale and saved state are validated, errors name the argument,
and schedules take NumPy scalars.
"""

from __future__ import annotations

import copy
import math
import threading

import numpy as np
import pytest

from nndl_fast import clip, schedules
from nndl_fast import optim as O


def two_groups(cls=O.Adam, **hp):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(5), rng.standard_normal(7)
    opt = cls([{"params": [a]}, {"params": [b]}], lr=0.01, **hp)
    grads = [rng.standard_normal(5), rng.standard_normal(7)]
    opt.step(grads)
    return opt, [a, b], grads


def snapshot(opt, params):
    return [p.copy() for p in params], copy.deepcopy(opt.state_dict())


def assert_unchanged(opt, params, before):
    p_before, sd = before
    for p, q in zip(params, p_before):
        assert np.array_equal(p, q)
    now = opt.state_dict()
    for i, entry in sd["state"].items():
        for k, v in entry.items():
            assert np.array_equal(now["state"][i][k], v), (i, k)
    steps = {now["state"][i]["step"] for i in now["state"]}
    assert len(steps) == 1, f"step counts differ across groups: {steps}"


# ---- 7: every group's edits are checked, every schedule evaluated, before any kernel -------
EDITS = {
    "lr=-0.1": ("lr", -0.1, ValueError, "lr must be in"),
    "lr=nan": ("lr", math.nan, ValueError, "lr must be a finite number"),
    "lr='0.1'": ("lr", "0.1", TypeError, "lr must be a real number"),
    "lr=None": ("lr", None, TypeError, "lr must be a real number"),
    "lr=schedule<0": ("lr", lambda n: -1.0, ValueError, r"lr schedule's value at n=1 \(step 2\)"),
    "lr=schedule-None": ("lr", lambda n: None, TypeError, r"\(step 2\) must be a real number, got NoneType"),
    "lr=overflowing-schedule": (
        "lr",
        schedules.ExponentialDecay(1e300, beta=1e300),
        ValueError,
        "overflows at n=1",
    ),
    "eps=-1": ("eps", -1.0, ValueError, "eps must be in"),
    "betas=(0.9, 1.0)": ("betas", (0.9, 1.0), ValueError, r"betas\[1\] must be in"),
}


@pytest.mark.parametrize("group", [0, 1])
@pytest.mark.parametrize(("key", "value", "exc", "match"), EDITS.values(), ids=EDITS.keys())
def test_edited_hyper_parameter_is_rejected_before_any_group_steps(group, key, value, exc, match):
    opt, params, grads = two_groups()
    before = snapshot(opt, params)
    opt.param_groups[group][key] = value
    with pytest.raises(exc, match=match) as info:
        opt.step(grads)
    assert f"param_groups[{group}]" in str(info.value) or key == "lr"
    assert_unchanged(opt, params, before)


def test_edited_hyper_parameter_is_rejected_with_fused_clip_and_one_group():
    p = [np.zeros(4)]
    opt = O.Adam(p)
    opt.param_groups[0]["eps"] = -1.0
    with pytest.raises(ValueError, match=r"param_groups\[0\]: eps must be in"):
        opt.step([np.ones(4)], max_norm=1.0)
    assert not p[0].any() and opt.last_grad_norm is None


def test_schedule_is_evaluated_for_every_group_before_any_runs():
    calls = []

    def sched(n):
        calls.append(n)
        return 0.1

    opt, params, grads = two_groups(O.SGD)
    opt.param_groups[0]["lr"] = sched
    opt.param_groups[1]["lr"] = lambda n: math.inf
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match=r"lr schedule's value at n=1 \(step 2\) must be a finite number"):
        opt.step(grads)
    assert calls == [1]  # the second step: one update done
    assert_unchanged(opt, params, before)


# ---- 8: a rejected step keeps last_grad_norm ----------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "exc"),
    [
        ({"max_norm": math.nan}, ValueError),
        ({"max_norm": -1.0}, ValueError),
        ({"max_norm": "1"}, TypeError),
        ({"max_norm": 1.0, "convention": "keras"}, ValueError),
    ],
)
def test_rejected_step_keeps_last_grad_norm(kw, exc):
    p = [np.zeros(4)]
    opt = O.SGD(p, lr=0.1)
    opt.step([np.full(4, 2.0)], max_norm=1.0)
    assert opt.last_grad_norm == 4.0
    before = p[0].copy()
    with pytest.raises(exc):
        opt.step([np.full(4, 3.0)], **kw)
    assert opt.last_grad_norm == 4.0
    assert np.array_equal(p[0], before)


# ---- 10: step uses the buffers state holds ----------------------------------------------------
def test_replaced_state_buffer_is_used_by_step():
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(6)
    g = [rng.standard_normal(6) for _ in range(2)]
    p = [p0.copy()]
    opt = O.Adam(p, lr=0.01)
    opt.step([g[0]])
    new_m = np.full(6, 0.5)
    opt.state[0]["exp_avg"] = new_m
    opt.step([g[1]])
    assert opt.state[0]["exp_avg"] is new_m and not np.all(new_m == 0.5)  # updated in place

    # the same run through the functional form, with the buffer replaced between the steps
    q = [p0.copy()]
    m, v = [np.zeros(6)], [np.zeros(6)]
    O.adam(q, [g[0]], m, v, step=1, lr=0.01)
    m = [np.full(6, 0.5)]
    O.adam(q, [g[1]], m, v, step=2, lr=0.01)
    assert np.array_equal(p[0], q[0])
    assert np.array_equal(opt.state_dict()["state"][0]["exp_avg"], m[0])


def test_replaced_state_buffer_of_wrong_shape_or_missing_is_rejected():
    opt, params, grads = two_groups()
    before = snapshot(opt, params)
    good = opt.state[1]["exp_avg_sq"]
    opt.state[1]["exp_avg_sq"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"exp_avg_sq\[0\] has shape \(3,\)"):
        opt.step(grads)
    opt.state[1]["exp_avg_sq"] = good
    assert_unchanged(opt, params, before)
    m = opt.state[1].pop("exp_avg")
    with pytest.raises(ValueError, match=r"state\[1\] has no 'exp_avg' buffer"):
        opt.step(grads)
    opt.state[1]["exp_avg"] = m
    assert_unchanged(opt, params, before)


# ---- 11: overlap across groups ----------------------------------------------------------------
def test_parameters_overlapping_across_groups_are_rejected():
    a = np.zeros(8)
    with pytest.raises(ValueError, match="shares memory"):
        O.SGD([{"params": [a]}, {"params": [a[2:5]]}])
    opt = O.SGD([a[:4]])
    with pytest.raises(ValueError, match="shares memory"):
        opt.add_param_group({"params": [a[3:]]})
    assert len(opt.param_groups) == 1 and len(opt.state) == 1


def test_grad_that_is_another_groups_parameter_is_rejected():
    a, b = np.ones(4), np.ones(4)
    opt = O.SGD([{"params": [a]}, {"params": [b]}], lr=0.5)
    with pytest.raises(ValueError, match=r"param_groups\[1\].grads\[0\] shares memory with param_groups\[0\].params"):
        opt.step([np.ones(4), a])
    assert np.all(a == 1) and np.all(b == 1)


# ---- 12: one optimizer, two threads ------------------------------------------------------------
def test_optimizer_shared_by_two_threads_loses_no_step():
    p = [np.zeros(200_000)]
    opt = O.SGD(p, lr=1.0)
    g = [np.ones(200_000)]
    n = 150

    def run():
        for _ in range(n):
            opt.step(g)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opt.state_dict()["state"][0]["step"] == 2 * n
    assert np.all(p[0] == -2.0 * n)


def test_optimizer_with_its_lock_still_pickles_and_copies():
    import pickle

    p = [np.zeros(3)]
    opt = O.Adam(p)
    opt.step([np.ones(3)])
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        clone.step([np.ones(3)])
        assert clone.state_dict()["state"][0]["step"] == 2
    assert opt.state_dict()["state"][0]["step"] == 1


# ---- 13: grad_scale ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scale", "exc"), [(math.nan, ValueError), (math.inf, ValueError), ("2", TypeError), (None, TypeError)]
)
def test_bad_grad_scale_is_rejected(scale, exc):
    opt, params, grads = two_groups()
    before = snapshot(opt, params)
    with pytest.raises(exc, match="grad_scale"):
        opt.step(grads, grad_scale=scale)
    with pytest.raises(exc, match="grad_scale"):
        opt.step(grads, grad_scale=scale, max_norm=1.0)
    assert_unchanged(opt, params, before)
    p, g = [np.zeros(3)], [np.ones(3)]
    m, v = [np.zeros(3)], [np.zeros(3)]
    with pytest.raises(exc, match="grad_scale"):
        O.adam(p, g, m, v, step=1, grad_scale=scale)
    with pytest.raises(exc, match="grad_scale"):
        O.sgd(p, g, step=1, grad_scale=scale)
    assert not p[0].any() and not m[0].any()


@pytest.mark.parametrize("scale", [math.nan, math.inf, -math.inf])
def test_nonfinite_grad_scale_is_skipped_by_the_guard(scale):
    opt, params, grads = two_groups()
    before = snapshot(opt, params)
    assert opt.step(grads, grad_scale=scale, skip_nonfinite=True) is False
    assert opt.step(grads, grad_scale=scale, skip_nonfinite=True, max_norm=1.0) is False
    assert_unchanged(opt, params, before)
    single = [np.zeros(3)]
    one = O.Adam(single)
    assert one.step([np.ones(3)], grad_scale=scale, skip_nonfinite=True) is False
    assert not single[0].any() and one.state_dict()["state"][0]["step"] == 0
    m, v = [np.zeros(3)], [np.zeros(3)]
    assert O.adam(single, [np.ones(3)], m, v, step=1, grad_scale=scale, skip_nonfinite=True) is False
    assert O.nadam(single, [np.ones(3)], m, v, step=1, mu_product=1.0, grad_scale=scale, skip_nonfinite=True) == (
        False,
        1.0,
    )
    assert not single[0].any() and not m[0].any()


# ---- 14, 15: saved and passed-in state, clear errors --------------------------------------------
def test_load_state_dict_rejects_a_bad_step_naming_it_and_changes_nothing():
    opt, params, grads = two_groups()
    before = snapshot(opt, params)
    for bad, exc in ((-3, ValueError), (2.5, TypeError), ("2", TypeError), (None, TypeError)):
        sd = copy.deepcopy(before[1])
        sd["state"][0]["exp_avg"][:] = 7.0  # group 0 would be loaded first
        sd["state"][1]["step"] = bad
        with pytest.raises(exc, match=r"state_dict\['state'\]\[1\]\['step'\]"):
            opt.load_state_dict(sd)
        assert_unchanged(opt, params, before)


@pytest.mark.parametrize("key", ["step", "mu_product"])
def test_load_state_dict_missing_scalar_names_it(key):
    p = [np.zeros(3)]
    opt = O.Nadam(p)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    del sd["state"][0][key]
    with pytest.raises(ValueError, match=rf"state_dict\['state'\]\[0\] lacks '{key}'"):
        opt.load_state_dict(sd)


@pytest.mark.parametrize("value", [math.nan, -0.5, 1.5, math.inf])
def test_load_state_dict_rejects_a_bad_mu_product(value):
    p = [np.zeros(3)]
    opt = O.Nadam(p)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    sd["state"][0]["mu_product"] = value
    with pytest.raises(ValueError, match=r"state_dict\['state'\]\[0\]\['mu_product'\]"):
        opt.load_state_dict(sd)
    assert opt.state_dict()["state"][0]["mu_product"] != value


def test_load_state_dict_with_a_missing_entry_names_it():
    p = [np.zeros(3)]
    opt = O.Adam(p)
    sd = opt.state_dict()
    del sd["state"][0]
    with pytest.raises(ValueError, match=r"state_dict\['state'\]\[0\] is missing"):
        opt.load_state_dict(sd)


@pytest.mark.parametrize("mu_product", [math.nan, 4.0, -1.0, "1.0"])
def test_nadam_mu_product_is_checked(mu_product):
    """4.0 with β1 = 0.5, ψ = 0: μ₁ = 0.25, so 1 − Π μ = 0 (a bare ZeroDivisionError before)."""
    p, g = [np.zeros(3)], [np.ones(3)]
    m, v = [np.zeros(3)], [np.zeros(3)]
    with pytest.raises((TypeError, ValueError), match="mu_product"):
        O.nadam(p, g, m, v, step=1, mu_product=mu_product, betas=(0.5, 0.9), momentum_decay=0.0)
    assert not p[0].any() and not m[0].any()


@pytest.mark.parametrize("momentum", [math.inf, math.nan])
def test_infinite_momentum_is_rejected(momentum):
    with pytest.raises(ValueError, match="momentum must be a finite number"):
        O.SGD([np.zeros(3)], momentum=momentum)
    p = [np.zeros(3)]
    with pytest.raises(ValueError, match="momentum must be a finite number"):
        O.sgd(p, [np.ones(3)], [np.zeros(3)], step=1, momentum=momentum)
    assert not p[0].any()


def test_schedule_overflow_is_a_value_error_naming_the_schedule():
    with pytest.raises(ValueError, match=r"ExponentialDecay\(lr0=0.001, beta=10.0.*overflows at n=400"):
        schedules.ExponentialDecay(1e-3, beta=10)(400)
    with pytest.raises(ValueError, match=r"InverseTimeDecay\(.*overflows at n=1000"):
        schedules.InverseTimeDecay(1e-3)(10**400)


# ---- 16: schedules take NumPy scalars ------------------------------------------------------------
@pytest.mark.parametrize("cls", [schedules.ExponentialDecay, schedules.InverseTimeDecay, schedules.NaturalExpDecay])
def test_schedules_accept_numpy_scalars(cls):
    ours = cls(np.float32(0.5), np.float64(0.9), np.int64(3), np.bool_(True))
    plain = cls(float(np.float32(0.5)), 0.9, 3, True)
    for n in (0, 7, 20):
        assert ours(np.int64(n)) == plain(n)
    assert schedules.InverseSqrtDecay(np.float64(0.1))(np.int32(3)) == 0.05


@pytest.mark.parametrize(
    ("kw", "exc"), [({"lr0": "0.1"}, TypeError), ({"decay_steps": 2.0}, TypeError), ({"staircase": 1}, TypeError)]
)
def test_schedules_reject_bad_arguments_naming_them(kw, exc):
    args = {"lr0": 0.1, "beta": 0.9, **kw}
    with pytest.raises(exc, match=next(iter(kw))):
        schedules.ExponentialDecay(**args)


# ---- clipping arguments -------------------------------------------------------------------------
CLIP_CALLS = {
    "clip_value='0.5'": (lambda g: clip.clip_grad_value_(g, "0.5"), TypeError, "clip_value"),
    "lower='0'": (lambda g: clip.clip_grad_value_(g, lower="0", upper=1.0), TypeError, "lower"),
    "norm_type='2'": (lambda g: clip.clip_grad_norm_(g, 1.0, "2"), ValueError, "norm_type"),
    "error_if_nonfinite='yes'": (
        lambda g: clip.clip_grad_norm_(g, 1.0, error_if_nonfinite="yes"),
        TypeError,
        "error_if_nonfinite",
    ),
}


@pytest.mark.parametrize(("call", "exc", "match"), CLIP_CALLS.values(), ids=CLIP_CALLS.keys())
def test_clip_rejects_strings_for_numbers_changing_nothing(call, exc, match):
    g = [np.full(4, 3.0)]
    with pytest.raises(exc, match=match):
        call(g)
    assert np.all(g[0] == 3.0)


def test_hyper_parameter_list_edited_in_place_is_checked_again():
    p = [np.zeros(3)]
    opt = O.Adam(p, betas=[0.9, 0.99])
    opt.step([np.ones(3)])
    opt.param_groups[0]["betas"][1] = 1.0  # the same list object, edited
    before = p[0].copy()
    with pytest.raises(ValueError, match=r"betas\[1\] must be in"):
        opt.step([np.ones(3)])
    assert np.array_equal(p[0], before)


def test_a_new_state_dict_for_a_parameter_is_used_and_tracked():
    p = [np.zeros(3)]
    opt = O.SGD(p, lr=1.0, momentum=0.5)
    opt.step([np.ones(3)])
    opt.state[0] = {"momentum_buffer": np.full(3, 10.0)}
    opt.step([np.zeros(3)])  # Δθ = 0.5·10 − 0 = 5
    assert np.array_equal(p[0], np.full(3, -1.0 + 5.0))
    opt.state[0]["momentum_buffer"] = np.full(3, 2.0)  # an edit of the new dict is seen too
    opt.step([np.zeros(3)])
    assert np.array_equal(p[0], np.full(3, 4.0 + 1.0))


def test_kernel_coefficients_cross_by_name():
    from nndl_fast import _core

    p, g, m, v = ([np.zeros(3)] for _ in range(4))
    terms = {"scale": 1.0, "l2": 0.0, "l1": 0.0, "l1_eps": 1e-8, "decay": 1.0}
    coeffs = {"beta1": 0.9, "beta2": 0.99, "c_m": 0.1, "c_g": 0.0, "c2": 1.0, "eps_in": 1e-8, "eps_out": 0.0}
    bad = {**coeffs, "c_n": coeffs["c_m"]}
    del bad["c_m"]
    with pytest.raises(ValueError, match="coeffs lacks 'c_m'"):
        _core.adam_step(p, g, m, v, None, terms, bad)
    with pytest.raises(ValueError, match="terms must have exactly the keys scale, l2, l1, l1_eps, decay"):
        _core.adam_step(p, g, m, v, None, {**terms, "l3": 0.0}, coeffs)
    with pytest.raises(TypeError, match=r"coeffs\['c2'\] must be a float"):
        _core.adam_step(p, g, m, v, None, terms, {**coeffs, "c2": "1"})
    assert not p[0].any()
    assert _core.adam_step(p, [np.ones(3)], m, v, None, terms=terms, coeffs=coeffs)
    assert p[0].all()


@pytest.mark.parametrize(
    "name, value",
    [
        ("lr", 0.05),
        ("weight_decay", 0.1),
        ("maximize", True),
        ("decoupled_weight_decay", 0.01),
        ("decay_scaled_by_lr", True),
        ("betas", (0.8, 0.9)),
        ("eps", 1e-3),
    ],
)
def test_group_edits_and_grad_scale_changes_take_effect_at_the_next_step(name, value):
    """step reuses what it computed while nothing changed (checks, constants, gradient terms):
    an edit or a new grad_scale must reach the kernel, exactly as a fresh functional call."""
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(37)
    grads = [rng.standard_normal(37) for _ in range(5)]
    a = [p0.copy()]
    opt = O.Adam(a, lr=0.01, decoupled_weight_decay=0.001)
    b, m, v = [p0.copy()], [np.zeros(37)], [np.zeros(37)]
    hp = {"lr": 0.01, "decoupled_weight_decay": 0.001}
    for t, g in enumerate(grads, 1):
        if t == 3:
            opt.param_groups[0][name] = value
            hp[name] = value
        scale = 0.5 if t in (2, 4) else 1.0
        opt.step([g], grad_scale=scale)
        O.adam(b, [g], m, v, step=t, grad_scale=scale, **hp)
        np.testing.assert_array_equal(a[0], b[0])


# -- read-only list items as DLPack capsules (how nndl_fast.torch hands over its gradients) ------
def _capsule_case():
    rng = np.random.default_rng(3)
    sizes = (1, 7, 4099)
    params = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    return params, grads


def test_grads_as_dlpack_capsules_step_as_the_arrays_do():
    params, grads = _capsule_case()
    pa, pb = [p.copy() for p in params], [p.copy() for p in params]
    a, b = O.Adam(pa, lr=0.1), O.Adam(pb, lr=0.1)
    for _ in range(3):
        a.step(grads, max_norm=1.0)
        b.step([g.__dlpack__() for g in grads], max_norm=1.0)
    assert all(np.array_equal(x, y) for x, y in zip(pa, pb))
    assert a.last_grad_norm == b.last_grad_norm


@pytest.mark.parametrize(
    "k, make, exc, match",
    [
        (
            1,
            lambda g: g.astype(np.float16).__dlpack__(),
            TypeError,
            r"grads\[1\] must be float32 or float64, got a DLPack",
        ),
        (1, lambda g: np.ones(7, np.int32).__dlpack__(), TypeError, r"grads\[1\] must be float32 or float64"),
        (1, lambda g: np.repeat(g, 2)[::2].__dlpack__(), ValueError, r"grads\[1\] must be C-contiguous"),
        (1, lambda g: np.ones(8, np.float32).__dlpack__(), ValueError, r"grads\[1\] has shape \(8,\) but params\[1\]"),
        (0, lambda g: g.astype(np.float64).__dlpack__(), TypeError, r"grads\[0\] has dtype float64 but params\[0\]"),
    ],
)
def test_bad_dlpack_grad_is_rejected_naming_it_and_changes_nothing(k, make, exc, match):
    params, grads = _capsule_case()
    opt = O.Adam(params, lr=0.1)
    opt.step(grads)
    before = snapshot(opt, params)
    bad = [g.__dlpack__() for g in grads]
    bad[k] = make(grads[k])
    with pytest.raises(exc, match=match):
        opt.step(bad)
    assert_unchanged(opt, params, before)


def test_dlpack_grad_overlapping_a_parameter_is_rejected():
    params, grads = _capsule_case()
    opt = O.Adam(params, lr=0.1)
    with pytest.raises(ValueError, match=r"grads\[1\] shares memory with params\[1\]"):
        opt.step([grads[0], params[1].__dlpack__(), grads[2]])


def test_dlpack_capsule_is_refused_where_the_list_is_written():
    params, grads = _capsule_case()
    with pytest.raises(TypeError, match=r"params\[0\] must be a numpy.ndarray, got PyCapsule"):
        O.Adam([p.__dlpack__() for p in params], lr=0.1).step(grads)
