"""nndl_fast.torch.optim against torch.optim: parity, checkpoints both ways, None grads, the
version counter, fused clipping, param groups, schedulers and torch's argument checks."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch not installed: nndl_fast.torch not checked")

from nndl_fast.torch import optim as O  # noqa: E402

SIZES = (1, 7, 4099)

# (class name, kwargs): each runs ours and torch.optim's class of the same name.
CASES = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "maximize": True}),
    ("Adam", {"lr": 1e-2, "weight_decay": 0.1}),
    ("Adam", {"lr": 1e-2, "amsgrad": True, "maximize": True}),
    ("Adam", {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {"lr": 1e-2}),
    ("AdamW", {"lr": 1e-2, "amsgrad": True, "weight_decay": 0.5}),
    ("NAdam", {"lr": 1e-2, "weight_decay": 0.1}),
    ("NAdam", {"lr": 1e-2, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01}),
    ("RMSprop", {"lr": 1e-2}),
    ("RMSprop", {"lr": 1e-2, "momentum": 0.9, "centered": True, "weight_decay": 0.01}),
    ("Adadelta", {"lr": 1.0, "weight_decay": 0.01}),
]
IDS = [f"{name}-{'-'.join(kw) if kw else 'default'}" for name, kw in CASES]
# Our classes beyond torch's, and the torch configuration each one is.
ALIASES = {"Momentum": ("SGD", {"momentum": 0.9}), "Nesterov": ("SGD", {"momentum": 0.9, "nesterov": True})}


def tol(dtype) -> dict[str, float]:
    """Rounding of the dtype accumulated over ~50 steps (each step rounds differently from torch's ops)."""
    r = 1e-4 if dtype == torch.float32 else 1e-11
    return {"rtol": r, "atol": r}


def make_params(dtype, sizes=SIZES, seed=0):
    g = torch.Generator().manual_seed(seed)
    ours = [torch.nn.Parameter(torch.randn(n, generator=g, dtype=dtype)) for n in sizes]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    return ours, theirs


def set_grads(ours, theirs, gen, skip=()):
    for k, (p, q) in enumerate(zip(ours, theirs)):
        if k in skip:
            p.grad = q.grad = None
            continue
        g = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        p.grad, q.grad = g.clone(), g.clone()


def assert_same_state(a, b, dtype):
    """Same parameters, same state keys, values equal to rounding and steps equal exactly."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["state"].keys() == sb["state"].keys()
    for i in sb["state"]:
        assert sa["state"][i].keys() == sb["state"][i].keys()
        for key, want in sb["state"][i].items():
            got = sa["state"][i][key]
            assert type(got) is type(want), key
            if key == "step":
                assert got.dtype == want.dtype and got.shape == want.shape and float(got) == float(want)
            elif key == "mu_product":
                assert got.dtype == want.dtype and float(got) == float(want)  # rounded as torch's
            else:
                torch.testing.assert_close(got, want, **tol(dtype))
    assert [{k: v for k, v in g.items()} for g in sa["param_groups"]] == sb["param_groups"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_parity_with_torch(name, kw, dtype):
    """50 steps, two param groups (the second with its own lr and weight decay), a scheduler."""
    ours, theirs = make_params(dtype)

    def mk(ps):
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": kw["lr"] * 0.5, "weight_decay": 0.02}]

    a = getattr(O, name)(mk(ours), **kw)
    b = getattr(torch.optim, name)(mk(theirs), **kw)
    sa = torch.optim.lr_scheduler.StepLR(a, step_size=7, gamma=0.7)
    sb = torch.optim.lr_scheduler.StepLR(b, step_size=7, gamma=0.7)
    gen = torch.Generator().manual_seed(1)
    for _ in range(50):
        set_grads(ours, theirs, gen)
        a.step()
        b.step()
        sa.step()
        sb.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, **tol(dtype))
    assert_same_state(a, b, dtype)


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_momentum_and_nesterov_are_torch_sgd(name):
    torch_name, torch_kw = ALIASES[name]
    ours, theirs = make_params(torch.float64)
    a, b = getattr(O, name)(ours, lr=0.05), getattr(torch.optim, torch_name)(theirs, lr=0.05, **torch_kw)
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        set_grads(ours, theirs, gen)
        a.step()
        b.step()
    assert_same_state(a, b, torch.float64)


def test_lambda_scheduler_reads_lr_each_step():
    ours, theirs = make_params(torch.float32)
    a, b = O.Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    lam = lambda epoch: 0.9**epoch  # noqa: E731
    sa, sb = torch.optim.lr_scheduler.LambdaLR(a, lam), torch.optim.lr_scheduler.LambdaLR(b, lam)
    gen = torch.Generator().manual_seed(2)
    for _ in range(30):
        set_grads(ours, theirs, gen)
        a.step()
        b.step()
        sa.step()
        sb.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, **tol(torch.float32))


# -- checkpoints --------------------------------------------------------------------------------
def _resave(sd):
    """A state_dict through torch.save/torch.load(weights_only=True): no nndl_fast type inside."""
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
@pytest.mark.parametrize("direction", ["torch_to_ours", "ours_to_torch"])
def test_checkpoint_moves_both_ways(name, kw, direction):
    """10 steps by one side, its state_dict loaded by the other, 10 more: as torch uninterrupted."""
    dtype = torch.float32
    ours, theirs = make_params(dtype)
    ref = [torch.nn.Parameter(p.detach().clone()) for p in theirs]
    first_cls, second_cls = (
        (getattr(torch.optim, name), getattr(O, name))
        if direction == "torch_to_ours"
        else (getattr(O, name), getattr(torch.optim, name))
    )
    first, r = first_cls(ours, **kw), getattr(torch.optim, name)(ref, **kw)
    gen = torch.Generator().manual_seed(3)
    for _ in range(10):
        set_grads(ours, ref, gen)
        first.step()
        r.step()
    sd = _resave(first.state_dict())
    second = second_cls(ours, **kw)
    second.load_state_dict(sd)
    for _ in range(10):
        set_grads(ours, ref, gen)
        second.step()
        r.step()
    for p, q in zip(ours, ref):
        torch.testing.assert_close(p, q, **tol(dtype))
    assert_same_state(second, r, dtype) if second_cls.__module__.startswith("nndl") else assert_same_state(
        r, second, dtype
    )


def test_state_dict_is_torch_format():
    ours, theirs = make_params(torch.float32)
    a, b = O.NAdam(ours), torch.optim.NAdam(theirs)
    gen = torch.Generator().manual_seed(4)
    set_grads(ours, theirs, gen)
    a.step()
    b.step()
    sa, sb = a.state_dict(), b.state_dict()
    for i, s in sa["state"].items():
        assert type(s) is dict
        assert s["step"].untyped_storage().nbytes() == sb["state"][i]["step"].untyped_storage().nbytes()
    assert_same_state(a, b, torch.float32)
    # pickling the state_dict or the optimizer keeps working, and a copy is independent
    pickle.loads(pickle.dumps(sa))
    c = copy.deepcopy(a)
    for p in c.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    c.step()
    assert float(a.state[ours[0]]["step"]) == 1 and float(c.state[c.param_groups[0]["params"][0]]["step"]) == 2


def test_sgd_without_momentum_keeps_no_state():
    ours, theirs = make_params(torch.float32)
    a, b = O.SGD(ours, lr=0.1), torch.optim.SGD(theirs, lr=0.1)
    set_grads(ours, theirs, torch.Generator().manual_seed(0))
    a.step()
    b.step()
    assert a.state_dict()["state"] == b.state_dict()["state"] == {}


# -- None gradients --------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_none_grad_skips_the_parameter(name, kw):
    """A parameter without a grad keeps its value and state bitwise (momentum does not move it,
    its step count stays); later steps follow torch's per-parameter step counts."""
    ours, theirs = make_params(torch.float64)
    a, b = getattr(O, name)(ours, **kw), getattr(torch.optim, name)(theirs, **kw)
    gen = torch.Generator().manual_seed(5)
    for step in range(12):
        skip = (1,) if step % 3 else ()
        set_grads(ours, theirs, gen, skip=skip)
        before = ours[1].detach().clone()
        state_before = copy.deepcopy(a.state_dict()["state"].get(1, {}))
        a.step()
        b.step()
        if skip:
            assert torch.equal(ours[1].detach(), before)  # bitwise: not moved by its momentum
            state_after = a.state_dict()["state"].get(1, {})
            assert state_after.keys() == state_before.keys()
            for key, v in state_before.items():
                assert torch.equal(state_after[key], v), key
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, **tol(torch.float64))
    assert_same_state(a, b, torch.float64)


