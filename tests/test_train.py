"""nndl_fast.train: early stopping against traces worked out by hand from Prechelt's (1998)
definitions and Keras's patience rule, the best-epoch snapshot, state round-trips,
reproducible mini-batches and the progress bar."""

from __future__ import annotations

import io
import math
import pickle

import numpy as np
import pytest

from nndl_fast.reference import random as reference_random
from nndl_fast.train import EarlyStopping, minibatches, progress

nan = math.nan


def _run(stopper, vals, trains=None, first_epoch=1):
    """Feeds epochs first_epoch, first_epoch + 1, …; returns the epoch at which update said stop."""
    for i, v in enumerate(vals):
        t = None if trains is None else trains[i]
        if stopper.update(first_epoch + i, v, train=t):
            return first_epoch + i
    return None


def _same(stats, expected):
    assert len(stats) == len(expected)
    for s, e in zip(stats, expected):
        assert (math.isnan(s) and math.isnan(e)) or s == pytest.approx(e, rel=1e-12, abs=1e-12), (stats, expected)


# -- each criterion against a trace computed by hand -------------------------------------------
# GL_5. E_opt = 1, .8, .7, .7, .6, .6, .6; GL = 100 (E_va / E_opt − 1):
# 0, 0, 0, 100 (.72/.7 − 1) = 2.857…, 0, 100 (.62/.6 − 1) = 3.333…, 100 (.64/.6 − 1) = 6.666… > 5.
GL_VALS = [1.0, 0.8, 0.7, 0.72, 0.6, 0.62, 0.64, 0.66]
GL_STATS = [0.0, 0.0, 0.0, 100 * 0.02 / 0.7, 0.0, 100 * 0.02 / 0.6, 100 * 0.04 / 0.6]


def test_gl_matches_hand_trace():
    es = EarlyStopping(criterion="GL", alpha=5.0)
    assert _run(es, GL_VALS) == 7
    assert (es.best_epoch, es.best_value, es.stopped_epoch) == (5, 0.6, 7)
    _same(es.history["statistic"], GL_STATS)
    assert "GL" in es.stop_reason and "epoch 7" in es.stop_reason


def test_gl_alpha_is_a_strict_threshold():
    # GL(7) = 6.67: alpha = 7 lets the whole trace through (GL(8) = 10 would stop it).
    es = EarlyStopping(criterion="GL", alpha=7.0)
    assert _run(es, GL_VALS) == 8


# PQ_0.5, strip k = 5. Strip 1 (epochs 1–5): E_tr = 1, .9, .8, .7, .6: Σ = 4, min = .6,
# P_5 = 1000 (4 / (5 · .6) − 1) = 333.33…; E_va = 1, .9, .8, .85, .9: E_opt = .8, GL = 12.5;
# PQ = 12.5 / 333.33 = .0375 (GL_5 alone would have stopped at epoch 4: GL = 6.25).
# Strip 2 (epochs 6–10): E_tr = .59, .585, .58, .58, .58: Σ = 2.915, min = .58,
# P_5 = 1000 (2.915 / 2.9 − 1) = 5.1724…; E_va(10) = .92: GL = 15; PQ = 15 / 5.1724 = 2.9 > .5.
PQ_TRAIN = [1.0, 0.9, 0.8, 0.7, 0.6, 0.59, 0.585, 0.58, 0.58, 0.58, 0.58]
PQ_VALS = [1.0, 0.9, 0.8, 0.85, 0.9, 0.95, 0.95, 0.95, 0.95, 0.92, 0.5]
PQ_STATS = [nan] * 4 + [12.5 / (1000 * (4.0 / 3.0 - 1))] + [nan] * 4 + [15.0 / (1000 * (2.915 / 2.9 - 1))]


