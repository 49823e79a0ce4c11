"""ONNX's training operators (ai.onnx.preview.training Adagrad, Momentum, Adam) through
``convention="onnx"``: the inputs of onnx's own backend test cases (onnx/backend/test/case/node/
{adagrad,momentum,adam}.py; the wheel no longer ships their data, so they are regenerated here),
plus more attribute combinations (T > 0, norm_coefficient_post, a momentum V ≠ 0 at T = 0),
evaluated by ``onnx.reference.ReferenceEvaluator``. ONNX's input T (the updates done) is our
``step − 1``; its attributes are float32, so ours get the same float32-rounded values.

float32 (the cases' dtype): one node over every tensor, as the cases. float64: one node per
tensor (the reference's multi-tensor path rounds to float32); the reference evaluator computes its
scalar coefficients (1 − β, βᵀ, 1 − norm_coefficient_post) from the float32 attributes in float32,
so it agrees to float32 rounding there, and the NumPy transcription of the operator
(nndl_fast.reference.optim_peers) checks float64 to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest

from nndl_fast import optim as O
from nndl_fast.reference import optim_peers as P

pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

DOMAIN = "ai.onnx.preview.training"
STATE = {"Adagrad": ("H",), "Momentum": ("V",), "Adam": ("V", "H")}


# The operators' attribute defaults (the schemas'), given to ours and the transcription explicitly
DEFAULTS = {
    "Adagrad": {"epsilon": 1e-6, "decay_factor": 0.0, "norm_coefficient": 0.0},
    "Momentum": {},
    "Adam": {"alpha": 0.9, "beta": 0.999, "epsilon": 1e-6, "norm_coefficient": 0.0, "norm_coefficient_post": 0.0},
}


def f32(x: float) -> float:
    """An ONNX FLOAT attribute as the operator sees it."""
    return float(np.float32(x))


def evaluate(op: str, attrs: dict, r: float, t: int, xs, gs, states, dtype):
    """The operator over the tensors xs (one node over all of them in float32, one node each in
    float64); returns (new xs, {state name: new list})."""
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    names = STATE[op]
    groups = [list(range(len(xs)))] if dtype == np.float32 else [[k] for k in range(len(xs))]
    nodes, value_infos, outs, feeds = [], [], [], {"R": np.array(r, dtype=dtype), "T": np.array(t, dtype=np.int64)}
    for gi, ks in enumerate(groups):
        ins = [f"X{k}" for k in ks] + [f"G{k}" for k in ks] + [f"{s}{k}" for s in names for k in ks]
        out = [f"X{k}_new" for k in ks] + [f"{s}{k}_new" for s in names for k in ks]
        nodes.append(helper.make_node(op, ["R", "T", *ins], out, domain=DOMAIN, name=f"n{gi}", **attrs))
        outs += out
    for k, x in enumerate(xs):
        feeds[f"X{k}"], feeds[f"G{k}"] = x, gs[k]
        for s in names:
            feeds[f"{s}{k}"] = states[s][k]
    value_infos = [helper.make_tensor_value_info(n, elem, None) for n in feeds if n not in ("R", "T")]
    graph = helper.make_graph(
        nodes,
        op,
        [helper.make_tensor_value_info("R", elem, []), helper.make_tensor_value_info("T", TensorProto.INT64, []),
         *value_infos],
        [helper.make_tensor_value_info(n, elem, None) for n in outs],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(DOMAIN, 1)])
    res = dict(zip(outs, ReferenceEvaluator(model).run(None, feeds)))
    return [res[f"X{k}_new"] for k in range(len(xs))], {s: [res[f"{s}{k}_new"] for k in range(len(xs))] for s in names}


def ours(op: str, attrs: dict, r: float, t: int, xs, gs, states):
    """The same update by nndl_fast.optim's functional forms with convention="onnx"."""
    xs = [x.copy() for x in xs]
    st = {s: [v.copy() for v in vs] for s, vs in states.items()}
    a = {k: f32(v) if isinstance(v, float) else v for k, v in {**DEFAULTS[op], **attrs}.items()}
    if op == "Adagrad":
        O.adagrad(
            xs,
            gs,
            st["H"],
            step=t + 1,
            lr=r,
            lr_decay=a["decay_factor"],
            eps=a["epsilon"],
            weight_decay=a["norm_coefficient"],
            convention="onnx",
        )
    elif op == "Momentum":
        O.sgd(
            xs,
            gs,
            st["V"],
            step=t + 1,
            lr=r,
            momentum=a["alpha"],
            dampening=1.0 - a["beta"],
            nesterov=a["mode"] == "nesterov",
            weight_decay=a["norm_coefficient"],
            convention="onnx",
        )
    else:
        O.adam(
            xs,
            gs,
            st["V"],
            st["H"],
            step=t + 1,
            lr=r,
            betas=(a["alpha"], a["beta"]),
            eps=a["epsilon"],
            weight_decay=a["norm_coefficient"],
            decoupled_weight_decay=a["norm_coefficient_post"],
            convention="onnx",
        )
    return xs, st  # fmt: skip


