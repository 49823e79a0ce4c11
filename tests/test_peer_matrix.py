"""The peer matrix: one row per (rule, peer preset), 50 steps on a fixed problem, float64.

Each row runs nndl_fast.optim with ``convention=<peer>`` (and the row's options) and checks it
agrees to 1e-12 relative with (a) the NumPy transcription of the peer's formula in
nndl_fast.reference.optim_peers, always, and (b) the peer itself where it is installed:
torch.optim, optax (jax with x64), Keras 3 (jax backend, float64 variables) and ONNX's
reference operators. optax and Keras run in one subprocess each (jax must not enter the test
process, see peer_runs) and are marked slow.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nndl_fast import optim as O
from nndl_fast.reference import optim_peers as P

STEPS = 50
RTOL = 1e-12


def grad_of(theta: np.ndarray) -> np.ndarray:
    """The fixed problem's gradient, elementwise (so every peer gets the very same numbers):
    ½·d·(θ − c)² plus a ripple."""
    return D * (theta - C) + 0.3 * np.sin(3.0 * theta)


_rng = np.random.default_rng(20261201)
THETA0 = _rng.normal(size=(3, 5))
C = _rng.normal(size=(3, 5))
D = _rng.uniform(0.5, 2.0, size=(3, 5))

# (row id, our class, our options, (rule, peer) of the transcription, the peer's own options)
ROWS = [
    ("sgd-torch", O.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "convention": "torch"},
     ("sgd", "torch"), {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("nesterov-torch", O.Nesterov, {"lr": 0.05, "convention": "torch", "weight_decay": 0.01},
     ("sgd", "torch"), {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("momentum-keras", O.Momentum, {"lr": 0.05, "convention": "keras"},
     ("sgd", "keras"), {"learning_rate": 0.05, "momentum": 0.9}),
    ("nesterov-keras", O.Nesterov, {"lr": 0.05, "convention": "keras"},
     ("sgd", "keras"), {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("sgd-keras", O.SGD, {"convention": "keras"}, ("sgd", "keras"), {}),
    ("sgd-optax", O.SGD, {"lr": 0.05, "momentum": 0.5, "convention": "optax"},
     ("sgd", "optax"), {"learning_rate": 0.05, "momentum": 0.5}),
    ("momentum-optax", O.Momentum, {"lr": 0.05, "convention": "optax"},
     ("sgd", "optax"), {"learning_rate": 0.05, "momentum": 0.9}),
    ("nesterov-optax", O.Nesterov, {"lr": 0.05, "convention": "optax"},
     ("sgd", "optax"), {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("momentum-onnx", O.SGD,
     {"lr": 0.05, "momentum": 0.875, "dampening": 0.25, "weight_decay": 2**-6, "convention": "onnx"},
     ("sgd", "onnx"), {"R": 0.05, "alpha": 0.875, "beta": 0.75, "mode": "standard", "norm_coefficient": 2**-6}),
    ("nesterov-onnx", O.Nesterov, {"lr": 0.05, "momentum": 0.875, "dampening": 0.25, "convention": "onnx"},
     ("sgd", "onnx"), {"R": 0.05, "alpha": 0.875, "beta": 0.75, "mode": "nesterov", "norm_coefficient": 0.0}),
    ("adagrad-torch", O.AdaGrad,
     {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01, "convention": "torch"},
     ("adagrad", "torch"), {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01}),
    ("adagrad-keras", O.AdaGrad, {"lr": 0.1, "convention": "keras"}, ("adagrad", "keras"), {"learning_rate": 0.1}),
    ("adagrad-optax", O.AdaGrad, {"lr": 0.1, "convention": "optax"}, ("adagrad", "optax"), {"learning_rate": 0.1}),
    ("adagrad-onnx", O.AdaGrad,
     {"lr": 0.1, "lr_decay": 2**-5, "weight_decay": 2**-6, "eps": 2**-20, "convention": "onnx"},
     ("adagrad", "onnx"), {"R": 0.1, "decay_factor": 2**-5, "norm_coefficient": 2**-6, "epsilon": 2**-20}),
    ("rmsprop-torch", O.RMSprop, {"convention": "torch"}, ("rmsprop", "torch"), {}),
    ("rmsprop-torch-centered-momentum", O.RMSprop,
     {"lr": 0.01, "centered": True, "momentum": 0.5, "convention": "torch"},
     ("rmsprop", "torch"), {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ("rmsprop-keras", O.RMSprop, {"lr": 0.01, "convention": "keras"}, ("rmsprop", "keras"), {"learning_rate": 0.01}),
    ("rmsprop-keras-centered-momentum", O.RMSprop,
     {"lr": 0.01, "centered": True, "momentum": 0.5, "convention": "keras"},
     ("rmsprop", "keras"), {"learning_rate": 0.01, "centered": True, "momentum": 0.5}),
    ("rmsprop-optax", O.RMSprop, {"lr": 0.01, "convention": "optax"}, ("rmsprop", "optax"), {"learning_rate": 0.01}),
    ("rmsprop-optax-nesterov-bias", O.RMSprop,
     {"lr": 0.01, "momentum": 0.9, "nesterov": True, "bias_correction": True, "initial_accumulator_value": 0.1,
      "convention": "optax"},
     ("rmsprop", "optax"),
     {"learning_rate": 0.01, "momentum": 0.9, "nesterov": True, "bias_correction": True, "initial_scale": 0.1}),
    ("rmsprop-optax-centered-bias", O.RMSprop,
     {"lr": 0.01, "eps": 1e-2, "centered": True, "bias_correction": True, "convention": "optax"},
     ("rmsprop", "optax"), {"learning_rate": 0.01, "eps": 1e-2, "centered": True, "bias_correction": True}),
    ("rmsprop-optax-eps-outside", O.RMSprop, {"lr": 0.01, "eps_inside_sqrt": False, "convention": "optax"},
     ("rmsprop", "optax"), {"learning_rate": 0.01, "eps_in_sqrt": False}),
    ("adadelta-torch", O.AdaDelta, {"weight_decay": 0.01, "convention": "torch"},
     ("adadelta", "torch"), {"weight_decay": 0.01}),
    ("adadelta-keras", O.AdaDelta, {"lr": 1.0, "convention": "keras"}, ("adadelta", "keras"), {"learning_rate": 1.0}),
    ("adadelta-optax", O.AdaDelta, {"weight_decay": 0.01, "convention": "optax"},
     ("adadelta", "optax"), {"learning_rate": 1.0, "weight_decay": 0.01}),
    ("adam-torch", O.Adam, {"lr": 0.01, "weight_decay": 0.01, "convention": "torch"},
     ("adam", "torch"), {"lr": 0.01, "weight_decay": 0.01}),
    ("adam-torch-decoupled", O.Adam, {"lr": 0.01, "decoupled_weight_decay": 0.05, "convention": "torch"},
     ("adam", "torch"), {"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": True}),
    ("adam-keras-weight-decay", O.Adam, {"lr": 0.01, "decoupled_weight_decay": 0.05, "convention": "keras"},
     ("adam", "keras"), {"learning_rate": 0.01, "weight_decay": 0.05}),
    ("adam-torch-amsgrad", O.Adam, {"lr": 0.01, "amsgrad": True, "convention": "torch"},
     ("adam", "torch"), {"lr": 0.01, "amsgrad": True}),
    ("adam-keras", O.Adam, {"lr": 0.01, "eps": 1e-3, "convention": "keras"},
     ("adam", "keras"), {"learning_rate": 0.01, "epsilon": 1e-3}),
    ("amsgrad-keras", O.Adam, {"lr": 0.01, "eps": 1e-3, "amsgrad": True, "convention": "keras"},
     ("adam", "keras"), {"learning_rate": 0.01, "epsilon": 1e-3, "amsgrad": True}),
    ("adam-optax", O.Adam, {"lr": 0.01, "eps_root": 1e-4, "convention": "optax"},
     ("adam", "optax"), {"learning_rate": 0.01, "eps_root": 1e-4}),
    ("amsgrad-optax", O.Adam, {"lr": 0.01, "amsgrad": True, "convention": "optax"},
     ("amsgrad", "optax"), {"learning_rate": 0.01}),
    ("adam-onnx", O.Adam, {"lr": 0.01, "betas": (0.875, 1 - 2**-10), "eps": 2**-20, "convention": "onnx"},
     ("adam", "onnx"), {"R": 0.01, "alpha": 0.875, "beta": 1 - 2**-10, "epsilon": 2**-20}),
    ("adam-onnx-norms", O.Adam,
     {"lr": 0.01, "betas": (0.875, 1 - 2**-10), "weight_decay": 2**-6, "decoupled_weight_decay": 2**-9,
      "eps": 2**-10, "convention": "onnx"},
     ("adam", "onnx"),
     {"R": 0.01, "alpha": 0.875, "beta": 1 - 2**-10, "norm_coefficient": 2**-6, "norm_coefficient_post": 2**-9,
      "epsilon": 2**-10}),
    ("adamw-torch", O.AdamW, {"lr": 0.01, "weight_decay": 0.05, "convention": "torch"},
     ("adamw", "torch"), {"lr": 0.01, "weight_decay": 0.05}),
    ("adamw-keras", O.AdamW, {"lr": 0.01, "weight_decay": 0.05, "eps": 1e-3, "convention": "keras"},
     ("adamw", "keras"), {"learning_rate": 0.01, "weight_decay": 0.05, "epsilon": 1e-3}),
    ("adamw-optax", O.AdamW, {"lr": 0.01, "weight_decay": 0.05, "convention": "optax"},
     ("adamw", "optax"), {"learning_rate": 0.01, "weight_decay": 0.05}),
    ("nadam-torch", O.Nadam, {"lr": 0.01, "convention": "torch"}, ("nadam", "torch"), {"lr": 0.01}),
    ("nadam-keras", O.Nadam, {"lr": 0.01, "convention": "keras"}, ("nadam", "keras"), {"learning_rate": 0.01}),
    ("nadam-optax", O.Nadam, {"lr": 0.01, "eps_root": 1e-4, "convention": "optax"},
     ("nadam", "optax"), {"learning_rate": 0.01, "eps_root": 1e-4}),
]  # fmt: skip
IDS = [r[0] for r in ROWS]


def run_ours(cls, options) -> np.ndarray:
    theta = THETA0.copy()
    opt = cls([theta], **options)
    for _ in range(STEPS):
        assert opt.step([grad_of(theta)])
    return theta


def run_transcription(key, options) -> np.ndarray:
    f, theta, state = P.PEERS[key], THETA0.copy(), {}
    for t in range(1, STEPS + 1):
        theta = f(theta, grad_of(theta), state, t, **options)
    return theta


def check(ours: np.ndarray, want: np.ndarray) -> None:
    assert not np.array_equal(want, THETA0)  # the run moved
    np.testing.assert_allclose(ours, want, rtol=RTOL, atol=RTOL * float(np.max(np.abs(want))))


@pytest.mark.parametrize(("row", "cls", "ours", "key", "theirs"), ROWS, ids=IDS)
def test_against_transcription(row, cls, ours, key, theirs):
    check(run_ours(cls, ours), run_transcription(key, theirs))


def test_matrix_covers_every_rule_and_preset():
    """Every optimizer class meets every peer preset it has in some row."""
    have = {(cls, o.get("convention")) for _, cls, o, _, _ in ROWS}
    for cls, peers in [
        (O.SGD, ("torch", "keras", "optax", "onnx")),
        (O.Momentum, ("keras", "optax")),
        (O.Nesterov, ("torch", "keras", "optax", "onnx")),
        (O.AdaGrad, ("torch", "keras", "optax", "onnx")),
        (O.RMSprop, ("torch", "keras", "optax")),
        (O.AdaDelta, ("torch", "keras", "optax")),
        (O.Adam, ("torch", "keras", "optax", "onnx")),
        (O.AdamW, ("torch", "keras", "optax")),
        (O.Nadam, ("torch", "keras", "optax")),
    ]:
        for peer in peers:
            assert (cls, peer) in have, (cls.__name__, peer)


# --------------------------------------------------------------------------------------
# (b) the peers themselves
# --------------------------------------------------------------------------------------
TORCH = {"sgd": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSprop", "adadelta": "Adadelta", "adam": "Adam",
         "adamw": "AdamW", "nadam": "NAdam"}  # fmt: skip
OPTAX = {"sgd": "sgd", "adagrad": "adagrad", "rmsprop": "rmsprop", "adadelta": "adadelta", "adam": "adam",
         "amsgrad": "amsgrad", "adamw": "adamw", "nadam": "nadam"}  # fmt: skip
KERAS = {"sgd": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSprop", "adadelta": "Adadelta", "adam": "Adam",
         "adamw": "AdamW", "nadam": "Nadam"}  # fmt: skip
ONNX = {"sgd": "Momentum", "adagrad": "Adagrad", "adam": "Adam"}


def rows_of(peer: str) -> list:
    return [pytest.param(*r, id=r[0]) for r in ROWS if r[3][1] == peer]


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


# jax (optax's and Keras's backend here) is multithreaded: imported into the test process, it
# would make every later os.fork (the search tests' process pools) warn of a deadlock. So the
# optax and Keras runs happen in a subprocess per peer, which writes every row's result.
def peer_runs(peer: str, out: str) -> None:
    """In a fresh process: every row of ``peer`` run by the peer itself, saved to ``out`` (.npz)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax

    jax.config.update("jax_enable_x64", True)
    results = {}
    if peer == "optax":
        import optax

        for row, _, _, key, theirs in ROWS:
            if key[1] != "optax":
                continue
            params = jax.numpy.asarray(THETA0)
            assert params.dtype == np.float64
            tx = getattr(optax, OPTAX[key[0]])(**theirs)
            state = tx.init(params)
            for _ in range(STEPS):
                updates, state = tx.update(jax.numpy.asarray(grad_of(np.asarray(params))), state, params)
                params = optax.apply_updates(params, updates)
            results[row] = np.asarray(params)
    else:
        import keras

        assert keras.backend.backend() == "jax"
        keras.config.set_floatx("float64")  # the optimizer's learning-rate variable is of floatx
        for row, _, _, key, theirs in ROWS:
            if key[1] != "keras":
                continue
            var = keras.Variable(THETA0.copy(), dtype="float64")
            opt = getattr(keras.optimizers, KERAS[key[0]])(**theirs)
            for _ in range(STEPS):
                opt.apply_gradients([(jax.numpy.asarray(grad_of(np.asarray(var.value))), var)])
            results[row] = np.asarray(var.value)
            assert results[row].dtype == np.float64
    np.savez(out, **results)


