"""``convention=`` on the optimizers: how a preset resolves (defaults, explicit options winning,
param groups, state_dict, the functional forms), which presets each rule has, the formula
options' own checks, and every docstring example (the presets' tables) run as doctests.
The formulas themselves are checked against the peers in test_peer_matrix.py and test_optim_onnx.py.
"""

from __future__ import annotations

import doctest
import importlib
import pickle

import numpy as np
import pytest

from nndl_fast import optim as O
from nndl_fast.optim import base

CLASSES = [O.SGD, O.Momentum, O.Nesterov, O.AdaGrad, O.RMSprop, O.AdaDelta, O.Adam, O.AdamW, O.Nadam]
PRESETS = {
    O.SGD: ("chapter", "torch", "keras", "optax", "onnx"),
    O.AdaGrad: ("chapter", "torch", "keras", "optax", "onnx"),
    O.RMSprop: ("chapter", "torch", "keras", "optax"),
    O.AdaDelta: ("chapter", "torch", "keras", "optax"),
    O.Adam: ("chapter", "torch", "keras", "optax", "onnx"),
    O.AdamW: ("chapter", "torch", "keras", "optax"),
    O.Nadam: ("chapter", "torch", "keras", "optax"),
}
PRESETS[O.Momentum] = PRESETS[O.Nesterov] = PRESETS[O.SGD]


def run(opt, theta, steps=5):
    for k in range(steps):
        assert opt.step([np.sin(theta * (k + 1)) + 0.1])
    return theta