def transcribe(op: str, attrs: dict, r: float, t: int, xs, gs, states):
    """The operator by its NumPy transcription, in float64, with the float32 attributes."""
    f = {"Adagrad": P.adagrad_onnx, "Momentum": P.momentum_onnx, "Adam": P.adam_onnx}[op]
    a = {k: f32(v) if isinstance(v, float) else v for k, v in {**DEFAULTS[op], **attrs}.items()}
    new_x, new_state = [], {s: [] for s in STATE[op]}
    for k, x in enumerate(xs):
        st = {s: states[s][k].copy() for s in STATE[op]}
        new_x.append(f(x, gs[k], st, t + 1, R=r, **a))
        for s in STATE[op]:
            new_state[s].append(st[s])
    return new_x, new_state


def arrays(*values):
    return [np.array(v) for v in values]


# (case id, op, attributes, R, T, X list, G list, state lists): onnx's own cases first
CASES = [
    ("adagrad", "Adagrad", {"norm_coefficient": 0.001, "epsilon": 1e-5, "decay_factor": 0.1}, 0.1, 0,
     arrays([1.0]), arrays([-1.0]), {"H": arrays([2.0])}),
    ("adagrad_multiple", "Adagrad", {"norm_coefficient": 0.001, "epsilon": 1e-5, "decay_factor": 0.1}, 0.1, 0,
     arrays([1.0], [1.0, 2.0]), arrays([-1.0], [-1.0, -3.0]), {"H": arrays([2.0], [4.0, 1.0])}),
    ("momentum", "Momentum", {"norm_coefficient": 0.001, "alpha": 0.95, "beta": 0.1, "mode": "standard"}, 0.1, 0,
     arrays([1.2, 2.8]), arrays([-0.94, -2.5]), {"V": arrays([1.7, 3.6])}),
    ("nesterov_momentum", "Momentum", {"norm_coefficient": 0.01, "alpha": 0.95, "beta": 1.0, "mode": "nesterov"},
     0.1, 0, arrays([1.2, 2.8]), arrays([-0.94, -2.5]), {"V": arrays([1.7, 3.6])}),
    ("momentum_multiple", "Momentum", {"norm_coefficient": 0.001, "alpha": 0.95, "beta": 0.85, "mode": "standard"},
     0.1, 0, arrays([1.0], [1.0, 2.0]), arrays([-1.0], [-1.0, -3.0]), {"V": arrays([2.0], [4.0, 1.0])}),
    ("adam", "Adam", {"norm_coefficient": 0.001, "alpha": 0.95, "beta": 0.1, "epsilon": 1e-7}, 0.1, 0,
     arrays([1.2, 2.8]), arrays([-0.94, -2.5]), {"V": arrays([1.7, 3.6]), "H": arrays([0.1, 0.1])}),
    ("adam_multiple", "Adam", {"norm_coefficient": 0.001, "alpha": 0.95, "beta": 0.85, "epsilon": 1e-2}, 0.1, 0,
     arrays([1.0], [1.0, 2.0]), arrays([-1.0], [-1.0, -3.0]),
     {"V": arrays([2.0], [4.0, 1.0]), "H": arrays([0.5], [1.0, 10.0])}),
    # more attribute combinations: T > 0, norm_coefficient_post, defaults
    ("adagrad_T7", "Adagrad", {"decay_factor": 0.25}, 0.05, 7,
     arrays([1.0, -0.5, 3.0]), arrays([0.3, -1.0, 2.0]), {"H": arrays([0.5, 1.0, 0.1])}),
    ("momentum_T3", "Momentum", {"norm_coefficient": 0.02, "alpha": 0.9, "beta": 0.7, "mode": "standard"}, 0.1, 3,
     arrays([1.2, 2.8]), arrays([-0.94, -2.5]), {"V": arrays([1.7, 3.6])}),
    ("nesterov_T1_beta", "Momentum", {"norm_coefficient": 0.0, "alpha": 0.8, "beta": 0.6, "mode": "nesterov"},
     0.2, 1, arrays([1.0], [1.0, 2.0]), arrays([-1.0], [-1.0, -3.0]), {"V": arrays([2.0], [4.0, 1.0])}),
    ("nesterov_T0_beta", "Momentum", {"norm_coefficient": 0.0, "alpha": 0.8, "beta": 0.6, "mode": "nesterov"},
     0.2, 0, arrays([1.0], [1.0, 2.0]), arrays([-1.0], [-1.0, -3.0]), {"V": arrays([2.0], [4.0, 1.0])}),
    ("adam_T5_post", "Adam",
     {"norm_coefficient": 0.01, "norm_coefficient_post": 0.05, "alpha": 0.9, "beta": 0.99, "epsilon": 1e-3},
     0.1, 5, arrays([1.2, 2.8]), arrays([-0.94, -2.5]), {"V": arrays([1.7, 3.6]), "H": arrays([0.1, 0.2])}),
    ("adam_T0_post", "Adam", {"norm_coefficient_post": 0.1}, 0.1, 0,
     arrays([1.0], [1.0, 2.0]), arrays([-1.0], [-1.0, -3.0]),
     {"V": arrays([2.0], [4.0, 1.0]), "H": arrays([0.5], [1.0, 10.0])}),
    ("adam_T1_defaults", "Adam", {}, 0.01, 1,
     arrays([1.0, 2.0, -3.0]), arrays([0.5, -1.0, 0.25]),
     {"V": arrays([0.1, 0.0, -0.2]), "H": arrays([0.5, 1.0, 0.0])}),
]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("case", "op", "attrs", "r", "t", "xs", "gs", "states"), CASES, ids=[c[0] for c in CASES])
def test_onnx_case(case, op, attrs, r, t, xs, gs, states, dtype):
    r = float(np.array(r, dtype=dtype))
    xs = [x.astype(dtype) for x in xs]
    gs = [g.astype(dtype) for g in gs]
    states = {s: [v.astype(dtype) for v in vs] for s, vs in states.items()}
    want_x, want_state = evaluate(op, attrs, r, t, xs, gs, states, dtype)
    got_x, got_state = ours(op, attrs, r, t, xs, gs, states)
    assert all(x.dtype == dtype for x in got_x)
    tol = {"rtol": 1e-6, "atol": 1e-9} if dtype == np.float64 else {"rtol": 2e-6, "atol": 1e-7}
    if dtype == np.float64:  # and the transcription, to rounding
        check(got_x, got_state, *transcribe(op, attrs, r, t, xs, gs, states), {"rtol": 1e-12, "atol": 1e-14})
    check(got_x, got_state, want_x, want_state, tol)