def test_none_grad_leaves_others_bitwise_as_without_it():
    ours, _ = make_params(torch.float32)
    alone = [torch.nn.Parameter(ours[k].detach().clone()) for k in (0, 2)]
    a, c = O.Adam(ours, lr=0.1), O.Adam(alone, lr=0.1)
    gen = torch.Generator().manual_seed(6)
    for _ in range(5):
        for p, q in zip((ours[0], ours[2]), alone):
            g = torch.randn(p.shape, generator=gen)
            p.grad, q.grad = g.clone(), g.clone()
        ours[1].grad = None
        a.step()
        c.step()
    assert torch.equal(ours[0].detach(), alone[0].detach()) and torch.equal(ours[2].detach(), alone[1].detach())
    assert ours[1] not in a.state  # never stepped: no state, as torch


def test_zero_grad_then_step_changes_nothing():
    ours, _ = make_params(torch.float32)
    a = O.Adam(ours, lr=0.1)
    for p in ours:
        p.grad = torch.ones_like(p)
    a.step()
    a.zero_grad()
    before = [p.detach().clone() for p in ours]
    sd = copy.deepcopy(a.state_dict())
    a.step()
    assert all(torch.equal(p.detach(), q) for p, q in zip(ours, before))
    assert all(torch.equal(a.state_dict()["state"][i]["exp_avg"], s["exp_avg"]) for i, s in sd["state"].items())
    assert float(a.state[ours[0]]["step"]) == 1


