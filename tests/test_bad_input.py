"""Bad input, from one table: every public entry point, every array argument, every kind of
wrong array; every hyper-parameter, every kind of wrong value.

Each case asserts either a clear TypeError/ValueError naming the argument, with every input,
output and piece of state bitwise unchanged, or the documented result (a read-only or strided
input that is only read gives the same result as a contiguous one; a torch tensor the same as
its array). Cases that crashed the process before (SIGFPE, SIGSEGV, deadlocks) run in a
subprocess at the end, so a regression fails one test instead of killing the suite.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nndl_fast
from nndl_fast import augment, clip, dropout, init, loss, norm, optim, preprocessing, schedules, train
from nndl_fast import random as nrandom

# --------------------------------------------------------------------------------------------
# The table


@dataclass
class Entry:
    """One public entry point.

    build(dtype) returns fresh valid arguments (a dict); call(args) runs the entry point.
    arrays: the array arguments, or list arguments (name, index) for list items;
    written: the names updated in place; optional: names that may be None;
    hyper: hyper-parameter name -> values that must be rejected;
    state: for objects, a function returning the object whose state_dict must not change.
    """

    name: str
    build: Callable[[Any], dict]
    call: Callable[[dict], Any]
    arrays: tuple = ()
    written: frozenset = frozenset()
    optional: frozenset = frozenset()
    hyper: dict = field(default_factory=dict)
    may_alias: frozenset = frozenset()  # (written, other) pairs allowed to be the same array
    any_shape: bool = False  # arrays of any shape (clip's list items, a dropout layer's input)
    prepare: dict = field(default_factory=dict)  # hyper prefix -> fn(args, hyper, value) -> call kwargs
    any_float: bool = False  # a lone array whose dtype fixes the call's: the other float is valid too
    grads_of_params: bool = False  # torch's clip call shape: a tensor stands for its .grad


def _r(*shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed + len(shape)).standard_normal(shape).astype(dtype)


# Values no real-valued hyper-parameter may take (beyond its own range, listed per entry).
NOT_A_NUMBER = ["0.1", None, True, float("nan"), [0.1], np.array([0.1, 0.2])]
NOT_AN_INT = ["3", None, 2.5, True, float("nan")]


def _lists(n, dtype, seeds=(0,), shapes=((7,), (3, 5), (1,))):
    return [[_r(*s, dtype=dtype, seed=seed + 10 * k) for k, s in enumerate(shapes)] for seed in seeds]


def _optimizer_build(*state: str) -> Callable[[Any], dict]:
    """Builds params, grads (3 tensors of odd shapes) and the named state lists, zero-filled."""

    def build(dtype):
        p, g = _lists(2, dtype, seeds=(1, 2))
        return {"params": p, "grads": g, **{name: [np.zeros_like(a) for a in p] for name in state}}

    return build


_adam_build = _optimizer_build("exp_avg", "exp_avg_sq")
_sgd_build = _optimizer_build("momentum_buffer")
_rmsprop_build = _optimizer_build("square_avg", "momentum_buffer", "grad_avg")
_adagrad_build = _optimizer_build("sum")
_adadelta_build = _optimizer_build("square_avg", "acc_delta")
_amsgrad_build = _optimizer_build("exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def _bn_build(dtype):
    x = _r(4, 3, 5, dtype=dtype)
    return {
        "x": x,
        "gamma": _r(3, dtype=dtype, seed=3),
        "beta": _r(3, dtype=dtype, seed=4),
        "running_mean": np.zeros(3, dtype),
        "running_var": np.ones(3, dtype),
        "out[0]": np.zeros_like(x),
        "out[1]": np.zeros(3, dtype),
        "out[2]": np.zeros(3, dtype),
    }


def _bn_back_build(dtype):
    x, gamma = _r(4, 3, 5, dtype=dtype), _r(3, dtype=dtype, seed=3)
    f = norm.batch_norm_forward(x, gamma)
    return {
        "dy": _r(4, 3, 5, dtype=dtype, seed=9),
        "x": x,
        "save_mean": f.save_mean,
        "save_rstd": f.save_rstd,
        "gamma": gamma,
        "out[0]": np.zeros_like(x),
        "out[1]": np.zeros(3, dtype),
        "out[2]": np.zeros(3, dtype),
    }


def _ln_build(dtype):
    x = _r(4, 6, dtype=dtype)
    return {
        "x": x,
        "gamma": _r(6, dtype=dtype, seed=3),
        "beta": _r(6, dtype=dtype, seed=4),
        "out[0]": np.zeros_like(x),
        "out[1]": np.zeros(4, dtype),
        "out[2]": np.zeros(4, dtype),
    }


def _ln_back_build(dtype):
    x, gamma = _r(4, 6, dtype=dtype), _r(6, dtype=dtype, seed=3)
    f = norm.layer_norm_forward(x, 6, gamma)
    return {
        "dy": _r(4, 6, dtype=dtype, seed=9),
        "x": x,
        "save_mean": f.save_mean,
        "save_rstd": f.save_rstd,
        "gamma": gamma,
        "out[0]": np.zeros_like(x),
        "out[1]": np.zeros(6, dtype),
        "out[2]": np.zeros(6, dtype),
    }


def _wn_build(dtype):
    v = _r(4, 3, dtype=dtype)
    return {"v": v, "g": _r(4, dtype=dtype, seed=5), "out": np.zeros_like(v)}


def _wn_back_build(dtype):
    v = _r(4, 3, dtype=dtype)
    return {
        "dy": _r(4, 3, dtype=dtype, seed=8),
        "v": v,
        "g": _r(4, dtype=dtype, seed=5),
        "out[0]": np.zeros_like(v),
        "out[1]": np.zeros(4, dtype),
    }


def _lrn_build(dtype):
    x = _r(2, 7, 3, 3, dtype=dtype)
    return {"x": x, "out": np.zeros_like(x)}


def _lrn_back_build(dtype):
    x = _r(2, 7, 3, 3, dtype=dtype)
    return {"dy": _r(2, 7, 3, 3, dtype=dtype, seed=6), "x": x, "out": np.zeros_like(x)}


def _drop_build(dtype):
    x = _r(5, 9, dtype=dtype)
    return {"x": x, "out": np.zeros_like(x), "mask_out": np.zeros(dropout.packed_size(45), np.uint8)}


def _drop_back_build(dtype):
    mask = np.zeros(dropout.packed_size(45), np.uint8)
    dropout.dropout(_r(5, 9, dtype=dtype), keep_prob=0.7, seed=3, mask_out=mask)
    return {"dy": _r(5, 9, dtype=dtype, seed=2), "mask": mask, "out": np.zeros((5, 9), dtype)}


def _ln_axis_build(dtype):
    x = _r(4, 6, 5, dtype=dtype)  # normalised over axis 1 (Keras's axis=1): a strided block
    return {
        "x": x,
        "gamma": _r(6, dtype=dtype, seed=3),
        "beta": _r(6, dtype=dtype, seed=4),
        "out[0]": np.zeros_like(x),
        "out[1]": np.zeros((4, 5), dtype),
        "out[2]": np.zeros((4, 5), dtype),
    }


def _ln_axis_back_build(dtype):
    x, gamma = _r(4, 6, 5, dtype=dtype), _r(6, dtype=dtype, seed=3)
    f = norm.layer_norm_forward(x, None, gamma, axis=1, convention="keras")
    return {
        "dy": _r(4, 6, 5, dtype=dtype, seed=9),
        "x": x,
        "save_mean": f.save_mean,
        "save_rstd": f.save_rstd,
        "gamma": gamma,
        "out[0]": np.zeros_like(x),
        "out[1]": np.zeros(6, dtype),
        "out[2]": np.zeros(6, dtype),
    }


def _noise_drop_build(dtype):
    x = _r(4, 3, 5, dtype=dtype)  # noise_shape (4, 3, 1): 12 mask bits
    return {"x": x, "out": np.zeros_like(x), "mask_out": np.zeros(dropout.packed_size(12), np.uint8)}


def _noise_drop_back_build(dtype):
    mask = np.zeros(dropout.packed_size(12), np.uint8)
    dropout.dropout(_r(4, 3, 5, dtype=dtype), keep_prob=0.7, seed=3, noise_shape=(4, 3, 1), mask_out=mask)
    return {"dy": _r(4, 3, 5, dtype=dtype, seed=2), "mask": mask, "out": np.zeros((4, 3, 5), dtype)}


def _drop2d_build(dtype):
    x = _r(2, 3, 4, 5, dtype=dtype)  # NCHW: one bit per (n, c), 6 in all
    return {"x": x, "out": np.zeros_like(x), "mask_out": np.zeros(dropout.packed_size(6), np.uint8)}


def _drop3d_build(dtype):
    x = _r(2, 3, 2, 2, 3, dtype=dtype)  # NCDHW: one bit per (n, c), 6 in all
    return {"x": x, "out": np.zeros_like(x), "mask_out": np.zeros(dropout.packed_size(6), np.uint8)}


def _spatial_build(dtype):
    x = _r(2, 4, 5, 3, dtype=dtype)  # NHWC: one bit per (n, c), 6 in all
    return {"x": x, "out": np.zeros_like(x), "mask_out": np.zeros(dropout.packed_size(6), np.uint8)}


def _drop2d_obj_build(dtype):
    d = dropout.Dropout2d(drop_prob=0.2, seed=5, store_mask=True)
    d.forward(_r(2, 3, 4, 5, dtype=dtype, seed=11))
    return {"layer": d, "x": _r(2, 3, 4, 5, dtype=dtype), "dy": _r(2, 3, 4, 5, dtype=dtype, seed=12)}


def _vdrop_build(dtype):
    x = _r(4, 3, 5, dtype=dtype)
    return {"x": x, "out": np.zeros_like(x)}


def _vdrop_back_build(dtype):
    mask = np.zeros(dropout.packed_size(15), np.uint8)  # one bit per (n, f) of a (T, N, F) = (4, 3, 5) input
    dropout.variational_dropout(_r(4, 3, 5, dtype=dtype), keep_prob=0.7, seed=1, mask_out=mask)
    return {"dy": _r(4, 3, 5, dtype=dtype, seed=2), "mask": mask, "out": np.zeros((4, 3, 5), dtype)}


def _clip_build(dtype):
    return {"grads": _lists(1, dtype, seeds=(7,))[0]}


def _adam_obj_build(dtype):
    p = _lists(1, dtype, seeds=(1,))[0]
    opt = optim.Adam([{"params": p[:2]}, {"params": p[2:], "lr": 1e-2}], lr=1e-3)
    opt.step([np.ones_like(a) for a in p])
    return {"opt": opt, "params": p, "grads": [np.full_like(a, 0.5) for a in p]}


def _adam_group_edit(args, hyper, value):
    """An edit of param_groups[1] between steps (validated by the next step), made before the
    snapshot: the edit is the user's, the step must then change nothing."""
    args["opt"].param_groups[1][hyper.removeprefix("group.")] = value
    return {}