def check(got_x, got_state, want_x, want_state, tol):
    for k in range(len(want_x)):
        np.testing.assert_allclose(got_x[k], want_x[k], **tol, err_msg=f"X{k}")
        for s in want_state:
            np.testing.assert_allclose(got_state[s][k], want_state[s][k], **tol, err_msg=f"{s}{k}")


def test_onnx_preset_defaults_are_the_schemas():
    """convention="onnx" takes ONNX's attribute defaults (to float32, as ONNX stores them)."""
    from onnx import defs

    def default(op, name):
        return defs.get_schema(op, domain=DOMAIN).attributes[name].default_value.f

    adam = O.Adam([np.zeros(1)], convention="onnx").param_groups[0]
    assert f32(adam["betas"][0]) == default("Adam", "alpha")
    assert f32(adam["betas"][1]) == default("Adam", "beta")
    assert f32(adam["eps"]) == default("Adam", "epsilon")
    assert adam["weight_decay"] == default("Adam", "norm_coefficient")
    assert adam["decoupled_weight_decay"] == default("Adam", "norm_coefficient_post")
    adagrad = O.AdaGrad([np.zeros(1)], convention="onnx").param_groups[0]
    assert f32(adagrad["eps"]) == default("Adagrad", "epsilon")
    assert adagrad["lr_decay"] == default("Adagrad", "decay_factor")
    assert adagrad["weight_decay"] == default("Adagrad", "norm_coefficient")


def test_onnx_momentum_keeps_the_buffer_at_T0_where_torch_discards_it():
    """The difference the onnx preset exists for: at T = 0 ONNX computes V = αV + g."""
    x, g, v = np.array([1.0]), np.array([2.0]), np.array([3.0])
    for convention, want_v in [("onnx", 0.5 * 3.0 + 2.0), ("torch", 2.0)]:
        xs, vs = [x.copy()], [v.copy()]
        O.sgd(xs, [g], vs, step=1, lr=0.1, momentum=0.5, convention=convention)
        assert vs[0][0] == want_v
        assert xs[0][0] == 1.0 - 0.1 * want_v