# -- autograd ----------------------------------------------------------------------------------
def test_update_bumps_version_so_a_stale_graph_raises():
    p = torch.nn.Parameter(torch.randn(5))
    q = torch.nn.Parameter(torch.randn(5))
    a = O.SGD([p, q], lr=0.1)
    loss = (p * p).sum()  # saves p for backward
    p.grad = torch.ones(5)
    v0, w0 = p._version, q._version
    a.step()
    assert p._version > v0 and q._version == w0  # q had no grad: not updated, not bumped
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_closure_and_real_model():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    ref = copy.deepcopy(net)
    x, y = torch.randn(32, 5), torch.randn(32, 1)
    a = O.AdamW(net.parameters(), lr=1e-2)
    b = torch.optim.AdamW(ref.parameters(), lr=1e-2)
    for _ in range(20):
        for model, opt in ((net, a), (ref, b)):

            def closure(model=model, opt=opt):
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                return loss

            loss = opt.step(closure)
        assert loss is not None
    for p, q in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, **tol(torch.float32))


def test_named_parameters_input():
    net = torch.nn.Linear(3, 2)
    ref = copy.deepcopy(net)
    a, b = O.Adam(net.named_parameters(), lr=0.1), torch.optim.Adam(ref.named_parameters(), lr=0.1)
    assert a.param_groups[0]["param_names"] == ["weight", "bias"]
    x = torch.randn(4, 3)
    for model, opt in ((net, a), (ref, b)):
        model(x).sum().backward()
        opt.step()
    assert_same_state(a, b, torch.float32)