def _bn_obj_build(dtype):
    bn = norm.BatchNorm(3, dtype=dtype)
    bn.forward(_r(4, 3, 5, dtype=dtype, seed=11))
    return {"bn": bn, "x": _r(4, 3, 5, dtype=dtype), "dy": _r(4, 3, 5, dtype=dtype, seed=12)}


def _ln_obj_build(dtype):
    ln = norm.LayerNorm(6, dtype=dtype)
    ln.forward(_r(4, 6, dtype=dtype, seed=11))
    return {"ln": ln, "x": _r(4, 6, dtype=dtype), "dy": _r(4, 6, dtype=dtype, seed=12)}


def _drop_obj_build(dtype):
    d = dropout.Dropout(keep_prob=0.8, seed=5, store_mask=True)
    d.forward(_r(5, 9, dtype=dtype, seed=11))
    return {"layer": d, "x": _r(5, 9, dtype=dtype), "dy": _r(5, 9, dtype=dtype, seed=12)}


def _wn_obj_build(dtype):
    wn = norm.WeightNorm(_r(4, 3, dtype=dtype))
    return {"wn": wn, "dy": _r(4, 3, dtype=dtype, seed=12)}


def _plateau():
    s = schedules.ReduceLROnPlateau(0.1, patience=1)
    for m in (3.0, 2.0, 2.0, 2.0):
        s.step(m)
    return s


def _stopper():
    es = train.EarlyStopping(patience=3)
    for epoch, v in enumerate((3.0, 2.0, 2.5)):
        es.update(epoch, v, params=[np.arange(4.0)])
    return es


def _scaler_build(cls):
    """A fitted scaler, new data to map and an output (x itself is converted as scikit-learn
    converts array-likes, so only ``out`` is an array the table mutates)."""

    def build(dtype):
        est = cls().fit(_r(6, 4, dtype=dtype, seed=5))
        return {"est": est, "x": _r(6, 4, dtype=dtype), "out": np.zeros((6, 4), dtype)}

    return build


def _state_with(obj, **changes):
    sd = copy.deepcopy(obj.state_dict())
    sd.update(changes)
    return sd


def _ce_build(dtype):
    return {
        "logits": _r(5, 7, dtype=dtype),
        "target": np.array([0, 6, 3, -100, 2], np.int64),
        "weight": np.abs(_r(7, dtype=dtype, seed=3)) + 0.5,
        "dlogits": np.zeros((5, 7), dtype),
    }


def _kd_build(dtype):
    return {
        "student_logits": _r(5, 7, dtype=dtype),
        "teacher_logits": _r(5, 7, dtype=dtype, seed=4),
        "target": np.array([0, 6, 3, 1, 2], np.int64),
        "dstudent": np.zeros((5, 7), dtype),
    }


_CE_HYPER = {
    "label_smoothing": NOT_A_NUMBER + [-0.1, 1.5],
    "convention": ["keras", None],
    "reduction": ["avg", None, "batchmean"],
    "ignore_index": NOT_AN_INT + [2**63],
    "grad_scale": NOT_A_NUMBER + [float("inf")],
    "skip_nonfinite": ["yes", None, 1],
}
_KD_HYPER = {
    "temperature": NOT_A_NUMBER + [0.0, -1.0, float("inf"), 1e155, 1e-170],
    "alpha": NOT_A_NUMBER + [-0.1, 1.5],
    "label_smoothing": NOT_A_NUMBER + [1.5],
    "convention": ["keras", None],
    "reduction": ["mean", None],
    "skip_nonfinite": ["yes", None],
}


def _images(dtype):
    """A (2, 3, 5, 5) batch: uint8 for the float64 runs (images are uint8 or float32), else float32."""
    if dtype == np.float64:
        return np.random.default_rng(3).integers(0, 256, (2, 3, 5, 5), dtype=np.uint8)
    return _r(2, 3, 5, 5, dtype=np.float32)


def _affine_build(dtype):
    x = _images(dtype)
    m = augment.affine_matrices((5, 5), angle=[10.0, -20.0], scale=1.1)
    return {"images": x, "matrices": m, "out": np.zeros_like(x)}


def _image_build(dtype):
    x = _images(dtype)
    return {"images": x, "out": np.zeros_like(x)}


def _crop_build(dtype):
    x = _images(dtype)
    return {"images": x, "out": np.zeros((2, 3, 4, 4), x.dtype)}