def test_pq_matches_hand_trace_and_is_evaluated_at_strip_ends_only():
    es = EarlyStopping(criterion="PQ", alpha=0.5, strip=5)
    assert _run(es, PQ_VALS, PQ_TRAIN) == 10
    assert (es.best_epoch, es.best_value) == (3, 0.8)
    _same(es.history["statistic"], PQ_STATS)
    assert PQ_STATS[-1] == pytest.approx(2.9)


def test_pq_needs_the_training_error():
    es = EarlyStopping(criterion="PQ")
    with pytest.raises(ValueError, match="train"):
        es.update(1, 0.5)
    assert es.history["epoch"] == []


# UP_2, strip k = 2. Strip ends (epochs 2, 4, 6, 8, 10): E_va = .8, .9, .7, .75, .8.
# Rises: 4 (.9 > .8: 1 in a row), 6 (.7 < .9: 0), 8 (.75 > .7: 1), 10 (.8 > .75: 2) → stop at 10.
# The best value (.6) is at epoch 5, inside a strip: UP compares strip ends only.
UP_VALS = [1.0, 0.8, 0.85, 0.9, 0.6, 0.7, 0.72, 0.75, 0.78, 0.8, 0.1]
UP_STATS = [nan, 0, nan, 1, nan, 0, nan, 1, nan, 2]


def test_up_matches_hand_trace():
    es = EarlyStopping(criterion="UP", patience=2, strip=2)
    assert _run(es, UP_VALS) == 10
    assert (es.best_epoch, es.best_value) == (5, 0.6)
    _same(es.history["statistic"], UP_STATS)


def test_up_1_stops_at_the_first_rise():
    es = EarlyStopping(criterion="UP", patience=1, strip=2)
    assert _run(es, UP_VALS) == 4


# Keras's patience 2, min_delta .05, mode min. E_va = 1, .9, .88, .86, .84:
# epoch 2 improves (.9 < 1 − .05); .88 and .86 are not below .9 − .05 → 2 epochs without → stop at 4.
def test_patience_min_delta_matches_hand_trace():
    es = EarlyStopping(patience=2, min_delta=0.05)
    assert _run(es, [1.0, 0.9, 0.88, 0.86, 0.84]) == 4
    assert (es.best_epoch, es.best_value) == (2, 0.9)
    assert es.history["statistic"] == [0, 0, 1, 2]


# mode max, patience 3, min_delta 0: .6 at epoch 3 does not beat .6; .7 at 7 does not beat .7.
def test_patience_mode_max_matches_hand_trace():
    es = EarlyStopping(monitor="val_accuracy", mode="max", patience=3)
    assert _run(es, [0.5, 0.6, 0.6, 0.7, 0.65, 0.69, 0.7, 0.9]) == 7
    assert (es.best_epoch, es.best_value) == (4, 0.7)
    assert es.history["statistic"] == [0, 0, 1, 0, 1, 2, 3]


def test_patience_zero_stops_at_the_first_epoch_without_improvement():
    es = EarlyStopping(patience=0)
    assert _run(es, [1.0, 0.9, 0.95]) == 3


def test_patience_agrees_with_keras():
    # Keras's rule written out (keras/src/callbacks/early_stopping.py): wait += 1; improvement
    # (current − min_delta·sign < best) resets wait; stop when wait >= patience.
    vals = [1.0, 0.97, 0.96, 0.99, 0.95, 0.951, 0.94, 0.949, 0.948, 0.96, 0.93]
    for patience in range(4):
        for min_delta in (0.0, 0.005, 0.02):
            best, wait, stop = None, 0, None
            for e, v in enumerate(vals):
                wait += 1
                if best is None or v + min_delta < best:
                    best, wait = v, 0
                    continue
                if wait >= patience and e > 0:
                    stop = e
                    break
            es = EarlyStopping(patience=patience, min_delta=min_delta)
            assert _run(es, vals, first_epoch=0) == stop, (patience, min_delta)