# -- fused clipping ---------------------------------------------------------------------------
@pytest.mark.parametrize("norm_type", [2.0, 1.0, "inf"])
def test_max_norm_is_clip_grad_norm_then_step(norm_type):
    ours, theirs = make_params(torch.float32)
    a = O.Adam([{"params": ours[:1]}, {"params": ours[1:], "lr": 0.05}], lr=0.1, max_norm=1.0, norm_type=norm_type)
    b = torch.optim.Adam([{"params": theirs[:1]}, {"params": theirs[1:], "lr": 0.05}], lr=0.1)
    gen = torch.Generator().manual_seed(7)
    for _ in range(10):
        set_grads(ours, theirs, gen)
        total = torch.nn.utils.clip_grad_norm_(theirs, 1.0, norm_type=float(norm_type))
        a.step()
        b.step()
        assert a.last_grad_norm == pytest.approx(float(total), rel=1e-5)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, **tol(torch.float32))
    assert all(not torch.equal(p.grad, q.grad) for p, q in zip(ours, theirs))  # ours stay unclipped


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["Adam", "SGD", "Adagrad"])
def test_clip_per_tensor_is_clip_grad_norm_per_tensor_then_step(name, dtype):
    ours, theirs = make_params(dtype)
    kw = {"lr": 0.05, "momentum": 0.9} if name == "SGD" else {"lr": 0.05}
    a = getattr(O, name)([{"params": ours[:1]}, {"params": ours[1:]}], **kw, max_norm=1.0, clip_per_tensor=True)
    b = getattr(torch.optim, name)([{"params": theirs[:1]}, {"params": theirs[1:]}], **kw)
    gen = torch.Generator().manual_seed(7)
    for step in range(10):
        set_grads(ours, theirs, gen, skip=(1,) if step == 4 else ())
        norms = [float(torch.nn.utils.clip_grad_norm_(q, 1.0)) if q.grad is not None else np.nan for q in theirs]
        a.step()
        b.step()
        np.testing.assert_allclose(a.last_grad_norm, norms, rtol=1e-5)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, **tol(dtype))
    assert_same_state(a, b, dtype)
    again = pickle.loads(pickle.dumps(a))
    assert again.clip_per_tensor is True and again.max_norm == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "arg"),
    [
        ({"clip_per_tensor": True}, ValueError, "max_norm"),
        ({"max_norm": 0.0, "clip_per_tensor": True}, ValueError, "max_norm"),
        ({"max_norm": 1.0, "clip_per_tensor": 1}, TypeError, "clip_per_tensor"),
    ],
)
def test_clip_per_tensor_bad_arguments(kwargs, error, arg):
    with pytest.raises(error, match=arg):
        O.Adam([torch.nn.Parameter(torch.zeros(3))], **kwargs)


# -- groups, caches -----------------------------------------------------------------------------
def test_add_param_group_later():
    ours, theirs = make_params(torch.float32)
    a, b = O.RMSprop(ours[:2], lr=0.01, momentum=0.5), torch.optim.RMSprop(theirs[:2], lr=0.01, momentum=0.5)
    gen = torch.Generator().manual_seed(8)
    for step in range(8):
        if step == 3:
            a.add_param_group({"params": ours[2:], "lr": 0.02, "centered": True})
            b.add_param_group({"params": theirs[2:], "lr": 0.02, "centered": True})
        set_grads(ours, theirs, gen, skip=(2,) if step < 3 else ())
        a.step()
        b.step()
    assert_same_state(a, b, torch.float32)


def test_replaced_data_and_state_are_seen():
    """p.data = ... and a state tensor replaced between steps: the cached views follow."""
    ours, theirs = make_params(torch.float32)
    a, b = O.Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    gen = torch.Generator().manual_seed(9)
    for step in range(6):
        if step == 2:
            new = torch.randn(ours[1].shape, generator=gen)
            ours[1].data, theirs[1].data = new.clone(), new.clone()
        if step == 4:
            m = torch.randn(ours[2].shape, generator=gen)
            a.state[ours[2]]["exp_avg"] = m.clone()
            b.state[theirs[2]]["exp_avg"] = m.clone()
            a.state[ours[0]]["step"] = torch.tensor(20.0)
            b.state[theirs[0]]["step"] = torch.tensor(20.0)
        set_grads(ours, theirs, gen)
        a.step()
        b.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, **tol(torch.float32))
    assert_same_state(a, b, torch.float32)


