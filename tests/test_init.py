"""Initialisation schemes: fans, gains, bounds and stds equal to torch.nn.init's on a table of
shapes (torch optional), empirical stds equal to the formulas, orthogonality, seeds and
generators, bad input leaving the tensor unchanged."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import torch_or_skip

from nndl_fast import init
from nndl_fast import random as NR

SHAPES = [(7, 5), (64, 32), (1, 1), (3, 4, 5), (16, 8, 3, 3), (2, 3, 1, 1, 4)]
NONLINEARITIES = [
    ("linear", None),
    ("conv2d", None),
    ("sigmoid", None),
    ("tanh", None),
    ("relu", None),
    ("leaky_relu", None),
    ("leaky_relu", 0.2),
    ("selu", None),
]


class _Recorder:
    """Stands in for init's _core: records the (low, high) or (mean, std) of every fill."""

    def __init__(self, core):
        self._core = core
        self.calls: list[tuple[str, tuple[float, ...]]] = []

    def __getattr__(self, name):
        fn = getattr(self._core, name)

        def wrapped(*args):
            if name in ("uniform_fill", "normal_fill"):
                self.calls.append((name.split("_")[0], tuple(args[7:])))
            return fn(*args)

        return wrapped


def _torch_draws(torch, monkeypatch, fn, shape, *args, **kwargs):
    """The (kind, params) of every uniform_/normal_ draw torch's init makes."""
    calls = []
    with monkeypatch.context() as m:
        for kind in ("uniform", "normal"):
            orig = getattr(torch.Tensor, kind + "_")

            def draw(self, p0=0.0, p1=1.0, *, generator=None, _orig=orig, _kind=kind):
                calls.append((_kind, (float(p0), float(p1))))
                return _orig(self, p0, p1, generator=generator)

            m.setattr(torch.Tensor, kind + "_", draw)
        fn(torch.empty(shape, dtype=torch.float64), *args, **kwargs)
    return calls


@pytest.mark.parametrize("nonlinearity, param", NONLINEARITIES)
def test_gains_torch_convention_equals_torch(nonlinearity, param):
    torch = torch_or_skip()
    want = torch.nn.init.calculate_gain(nonlinearity, param)
    assert init.calculate_gain(nonlinearity, param, convention="torch") == pytest.approx(want, rel=1e-15)


def test_gains_chapter_convention():
    # Glorot & Bengio: logistic takes 4× the tanh range (the chapter's factors, swapped back)
    assert init.calculate_gain("sigmoid") == 4.0
    assert init.calculate_gain("tanh") == 1.0
    assert init.calculate_gain("relu") == math.sqrt(2.0)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2.0 / 1.04), rel=1e-15)
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2.0 / (1 + 0.01**2)), rel=1e-15)
    # a slope whose square overflows a float: the gain tends to √2/|slope|, not an OverflowError
    assert init.calculate_gain("leaky_relu", 1.34e154) == pytest.approx(math.sqrt(2.0) / 1.34e154, rel=1e-15)
    assert init.calculate_gain("linear") == init.calculate_gain("selu") / 0.75


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_equal_torch(shape):
    torch = torch_or_skip()
    want = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert tuple(init.fans(shape)) == want
    assert init.fans(np.empty(shape)) == init.Fans(*want)