def peer_results(peer: str, tmp_path_factory) -> dict[str, np.ndarray]:
    for name in ("jax", peer):  # looked up, not imported (see above)
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed")
    out = tmp_path_factory.mktemp(peer) / "runs.npz"
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        f"import test_peer_matrix as m; m.peer_runs({peer!r}, {str(out)!r})"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as runs:
        return dict(runs)


@pytest.fixture(scope="module")
def optax_runs(tmp_path_factory):
    return peer_results("optax", tmp_path_factory)


@pytest.fixture(scope="module")
def keras_runs(tmp_path_factory):
    return peer_results("keras", tmp_path_factory)


@pytest.fixture(scope="module")
def onnx_reference():
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator


@pytest.mark.parametrize(("row", "cls", "ours", "key", "theirs"), rows_of("torch"))
def test_against_torch(torch, row, cls, ours, key, theirs):
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # NAdam's mu_product is a tensor of the default dtype
    try:
        p = torch.tensor(THETA0.copy(), requires_grad=True)
        opt = getattr(torch.optim, TORCH[key[0]])([p], **theirs)
        for _ in range(STEPS):
            p.grad = torch.from_numpy(grad_of(p.detach().numpy()))
            opt.step()
    finally:
        torch.set_default_dtype(default)
    check(run_ours(cls, ours), p.detach().numpy())