@pytest.mark.parametrize("module", ["sgd", "adagrad", "rmsprop", "adadelta", "adam"])
def test_docstring_examples(module):
    """Each preset's example in the class docstrings runs (and gives what it shows)."""
    mod = importlib.import_module(f"nndl_fast.optim.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("cls", CLASSES)
def test_every_class_has_a_preset_table_naming_each_preset(cls):
    for preset in PRESETS[cls]:
        assert f"``{preset}``" in cls.__doc__ or cls in (O.Momentum, O.Nesterov), (cls.__name__, preset)


@pytest.mark.parametrize("cls", CLASSES)
def test_a_preset_the_peer_lacks_raises_naming_the_argument_and_the_presets(cls):
    missing = [p for p in ("torch", "keras", "optax", "onnx") if p not in PRESETS[cls]] + ["jax"]
    for preset in missing:
        with pytest.raises(ValueError, match="convention must be one of") as e:
            cls([np.zeros(2)], convention=preset)
        for p in PRESETS[cls]:
            assert repr(p) in str(e.value)
    with pytest.raises(TypeError, match="convention"):
        cls([np.zeros(2)], convention=None)


def test_functional_forms_refuse_a_missing_preset():
    p, g = [np.zeros(3)], [np.ones(3)]
    with pytest.raises(ValueError, match=r"convention must be one of \('chapter', 'torch', 'keras', 'optax'\)"):
        O.rmsprop(p, g, [np.zeros(3)], step=1, convention="onnx")
    with pytest.raises(ValueError, match="convention must be one of"):
        O.adadelta(p, g, [np.zeros(3)], [np.zeros(3)], step=1, convention="onnx")
    assert p[0].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(
    ("cls", "convention", "expected"),
    [
        (O.Adam, "torch", {"betas": (0.9, 0.999), "eps": 1e-8, "eps_inside_sqrt": False}),
        (O.Adam, "keras", {"betas": (0.9, 0.999), "eps": 1e-7, "eps_hat": True, "decay_scaled_by_lr": True}),
        (O.Adam, "optax", {"amsgrad_v_hat": True, "eps_root": 0.0, "eps_inside_sqrt": False}),
        (O.Adam, "onnx", {"eps": 1e-6, "eps_hat": True, "bias_correction_exponent": "n", "decay_after_step": True}),
        (O.Adam, "onnx", {"decay_scaled_by_lr": False}),  # norm_coefficient_post is w, not α·w
        (O.SGD, "torch", {"decay_scaled_by_lr": True}),  # the peers' decoupled decay is α·w
        (O.AdamW, "torch", {"decoupled_weight_decay": 0.01, "decay_scaled_by_lr": True, "betas": (0.9, 0.999)}),
        (O.AdamW, "keras", {"decoupled_weight_decay": 0.004, "decay_scaled_by_lr": True, "eps": 1e-7}),
        (O.AdamW, "optax", {"decoupled_weight_decay": 1e-4, "decay_scaled_by_lr": True}),
        (O.Nadam, "keras", {"lr": 1e-3, "momentum_decay": 1.0, "eps": 1e-7, "eps_inside_sqrt": False}),
        (O.Nadam, "optax", {"momentum_schedule": "constant", "eps_inside_sqrt": False}),
        (O.RMSprop, "torch", {"lr": 1e-2, "beta": 0.99, "eps_inside_sqrt": False}),
        (O.RMSprop, "keras", {"eps": 1e-7, "eps_inside_sqrt": True}),
        (O.AdaGrad, "keras", {"lr": 1e-3, "eps": 1e-7, "initial_accumulator_value": 0.1}),
        (O.AdaGrad, "onnx", {"eps": 1e-6, "eps_inside_sqrt": False}),
        (O.AdaDelta, "keras", {"lr": 1e-3, "rho": 0.95, "eps": 1e-7}),
        (O.SGD, "keras", {"lr": 1e-2}),
    ],
)
def test_a_preset_sets_the_peers_defaults_and_param_groups_hold_them(cls, convention, expected):
    opt = cls([np.zeros(2)], convention=convention)
    group = opt.param_groups[0]
    assert group["convention"] == convention
    for k, v in expected.items():
        assert group[k] == v, k
    assert all(v is not base.UNSET for v in group.values())


def test_an_explicit_option_wins_over_the_preset():
    opt = O.Adam([np.zeros(2)], convention="keras", eps=1e-3, eps_hat=False, betas=(0.8, 0.9))
    g = opt.param_groups[0]
    assert (g["eps"], g["eps_hat"], g["betas"], g["eps_inside_sqrt"]) == (1e-3, False, (0.8, 0.9), False)
    # the same numbers as torch's formula with these values
    a, b = np.linspace(-1, 1, 7), np.linspace(-1, 1, 7)
    run(O.Adam([a], convention="keras", eps=1e-3, eps_hat=False, betas=(0.8, 0.9)), a)
    run(O.Adam([b], convention="torch", eps=1e-3, betas=(0.8, 0.9)), b)
    assert np.array_equal(a, b)
    w = O.AdamW([np.zeros(2)], convention="torch", weight_decay=0.5, decay_scaled_by_lr=False).param_groups[0]
    assert (w["decoupled_weight_decay"], w["decay_scaled_by_lr"]) == (0.5, False)


def test_chapter_is_the_default_and_bitwise_unchanged_by_an_explicit_chapter():
    for cls in CLASSES:
        a, b = np.linspace(-1, 1, 9), np.linspace(-1, 1, 9)
        run(cls([a], lr=0.01), a)
        run(cls([b], lr=0.01, convention="chapter"), b)
        assert np.array_equal(a, b), cls.__name__


def test_the_default_path_steps_with_the_plain_rule():
    """The peers' Python-side variants live in a variant rule the optimizer uses only when a group
    needs it, so the chapter's (and torch's) step has no branch for them."""
    for cls in (O.Adam, O.RMSprop):
        for convention in ("chapter", "torch"):
            assert type(cls([np.zeros(2)], convention=convention)._rule) is type(cls._rule)
    assert type(O.Adam([np.zeros(2)], convention="keras")._rule) is not type(O.Adam._rule)
    assert type(O.RMSprop([np.zeros(2)], bias_correction=True)._rule) is not type(O.RMSprop._rule)


def test_a_group_may_take_another_preset():
    a, b = np.linspace(-1, 1, 5), np.linspace(1, 2, 5)
    opt = O.Adam([{"params": [a]}, {"params": [b], "convention": "keras"}], lr=0.1, amsgrad=True)
    g0, g1 = opt.param_groups
    assert (g0["convention"], g0["eps"], g0["eps_hat"], g0["amsgrad"]) == ("chapter", 1e-8, False, True)
    assert (g1["convention"], g1["eps"], g1["eps_hat"], g1["amsgrad"]) == ("keras", 1e-7, True, True)
    a2, b2 = a.copy(), b.copy()
    for k in range(5):
        opt.step([np.sin(a * (k + 1)) + 0.1, np.sin(b * (k + 1)) + 0.1])
    run(O.Adam([a2], lr=0.1, amsgrad=True), a2)
    run(O.Adam([b2], lr=0.1, amsgrad=True, convention="keras"), b2)
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
    # add_param_group: a group with its own preset switches the optimizer to the variant rule
    c, c2 = np.linspace(0, 1, 3), np.linspace(0, 1, 3)
    opt = O.Adam([np.zeros(2)], lr=0.1)
    opt.add_param_group({"params": [c], "convention": "onnx"})
    assert opt.param_groups[1]["decay_after_step"] is True
    for k in range(5):
        opt.step([np.zeros(2), np.sin(c * (k + 1)) + 0.1])
    run(O.Adam([c2], lr=0.1, convention="onnx"), c2)
    assert np.array_equal(c, c2)


@pytest.mark.parametrize(
    ("cls", "options"),
    [
        (O.Adam, {"convention": "keras", "amsgrad": True}),
        (O.Adam, {"convention": "onnx", "decoupled_weight_decay": 0.01}),
        (O.Adam, {"convention": "optax", "amsgrad": True, "eps_root": 1e-6}),
        (O.AdamW, {"convention": "keras"}),
        (O.Nadam, {"convention": "optax"}),
        (O.RMSprop, {"convention": "optax", "bias_correction": True, "momentum": 0.9, "nesterov": True}),
        (O.SGD, {"convention": "onnx", "momentum": 0.9, "dampening": 0.1}),
    ],
)
def test_state_dict_round_trips_the_resolved_preset(cls, options):
    """A run resumed from state_dict (or a pickle), into an optimizer built either way, is bitwise
    the uninterrupted one; the state_dict holds the resolved values, not the preset's name alone."""
    a = np.linspace(-1, 1, 11)
    ref = a.copy()
    run(cls([ref], lr=0.01, **options), ref, steps=6)
    opt = cls([a], lr=0.01, **options)
    run(opt, a, steps=3)
    sd = pickle.loads(pickle.dumps(opt.state_dict()))
    assert sd["param_groups"][0]["convention"] == options["convention"]
    for build in (options, {}):  # into an optimizer built with the preset, or with the chapter's defaults
        b = a.copy()
        fresh = cls([b], lr=0.01, **build)
        fresh.load_state_dict(sd)
        for k in range(3, 6):
            assert fresh.step([np.sin(b * (k + 1)) + 0.1])
        assert np.array_equal(b, ref), build
    clone = pickle.loads(pickle.dumps(opt))
    c = clone.param_groups[0]["params"][0]
    for k in range(3, 6):
        assert clone.step([np.sin(c * (k + 1)) + 0.1])
    assert np.array_equal(c, ref)


def test_a_formula_option_set_after_construction_is_refused_and_changes_nothing():
    theta = np.linspace(-1, 1, 5)
    opt = O.Adam([theta], lr=0.1)
    opt.step([np.ones(5)])
    before, sd = theta.copy(), opt.state_dict()
    opt.param_groups[0]["eps_hat"] = True
    with pytest.raises(ValueError, match="eps_hat"):
        opt.step([np.ones(5)])
    assert np.array_equal(theta, before)
    assert opt.state_dict()["state"][0]["step"] == sd["state"][0]["step"]
    # an optimizer built with the variant takes edits of it between steps
    a, b = np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)
    opt = O.Adam([a], lr=0.1, convention="keras")
    opt.param_groups[0]["eps_hat"] = False
    run(opt, a)
    run(O.Adam([b], lr=0.1, convention="keras", eps_hat=False), b)
    assert np.array_equal(a, b)