SCHEMES = [
    ("xavier_uniform_", (), {}),
    ("xavier_uniform_", (2.5,), {}),
    ("xavier_normal_", (0.5,), {}),
    ("kaiming_uniform_", (), {}),
    ("kaiming_uniform_", (math.sqrt(5),), {}),
    ("kaiming_uniform_", (0.0, "fan_out", "relu"), {}),
    ("kaiming_normal_", (), {}),
    ("kaiming_normal_", (0.1, "fan_out", "leaky_relu"), {}),
    ("kaiming_normal_", (0.0, "fan_in", "tanh"), {"convention": "torch"}),
    ("uniform_", (-0.3, 0.7), {}),
    ("normal_", (0.5, 2.0), {}),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, args, kwargs", SCHEMES, ids=lambda v: str(v))
def test_bounds_and_stds_equal_torch(monkeypatch, shape, name, args, kwargs):
    torch = torch_or_skip()
    want = _torch_draws(torch, monkeypatch, getattr(torch.nn.init, name), shape, *args)
    rec = _Recorder(init._core)
    monkeypatch.setattr(init, "_core", rec)
    getattr(init, name)(np.empty(shape), *args, seed=1, **kwargs)
    assert [k for k, _ in rec.calls] == [k for k, _ in want]
    for (_, ours), (_, theirs) in zip(rec.calls, want):
        np.testing.assert_allclose(ours, theirs, rtol=1e-14)


@pytest.mark.parametrize(
    "name, std",
    [
        ("xavier_uniform_", math.sqrt(2 / (600 + 400))),
        ("xavier_normal_", math.sqrt(2 / (600 + 400))),
        ("kaiming_uniform_", math.sqrt(2 / 400)),
        ("kaiming_normal_", math.sqrt(2 / 400)),
        ("lecun_uniform_", math.sqrt(1 / 400)),
        ("lecun_normal_", math.sqrt(1 / 400)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_empirical_std_matches_formula(name, std, dtype):
    w = getattr(init, name)(np.empty((600, 400), dtype), seed=7)
    n = w.size
    assert abs(w.mean()) < 5 * std / math.sqrt(n)
    assert abs(w.std() - std) < 5 * std / math.sqrt(2 * n), (w.std(), std)
    if "uniform" in name:
        assert np.abs(w).max() <= math.sqrt(3) * std


def test_orthogonal_empirical_std():
    w = init.orthogonal_(np.empty((150, 100)), seed=7)  # unit columns of length 150
    assert abs(w.std() - math.sqrt(1 / 150)) < 5 * math.sqrt(1 / 150) / math.sqrt(2 * w.size)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (6, 2, 3, 3), (2, 4, 3)])
def test_orthogonal(shape):
    w = init.orthogonal_(np.empty(shape), 1.5, seed=3)
    m = w.reshape(shape[0], -1) / 1.5
    small = min(m.shape)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)
    f = init.orthogonal_(np.empty(shape, np.float32), 1.5, seed=3)
    np.testing.assert_array_equal(f, w.astype(np.float32))


def test_trunc_normal_absolute_bounds():
    stats = pytest.importorskip("scipy.stats", reason="scipy not installed")
    w = init.trunc_normal_(np.empty((500, 400)), 1.0, 2.0, -0.5, 4.0, seed=4)
    assert w.min() >= -0.5 and w.max() <= 4.0
    ref = stats.truncnorm((-0.5 - 1.0) / 2.0, (4.0 - 1.0) / 2.0, loc=1.0, scale=2.0)
    assert abs(w.mean() - ref.mean()) < 5 * ref.std() / math.sqrt(w.size)
    np.testing.assert_array_equal(w, NR.truncated_normal((500, 400), 1.0, 2.0, -0.75, 1.5, dtype=np.float64, seed=4))


def test_torch_trunc_normal_bounds_agree():
    torch = torch_or_skip()
    t = torch.empty(300, 300, dtype=torch.float64)
    init.trunc_normal_(t, 0.0, 1.0, -2.0, 2.0, seed=1)  # torch's defaults: absolute ±2
    assert float(t.min()) >= -2.0 and float(t.max()) <= 2.0
    theirs = torch.nn.init.trunc_normal_(torch.empty(300, 300, dtype=torch.float64))
    assert abs(float(t.std()) - float(theirs.std())) < 0.02


def test_constant_zeros_ones_eye():
    w = np.full((3, 4), 7.0, np.float32)
    assert init.zeros_(w) is w and not w.any()
    assert (init.ones_(w) == 1).all()
    assert (init.constant_(w, -2.5) == -2.5).all()
    np.testing.assert_array_equal(init.eye_(w), np.eye(3, 4, dtype=np.float32))
    with pytest.raises(ValueError, match="tensor"):
        init.eye_(np.zeros((2, 2, 2)))


def test_seed_and_generator():
    a = init.xavier_normal_(np.empty((30, 20)), seed=5)
    np.testing.assert_array_equal(a, init.xavier_normal_(np.empty((30, 20)), seed=5))
    g = NR.Generator(5)
    b = init.xavier_normal_(np.empty((30, 20)), generator=g)
    c = init.xavier_normal_(np.empty((30, 20)), generator=g)
    np.testing.assert_array_equal(a, b)  # the generator's first stream is (5, 0)
    assert not np.any(b == c) and g.offset == 2
    with pytest.raises(TypeError, match="seed"):
        init.normal_(np.empty(3), seed=1, generator=g)
    with pytest.raises(TypeError, match="generator"):
        init.normal_(np.empty(3), generator=5)
    with pytest.raises(TypeError):
        init.kaiming_normal_(np.zeros((3, 3), np.int32), generator=g)
    assert g.offset == 2  # a rejected call does not advance the generator
    x, y = init.normal_(np.empty(100)), init.normal_(np.empty(100))
    assert not np.array_equal(x, y)  # without a seed: one from the operating system


def test_torch_tensor_in_place():
    torch = torch_or_skip()
    t = torch.empty(40, 30)
    assert init.kaiming_uniform_(t, seed=2) is t
    np.testing.assert_array_equal(t.numpy(), init.kaiming_uniform_(np.empty((40, 30), np.float32), seed=2))


def test_empty_tensor_is_a_no_op_with_checks():
    w = np.empty((0, 5))
    assert init.xavier_uniform_(w, seed=1) is w
    assert init.kaiming_normal_(np.empty((4, 0)), seed=1).shape == (4, 0)
    with pytest.raises(TypeError, match="tensor"):
        init.xavier_uniform_(np.empty((0, 5), np.int32), seed=1)


@pytest.mark.parametrize(
    "call, exc, word",
    [
        (lambda w: init.xavier_uniform_(w[0], seed=1), ValueError, "2 dimensions"),
        (lambda w: init.kaiming_normal_(w[:, 0], seed=1), ValueError, "2 dimensions"),
        (lambda w: init.lecun_normal_(w.reshape(-1), seed=1), ValueError, "2 dimensions"),
        (lambda w: init.orthogonal_(w[0], seed=1), ValueError, "2 dimensions"),
        (lambda w: init.xavier_uniform_(w[:, ::2], seed=1), ValueError, "tensor"),
        (lambda w: init.normal_(w, std=-1.0, seed=1), ValueError, "std"),
        (lambda w: init.uniform_(w, 1.0, 0.5, seed=1), ValueError, "a must be < b"),
        (lambda w: init.trunc_normal_(w, 0.0, 1.0, 2.0, 2.0, seed=1), ValueError, "a must be < b"),
        (lambda w: init.trunc_normal_(w, 0.0, 0.0, seed=1), ValueError, "std"),
        (lambda w: init.kaiming_uniform_(w, mode="fan", seed=1), ValueError, "mode"),
        (lambda w: init.kaiming_uniform_(w, nonlinearity="softmax", seed=1), ValueError, "nonlinearity"),
        (lambda w: init.xavier_normal_(w, gain=-1.0, seed=1), ValueError, "gain"),
        (lambda w: init.calculate_gain("tanh", convention="keras"), ValueError, "convention"),
        (lambda w: init.xavier_normal_(w.tolist(), seed=1), TypeError, "tensor"),
    ],
)
def test_bad_input_leaves_tensor_unchanged(call, exc, word):
    w = np.arange(24.0).reshape(4, 6)
    before = w.copy()
    with pytest.raises(exc, match=word):
        call(w)
    np.testing.assert_array_equal(w, before)


def test_read_only_rejected_unchanged():
    w = np.arange(6.0).reshape(2, 3)
    w.flags.writeable = False
    for fn in (init.xavier_uniform_, init.kaiming_normal_, init.orthogonal_, init.lecun_uniform_):
        with pytest.raises(ValueError, match="tensor"):
            fn(w, seed=1)
    np.testing.assert_array_equal(w, np.arange(6.0).reshape(2, 3))