@pytest.mark.slow
@pytest.mark.parametrize(("row", "cls", "ours", "key", "theirs"), rows_of("optax"))
def test_against_optax(optax_runs, row, cls, ours, key, theirs):
    check(run_ours(cls, ours), optax_runs[row])


@pytest.mark.slow
@pytest.mark.parametrize(("row", "cls", "ours", "key", "theirs"), rows_of("keras"))
def test_against_keras(keras_runs, row, cls, ours, key, theirs):
    check(run_ours(cls, ours), keras_runs[row])


def onnx_model(op: str, attrs: dict, n_state: int):
    """A one-node model of the ai.onnx.preview.training operator op over float64 tensors."""
    from onnx import TensorProto, helper

    state = ["V", "H"][:n_state] if op == "Adam" else ["V" if op == "Momentum" else "H"]
    inputs = ["R", "T", "X", "G", *state]
    outputs = ["X_new", *(s + "_new" for s in state)]
    node = helper.make_node(op, inputs, outputs, domain="ai.onnx.preview.training", **attrs)
    dbl = [helper.make_tensor_value_info(n, TensorProto.DOUBLE, None) for n in ["X", "G", *state]]
    graph = helper.make_graph(
        [node],
        op,
        [
            helper.make_tensor_value_info("R", TensorProto.DOUBLE, []),
            helper.make_tensor_value_info("T", TensorProto.INT64, []),
            *dbl,
        ],
        [helper.make_tensor_value_info(n, TensorProto.DOUBLE, None) for n in outputs],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.preview.training", 1)]
    return helper.make_model(graph, opset_imports=opsets), state


@pytest.mark.parametrize(("row", "cls", "ours", "key", "theirs"), rows_of("onnx"))
def test_against_onnx_reference(onnx_reference, row, cls, ours, key, theirs):
    op = ONNX[key[0]]
    attrs = {k: v for k, v in theirs.items() if k != "R"}
    model, names = onnx_model(op, attrs, 2)
    sess = onnx_reference(model)
    x = THETA0.copy()
    state = {n: np.zeros_like(x) for n in names}
    for t in range(1, STEPS + 1):
        feeds = {"R": np.array(theirs["R"]), "T": np.array(t - 1, dtype=np.int64), "X": x, "G": grad_of(x), **state}
        x, *new = sess.run(None, feeds)
        state = dict(zip(names, new))
    check(run_ours(cls, ours), x)