def test_channels_last_parameter():
    w = torch.randn(4, 3, 5, 5).to(memory_format=torch.channels_last)
    p, q = torch.nn.Parameter(w.clone()), torch.nn.Parameter(w.clone())
    assert not p.is_contiguous()
    a, b = O.Adam([p], lr=0.1), torch.optim.Adam([q], lr=0.1)
    gen = torch.Generator().manual_seed(10)
    for step in range(5):
        g = torch.randn(w.shape, generator=gen)
        g = g.to(memory_format=torch.channels_last) if step % 2 else g  # either layout of grad
        p.grad, q.grad = g.clone(), g.clone()
        a.step()
        b.step()
    torch.testing.assert_close(p, q, **tol(torch.float32))
    assert p.stride() == q.stride() and a.state[p]["exp_avg"].stride() == p.stride()


def test_lr_edited_to_a_bad_value_raises_and_changes_nothing():
    ours, _ = make_params(torch.float32)
    a = O.Adam([{"params": ours[:1]}, {"params": ours[1:]}], lr=0.1)
    for p in ours:
        p.grad = torch.ones_like(p)
    a.step()
    a.param_groups[1]["lr"] = -1.0
    before = [p.detach().clone() for p in ours]
    with pytest.raises(ValueError, match=r"param_groups\[1\]: lr"):
        a.step()
    assert all(torch.equal(p.detach(), q) for p, q in zip(ours, before))
    assert float(a.state[ours[0]]["step"]) == 1


def test_bad_state_in_second_group_changes_nothing():
    """Two launches (two groups): the second's bad buffer is found before the first runs."""
    ours, _ = make_params(torch.float32)
    a = O.Adam([{"params": ours[:1]}, {"params": ours[1:]}], lr=0.1)
    for p in ours:
        p.grad = torch.ones_like(p)
    a.step()
    a.state[ours[2]]["exp_avg"] = torch.zeros(5)
    before = [p.detach().clone() for p in ours]
    with pytest.raises(ValueError, match="exp_avg"):
        a.step()
    assert all(torch.equal(p.detach(), q) for p, q in zip(ours, before))
    assert float(a.state[ours[0]]["step"]) == 1


def test_strided_grad_is_read_through_a_copy():
    ours, theirs = make_params(torch.float32, sizes=(7,))
    a, b = O.Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    g = torch.randn(14)[::2]
    ours[0].grad, theirs[0].grad = g, g.clone()
    a.step()
    b.step()
    torch.testing.assert_close(ours[0], theirs[0], **tol(torch.float32))


# -- torch's argument checks ------------------------------------------------------------------
BAD = [
    ("SGD", "lr", -0.1),
    ("SGD", "momentum", -0.5),
    ("SGD", "weight_decay", -1.0),
    ("Adam", "lr", float("nan")),
    ("Adam", "eps", -1e-8),
    ("Adam", "betas", (0.9, 1.0)),
    ("Adam", "weight_decay", -0.1),
    ("AdamW", "betas", (-0.1, 0.999)),
    ("NAdam", "momentum_decay", -1.0),
    ("Adagrad", "lr_decay", -1.0),
    ("Adagrad", "initial_accumulator_value", -1.0),
    ("RMSprop", "alpha", -0.5),
    ("RMSprop", "momentum", -0.5),
    ("Adadelta", "rho", 1.5),
    ("Adam", "max_norm", -1.0),
    ("Adam", "norm_type", 0.0),
    ("Adam", "capturable", True),
    ("SGD", "differentiable", True),
]


@pytest.mark.parametrize(("name", "arg", "value"), BAD, ids=[f"{n}-{a}" for n, a, _ in BAD])
def test_bad_hyper_parameter_raises_value_error_naming_it(name, arg, value):
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match=arg.rstrip("s") if arg == "betas" else arg):
        getattr(O, name)([p], **{arg: value})
    if arg not in ("max_norm", "norm_type", "capturable", "differentiable"):  # ours only, or torch's too
        with pytest.raises(ValueError):
            getattr(torch.optim, name)([p], **{arg: value})