def test_functional_forms_take_the_presets():
    for convention, options in [
        ("keras", {"amsgrad": True}),
        ("onnx", {"decoupled_weight_decay": 0.01}),
        ("optax", {}),
    ]:
        a = np.linspace(-1, 1, 6)
        b = a.copy()
        run(O.Adam([a], lr=0.01, convention=convention, **options), a)
        m, v = [np.zeros(6)], [np.zeros(6)]
        vmax = [np.zeros(6)] if options.get("amsgrad") else None
        for k in range(5):
            assert O.adam(
                [b], [np.sin(b * (k + 1)) + 0.1], m, v, vmax, step=k + 1, lr=0.01, convention=convention, **options
            )
        assert np.array_equal(a, b), convention
    a = np.linspace(-1, 1, 6)
    b = a.copy()
    run(O.Nadam([a], lr=0.01, convention="optax"), a)
    m, v, mu = [np.zeros(6)], [np.zeros(6)], 1.0
    for k in range(5):
        _, mu = O.nadam([b], [np.sin(b * (k + 1)) + 0.1], m, v, step=k + 1, mu_product=mu, lr=0.01, convention="optax")
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    ("cls", "options", "error", "match"),
    [
        (O.Adam, {"eps_root": -1.0}, ValueError, "eps_root"),
        (O.Adam, {"eps_hat": 1}, TypeError, "eps_hat"),
        (O.Adam, {"amsgrad_v_hat": "yes"}, TypeError, "amsgrad_v_hat"),
        (O.Adam, {"bias_correction_exponent": "T"}, ValueError, "bias_correction_exponent"),
        (O.Adam, {"decay_after_step": None}, TypeError, "decay_after_step"),
        (O.Nadam, {"momentum_schedule": "keras"}, ValueError, "momentum_schedule"),
        (O.Nadam, {"eps_root": float("nan")}, ValueError, "eps_root"),
        (O.RMSprop, {"nesterov": True}, ValueError, "nesterov requires momentum"),
        (O.RMSprop, {"bias_correction": 1}, TypeError, "bias_correction"),
        (O.RMSprop, {"initial_accumulator_value": -0.1}, ValueError, "initial_accumulator_value"),
        (O.SGD, {"momentum": 0.9, "dampening": 0.1, "convention": "keras"}, ValueError, "dampening exists only"),
        (O.SGD, {"momentum": 0.9, "dampening": 0.1, "nesterov": True, "convention": "torch"}, ValueError, "nesterov"),
        (O.AdamW, {"convention": "onnx"}, ValueError, "convention must be one of"),
    ],
)
def test_formula_options_are_checked(cls, options, error, match):
    with pytest.raises(error, match=match):
        cls([np.zeros(2)], **options)


def test_onnx_nesterov_takes_dampening():
    """ONNX's Momentum in nesterov mode has a β (1 − dampening); torch forbids it."""
    opt = O.SGD([np.zeros(2)], momentum=0.9, dampening=0.2, nesterov=True, convention="onnx")
    assert opt.param_groups[0]["dampening"] == 0.2


def test_unset_is_one_object_that_pickles_as_itself():
    assert repr(base.UNSET) == "unset"
    assert pickle.loads(pickle.dumps(base.UNSET)) is base.UNSET
    assert type(base.UNSET)() is base.UNSET


def test_a_refused_param_group_leaves_the_rule_alone():
    theta = np.zeros(3)
    opt = O.Adam([theta], lr=0.1)
    with pytest.raises(ValueError):
        opt.add_param_group({"params": [theta], "convention": "keras"})  # shares memory with group 0
    assert type(opt._rule) is type(O.Adam._rule)
    assert len(opt.param_groups) == 1