@pytest.mark.slow  # imports keras (~3 s)
def test_patience_matches_keras_callback():
    import os
    import types

    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    for trial in range(40):
        vals = np.cumsum(rng.normal(-0.01, 0.03, 30)) + 2.0
        patience, min_delta = trial % 4, (0.0, 0.004, 0.02)[trial % 3]
        for mode, sign in (("min", 1.0), ("max", -1.0)):
            cb = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, min_delta=min_delta, mode=mode)
            cb._model = types.SimpleNamespace(stop_training=False)
            cb.on_train_begin()
            ours = EarlyStopping(monitor="val_loss", patience=patience, min_delta=min_delta, mode=mode)
            for e, v in enumerate(sign * vals):
                cb.on_epoch_end(e, {"val_loss": float(v)})
                assert ours.update(e, float(v)) == cb.model.stop_training, (trial, mode, e)
                if ours.stopped_epoch is not None:
                    break
            assert (ours.best_epoch, ours.best_value) == (cb.best_epoch, float(cb.best))


def test_a_dict_of_metrics_is_read_at_monitor():
    es = EarlyStopping(monitor="val_accuracy", mode="max", patience=1)
    assert not es.update(0, {"val_loss": 0.3, "val_accuracy": 0.9})
    assert es.update(1, {"val_loss": 0.2, "val_accuracy": 0.8})
    assert es.best_value == 0.9


def test_after_stopping_update_returns_true_and_changes_nothing():
    es = EarlyStopping(patience=0)
    _run(es, [1.0, 2.0])
    before = es.state_dict()
    assert es.update(5, 0.0)
    assert es.state_dict() == before


# -- restore_best ------------------------------------------------------------------------------
def _params(epoch):
    rng = np.random.default_rng(epoch)
    w = rng.standard_normal((7, 5)).astype(np.float32)
    w[0, 0] = -0.0
    w[0, 1] = np.float32(1e-45)  # a subnormal
    return [w, rng.standard_normal(13), rng.standard_normal((2, 3, 3)).astype(np.float32)]


def _bits(arrays):
    return [a.tobytes() for a in arrays]


@pytest.mark.parametrize("criterion", ["patience", "GL", "UP"])
def test_restore_best_restores_bitwise_in_place(criterion):
    kwargs = {"patience": 2} if criterion == "patience" else {"alpha": 5.0} if criterion == "GL" else {"strip": 1}
    es = EarlyStopping(criterion=criterion, **kwargs)
    vals = [1.0, 0.8, 0.7, 0.9, 0.95, 1.0, 1.1]
    params = _params(0)
    for e, v in enumerate(vals):
        for p, q in zip(params, _params(e)):  # training writes the same arrays in place
            p[...] = q
        if es.update(e, v, params=params):
            break
    assert es.best_epoch == 2
    ids = [id(p) for p in params]
    assert _bits(params) == _bits(_params(2))
    assert [id(p) for p in params] == ids
    for p, q in zip(params, _params(6)):
        p[...] = q
    es.restore(params)
    assert _bits(params) == _bits(_params(2))


def test_the_snapshot_is_allocated_once():
    es = EarlyStopping(patience=100)
    params = _params(0)
    es.update(0, 3.0, params=params)
    buffers = [s.__array_interface__["data"][0] for s in es.snapshot]
    for e in range(1, 5):
        es.update(e, 3.0 - e, params=_params(e))
    assert [s.__array_interface__["data"][0] for s in es.snapshot] == buffers
    assert _bits(es.snapshot) == _bits(_params(4))


def test_restore_best_false_keeps_no_copy():
    es = EarlyStopping(patience=0, restore_best=False)
    params = _params(0)
    es.update(0, 1.0, params=params)
    params[0][...] = 7
    assert es.update(1, 2.0, params=params)
    assert (params[0] == 7).all()
    with pytest.raises(RuntimeError, match="restore_best=False"):
        es.restore(params)


def test_restore_rejects_other_params_and_changes_nothing():
    es = EarlyStopping(patience=5)
    es.update(0, 1.0, params=_params(0))
    other = _params(3)
    other[1] = other[1][:12].copy()
    before = _bits(other)
    with pytest.raises(ValueError, match=r"params\[1\]"):
        es.restore(other)
    assert _bits(other) == before
    state = es.state_dict()
    with pytest.raises(ValueError, match=r"params\[1\]"):
        es.update(1, 0.5, params=other)
    assert es.history == state["history"] and es.best_epoch == 0


def test_read_only_params_are_rejected_before_anything_changes():
    es = EarlyStopping(patience=0)
    params = _params(0)
    es.update(0, 1.0, params=params)
    params[2].flags.writeable = False
    before = es.state_dict()
    with pytest.raises(ValueError, match=r"params\[2\] is read-only"):
        es.update(1, 2.0, params=params)  # it would stop, and copy the best values back
    with pytest.raises(ValueError, match=r"params\[2\] is read-only"):
        es.restore(params)
    assert es.state_dict()["history"] == before["history"] and es.stopped_epoch is None


@pytest.mark.slow  # imports torch
def test_restore_into_torch_tensors():
    torch = pytest.importorskip("torch")
    es = EarlyStopping(patience=1)
    w = torch.nn.Parameter(torch.randn(4, 3))
    best = w.detach().clone()
    es.update(0, 1.0, params=[w])
    with torch.no_grad():
        w.mul_(3)
    assert es.update(1, 2.0, params=[w])
    assert torch.equal(w.detach(), best)


# -- state -------------------------------------------------------------------------------------
CASES = [
    ({"patience": 2, "min_delta": 0.05}, [1.0, 0.9, 0.88, 0.86, 0.84], None),
    ({"criterion": "GL", "alpha": 5.0}, GL_VALS, None),
    ({"criterion": "PQ", "alpha": 0.5}, PQ_VALS, PQ_TRAIN),
    ({"criterion": "UP", "patience": 2, "strip": 2}, UP_VALS, None),
]


@pytest.mark.parametrize(("kwargs", "vals", "trains"), CASES)
@pytest.mark.parametrize("cut", [1, 3, 6])
def test_a_resumed_run_stops_where_an_uninterrupted_one_does(kwargs, vals, trains, cut):
    whole = EarlyStopping(**kwargs)
    p_whole = _params(0)
    stop = None
    for e, v in enumerate(vals):
        p_whole = _params(e)
        if whole.update(e, v, None if trains is None else trains[e], params=p_whole):
            stop = e
            break
    assert stop is not None
    cut = min(cut, stop)
    first = EarlyStopping(**kwargs)
    for e in range(cut):
        first.update(e, vals[e], None if trains is None else trains[e], params=_params(e))
    state = pickle.loads(pickle.dumps(first.state_dict()))
    resumed = EarlyStopping()  # another configuration: load_state_dict brings the saved one
    resumed.load_state_dict(state)
    for e in range(cut, len(vals)):
        p = _params(e)
        if resumed.update(e, vals[e], None if trains is None else trains[e], params=p):
            break
    assert resumed.stopped_epoch == stop
    assert (resumed.best_epoch, resumed.best_value) == (whole.best_epoch, whole.best_value)
    assert _bits(p) == _bits(p_whole)
    _same(resumed.history["statistic"], whole.history["statistic"])
    assert resumed.state_dict()["history"]["value"] == whole.state_dict()["history"]["value"]


def test_load_state_dict_rejects_a_bad_state_and_changes_nothing():
    es = EarlyStopping(patience=3)
    es.update(0, 1.0)
    before = es.state_dict()
    bad = dict(before, criterion="XY")
    with pytest.raises(ValueError, match="criterion"):
        es.load_state_dict(bad)
    with pytest.raises(ValueError, match="missing"):
        es.load_state_dict({k: v for k, v in before.items() if k != "wait"})
    with pytest.raises(TypeError, match="wait"):
        es.load_state_dict(dict(before, wait="1"))
    assert es.state_dict() == before


def test_state_dict_is_a_copy():
    es = EarlyStopping(patience=3)
    p = _params(0)
    es.update(0, 1.0, params=p)
    state = es.state_dict()
    state["snapshot"][0][...] = 5
    state["history"]["value"].append(3.0)
    es.restore(p)
    assert _bits(p) == _bits(_params(0)) and es.history["value"] == [1.0]


# -- NaN policy and bad hyper-parameters -------------------------------------------------------
@pytest.mark.parametrize("criterion", ["patience", "GL", "PQ", "UP"])
@pytest.mark.parametrize("bad", [nan, math.inf, np.float32("nan")])
def test_a_non_finite_value_stops_and_says_so(criterion, bad):
    es = EarlyStopping(criterion=criterion)
    params = _params(0)
    es.update(1, 0.5, train=0.4, params=params)
    params[0][...] = np.nan
    with pytest.warns(RuntimeWarning, match="non-finite"):
        assert es.update(2, bad, train=0.3, params=params)
    assert es.stopped_epoch == 2 and "diverged" in es.stop_reason and "best is epoch 1" in es.stop_reason
    assert (es.best_epoch, es.best_value) == (1, 0.5)
    assert _bits(params) == _bits(_params(0))  # the diverged parameters were replaced by the best


def test_a_non_finite_training_error_stops_too():
    es = EarlyStopping(criterion="PQ")
    with pytest.warns(RuntimeWarning, match="train"):
        assert es.update(1, 0.5, train=nan)
    assert "no epoch was finite" in es.stop_reason


@pytest.mark.parametrize(
    ("kwargs", "exc", "argument"),
    [
        ({"criterion": "Gl"}, ValueError, "criterion"),
        ({"criterion": None}, TypeError, "criterion"),
        ({"mode": "auto"}, ValueError, "mode"),
        ({"monitor": ""}, ValueError, "monitor"),
        ({"monitor": 3}, TypeError, "monitor"),
        ({"monitor": "val_accuracy"}, ValueError, "mode='max'"),
        ({"criterion": "GL", "mode": "max", "monitor": "val_acc"}, ValueError, "mode"),
        ({"criterion": "GL", "patience": 3}, ValueError, "patience"),
        ({"criterion": "patience", "alpha": 1.0}, ValueError, "alpha"),
        ({"criterion": "UP", "min_delta": 0.1}, ValueError, "min_delta"),
        ({"criterion": "UP", "patience": 0}, ValueError, "patience"),
        ({"patience": -1}, ValueError, "patience"),
        ({"patience": 2.0}, TypeError, "patience"),
        ({"min_delta": -0.1}, ValueError, "min_delta"),
        ({"min_delta": nan}, ValueError, "min_delta"),
        ({"criterion": "GL", "alpha": -1.0}, ValueError, "alpha"),
        ({"strip": 0}, ValueError, "strip"),
        ({"restore_best": 1}, TypeError, "restore_best"),
    ],
)
def test_bad_hyper_parameters_name_the_argument(kwargs, exc, argument):
    with pytest.raises(exc, match=argument):
        EarlyStopping(**kwargs)


@pytest.mark.parametrize(
    ("call", "exc", "argument"),
    [
        (lambda es: es.update(4, {"val_los": 0.1}), ValueError, "monitor 'val_loss'"),
        (lambda es: es.update(4, "0.1"), TypeError, "val"),
        (lambda es: es.update(4, np.array([0.1, 0.2])), TypeError, "val"),
        (lambda es: es.update(4, 0.1, train="x"), TypeError, "train"),
        (lambda es: es.update(-1, 0.1), ValueError, "epoch"),
        (lambda es: es.update(1.0, 0.1), TypeError, "epoch"),
        (lambda es: es.update(3, 0.1), ValueError, "epoch must increase"),
        (lambda es: es.update(4, 0.1, params="w"), TypeError, "params"),
        (lambda es: es.update(4, 0.1, params=[[1.0]]), TypeError, r"params\[0\]"),
    ],
)
def test_bad_update_is_rejected_and_changes_nothing(call, exc, argument):
    es = EarlyStopping(patience=3)
    es.update(3, 0.5)
    before = es.state_dict()
    with pytest.raises(exc, match=argument):
        call(es)
    assert es.state_dict() == before


def test_prechelt_criteria_take_errors_not_negative_values():
    es = EarlyStopping(criterion="GL")
    with pytest.raises(ValueError, match="errors >= 0"):
        es.update(0, -0.1)
    assert es.history["epoch"] == []


@pytest.mark.slow  # imports torch
def test_values_as_numpy_and_torch_scalars():
    torch = pytest.importorskip("torch")
    es = EarlyStopping(patience=1)
    es.update(0, np.float32(0.5))
    es.update(1, np.array(0.25))
    es.update(2, torch.tensor(0.125))
    assert es.history["value"] == [0.5, 0.25, 0.125]


# -- mini-batches ------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "batch_size"), [(1, 1), (7, 3), (100, 32), (4099, 128), (64, 64)])
def test_minibatches_are_a_permutation_cut_in_order(n, batch_size):
    batches = minibatches(n, batch_size, seed=5, epoch=2)
    assert [len(b) for b in batches] == [min(batch_size, n - i) for i in range(0, n, batch_size)]
    idx = np.concatenate(batches)
    assert idx.dtype == np.int64
    assert np.array_equal(np.sort(idx), np.arange(n))
    dropped = minibatches(n, batch_size, seed=5, epoch=2, drop_last=True)
    assert all(len(b) == batch_size for b in dropped) and len(dropped) == n // batch_size
    assert all(np.array_equal(a, b) for a, b in zip(dropped, batches))


def test_minibatches_follow_the_philox_stream_of_seed_and_epoch():
    n = 1000
    for seed, epoch in [(0, 0), (7, 3), (2**63 + 1, 12)]:
        keys = reference_random.uniform(n, np.float64, 0.0, 1.0, seed, epoch)
        expected = np.argsort(keys, kind="stable")
        assert np.array_equal(np.concatenate(minibatches(n, 64, seed, epoch)), expected)
    a, b, c = (np.concatenate(minibatches(n, 10, s, e)) for s, e in [(1, 0), (1, 1), (2, 0)])
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_minibatches_empty_and_bad_arguments():
    assert minibatches(0, 8, seed=0, epoch=0) == []
    for kwargs, exc, name in [
        ({"n": -1}, ValueError, "n"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"epoch": 1.0}, TypeError, "epoch"),
        ({"drop_last": 1}, TypeError, "drop_last"),
    ]:
        args = {"n": 10, "batch_size": 3, "seed": 0, "epoch": 0, **kwargs}
        with pytest.raises(exc, match=name):
            minibatches(**args)


# -- progress ----------------------------------------------------------------------------------
def test_progress_plain_text_lines():
    out = io.StringIO()
    items = list(progress(range(20), desc="epoch 1", use_tqdm=False, file=out))
    assert items == list(range(20))
    lines = out.getvalue().splitlines()
    assert lines == [f"epoch 1: {i}/20" for i in range(2, 21, 2)]


def test_progress_without_length_and_disabled():
    out = io.StringIO()
    assert list(progress(iter("abc"), use_tqdm=False, file=out)) == ["a", "b", "c"]
    assert out.getvalue() == "3\n"
    out = io.StringIO()
    assert list(progress(range(3), disable=True, file=out)) == [0, 1, 2]
    assert out.getvalue() == ""


def test_progress_with_tqdm():
    pytest.importorskip("tqdm")
    out = io.StringIO()
    assert list(progress(range(5), desc="x", use_tqdm=True, file=out)) == list(range(5))
    assert "x" in out.getvalue()