def test_nesterov_needs_momentum_and_wrong_types():
    p = torch.nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="nesterov"):
        O.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="lr"):
        O.Adam([p], lr="0.1")
    with pytest.raises(TypeError, match="amsgrad"):
        O.Adam([p], amsgrad=1)
    with pytest.raises(ValueError, match="lr"):
        O.Adam([p]).add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))], "lr": -1.0})


def test_unsupported_dtype_names_the_parameter():
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float16))
    p.grad = torch.zeros(3, dtype=torch.float16)
    with pytest.raises(TypeError, match="float32 or float64"):
        O.Adam([p]).step()


def test_numpy_views_are_cached_across_steps():
    """The per-step work does not re-view parameters or state: the same NumPy arrays are reused."""
    ours, _ = make_params(torch.float32)
    a = O.Adam(ours, lr=0.1)
    for _ in range(2):
        for p in ours:
            p.grad = torch.ones_like(p)
        a.step()
    views = [e.view for e in a._cache[3][0].entries]
    bufs = [e.bufs for e in a._cache[3][0].entries]
    for p in ours:
        p.grad = torch.ones_like(p)
    a.step()
    assert all(v is w for v, w in zip(views, [e.view for e in a._cache[3][0].entries]))
    assert all(b is c for b, c in zip(bufs, [e.bufs for e in a._cache[3][0].entries]))
    assert np.shares_memory(views[0], ours[0].detach().numpy())


def test_mixed_dtypes_in_one_group():
    """torch allows float32 and float64 parameters in one group: one launch per dtype."""
    ours = [torch.nn.Parameter(torch.randn(5)), torch.nn.Parameter(torch.randn(6, dtype=torch.float64))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    a, b = O.Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    gen = torch.Generator().manual_seed(11)
    for _ in range(4):
        set_grads(ours, theirs, gen)
        a.step()
        b.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, **tol(p.dtype))


def test_checkpoint_of_an_older_torch_lacking_newer_keys():
    ours, theirs = make_params(torch.float32)
    b = torch.optim.Adam(theirs, lr=0.1)
    set_grads(ours, theirs, torch.Generator().manual_seed(12))
    b.step()
    sd = b.state_dict()
    for g in sd["param_groups"]:
        del g["decoupled_weight_decay"], g["fused"]  # keys torch added in later releases
    a = O.Adam(ours, lr=0.1)
    a.load_state_dict(sd)
    assert a.param_groups[0]["decoupled_weight_decay"] is False
    a.step()
    assert float(a.state[ours[0]]["step"]) == 2


@pytest.mark.parametrize(("name", "kw"), [("Adam", {}), ("SGD", {"momentum": 0.9, "nesterov": True})])
def test_one_cycle_scheduler_edits_betas_and_momentum_each_step(name, kw):
    """OneCycleLR rewrites lr and betas (or momentum) in every group at every step."""
    ours, theirs = make_params(torch.float64)
    a, b = getattr(O, name)(ours, lr=0.01, **kw), getattr(torch.optim, name)(theirs, lr=0.01, **kw)
    sa = torch.optim.lr_scheduler.OneCycleLR(a, max_lr=0.1, total_steps=20)
    sb = torch.optim.lr_scheduler.OneCycleLR(b, max_lr=0.1, total_steps=20)
    gen = torch.Generator().manual_seed(13)
    for _ in range(20):
        set_grads(ours, theirs, gen)
        a.step()
        b.step()
        sa.step()
        sb.step()
    assert_same_state(a, b, torch.float64)


def test_grad_that_requires_grad_is_read():
    """A grad that requires grad (a create_graph=True gradient): read all the same."""
    ours, theirs = make_params(torch.float32, sizes=(7,))
    a, b = O.SGD(ours, lr=0.1), torch.optim.SGD(theirs, lr=0.1)
    for p in (ours[0], theirs[0]):
        (g,) = torch.autograd.grad((p**3).sum(), p, create_graph=True)
        p.grad = g
    assert ours[0].grad.requires_grad
    a.step()
    b.step()
    torch.testing.assert_close(ours[0], theirs[0], **tol(torch.float32))