ENTRIES = [
    Entry(
        "optim.adam",
        _adam_build,
        lambda a, **h: optim.adam(a["params"], a["grads"], a["exp_avg"], a["exp_avg_sq"], step=1, **h),
        arrays=(("params", 1), ("grads", 0), ("exp_avg", 2), ("exp_avg_sq", 1)),
        written=frozenset({"params", "exp_avg", "exp_avg_sq"}),
        optional=frozenset({"grads"}),  # a None grad leaves its tensor out (test_optim_none_grads)
        hyper={
            "lr": NOT_A_NUMBER + [-0.1, float("inf")],
            "eps": NOT_A_NUMBER + [-1.0],
            "weight_decay": NOT_A_NUMBER + [-1.0],
            "grad_scale": NOT_A_NUMBER + [float("inf")],
        },
    ),
    Entry(
        "optim.sgd",
        _sgd_build,
        lambda a, **h: optim.sgd(a["params"], a["grads"], a["momentum_buffer"], **{"step": 1, "momentum": 0.9, **h}),
        arrays=(("params", 0), ("grads", 2), ("momentum_buffer", 1)),
        written=frozenset({"params", "momentum_buffer"}),
        optional=frozenset({"grads"}),  # a None grad leaves its tensor out (test_optim_none_grads)
        hyper={
            "lr": NOT_A_NUMBER + [-0.1],
            "momentum": NOT_A_NUMBER + [float("inf"), -0.5],
            "step": NOT_AN_INT + [0, -3],
            "convention": ["bogus", None],
        },
    ),
    Entry(  # the peers' formula options: optax's AMSGrad on v̂ (a kernel variant) beside the others
        "optim.adam[optax,amsgrad]",
        _amsgrad_build,
        lambda a, **h: optim.adam(
            a["params"],
            a["grads"],
            a["exp_avg"],
            a["exp_avg_sq"],
            a["max_exp_avg_sq"],
            **{"step": 1, "convention": "optax", "amsgrad": True, "eps_root": 1e-6, **h},
        ),
        arrays=(("params", 1), ("grads", 0), ("exp_avg", 2), ("exp_avg_sq", 1), ("max_exp_avg_sq", 0)),
        written=frozenset({"params", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
        optional=frozenset({"grads"}),
        hyper={
            "eps_root": NOT_A_NUMBER + [-1.0],
            "convention": ["bogus", None, 3],
            "amsgrad_v_hat": [1, None, "yes"],
            "eps_hat": [1, None],
            "bias_correction_exponent": ["T", None, 1],
            "decay_after_step": [0, None],
        },
    ),
    Entry(
        "optim.adagrad",
        _adagrad_build,
        lambda a, **h: optim.adagrad(a["params"], a["grads"], a["sum"], step=1, **h),
        arrays=(("params", 2), ("grads", 1), ("sum", 0)),
        written=frozenset({"params", "sum"}),
        optional=frozenset({"grads"}),  # a None grad leaves its tensor out (test_optim_none_grads)
        hyper={"lr": NOT_A_NUMBER + [-0.1], "eps": NOT_A_NUMBER + [-1.0]},
    ),
    Entry(
        "optim.rmsprop",
        _rmsprop_build,
        lambda a, **h: optim.rmsprop(
            a["params"],
            a["grads"],
            a["square_avg"],
            a["momentum_buffer"],
            a["grad_avg"],
            step=1,
            **{"momentum": 0.5, "centered": True, **h},
        ),
        arrays=(("params", 1), ("grads", 0), ("square_avg", 2), ("momentum_buffer", 1), ("grad_avg", 0)),
        written=frozenset({"params", "square_avg", "momentum_buffer", "grad_avg"}),
        optional=frozenset({"grads"}),  # a None grad leaves its tensor out (test_optim_none_grads)
        hyper={"lr": NOT_A_NUMBER + [-0.1], "beta": NOT_A_NUMBER + [1.5, -0.1], "eps": NOT_A_NUMBER + [-1.0]},
    ),
    Entry(  # optax's RMSprop variants (Nesterov and bias correction: kernel variants)
        "optim.rmsprop[optax,nesterov,bias_correction]",
        _rmsprop_build,
        lambda a, **h: optim.rmsprop(
            a["params"],
            a["grads"],
            a["square_avg"],
            a["momentum_buffer"],
            a["grad_avg"],
            step=1,
            **{
                "momentum": 0.5,
                "centered": True,
                "nesterov": True,
                "bias_correction": True,
                "convention": "optax",
                **h,
            },
        ),
        arrays=(("params", 1), ("grads", 0), ("square_avg", 2), ("momentum_buffer", 1), ("grad_avg", 0)),
        written=frozenset({"params", "square_avg", "momentum_buffer", "grad_avg"}),
        optional=frozenset({"grads"}),
        hyper={
            "nesterov": [1, None, "yes"],
            "bias_correction": [1, None],
            "initial_accumulator_value": NOT_A_NUMBER + [-1.0],
            "convention": ["onnx", None],
        },
    ),
    Entry(
        "optim.adadelta",
        _adadelta_build,
        lambda a, **h: optim.adadelta(a["params"], a["grads"], a["square_avg"], a["acc_delta"], step=1, **h),
        arrays=(("params", 1), ("grads", 0), ("square_avg", 2), ("acc_delta", 1)),
        written=frozenset({"params", "square_avg", "acc_delta"}),
        optional=frozenset({"grads"}),  # a None grad leaves its tensor out (test_optim_none_grads)
        hyper={"rho": NOT_A_NUMBER + [1.5, -0.1], "eps": NOT_A_NUMBER + [-1.0]},
    ),
    Entry(
        "optim.nadam",
        _adam_build,
        lambda a, **h: optim.nadam(
            a["params"], a["grads"], a["exp_avg"], a["exp_avg_sq"], **{"step": 1, "mu_product": 1.0, **h}
        ),
        arrays=(("params", 0), ("grads", 1), ("exp_avg", 2), ("exp_avg_sq", 0)),
        written=frozenset({"params", "exp_avg", "exp_avg_sq"}),
        optional=frozenset({"grads"}),  # a None grad leaves its tensor out (test_optim_none_grads)
        hyper={
            "mu_product": NOT_A_NUMBER + [-1.0, 1.5],
            "momentum_schedule": ["keras", None, 1],
            "convention": ["onnx", None],
            "step": NOT_AN_INT + [0, -3],
            "betas": [(0.9, 1.0), (0.9,), "ab", None, (float("nan"), 0.99)],
        },
    ),
    Entry(
        "clip.clip_grad_norm_",
        _clip_build,
        lambda a, **h: clip.clip_grad_norm_(a["grads"], **{"max_norm": 0.5, **h}),
        arrays=(("grads", 1),),
        written=frozenset({"grads"}),
        any_shape=True,
        grads_of_params=True,
        optional=frozenset({"foreach"}),  # None: torch's default
        hyper={
            "max_norm": NOT_A_NUMBER + [-1.0],
            "norm_type": ["2", None, float("nan"), -1.0, 0.0],
            "foreach": ["yes", 1, 0.5],
        },
    ),
    Entry(
        "clip.clip_grad_value_",
        _clip_build,
        lambda a, **h: clip.clip_grad_value_(a["grads"], **{"clip_value": 0.5, **h}),
        arrays=(("grads", 0),),
        written=frozenset({"grads"}),
        any_shape=True,
        grads_of_params=True,
        optional=frozenset({"foreach"}),
        hyper={"clip_value": NOT_A_NUMBER + [-1.0], "foreach": ["yes", 1], "convention": ["bogus", None, 1]},
    ),
    Entry(
        "clip.global_norm",
        _clip_build,
        lambda a, **h: clip.global_norm(a["grads"], **h),
        arrays=(("grads", 2),),
        any_shape=True,
        hyper={"norm_type": ["2", None, float("nan"), -1.0, 0.0]},
    ),
    Entry(
        "norm.batch_norm_forward",
        _bn_build,
        lambda a, **h: norm.batch_norm_forward(
            a["x"],
            a["gamma"],
            a["beta"],
            a["running_mean"],
            a["running_var"],
            out=(a["out[0]"], a["out[1]"], a["out[2]"]),
            **h,
        ),
        arrays=("x", "gamma", "beta", "running_mean", "running_var", "out[0]", "out[1]", "out[2]"),
        written=frozenset({"out[0]", "out[1]", "out[2]", "running_mean", "running_var"}),
        optional=frozenset({"gamma", "beta", "out[0]", "out[1]", "out[2]", "momentum"}),
        hyper={
            "eps": NOT_A_NUMBER + [-1.0],
            "momentum": ["0.1", True, float("nan"), 1.5],
            "convention": ["bogus", None, 1],
            "training": ["yes", None],
        },
    ),
    Entry(
        "norm.batch_norm_backward",
        _bn_back_build,
        lambda a, **h: norm.batch_norm_backward(
            a["dy"],
            a["x"],
            a["save_mean"],
            a["save_rstd"],
            a["gamma"],
            out=(a["out[0]"], a["out[1]"], a["out[2]"]),
            **h,
        ),
        arrays=("dy", "x", "save_mean", "save_rstd", "gamma", "out[0]", "out[1]", "out[2]"),
        written=frozenset({"out[0]", "out[1]", "out[2]"}),
        optional=frozenset({"gamma", "out[0]", "out[1]", "out[2]"}),
        hyper={"training": ["yes", None], "channels_last": ["no", None]},
    ),
    Entry(
        "norm.layer_norm_forward",
        _ln_build,
        lambda a, **h: norm.layer_norm_forward(
            a["x"],
            h.pop("normalized_shape", 6),
            a["gamma"],
            a["beta"],
            out=(a["out[0]"], a["out[1]"], a["out[2]"]),
            **h,
        ),
        arrays=("x", "gamma", "beta", "out[0]", "out[1]", "out[2]"),
        written=frozenset({"out[0]", "out[1]", "out[2]"}),
        optional=frozenset({"gamma", "beta", "out[0]", "out[1]", "out[2]"}),
        hyper={"eps": NOT_A_NUMBER + [-1.0], "normalized_shape": ["6", 6.0, (6.0,), None, 0, -6, (4, 6, 1)]},
    ),
    Entry(
        "norm.layer_norm_backward",
        _ln_back_build,
        lambda a, **h: norm.layer_norm_backward(
            a["dy"],
            a["x"],
            a["save_mean"],
            a["save_rstd"],
            6,
            a["gamma"],
            out=(a["out[0]"], a["out[1]"], a["out[2]"]),
            **h,
        ),
        arrays=("dy", "x", "save_mean", "save_rstd", "gamma", "out[0]", "out[1]", "out[2]"),
        written=frozenset({"out[0]", "out[1]", "out[2]"}),
        optional=frozenset({"gamma", "out[0]", "out[1]", "out[2]"}),
        hyper={"param_grads": ["yes", None]},
    ),
    Entry(
        "norm.weight_norm",
        _wn_build,
        lambda a, **h: norm.weight_norm(a["v"], a["g"], out=a["out"], **h),
        arrays=("v", "g", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
    ),
    Entry(
        "norm.weight_norm_backward",
        _wn_back_build,
        lambda a, **h: norm.weight_norm_backward(a["dy"], a["v"], a["g"], out=(a["out[0]"], a["out[1]"]), **h),
        arrays=("dy", "v", "g", "out[0]", "out[1]"),
        written=frozenset({"out[0]", "out[1]"}),
        optional=frozenset({"out[0]", "out[1]"}),
    ),
    Entry(
        "norm.local_response_norm",
        _lrn_build,
        lambda a, **h: norm.local_response_norm(a["x"], out=a["out"], **h),
        arrays=("x", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        hyper={
            "size": NOT_AN_INT + [0, -3],
            "alpha": NOT_A_NUMBER,
            "beta": NOT_A_NUMBER,
            "k": NOT_A_NUMBER,
            "convention": ["bogus", None],
        },
    ),
    Entry(
        "norm.local_response_norm_backward",
        _lrn_back_build,
        lambda a, **h: norm.local_response_norm_backward(a["dy"], a["x"], out=a["out"], **h),
        arrays=("dy", "x", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        hyper={"size": NOT_AN_INT + [0, -3], "alpha": NOT_A_NUMBER, "beta": NOT_A_NUMBER, "k": NOT_A_NUMBER},
    ),
    Entry(
        "dropout.dropout",
        _drop_build,
        lambda a, **h: dropout.dropout(
            a["x"], out=a["out"], mask_out=a["mask_out"], **{"keep_prob": 0.7, "seed": 3, **h}
        ),
        arrays=("x", "out", "mask_out"),
        written=frozenset({"out", "mask_out"}),
        optional=frozenset({"out", "mask_out", "drop_prob", "convention"}),
        may_alias=frozenset({("out", "x")}),
        hyper={
            "keep_prob": NOT_A_NUMBER + [0.0, 1.5, -0.2],
            "drop_prob": ["0.1", float("nan"), 1.0, -0.1],
            "seed": ["1", 1.5, -1, 2**64],
            "offset": ["0", 2.5, -1],
            "convention": ["inverted", 3],
            "training": ["yes", None],
        },
    ),
    Entry(
        "dropout.dropout_backward",
        _drop_back_build,
        lambda a, **h: dropout.dropout_backward(a["dy"], mask=a["mask"], out=a["out"], **{"keep_prob": 0.7, **h}),
        arrays=("dy", "mask", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        may_alias=frozenset({("out", "dy")}),
        hyper={"keep_prob": NOT_A_NUMBER + [0.0, 1.5]},
    ),
    Entry(
        "dropout.variational_dropout",
        _vdrop_build,
        lambda a, **h: dropout.variational_dropout(a["x"], out=a["out"], **{"keep_prob": 0.7, "seed": 1, **h}),
        arrays=("x", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        may_alias=frozenset({("out", "x")}),
        hyper={"layout": ["TFN", None, 3]},
    ),
    Entry(
        "dropout.variational_dropout_backward",
        _vdrop_back_build,
        lambda a, **h: dropout.variational_dropout_backward(
            a["dy"], mask=a["mask"], out=a["out"], **{"keep_prob": 0.7, **h}
        ),
        arrays=("dy", "mask", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        may_alias=frozenset({("out", "dy")}),
        hyper={"layout": ["TFN", None, 3], "keep_prob": NOT_A_NUMBER + [0.0, 1.5]},
    ),
    Entry(
        "norm.layer_norm_forward(axis)",
        _ln_axis_build,
        lambda a, **h: norm.layer_norm_forward(
            a["x"],
            None,
            a["gamma"],
            a["beta"],
            out=(a["out[0]"], a["out[1]"], a["out[2]"]),
            **{"axis": 1, "convention": "keras", **h},
        ),
        arrays=("x", "gamma", "beta", "out[0]", "out[1]", "out[2]"),
        written=frozenset({"out[0]", "out[1]", "out[2]"}),
        optional=frozenset({"gamma", "beta", "out[0]", "out[1]", "out[2]"}),
        hyper={
            "eps": NOT_A_NUMBER + [-1.0],
            "axis": ["1", 1.0, (0, 2), 3, -4, (1, 1), (), 10**20, [1.5]],
            "convention": ["bogus", None, "optax"],
        },
    ),
    Entry(
        "norm.layer_norm_backward(axis)",
        _ln_axis_back_build,
        lambda a, **h: norm.layer_norm_backward(
            a["dy"],
            a["x"],
            a["save_mean"],
            a["save_rstd"],
            None,
            a["gamma"],
            out=(a["out[0]"], a["out[1]"], a["out[2]"]),
            **{"axis": 1, "convention": "keras", **h},
        ),
        arrays=("dy", "x", "save_mean", "save_rstd", "gamma", "out[0]", "out[1]", "out[2]"),
        written=frozenset({"out[0]", "out[1]", "out[2]"}),
        optional=frozenset({"gamma", "out[0]", "out[1]", "out[2]"}),
        hyper={"axis": ["1", (0, 2), 3, (1, 1)], "param_grads": ["yes", None]},
    ),
    Entry(
        "dropout.dropout(noise_shape)",
        _noise_drop_build,
        lambda a, **h: dropout.dropout(
            a["x"],
            out=a["out"],
            mask_out=a["mask_out"],
            **{"keep_prob": 0.7, "seed": 3, "noise_shape": (4, 3, 1), **h},
        ),
        arrays=("x", "out", "mask_out"),
        written=frozenset({"out", "mask_out"}),
        optional=frozenset({"out", "mask_out"}),
        may_alias=frozenset({("out", "x")}),
        hyper={"noise_shape": [(4, 3), (4, 2, 1), (4, 0, 1), (4.0, 3, 1), "bogus", 3, (4, 3, 1, 1), ()]},
    ),
    Entry(
        "dropout.dropout_backward(noise_shape)",
        _noise_drop_back_build,
        lambda a, **h: dropout.dropout_backward(
            a["dy"], mask=a["mask"], out=a["out"], **{"keep_prob": 0.7, "noise_shape": (4, 3, 1), **h}
        ),
        arrays=("dy", "mask", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        may_alias=frozenset({("out", "dy")}),
        hyper={"noise_shape": [(4, 3), (4, 2, 1), (4, 3, 5), "bogus"]},
    ),
    Entry(
        "dropout.dropout2d",
        _drop2d_build,
        lambda a, **h: dropout.dropout2d(
            a["x"], out=a["out"], mask_out=a["mask_out"], **{"drop_prob": 0.3, "seed": 3, **h}
        ),
        arrays=("x", "out", "mask_out"),
        written=frozenset({"out", "mask_out"}),
        optional=frozenset({"out", "mask_out"}),
        may_alias=frozenset({("out", "x")}),
        hyper={"drop_prob": ["0.1", float("nan"), 1.0, -0.1], "convention": ["inverted", 3], "seed": [-1, "1"]},
    ),
    Entry(
        "dropout.dropout3d",
        _drop3d_build,
        lambda a, **h: dropout.dropout3d(
            a["x"], out=a["out"], mask_out=a["mask_out"], **{"drop_prob": 0.3, "seed": 3, **h}
        ),
        arrays=("x", "out", "mask_out"),
        written=frozenset({"out", "mask_out"}),
        optional=frozenset({"out", "mask_out"}),
        may_alias=frozenset({("out", "x")}),
        hyper={"drop_prob": [float("nan"), 1.0], "offset": [-1, "0"]},
    ),
    Entry(
        "dropout.spatial_dropout2d",
        _spatial_build,
        lambda a, **h: dropout.spatial_dropout2d(
            a["x"], out=a["out"], mask_out=a["mask_out"], **{"drop_prob": 0.3, "seed": 3, **h}
        ),
        arrays=("x", "out", "mask_out"),
        written=frozenset({"out", "mask_out"}),
        optional=frozenset({"out", "mask_out"}),
        may_alias=frozenset({("out", "x")}),
        hyper={"data_format": ["NHWC", None, 1], "drop_prob": [1.0, None]},
    ),
    Entry(
        "dropout.Dropout2d.forward",
        _drop2d_obj_build,
        lambda a, **h: a["layer"].forward(a["x"], **h),
        optional=frozenset({"out"}),
        arrays=("x",),
        any_shape=True,
        any_float=True,
        hyper={"out": ["x", [1.0], np.zeros((2, 3, 4, 5), np.int32), np.zeros((2, 3, 4, 4))]},
    ),
    Entry(
        "dropout.Dropout2d.backward",
        _drop2d_obj_build,
        lambda a, **h: a["layer"].backward(a["dy"], **h),
        optional=frozenset({"out"}),
        arrays=("dy",),
        any_float=True,
        hyper={"out": ["x", [1.0], np.zeros((2, 3, 4, 5), np.int32)]},
    ),
    Entry(
        "dropout.dropconnect",
        lambda dtype: {"weight": _r(4, 3, dtype=dtype), "out": np.zeros((4, 3), dtype)},
        lambda a, **h: dropout.dropconnect(a["weight"], out=a["out"], **{"keep_prob": 0.5, "seed": 2, **h}),
        arrays=("weight", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        may_alias=frozenset({("out", "weight")}),
        any_float=True,
        hyper={"keep_prob": NOT_A_NUMBER + [0.0, 1.5], "seed": ["1", -1]},
    ),
    Entry(
        "random.uniform_",
        lambda dtype: {"a": _r(5, 9, dtype=dtype)},
        lambda a, **h: nrandom.uniform_(a["a"], **{"seed": 3, **h}),
        arrays=("a",),
        written=frozenset({"a"}),
        any_shape=True,
        any_float=True,
        hyper={
            "low": NOT_A_NUMBER + [1.0, 2.0, float("-inf")],
            "high": NOT_A_NUMBER + [0.0, -1.0, float("inf")],
            "seed": ["1", 1.5, -1, 2**64, None],
            "offset": ["0", 2.5, -1, 2**64],
            "start": ["0", 2.5, -1, 2**62 + 1],
        },
    ),
    Entry(
        "random.normal_",
        lambda dtype: {"a": _r(5, 9, dtype=dtype)},
        lambda a, **h: nrandom.normal_(a["a"], **{"seed": 3, **h}),
        arrays=("a",),
        written=frozenset({"a"}),
        any_shape=True,
        any_float=True,
        hyper={"mean": NOT_A_NUMBER, "std": NOT_A_NUMBER + [-1.0], "seed": [None, -1]},
    ),
    Entry(
        "random.truncated_normal_",
        lambda dtype: {"a": _r(5, 9, dtype=dtype)},
        lambda a, **h: nrandom.truncated_normal_(a["a"], **{"seed": 3, **h}),
        arrays=("a",),
        written=frozenset({"a"}),
        any_shape=True,
        any_float=True,
        hyper={
            "std": NOT_A_NUMBER + [-1.0],
            "low": ["0", None, float("nan"), 2.0, 40.0],
            "high": ["0", None, float("nan"), -2.0, -40.0],
        },
    ),
    Entry(
        "random.normal",
        lambda dtype: {"out": np.zeros((5, 9), dtype)},
        lambda a, **h: nrandom.normal(**{"shape": (5, 9), "seed": 3, "out": a["out"], **h}),
        arrays=("out",),
        written=frozenset({"out"}),
        optional=frozenset({"out", "dtype"}),
        any_float=True,
        hyper={"shape": ["59", (5.0, 9), (-1, 9), None], "dtype": ["int32", np.int32, "x", 3], "std": [-1.0]},
    ),
    Entry(
        "random.Generator.uniform_",
        lambda dtype: {"gen": nrandom.Generator(4), "a": _r(5, 9, dtype=dtype)},
        lambda a, **h: a["gen"].uniform_(a["a"], **h),
        arrays=("a",),
        written=frozenset({"a"}),
        any_shape=True,
        any_float=True,
        hyper={"low": NOT_A_NUMBER + [1.0], "high": NOT_A_NUMBER + [0.0]},
    ),
    Entry(
        "random.Generator.load_state_dict",
        lambda dtype: {"gen": nrandom.Generator(4)},
        lambda a, **h: a["gen"].load_state_dict(_state_with(a["gen"], **h)),
        hyper={"seed": [-1, "1", None, 2**64], "offset": [-1, 2.5, None]},
    ),
    Entry(
        "init.xavier_uniform_",
        lambda dtype: {"tensor": _r(5, 9, dtype=dtype)},
        lambda a, **h: init.xavier_uniform_(a["tensor"], **{"seed": 3, **h}),
        arrays=("tensor",),
        written=frozenset({"tensor"}),
        optional=frozenset({"seed", "generator"}),
        any_shape=True,
        any_float=True,
        hyper={"gain": NOT_A_NUMBER + [-1.0], "seed": ["1", -1, 2**64], "generator": ["g", 3, True]},
    ),
    Entry(
        "init.kaiming_normal_",
        lambda dtype: {"tensor": _r(4, 3, 2, dtype=dtype)},
        lambda a, **h: init.kaiming_normal_(a["tensor"], **{"seed": 3, **h}),
        arrays=("tensor",),
        written=frozenset({"tensor"}),
        optional=frozenset({"seed", "generator", "a"}),
        any_shape=True,
        any_float=True,
        hyper={
            "a": ["0", float("nan"), True],
            "mode": ["fan", None, 1],
            "nonlinearity": ["softmax", None, 1],
            "convention": ["keras", None],
        },
    ),
    Entry(
        "init.trunc_normal_",
        lambda dtype: {"tensor": _r(5, 9, dtype=dtype)},
        lambda a, **h: init.trunc_normal_(a["tensor"], **{"seed": 3, **h}),
        arrays=("tensor",),
        written=frozenset({"tensor"}),
        optional=frozenset({"seed", "generator"}),
        any_shape=True,
        any_float=True,
        hyper={"std": NOT_A_NUMBER + [0.0, -1.0], "a": ["0", None, 2.0, 100.0], "b": ["0", None, -2.0, -100.0]},
    ),
    Entry(
        "init.orthogonal_",
        lambda dtype: {"tensor": _r(5, 9, dtype=dtype)},
        lambda a, **h: init.orthogonal_(a["tensor"], **{"seed": 3, **h}),
        arrays=("tensor",),
        written=frozenset({"tensor"}),
        optional=frozenset({"seed", "generator"}),
        any_shape=True,
        any_float=True,
        hyper={"gain": NOT_A_NUMBER},
    ),
    Entry(
        "init.constant_",
        lambda dtype: {"tensor": _r(5, 9, dtype=dtype)},
        lambda a, **h: init.constant_(a["tensor"], **{"val": 0.5, **h}),
        arrays=("tensor",),
        written=frozenset({"tensor"}),
        any_shape=True,
        any_float=True,
        hyper={"val": ["1", None, True, float("nan")]},
    ),
    Entry(
        "init.eye_",
        lambda dtype: {"tensor": _r(5, 9, dtype=dtype)},
        lambda a, **h: init.eye_(a["tensor"]),
        arrays=("tensor",),
        written=frozenset({"tensor"}),
        any_float=True,
    ),
    Entry(
        "init.calculate_gain",
        lambda dtype: {},
        lambda a, **h: init.calculate_gain(**{"nonlinearity": "leaky_relu", **h}),
        optional=frozenset({"param"}),
        hyper={"nonlinearity": ["softmax", None, 3], "param": ["0.1", True, float("nan")], "convention": ["x", None]},
    ),
    Entry(
        "loss.softmax_cross_entropy",
        _ce_build,
        lambda a, **h: loss.softmax_cross_entropy(
            a["logits"], a["target"], weight=a["weight"], dlogits=a["dlogits"], **{"label_smoothing": 0.1, **h}
        ),
        arrays=("logits", "target", "weight", "dlogits"),
        written=frozenset({"dlogits"}),
        optional=frozenset({"weight", "dlogits"}),
        may_alias=frozenset({("dlogits", "logits")}),
        hyper=_CE_HYPER,
    ),
    Entry(
        "loss.SoftmaxCrossEntropy",
        _ce_build,
        lambda a, **h: loss.SoftmaxCrossEntropy(weight=a["weight"], **h)(
            a["logits"], a["target"], dlogits=a["dlogits"]
        ),
        arrays=("logits", "target", "weight", "dlogits"),
        written=frozenset({"dlogits"}),
        optional=frozenset({"weight", "dlogits"}),
        may_alias=frozenset({("dlogits", "logits")}),
        hyper=_CE_HYPER,
    ),
    Entry(
        "loss.distillation_loss",
        _kd_build,
        lambda a, **h: loss.distillation_loss(
            a["student_logits"], a["teacher_logits"], a["target"], dstudent=a["dstudent"], **{"temperature": 2.0, **h}
        ),
        arrays=("student_logits", "teacher_logits", "target", "dstudent"),
        written=frozenset({"dstudent"}),
        optional=frozenset({"target", "dstudent"}),
        may_alias=frozenset({("dstudent", "student_logits")}),
        hyper=_KD_HYPER,
    ),
    Entry(
        "loss.Distillation",
        _kd_build,
        lambda a, **h: loss.Distillation(**{"temperature": 2.0, **h})(
            a["student_logits"], a["teacher_logits"], a["target"], dstudent=a["dstudent"]
        ),
        arrays=("student_logits", "teacher_logits", "target", "dstudent"),
        written=frozenset({"dstudent"}),
        optional=frozenset({"target", "dstudent"}),
        may_alias=frozenset({("dstudent", "student_logits")}),
        hyper=_KD_HYPER,
    ),
    Entry(
        "clip.global_norm_of_groups",
        _clip_build,
        lambda a, **h: clip.global_norm_of_groups([a["grads"][:2], a["grads"][2:]], **h),
        hyper={"norm_type": ["2", None, float("nan"), -1.0, 0.0]},
    ),
    Entry(
        "dropout.philox4x32_10",
        lambda dtype: {},
        lambda a, **h: dropout.philox4x32_10(**{"counter": (1, 2, 3, 4), "key": (5, 6), **h}),
        hyper={"counter": [(1, 2, 3), (1, 2, 3, 2**32), (1, 2, 3, -1), "1234", None], "key": [(1,), (1, 2**32), None]},
    ),
    Entry(
        "optim.Adam.step",
        _adam_obj_build,
        lambda a, **h: a["opt"].step(a["grads"], **h),
        arrays=(("grads", 2), ("grads", 0)),
        prepare={"group.": _adam_group_edit},
        optional=frozenset({"max_norm", "grads"}),  # None: no clipping; a None grad skips its parameter
        hyper={
            "grad_scale": NOT_A_NUMBER + [float("inf")],
            "max_norm": ["1", True, float("nan"), -1.0],
            "group.lr": NOT_A_NUMBER + [-0.1, lambda t: -1.0],
            "group.betas": [(0.9, 1.0), None, "ab"],
            "group.eps": NOT_A_NUMBER + [-1.0],
            "group.weight_decay": ["0", float("nan"), -1.0],
            "group.eps_hat": [True, 1],  # a formula option: fixed at construction
            "group.decay_after_step": [True, None],
            "group.convention": ["jax", None],
        },
    ),
    Entry(
        "optim.Adam.step(clip_per_tensor=True)",
        _adam_obj_build,
        lambda a, **h: a["opt"].step(a["grads"], **{"max_norm": 1.0, "clip_per_tensor": True, **h}),
        arrays=(("grads", 2), ("grads", 0)),
        optional=frozenset({"grads"}),  # a None grad skips its parameter
        hyper={
            "clip_per_tensor": [1, "yes", None, 0.0],
            "max_norm": ["1", True, None, float("nan"), -1.0, 0.0],
            "norm_type": ["2", None, float("nan"), -1.0, 0.0],
            "convention": ["bogus", None],
            "grad_scale": NOT_A_NUMBER + [float("inf")],
        },
    ),
    Entry(
        "optim.Adam.load_state_dict",
        _adam_obj_build,
        lambda a, **h: a["opt"].load_state_dict(_state_with(a["opt"], **h)),
        hyper={
            "state": [None, "x", {0: {"step": -3}}, {0: {"step": "1"}}, {9: {}}],
            "param_groups": [None, [], "x", [{"params": [0]}]],
        },
    ),
    Entry(
        "norm.BatchNorm.forward",
        _bn_obj_build,
        lambda a, **h: a["bn"].forward(a["x"], **h),
        optional=frozenset({"out"}),
        arrays=("x",),
        any_shape=True,  # (N, C, ...): one more trailing dimension is another valid layout
        hyper={"out": ["x", [1.0], np.zeros((4, 3, 5), np.int32)]},
    ),
    Entry(
        "norm.BatchNorm.backward",
        _bn_obj_build,
        lambda a, **h: a["bn"].backward(a["dy"], **h),
        optional=frozenset({"out"}),
        arrays=("dy",),
        hyper={"out": ["x", [1.0], np.zeros((4, 3, 5), np.int32)]},
    ),
    Entry(
        "norm.BatchNorm.load_state_dict",
        _bn_obj_build,
        lambda a, **h: a["bn"].load_state_dict(_state_with(a["bn"], **h)),
        hyper={
            "running_mean": [None, "x", np.zeros(4)],
            "running_var": [None, np.zeros((3, 1))],
            "num_batches_tracked": [-1, "1", 1.5, None],
        },
    ),
    Entry(
        "norm.LayerNorm.forward",
        _ln_obj_build,
        lambda a, **h: a["ln"].forward(a["x"], **h),
        optional=frozenset({"out"}),
        arrays=("x",),
        hyper={"out": ["x", [1.0], np.zeros((4, 6), np.int32)]},
    ),
    Entry(
        "norm.LayerNorm.load_state_dict",
        _ln_obj_build,
        lambda a, **h: a["ln"].load_state_dict(_state_with(a["ln"], **h)),
        hyper={"weight": [None, "x", np.zeros(5)], "bias": [None, np.zeros((6, 1))]},
    ),
    Entry(
        "dropout.Dropout.forward",
        _drop_obj_build,
        lambda a, **h: a["layer"].forward(a["x"], **h),
        optional=frozenset({"out"}),
        arrays=("x",),
        any_shape=True,
        any_float=True,
        hyper={"out": ["x", [1.0], np.zeros((5, 9), np.int32), np.zeros((5, 8))]},
    ),
    Entry(
        "dropout.Dropout.backward",
        _drop_obj_build,
        lambda a, **h: a["layer"].backward(a["dy"], **h),
        optional=frozenset({"out"}),
        arrays=("dy",),
        any_float=True,
        hyper={"out": ["x", [1.0], np.zeros((5, 9), np.int32)]},
    ),
    Entry(
        "dropout.Dropout.load_state_dict",
        _drop_obj_build,
        lambda a, **h: a["layer"].load_state_dict(_state_with(a["layer"], **h)),
        optional=frozenset({"variational", "noise_shape"}),  # None: an ordinary dropout
        hyper={
            "variational": ["bogus", 3],
            "noise_shape": ["bogus", 3, (0, 1), []],
            "convention": ["inverted", None],
            "keep_prob": [1.5, "x", None],
            "seed": [-1, "1"],
            "offset": [-1, 2.5],
        },
    ),
    Entry(
        "norm.LayerNorm.backward",
        _ln_obj_build,
        lambda a, **h: a["ln"].backward(a["dy"], **h),
        optional=frozenset({"out"}),
        arrays=("dy",),
        hyper={"out": ["x", [1.0], np.zeros((4, 6), np.int32)]},
    ),
    Entry(
        "norm.WeightNorm.weight",
        _wn_obj_build,
        lambda a, **h: a["wn"].weight(**h),
        optional=frozenset({"out"}),
        hyper={"out": ["x", [1.0], np.zeros((4, 3), np.int32), np.zeros((4, 2))]},
    ),
    Entry(
        "norm.WeightNorm.backward",
        _wn_obj_build,
        lambda a, **h: a["wn"].backward(a["dy"], **h),
        arrays=("dy",),
    ),
    Entry(
        "norm.WeightNorm.load_state_dict",
        _wn_obj_build,
        lambda a, **h: a["wn"].load_state_dict(_state_with(a["wn"], **h)),
        hyper={"v": [None, "x", np.zeros(4), np.zeros((4, 3), np.int32)], "g": [None, np.zeros(5)]},
    ),
    Entry(
        "dropout.dropout_mask",
        lambda dtype: {},
        lambda a, **h: dropout.dropout_mask(**{"shape": (3, 4), "keep_prob": 0.5, "seed": 1, **h}),
        hyper={
            "shape": ["12", (2.5, 3), (-1, 3), None, 3.0],
            "keep_prob": NOT_A_NUMBER + [0.0, 2.0],
            "packed": ["yes", None, 1],
        },
    ),
    Entry(
        "dropout.packed_size",
        lambda dtype: {},
        lambda a, **h: dropout.packed_size(**{"n": 8, **h}),
        hyper={"n": NOT_AN_INT + [-5]},
    ),
    Entry(
        "norm.batch_norm_workspace",
        lambda dtype: {},
        lambda a, **h: norm.batch_norm_workspace(**{"shape": (4, 3), **h}),
        hyper={"shape": ["43", (-1, 3), (2**62, 2**62), (4.0, 3), None], "channels_last": ["no", None]},
    ),
    Entry(
        "norm.layer_norm_workspace",
        lambda dtype: {},
        lambda a, **h: norm.layer_norm_workspace(**{"x_shape": (4, 6), "normalized_shape": 6, **h}),
        hyper={"x_shape": ["46", (-1, 6), (2**62, 2**62), None], "normalized_shape": ["6", 7, (6.0,), 0, None]},
    ),
    Entry(
        "clip.clip_coefficient",
        lambda dtype: {},
        lambda a, **h: clip.clip_coefficient(**{"total_norm": 2.0, "max_norm": 1.0, **h}),
        hyper={"total_norm": ["2", None, True, -1.0], "max_norm": NOT_A_NUMBER + [-1.0], "convention": ["bogus", None]},
    ),
    Entry(
        "schedules.ExponentialDecay",
        lambda dtype: {},
        lambda a, **h: schedules.ExponentialDecay(**{"lr0": 0.1, **h})(10),
        hyper={
            "lr0": NOT_A_NUMBER + [-0.1],
            "beta": NOT_A_NUMBER + [-0.5],
            "decay_steps": NOT_AN_INT + [0, -1],
            "staircase": ["yes", None],
        },
    ),
    Entry(
        "schedules.InverseTimeDecay",
        lambda dtype: {},
        lambda a, **h: schedules.InverseTimeDecay(**{"lr0": 0.1, **h})(10),
        hyper={"lr0": NOT_A_NUMBER + [-0.1], "beta": NOT_A_NUMBER + [-0.5], "decay_steps": NOT_AN_INT + [0]},
    ),
    Entry(
        "schedules.NaturalExpDecay",
        lambda dtype: {},
        lambda a, **h: schedules.NaturalExpDecay(**{"lr0": 0.1, **h})(10),
        hyper={"lr0": NOT_A_NUMBER + [-0.1], "beta": NOT_A_NUMBER + [-0.5]},
    ),
    Entry(
        "schedules.InverseSqrtDecay",
        lambda dtype: {},
        lambda a, **h: schedules.InverseSqrtDecay(**{"lr0": 0.1, **h})(10),
        hyper={"lr0": NOT_A_NUMBER + [-0.1]},
    ),
    Entry(
        "augment.affine",
        _affine_build,
        lambda a, **h: augment.affine(a["images"], a["matrices"], out=a["out"], **h),
        arrays=("images", "matrices", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        hyper={
            "interpolation": ["cubic", None, 1],
            "padding_mode": ["wrap", None],
            "layout": ["CHWN", None],
            "fill": ["x", None, float("nan"), [1.0, 2.0], []],
        },
    ),
    Entry(
        "augment.random_crop",
        _crop_build,
        lambda a, **h: augment.random_crop(a["images"], **{"size": 4, "padding": 1, "seed": 1, "out": a["out"], **h}),
        arrays=("images", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        hyper={
            "size": [0, 8, "4", (4, 4, 4), None],
            "padding": [-1, 2.5, None],
            "seed": [-1, "1", None, 2**64],
            "offset": [-1, 2.5],
            "fill": ["x", [1.0, 2.0]],
        },
    ),
    Entry(
        "augment.random_flip",
        _image_build,
        lambda a, **h: augment.random_flip(a["images"], **{"seed": 1, "out": a["out"], **h}),
        arrays=("images", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        hyper={"hflip_p": NOT_A_NUMBER + [1.5, -0.1], "vflip_p": [2.0], "layout": ["NHCW"]},
    ),
    Entry(
        "augment.add_noise",
        _image_build,
        lambda a, **h: augment.add_noise(a["images"], **{"std": 1.0, "seed": 1, "out": a["out"], **h}),
        arrays=("images", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        may_alias=frozenset({("out", "images")}),
        any_shape=True,
        hyper={"std": NOT_A_NUMBER + [-1.0], "kind": ["poisson", None], "offset": [-1]},
    ),
    Entry(
        "augment.add_noise(salt_pepper)",
        _image_build,
        lambda a, **h: augment.add_noise(
            a["images"], **{"kind": "salt_pepper", "amount": 0.1, "seed": 1, "out": a["out"], **h}
        ),
        arrays=("images",),
        any_shape=True,
        hyper={"amount": NOT_A_NUMBER + [1.5, -0.1]},
    ),
    Entry(
        "augment.cutout",
        _image_build,
        lambda a, **h: augment.cutout(a["images"], **{"size": 2, "seed": 1, "out": a["out"], **h}),
        arrays=("images", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        may_alias=frozenset({("out", "images")}),
        hyper={"size": [0, "2", None], "fill": ["x", [1.0, 2.0]]},
    ),
    Entry(
        "augment.random_erasing",
        _image_build,
        lambda a, **h: augment.random_erasing(a["images"], **{"p": 1.0, "seed": 1, "out": a["out"], **h}),
        arrays=("images", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out"}),
        may_alias=frozenset({("out", "images")}),
        hyper={"p": NOT_A_NUMBER + [1.5]},
    ),
    Entry(
        "augment.RandomAffine.__call__",
        _image_build,
        lambda a, **h: augment.RandomAffine(20, (0.1, 0.1), seed=3)(a["images"], out=a["out"], **h),
        arrays=("images", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out", "offset"}),  # offset None: the object's own
        hyper={"offset": [-1, 2.5, "1"], "return_params": ["yes", 1]},
    ),
    Entry(
        "augment.Compose.__call__",
        _crop_build,
        lambda a, **h: augment.Compose(
            [augment.RandomCrop(4, 1, seed=1), augment.RandomFlip(seed=2), augment.AddNoise(std=1.0, seed=3)]
        )(a["images"], out=a["out"], **h),
        arrays=("images", "out"),
        written=frozenset({"out"}),
        optional=frozenset({"out", "offset"}),  # offset None: the object's own
        hyper={"offset": [-1, 2.5]},
    ),
    Entry(
        "schedules.StepDecay",
        lambda dtype: {},
        lambda a, **h: schedules.StepDecay(**{"lr0": 0.1, "step_size": 3, **h})(10),
        hyper={"lr0": NOT_A_NUMBER + [-0.1], "step_size": NOT_AN_INT + [0], "gamma": NOT_A_NUMBER + [-0.5]},
    ),
    Entry(
        "schedules.MultiStepDecay",
        lambda dtype: {},
        lambda a, **h: schedules.MultiStepDecay(**{"lr0": 0.1, "milestones": (2, 5), **h})(10),
        hyper={"milestones": ["25", 3, (0, 5), (2.5,), None], "gamma": NOT_A_NUMBER + [-0.5]},
    ),
    Entry(
        "schedules.CosineAnnealing",
        lambda dtype: {},
        lambda a, **h: schedules.CosineAnnealing(**{"lr0": 0.1, "T_max": 5, **h})(10),
        hyper={"lr0": NOT_A_NUMBER + [-0.1], "T_max": NOT_AN_INT + [0], "eta_min": NOT_A_NUMBER + [-1.0]},
    ),
    Entry(
        "schedules.CosineAnnealingWarmRestarts",
        lambda dtype: {},
        lambda a, **h: schedules.CosineAnnealingWarmRestarts(**{"lr0": 0.1, "T_0": 5, **h})(10),
        hyper={"T_0": NOT_AN_INT + [0], "T_mult": NOT_AN_INT + [0], "eta_min": NOT_A_NUMBER + [-1.0]},
    ),
    Entry(
        "schedules.LinearWarmup",
        lambda dtype: {},
        lambda a, **h: schedules.LinearWarmup(**{"after": 0.1, "warmup_steps": 5, **h})(3),
        hyper={
            "after": NOT_A_NUMBER + [-1.0],
            "warmup_steps": NOT_AN_INT + [0],
            "start_factor": NOT_A_NUMBER + [1.5, -0.1],
        },
    ),
    Entry(
        "schedules.ReduceLROnPlateau",
        lambda dtype: {},
        lambda a, **h: schedules.ReduceLROnPlateau(**{"lr0": 0.1, **h}).step(1.0),
        hyper={
            "lr0": NOT_A_NUMBER + [-0.1],
            "mode": ["mid", None],
            "factor": NOT_A_NUMBER + [1.0, -0.1],
            "patience": NOT_AN_INT + [-1],
            "threshold": NOT_A_NUMBER + [-1.0],
            "threshold_mode": ["relative", None],
            "cooldown": NOT_AN_INT + [-1],
            "min_lr": NOT_A_NUMBER + [-1.0],
            "eps": NOT_A_NUMBER + [-1.0],
        },
    ),
    Entry(
        "schedules.ReduceLROnPlateau.load_state_dict",
        lambda dtype: {"sched": _plateau()},
        lambda a, **h: a["sched"].load_state_dict(_state_with(a["sched"], **h)),
        hyper={
            "lr": [-1.0, "x", None, float("nan")],
            "best": ["x", None, float("nan")],
            "num_bad_epochs": [-1, 1.5, None],
            "last_epoch": [-1, "3"],
            "mode": ["mid", None],
            "patience": [-1, 2.5],
        },
    ),
    Entry(
        "train.EarlyStopping",
        lambda dtype: {},
        lambda a, **h: train.EarlyStopping(**h).update(0, 0.5, train=0.4),
        hyper={
            "criterion": ["gl", "GL_5", None, 3],
            "monitor": ["", None, 3, "val_accuracy"],
            "mode": ["auto", None],
            "patience": [v for v in NOT_AN_INT if v is not None] + [-1],  # None: the criterion's default
            "min_delta": NOT_A_NUMBER + [-0.1],
            "strip": NOT_AN_INT + [0],
            "restore_best": [1, None, "yes"],
        },
        optional=frozenset({"patience"}),
    ),
    Entry(
        "train.EarlyStopping(criterion='GL')",
        lambda dtype: {},
        lambda a, **h: train.EarlyStopping(**{"criterion": "GL", **h}).update(0, 0.5),
        hyper={
            "alpha": [v for v in NOT_A_NUMBER if v is not None] + [-1.0],
            "mode": ["max"],
            "min_delta": [0.1],
            "patience": [3],
        },
        optional=frozenset({"alpha", "patience"}),
    ),
    Entry(
        "train.EarlyStopping.update",
        lambda dtype: {"es": _stopper()},
        lambda a, **h: a["es"].update(**{"epoch": 5, "val": 0.5, **h}),
        hyper={"epoch": NOT_AN_INT + [-1, 2]},
    ),
    Entry(
        "train.EarlyStopping.load_state_dict",
        lambda dtype: {"es": _stopper()},
        lambda a, **h: a["es"].load_state_dict(_state_with(a["es"], **h)),
        hyper={
            "criterion": ["XY", None],
            "wait": [-1, 1.5, None],
            "up": [-1, "3"],
            "best_epoch": [-1, "3", None],
            "patience": [-1, 2.5],
        },
        optional=frozenset({"patience"}),  # None: the criterion's default, as in the constructor
    ),
    Entry(
        "train.minibatches",
        lambda dtype: {},
        lambda a, **h: train.minibatches(**{"n": 10, "batch_size": 3, "seed": 0, "epoch": 0, **h}),
        hyper={
            "batch_size": NOT_AN_INT + [0],
            "seed": NOT_AN_INT + [-1, 2**64],
            "epoch": NOT_AN_INT + [-1, 2**64],
            "drop_last": [1, None, "yes"],
        },
    ),
    Entry(
        "preprocessing.StandardScaler.transform",
        _scaler_build(preprocessing.StandardScaler),
        lambda a, **h: a["est"].transform(a["x"], **{"out": a["out"], **h}),
        arrays=("out",),
        written=frozenset({"out"}),
        optional=frozenset({"out", "copy"}),  # copy=None: scikit-learn's "the default"
        hyper={"copy": ["no", 1], "out": [[1.0], np.zeros((6, 4), np.int32), np.zeros((6, 5))]},
    ),
    Entry(
        "preprocessing.MinMaxScaler.inverse_transform",
        _scaler_build(preprocessing.MinMaxScaler),
        lambda a, **h: a["est"].inverse_transform(a["x"], **{"out": a["out"], **h}),
        arrays=("out",),
        written=frozenset({"out"}),
        optional=frozenset({"out", "copy"}),  # copy=None: scikit-learn's "the default"
        hyper={"copy": ["no", 1], "out": [[1.0], np.zeros((6, 4), np.int32), np.zeros((4, 6))]},
    ),
    Entry(
        "preprocessing.StandardScaler",
        lambda dtype: {"x": _r(6, 4, dtype=dtype)},
        lambda a, **h: preprocessing.StandardScaler(**h).fit(a["x"]),
        hyper={"with_mean": ["yes", None, 1], "with_std": [0, "no"], "nan_policy": ["drop", None, 1]},
    ),
    Entry(
        "preprocessing.MinMaxScaler",
        lambda dtype: {"x": _r(6, 4, dtype=dtype)},
        lambda a, **h: preprocessing.MinMaxScaler(**h).fit(a["x"]),
        hyper={
            "feature_range": [(1, 0), (0, 0), "ab", 3, None, (0, float("nan")), (0, 1, 2), ("0", 1)],
            "clip": ["yes", None, 1],
            "nan_policy": ["drop", None],
        },
    ),
    Entry(
        "preprocessing.PCAWhitening",
        lambda dtype: {"x": _r(6, 4, dtype=dtype)},
        lambda a, **h: preprocessing.PCAWhitening(**h).fit(a["x"]),
        optional=frozenset({"n_components"}),
        hyper={"n_components": [0, -1, 1.5, 0.0, 1.0, "3", True, float("nan"), 5], "eps": NOT_A_NUMBER + [-1.0]},
    ),
    Entry(
        "preprocessing.ZCAWhitening",
        lambda dtype: {"x": _r(6, 4, dtype=dtype)},
        lambda a, **h: preprocessing.ZCAWhitening(**h).fit(a["x"]),
        hyper={"eps": NOT_A_NUMBER + [-1.0, float("inf")]},
    ),
    Entry(
        "set_num_threads",
        lambda dtype: {},
        lambda a, **h: nndl_fast.set_num_threads(**{"n": 1, **h}),
        hyper={"n": NOT_AN_INT + [0, -1, 100000]},
    ),
    Entry(
        "set_simd_target",
        lambda dtype: {},
        lambda a, **h: nndl_fast.set_simd_target(**{"name": nndl_fast.get_simd_target(), **h}),
        hyper={"name": ["avx9000", None, 3, ""]},
    ),
]
BY_NAME = {e.name: e for e in ENTRIES}

# --------------------------------------------------------------------------------------------
# Machinery


def _arrays_of(args: dict) -> list[tuple[str, np.ndarray]]:
    out = []
    for k, v in args.items():
        if isinstance(v, np.ndarray):
            out.append((k, v))
        elif isinstance(v, list):
            out.extend((f"{k}[{i}]", a) for i, a in enumerate(v) if isinstance(a, np.ndarray))
    return out


def _snapshot(args: dict) -> dict[str, Any]:
    snap: dict[str, Any] = {k: (a.dtype.str, a.shape, a.tobytes()) for k, a in _arrays_of(args)}
    for k, v in args.items():
        if hasattr(v, "state_dict"):  # an object: its whole state, arrays included
            snap[k] = _freeze(v.state_dict())
    return snap


def _freeze(obj: Any) -> Any:
    """A comparable copy of a state_dict: arrays by their bytes, containers recursively, anything
    else (numbers, strings, a schedule callable) by its repr."""
    if isinstance(obj, np.ndarray):
        return ("ndarray", obj.dtype.str, obj.shape, obj.tobytes())
    if isinstance(obj, dict):
        return tuple((repr(k), _freeze(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return tuple(_freeze(v) for v in obj)
    return repr(obj)


def _get(args: dict, where):
    if isinstance(where, tuple):
        return args[where[0]][where[1]]
    return args[where]


def _set(args: dict, where, value):
    if isinstance(where, tuple):
        args[where[0]][where[1]] = value
    else:
        args[where] = value


def _label(where) -> str:
    return where if isinstance(where, str) else where[0]


def _written(entry: Entry, where) -> bool:
    return _label(where) in entry.written


def _misaligned(a: np.ndarray) -> np.ndarray:
    buf = np.zeros(a.nbytes + a.itemsize + 1, np.uint8)
    off = 1 if buf.ctypes.data % a.itemsize == 0 else 0
    m = buf[off : off + a.nbytes].view(a.dtype).reshape(a.shape)
    m[...] = a
    assert not m.flags.aligned
    return m


def _strided(a: np.ndarray) -> np.ndarray:
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype) if a.ndim else np.zeros(2, a.dtype)
    v = big[..., ::2]
    v[...] = a
    return v


def _reversed(a: np.ndarray) -> np.ndarray:
    r = np.ascontiguousarray(a[::-1])[::-1]
    assert r.strides[0] < 0 or a.shape[0] < 2
    return r


def _readonly(a: np.ndarray) -> np.ndarray:
    r = a.copy()
    r.flags.writeable = False
    return r


def _other_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32 if a.dtype == np.float64 else np.float64)


# name -> (make the bad array, whether a read-only argument may accept it with the same result)
MUTATIONS: dict[str, tuple[Callable[[np.ndarray], Any], bool]] = {
    "int32": (lambda a: a.astype(np.int32), False),
    "float16": (lambda a: a.astype(np.float16), False),
    "other_float": (_other_float, False),
    "byteswapped": (lambda a: a.astype(a.dtype.newbyteorder()), False),
    "list": (lambda a: a.tolist(), False),
    "none": (lambda a: None, False),
    "strided": (_strided, True),
    "reversed": (_reversed, True),
    "broadcast": (lambda a: np.broadcast_to(a.reshape(-1)[:1].reshape((1,) * a.ndim), a.shape), False),
    "misaligned": (_misaligned, False),
    "readonly": (_readonly, True),
    "zero_d": (lambda a: np.asarray(a.reshape(-1)[0]), False),
    "wrong_shape": (lambda a: np.zeros(a.shape + (2,), a.dtype), False),
}


def _run_baseline(entry: Entry, dtype) -> dict:
    args = entry.build(dtype)
    result = entry.call(args)
    return {"args": args, "result": result}


def _expect_rejected(entry: Entry, args: dict, names: tuple[str, ...], call: Callable[[], Any]) -> None:
    before = _snapshot(args)
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    msg = str(info.value)
    assert any(n in msg for n in names), f"{entry.name}: message does not name {names}: {msg!r}"
    assert _snapshot(args) == before, f"{entry.name}: a rejected call changed its arguments"


ARRAY_CASES = [
    pytest.param(e.name, w, m, id=f"{e.name}-{_label(w)}{'' if isinstance(w, str) else f'[{w[1]}]'}-{m}")
    for e in ENTRIES
    for w in e.arrays
    for m in MUTATIONS
    if not (m == "none" and _label(w) in e.optional)
    and not (e.any_shape and m in ("zero_d", "wrong_shape"))
    and not (e.any_float and m == "other_float")
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("entry_name", "where", "mutation"), ARRAY_CASES)
def test_bad_array(entry_name, where, mutation, dtype):
    entry = BY_NAME[entry_name]
    make, readable_ok = MUTATIONS[mutation]
    args = entry.build(dtype)
    good = _get(args, where)
    if good.itemsize == 1 and mutation in ("byteswapped", "misaligned"):
        pytest.skip("a byte array has no byte order and is always aligned")
    if good.dtype == np.int64 and mutation == "int32":
        pytest.skip("class indices: int32 is as valid as int64")
    bad = make(good)
    if (
        mutation in ("strided", "reversed", "broadcast")
        and bad.flags.c_contiguous
        and (bad.flags.writeable or not _written(entry, where))
    ):
        pytest.skip(f"a {bad.shape} view is contiguous whatever its strides: nothing wrong to pass")
    _set(args, where, bad)
    label = _label(where)
    if readable_ok and not _written(entry, where):
        # Only read: either a clear rejection or the contiguous call's result.
        base = _run_baseline(entry, dtype)
        before = _snapshot(args)
        try:
            result = entry.call(args)
        except (TypeError, ValueError) as e:
            assert label in str(e), f"message does not name {label}: {e}"
            assert _snapshot(args) == before
            return
        for (k, a), (_, b) in zip(_arrays_of(base["args"]), _arrays_of(args)):
            if k.split("[")[0] in entry.written:
                np.testing.assert_array_equal(b, a, err_msg=k)
        if isinstance(result, np.ndarray):
            np.testing.assert_array_equal(result, base["result"])
        return
    # A dtype mismatch names both sides; the one that fixed the call's dtype may come first.
    names = tuple(_label(w) for w in entry.arrays) if mutation == "other_float" else (label,)
    _expect_rejected(entry, args, names, lambda: entry.call(args))


STRIDED_CASES = [
    pytest.param(e.name, w, id=f"{e.name}-{_label(w)}{'' if isinstance(w, str) else f'[{w[1]}]'}")
    for e in ENTRIES
    for w in e.arrays
]


@pytest.mark.parametrize(("entry_name", "where"), STRIDED_CASES)
def test_non_contiguous_message_gives_the_real_reason(entry_name, where):
    """A strided buffer updated in place: a copy would not receive the update. A strided input
    that is only read: the kernels read contiguous memory (no update is at stake)."""
    entry = BY_NAME[entry_name]
    args = entry.build(np.float64)
    bad = _strided(_get(args, where))
    if bad.flags.c_contiguous:
        pytest.skip(f"a {bad.shape} view is contiguous whatever its strides")
    _set(args, where, bad)
    with pytest.raises(ValueError, match="must be C-contiguous|must be C- or F-contiguous") as info:
        entry.call(args)
    msg = str(info.value)
    if _written(entry, where):
        assert "a copy would not receive the update" in msg, msg
    else:
        assert "the kernels read contiguous memory" in msg and "update" not in msg, msg
        assert "np.ascontiguousarray" in msg and ".contiguous()" in msg, msg


def _bytes_view(memory: np.ndarray, like: np.ndarray) -> np.ndarray:
    """An array shaped and typed like `like`, over the first bytes of `memory`."""
    return memory.reshape(-1).view(np.uint8)[: like.nbytes].view(like.dtype).reshape(like.shape)


ALIAS_CASES = [
    pytest.param(e.name, w, o, id=f"{e.name}-{_label(w)}-is-{_label(o)}")
    for e in ENTRIES
    for w in e.arrays
    if _written(e, w)
    for o in e.arrays
    if o != w and (_label(w), _label(o)) not in e.may_alias
]


@pytest.mark.parametrize(("entry_name", "where", "other"), ALIAS_CASES)
def test_written_argument_aliasing_another(entry_name, where, other):
    entry = BY_NAME[entry_name]
    args = entry.build(np.float64)
    a, b = _get(args, where), _get(args, other)
    if a.shape == b.shape and a.dtype == b.dtype:
        _set(args, where, b)
    elif b.nbytes >= a.nbytes:  # the written argument: a view into the other's memory
        _set(args, where, _bytes_view(b, a))
    else:  # the smaller other argument: a view into the written one's memory
        _set(args, other, _bytes_view(a, b))
    _expect_rejected(entry, args, ("shares memory",), lambda: entry.call(args))


def _prepared(entry: Entry, args: dict, hyper: str, value: Any) -> dict:
    """The keyword arguments that pass `value` as `hyper` (after any preparation step)."""
    for prefix, prepare in entry.prepare.items():
        if hyper.startswith(prefix):
            return prepare(args, hyper, value)
    return {hyper: value}


HYPER_CASES = [
    pytest.param(e.name, h, v, id=f"{e.name}-{h}={v!r}")
    for e in ENTRIES
    for h, values in e.hyper.items()
    for v in values
]


@pytest.mark.parametrize(("entry_name", "hyper", "value"), HYPER_CASES)
def test_bad_hyper_parameter(entry_name, hyper, value):
    entry = BY_NAME[entry_name]
    args = entry.build(np.float64)
    kwargs = _prepared(entry, args, hyper, value)
    # An edit of a param group between steps is reported under the group's key name.
    _expect_rejected(entry, args, (hyper.removeprefix("group."),), lambda: entry.call(args, **kwargs))


def _map_arrays(args: dict, fn) -> dict:
    return {
        k: [fn(a) for a in v] if isinstance(v, list) else fn(v) if isinstance(v, np.ndarray) else v
        for k, v in args.items()
    }


def _param_with_grad(torch):
    """A parameter whose .grad is a view of the array (what torch's clip functions take)."""

    def make(a):
        prm = torch.nn.Parameter(torch.zeros(a.shape, dtype=torch.from_numpy(a).dtype))
        prm.grad = torch.from_numpy(a)
        return prm

    return make


@pytest.mark.parametrize("entry_name", [e.name for e in ENTRIES])
def test_torch_tensors_are_views(entry_name):
    t = pytest.importorskip("torch", reason="torch not installed")
    entry = BY_NAME[entry_name]
    if not entry.arrays:
        pytest.skip(f"{entry_name} takes no arrays")
    base = _run_baseline(entry, np.float32)
    args = entry.build(np.float32)
    tensors = _map_arrays(args, _param_with_grad(t) if entry.grads_of_params else t.from_numpy)
    result = entry.call(tensors)
    # The tensors share memory with `args`: the in-place updates must have reached them.
    for (k, a), (_, b) in zip(_arrays_of(base["args"]), _arrays_of(args)):
        np.testing.assert_array_equal(b, a, err_msg=k)
    if isinstance(result, np.ndarray):
        np.testing.assert_array_equal(result, base["result"])


# Hypothesis: any value of any type for any hyper-parameter is either a real number the entry
# accepts, or rejected with TypeError/ValueError naming it, with nothing changed.
FLAGS = {
    "training",
    "restore_best",
    "drop_last",
    "channels_last",
    "param_grads",
    "staircase",
    "packed",
    "foreach",
    "with_mean",
    "with_std",
    "clip",
    "copy",
    "skip_nonfinite",
    "clip_per_tensor",
    "return_params",
    "amsgrad_v_hat",
    "eps_hat",
    "bias_correction",
    "decay_after_step",
    "nesterov",
}
WORDS = {
    "convention",
    "criterion",
    "monitor",
    "layout",
    "name",
    "variational",
    "mode",
    "threshold_mode",
    "nonlinearity",
    "dtype",
    "nan_policy",
    "reduction",
    "interpolation",
    "padding_mode",
    "kind",
    "data_format",
    "bias_correction_exponent",
    "momentum_schedule",
}
SHAPES = {"shape", "x_shape", "normalized_shape", "milestones", "size"}
_any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.floats(), max_size=2),
)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.sampled_from([(e.name, h) for e in ENTRIES for h in e.hyper]),
    value=_any_value,
)
def test_any_hyper_parameter_value(case, value):
    entry = BY_NAME[case[0]]
    hyper = case[1]
    args = entry.build(np.float64)
    kwargs = _prepared(entry, args, hyper, value)
    before = _snapshot(args)
    try:
        entry.call(args, **kwargs)
    except (TypeError, ValueError) as e:
        assert hyper.removeprefix("group.") in str(e), f"{entry.name}: message does not name {hyper}: {e}"
        assert _snapshot(args) == before
        return
    # Accepted: it must have been a real number (never a string, None, bool, list or NaN),
    # or None where None is documented (momentum=None: a cumulative average).
    if value is None and hyper in entry.optional:
        return
    if hyper in FLAGS:
        assert isinstance(value, bool), f"{hyper}={value!r} accepted as a flag"
        return
    if hyper in SHAPES:
        dims = (value,) if isinstance(value, int) else value
        assert isinstance(dims, (tuple, list)), f"{hyper}={value!r} accepted"
        assert all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims), value
        return
    if hyper.removeprefix("group.") == "betas":
        assert isinstance(value, (tuple, list)) and len(value) == 2, f"betas={value!r} accepted"
        assert all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in value), value
        return
    if hyper in WORDS:
        assert isinstance(value, str), f"{hyper}={value!r} accepted"
        return
    if hyper == "feature_range":
        assert isinstance(value, (tuple, list)) and len(value) == 2, f"feature_range={value!r} accepted"
        assert all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in value), value
        assert value[0] < value[1], value
        return
    assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{hyper}={value!r} accepted"
    assert value == value, f"{hyper}=nan accepted"


# --------------------------------------------------------------------------------------------
# Objects: a rejected step / forward / load changes no state.


def _adam_object():
    p = _lists(1, np.float64, seeds=(1,))[0]
    opt = optim.Adam(p, lr=1e-2)
    opt.step([np.ones_like(a) for a in p])
    return opt, p


def _state_bytes(opt) -> bytes:
    return pickle_dumps(opt.state_dict())


def pickle_dumps(obj) -> bytes:
    import pickle

    return pickle.dumps(copy.deepcopy(obj))


@pytest.mark.parametrize(
    "bad_grads",
    [
        lambda p: [np.ones_like(a) for a in p[:-1]],
        lambda p: [np.ones_like(a).astype(np.float32) for a in p],
        lambda p: [np.ones(a.shape + (1,)) for a in p],
        lambda p: [p[0]] + [np.ones_like(a) for a in p[1:]],
        lambda p: [np.ones_like(a)[..., None][..., 0][::1] if a.ndim else a for a in p][:1] * 0,
    ],
    ids=["short", "dtype", "shape", "aliases-param", "empty"],
)
def test_rejected_step_changes_no_state(bad_grads):
    opt, p = _adam_object()
    before = _state_bytes(opt)
    params_before = [a.copy() for a in p]
    with pytest.raises((TypeError, ValueError)):
        opt.step(bad_grads(p))
    assert _state_bytes(opt) == before
    for a, b in zip(p, params_before):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------
# Crash-prone cases, each in its own interpreter.

CRASH_CASES = {
    "bn-zero-channels": """
        from nndl_fast import norm
        for shape, cl in (((4, 0), False), ((4, 5, 0), True), ((4, 0, 5), False)):
            x = np.zeros(shape)
            y = norm.batch_norm_forward(x, channels_last=cl)
            assert y[0].shape == shape
            y = norm.batch_norm_forward(x, np.ones(0), np.zeros(0), np.zeros(0), np.ones(0),
                                        training=False, channels_last=cl)
            assert y[0].shape == shape
        print("ok")
    """,
    "huge-thread-count": """
        for n in (100000, 50000, 2**31 - 1):
            try:
                nndl_fast.set_num_threads(n)
            except ValueError as e:
                assert "must be in [1," in str(e), e
            p = [np.ones(100000)]; nndl_fast.optim.sgd(p, [np.ones(100000)], step=1, lr=0.1)
        print("ok")
    """,
    "workspace-overflow": """
        from nndl_fast import norm
        for shape in ((2**62, 2**62), (-1, 3), (2**40, 2**40, 2**40)):
            try:
                w = norm.batch_norm_workspace(shape)
            except ValueError as e:
                assert "shape" in str(e), e
            else:
                raise AssertionError(f"{shape}: workspace of {w.size} elements")
        print("ok")
    """,
    "lists-emptied-by-another-thread": """
        import threading
        n = 1 << 22
        for _ in range(20):
            p = [np.ones(n, np.float32) for _ in range(4)]
            g = [np.ones(n, np.float32) for _ in range(4)]
            m = [np.zeros(n, np.float32) for _ in range(4)]
            v = [np.zeros(n, np.float32) for _ in range(4)]
            t = threading.Thread(target=lambda: (p.clear(), g.clear(), m.clear(), v.clear()))
            t.start()
            try:
                nndl_fast.optim.adam(p, g, m, v, step=1, lr=1e-3)
            except (TypeError, ValueError):
                pass
            t.join()
        print("ok")
    """,
    "detach-callback-empties-lists": """
        p = [np.ones(1000), np.ones(1000)]
        m = [np.zeros(1000), np.zeros(1000)]
        v = [np.zeros(1000), np.zeros(1000)]
        class Evil:
            def detach(self):
                p.clear(); m.clear(); v.clear()
                import gc; gc.collect()
                return self
            def numpy(self):
                return np.ones(1000)
        g = [np.ones(1000), Evil()]
        try:
            nndl_fast.optim.adam(p, g, m, v, step=1, lr=1e-3)
        except (TypeError, ValueError):
            pass
        print("ok")
    """,
}


@pytest.mark.parametrize("name", list(CRASH_CASES))
def test_crash_prone_case_in_subprocess(name):
    code = "import numpy as np\nimport nndl_fast, nndl_fast.optim\n" + textwrap.dedent(CRASH_CASES[name])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), (
        f"{name}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )
