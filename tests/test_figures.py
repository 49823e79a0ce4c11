"""python -m nndl_fast.figures: the chapter's claims hold on the figures' own numbers (the quick
budgets), and the command writes its PNGs and figures.md."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nndl_fast
from nndl_fast.figures import FIGURES, _mlp, batch_size, cliff, figure, init_depth, optimizers, regularization

# The quick budgets train on scikit-learn's digits.
needs_digits = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")


# -- Fig 1.3 -------------------------------------------------------------------------------------
@pytest.mark.slow
@needs_digits
def test_batch_size_smooths_per_iteration_and_slows_per_epoch():
    r = batch_size.compute(quick=True)
    runs = list(r["runs"].values())
    assert [run["batch_size"] for run in runs] == sorted(run["batch_size"] for run in runs)
    rough = [run["roughness"] for run in runs]
    after_one_epoch = [run["epochs"][1] for run in runs]
    assert all(a > b for a, b in zip(rough, rough[1:])), rough
    assert all(a < b for a, b in zip(after_one_epoch, after_one_epoch[1:])), after_one_epoch


def test_roughness_is_the_mean_step_between_iterations():
    assert batch_size.roughness(np.array([1.0, 3.0, 2.0, 2.0])) == pytest.approx(1.0)


# -- Fig 1.5 -------------------------------------------------------------------------------------
def test_cliff_gradient_is_bptt_of_the_loss():
    w, b = np.array([1.0, 4.5, 5.0, 8.0]), np.array([-1.0, -2.0, -2.4, -3.0])
    _, dw, db = cliff.surface(w, b)
    h = 1e-6
    num_dw = (cliff.surface(w + h, b)[0] - cliff.surface(w - h, b)[0]) / (2 * h)
    num_db = (cliff.surface(w, b + h)[0] - cliff.surface(w, b - h)[0]) / (2 * h)
    np.testing.assert_allclose(dw, num_dw, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(db, num_db, rtol=1e-5, atol=1e-9)


def test_cliff_jumps_and_clipping_bounds_the_steps():
    r = cliff.compute(quick=True)
    assert r["jump"] > 100  # the gradient norm within 0.005 of the edge over its largest 0.05 or more away
    bound = r["lr"] * r["max_norm"]
    assert r["steps"]["clipped"].max() <= bound * (1 + 1e-12)
    assert r["steps"]["plain"].max() > 4 * bound  # thrown off the cliff
    assert r["final_loss"]["clipped"] < r["final_loss"]["plain"]


def test_descend_clips_with_the_chapter_rule():
    start = (6.0, -2.0)
    plain, clipped = cliff.descend(start, 1.0, 1, None), cliff.descend(start, 1.0, 1, 1e-3)
    step_plain, step_clipped = plain[1] - plain[0], clipped[1] - clipped[0]
    assert np.hypot(*step_clipped) == pytest.approx(1e-3)
    np.testing.assert_allclose(step_clipped / np.hypot(*step_clipped), step_plain / np.hypot(*step_plain))


# -- Fig 1.6 -------------------------------------------------------------------------------------
@needs_digits
def test_adaptive_methods_reach_sgds_loss_sooner():
    r = optimizers.compute(quick=True)
    reach = r["epochs_to_level"]
    assert reach["SGD"] <= r["epochs"]
    for name in optimizers.ADAPTIVE:
        assert reach[name] < reach["SGD"], (name, reach)


def test_epochs_to_reach():
    curve = np.array([2.0, 1.5, 0.9, 1.0, 0.5])
    assert optimizers.epochs_to_reach(curve, 1.0) == 2
    assert optimizers.epochs_to_reach(curve, 0.1) == float("inf")


# -- initialisation ------------------------------------------------------------------------------
def test_init_keeps_or_collapses_the_variance():
    r = init_depth.compute(quick=True)
    q = r["var_ratio"]
    for act in ("tanh", "relu"):
        assert q[act]["he"] < 2, q  # He and Xavier with the nonlinearity's gain: within a factor of 2 over 10 layers
        assert q[act]["xavier"] < 2, q
        assert q[act]["gaussian(0.01)"] > 1e6, q  # N(0, 0.01²): collapses
        std = r["std"][act]["gaussian(0.01)"]
        assert np.all(np.diff(std) < 0)
    assert 2 < q["tanh"]["xavier gain 1"] < 10, q  # gain 1 on tanh: a drift, not a collapse
    assert q["relu"]["xavier gain 1"] > 2 ** (init_depth.DEPTH - 1) / 2, q  # halves at each ReLU layer


# -- dropout, L2 and early stopping --------------------------------------------------------------
def test_stopping_replays_each_criterion():
    val = np.concatenate([[3.0, 2.0, 1.0], 0.8 + 0.1 * np.arange(19)])  # lowest at epoch 3, then +0.1 an epoch
    train = np.linspace(3.0, 0.5, len(val))  # −2.5/21 an epoch
    got = regularization.stopping(train, val)
    assert set(got) == set(regularization.CRITERIA)
    assert got["GL"] == {"stop": 4, "best": 3}  # 100·(0.9/0.8 − 1) = 12.5 > 5 at once
    assert got["patience"] == {"stop": 8, "best": 3}  # five epochs without improvement
    # strip 6–10: P = 1000·(mean/min − 1) = 131.6, GL = 87.5, GL/P = 0.66 > 0.5 (strip 1–5: 25/99 < 0.5)
    assert got["PQ"] == {"stop": 10, "best": 3}
    assert got["UP"] == {"stop": 20, "best": 3}  # rose at the strip ends 10, 15, 20 (5 has none before it)
    flat = regularization.stopping(train, np.linspace(3.0, 0.1, len(val)))
    assert all(s["stop"] is None and s["best"] == len(val) - 1 for s in flat.values())


@pytest.mark.slow
@needs_digits
def test_regularisers_keep_the_training_fit_looser():
    r = regularization.compute(quick=True)
    runs = r["runs"]
    assert runs["no regularisation"]["train"][-1] < runs["L2"]["train"][-1]  # L2 keeps the fit looser
    assert runs["no regularisation"]["train"][-1] < runs["dropout"]["train"][-1]


# -- the MLP the figures train ---------------------------------------------------------------------
@pytest.mark.parametrize("drop_prob", [0.0, 0.5])
def test_mlp_backward_matches_finite_differences(drop_prob):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5))
    y = rng.integers(0, 3, 6)
    model = _mlp.MLP([5, 7, 4, 3], seed=1, drop_prob=drop_prob, dtype=np.float64)
    for b in model.params[1::2]:  # biases off 0: a row whose units all drop would sit on ReLU's kink
        b += rng.uniform(0.1, 0.2, b.shape)

    def loss() -> float:  # the training loss with the first forward's dropout masks (offset 0)
        for d in model.dropouts:
            d.offset = 0
        return model.loss(x, y)

    loss()
    grads = [g.copy() for g in model.grads]
    for p, g in zip(model.params, grads):
        flat = p.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + 1e-6
            up = loss()
            flat[i] = old - 1e-6
            down = loss()
            flat[i] = old
            assert g.reshape(-1)[i] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-8)


def test_every_figure_has_its_parts():
    for name in FIGURES:
        module = figure(name)
        assert callable(module.compute) and callable(module.plot) and callable(module.describe) and module.TITLE
    with pytest.raises(ValueError, match="name"):
        figure("nope")


# -- the command ---------------------------------------------------------------------------------
@pytest.mark.slow
@needs_digits
def test_command_writes_pngs_and_figures_md(tmp_path: Path):
    pytest.importorskip("matplotlib")
    root = Path(nndl_fast.__file__).resolve().parent.parent  # the nndl_fast this test runs (CI: the installed one)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "tmp"
    subprocess.run(
        [sys.executable, "-m", "nndl_fast.figures", "--quick", "--out", str(out)], env=env, check=True, timeout=600
    )
    md = (out / "figures.md").read_text()
    for name in FIGURES:
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"({name}.png)" in md
    assert md.count("\n## ") == len(FIGURES)