# -- torch's step wrapper: hooks and the profiler's range, kept when they are in use -----------
def test_step_hooks_run_as_torchs_do():
    ours, theirs = make_params(torch.float32)
    gen = torch.Generator().manual_seed(0)
    a, b = O.Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    calls = {"a": [], "b": []}
    for key, opt in (("a", a), ("b", b)):
        opt.register_step_pre_hook(lambda o, args, kwargs, key=key: calls[key].append(("pre", type(o).__name__)))
        opt.register_step_post_hook(lambda o, args, kwargs, key=key: calls[key].append(("post", type(o).__name__)))
    seen = []
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handle = register_optimizer_step_pre_hook(lambda o, args, kwargs: seen.append(o))
    try:
        set_grads(ours, theirs, gen)
        a.step()
        b.step()
    finally:
        handle.remove()
    assert calls["a"] == [("pre", "Adam"), ("post", "Adam")] == calls["b"]
    assert seen == [a, b]
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, **tol(torch.float32))


def test_step_hook_may_replace_the_closure():
    ours, _ = make_params(torch.float32, sizes=(3,))
    opt = O.SGD(ours, lr=0.1)
    ours[0].grad = torch.ones(3)
    opt.register_step_pre_hook(lambda o, args, kwargs: ((o,), {"closure": lambda: 42.0}))
    assert opt.step() == 42.0


def test_step_is_a_profiler_range_while_profiling():
    ours, _ = make_params(torch.float32, sizes=(5,))
    opt = O.Adam(ours, lr=0.1)
    ours[0].grad = torch.ones(5)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        opt.step()
    assert "Optimizer.step#Adam.step" in {e.key for e in prof.key_averages()}


def test_step_counts_edited_in_place_are_used():
    """state[p]["step"] is a view of the group's counts: an in-place edit reaches the next step."""
    ours, theirs = make_params(torch.float32)
    gen = torch.Generator().manual_seed(1)
    a, b = O.Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    for _ in range(3):
        set_grads(ours, theirs, gen)
        a.step()
        b.step()
    for opt, params in ((a, ours), (b, theirs)):
        opt.state[params[0]]["step"].fill_(10.0)
        opt.state[params[1]]["step"].add_(5)  # (in place, no __setitem__: the cache cannot see it)
    for _ in range(2):
        set_grads(ours, theirs, gen)
        a.step()
        b.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q, **tol(torch.float32))
    assert [float(a.state[p]["step"]) for p in ours] == [float(b.state[q]["step"]) for q in theirs] == [12.0, 10.0, 5.0]


def test_torch_grads_falls_back_to_the_general_loop_on_anything_unusual():
    """_core.torch_grads, the step's per-tensor loop in C++: None (the Python loop) whenever a
    parameter moved, its arguments are not what it expects, or a call fails."""
    import numpy as np_

    from nndl_fast import _core

    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.full((3,), 2.0)
    q = torch.nn.Parameter(torch.ones(2))
    ptrs = np_.array([p.data_ptr(), q.data_ptr()], dtype=np_.int64)
    to_dlpack = torch.utils.dlpack.to_dlpack
    grads, present = _core.torch_grads([p, q], ptrs, to_dlpack)
    assert present == 1 and grads[1] is None
    assert torch.equal(torch.utils.dlpack.from_dlpack(grads[0]), p.grad)
    for args in (
        ([p, q], ptrs[::-1].copy(), to_dlpack),  # a parameter moved
        ([p], ptrs, to_dlpack),  # lengths differ
        ((p, q), ptrs, to_dlpack),  # not a list
        ([p, q], ptrs.astype(np_.int32), to_dlpack),
        ([p, object()], ptrs, to_dlpack),
        ([p, q], ptrs, lambda g: 1 / 0),
    ):
        assert _core.torch_grads(*args) is None
