"""nndl_fast.torch.nn: torch's modules over our kernels, against torch's own modules.

Forward, backward and running statistics over several steps, train and eval, float32 and
float64, odd shapes; gradcheck in float64; state_dict both ways; channels-last without a copy;
convert()'s swaps and report."""

from __future__ import annotations

import copy
import pickle

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: nndl_fast.torch not checked")

import nndl_fast.norm  # noqa: E402
import nndl_fast.torch.nn as ours  # noqa: E402
from nndl_fast import dropout as nf_dropout  # noqa: E402
from nndl_fast.torch.nn.dropout import _DropoutFn  # noqa: E402

DTYPES = [torch.float32, torch.float64]


def tol(dtype):
    return {"rtol": 1e-5, "atol": 2e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}


def pair(theirs: torch.nn.Module, cls: type) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(torch's module, ours with the same constructor arguments and state)."""
    mine = copy.deepcopy(theirs)
    mine.__class__ = cls  # the constructor's arguments, parameters and buffers: all torch's
    return theirs, mine


def run_both(a, b, x, dy=None):
    """Forward and backward through both; returns (ya, yb, dxa, dxb)."""
    xa = x.detach().clone().requires_grad_()
    xb = x.detach().clone().requires_grad_()
    ya, yb = a(xa), b(xb)
    if dy is None:
        dy = torch.randn_like(ya)
    ya.backward(dy)
    yb.backward(dy)
    return ya, yb, xa.grad, xb.grad


def assert_params_close(a, b, dtype):
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pb.grad, pa.grad, **tol(dtype), msg=name)
    for (name, ba), bb in zip(a.named_buffers(), b.buffers()):
        torch.testing.assert_close(bb, ba, **tol(dtype), msg=name)


# -- batch norm ----------------------------------------------------------------------------

BN_CASES = [
    (torch.nn.BatchNorm1d, ours.BatchNorm1d, (7, 5)),
    (torch.nn.BatchNorm1d, ours.BatchNorm1d, (3, 5, 11)),
    (torch.nn.BatchNorm2d, ours.BatchNorm2d, (3, 5, 7, 9)),
    (torch.nn.BatchNorm3d, ours.BatchNorm3d, (2, 3, 5, 4, 3)),
    (torch.nn.BatchNorm2d, ours.BatchNorm2d, (4, 7, 33, 31)),  # several blocks per plane
]
BN_OPTIONS = [
    {},
    {"momentum": None},
    {"momentum": 0.3, "eps": 1e-3},
    {"affine": False},
    {"bias": False},
    {"track_running_stats": False},
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("options", BN_OPTIONS, ids=str)
@pytest.mark.parametrize(("theirs", "mine", "shape"), BN_CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_batch_norm_matches_torch_over_steps_then_in_eval(theirs, mine, shape, options, dtype, nthreads, monkeypatch):
    torch.manual_seed(0)
    calls = spy(monkeypatch, "batch_norm_forward")
    a, b = pair(theirs(shape[1], dtype=dtype, **options), mine)
    if a.weight is not None:  # away from the identity, so that γ and β show in every result
        with torch.no_grad():
            a.weight.uniform_(0.5, 1.5)
            b.weight.copy_(a.weight)
    for step in range(3):
        x = torch.randn(shape, dtype=dtype) * (step + 1) + step
        ya, yb, dxa, dxb = run_both(a, b, x)
        torch.testing.assert_close(yb, ya, **tol(dtype))
        torch.testing.assert_close(dxb, dxa, **tol(dtype))
        assert_params_close(a, b, dtype)  # weight/bias grads, running stats, num_batches_tracked
    a.eval()
    b.eval()
    ya, yb, dxa, dxb = run_both(a, b, torch.randn(shape, dtype=dtype))
    torch.testing.assert_close(yb, ya, **tol(dtype))
    torch.testing.assert_close(dxb, dxa, **tol(dtype))
    assert_params_close(a, b, dtype)
    assert len(calls) == 4  # every forward ran our kernel, none fell back to torch's


def test_batch_norm_without_running_buffers_uses_batch_stats_in_eval_as_torch():
    a, b = pair(torch.nn.BatchNorm2d(3), ours.BatchNorm2d)
    for m in (a, b):
        m.running_mean = m.running_var = None
        m.eval()
    ya, yb, dxa, dxb = run_both(a, b, torch.randn(4, 3, 5, 5))
    torch.testing.assert_close(yb, ya, **tol(torch.float32))
    torch.testing.assert_close(dxb, dxa, **tol(torch.float32))


def test_batch_norm_runs_our_kernel_in_train_and_eval(monkeypatch):
    calls = []
    real = nndl_fast.norm.batch_norm_forward
    monkeypatch.setattr(
        nndl_fast.norm, "batch_norm_forward", lambda *a, **k: calls.append(k["training"]) or real(*a, **k)
    )
    real_back = nndl_fast.norm.batch_norm_backward
    monkeypatch.setattr(
        nndl_fast.norm,
        "batch_norm_backward",
        lambda *a, **k: calls.append(("back", k["training"])) or real_back(*a, **k),
    )
    bn = ours.BatchNorm2d(3)
    bn(torch.randn(2, 3, 4, 4, requires_grad=True)).sum().backward()
    bn.eval()
    bn(torch.randn(2, 3, 4, 4, requires_grad=True)).sum().backward()
    assert calls == [True, ("back", True), False, ("back", False)]


def test_batch_norm_rejected_batch_changes_nothing():
    """One value per channel in training: torch's ValueError, and no running-stat update."""
    bn = ours.BatchNorm1d(4)
    before = copy.deepcopy(bn.state_dict())
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(torch.randn(1, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        torch.nn.BatchNorm1d(4)(torch.randn(1, 4))
    for k, v in bn.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_scratch_buffers_stay_out_of_pickles_and_copies():
    used, fresh = ours.BatchNorm2d(3), ours.BatchNorm2d(3)
    used(torch.randn(64, 3, 16, 16))
    assert len(pickle.dumps(used)) - len(pickle.dumps(fresh)) < 1024  # no workspace (0.5 MB at this shape)
    clone = pickle.loads(pickle.dumps(used))
    assert torch.equal(clone.running_mean, used.running_mean) and type(clone) is ours.BatchNorm2d
    clone(torch.randn(64, 3, 16, 16))  # makes its own


def test_batch_norm_wrong_rank_is_torchs_error():
    with pytest.raises(ValueError, match="expected 4D input"):
        ours.BatchNorm2d(3)(torch.randn(2, 3, 4))


def test_inputs_our_kernels_do_not_take_run_torchs_forward(monkeypatch):
    monkeypatch.setattr(nndl_fast.norm, "batch_norm_forward", None)  # would raise if reached
    monkeypatch.setattr(nndl_fast.norm, "layer_norm_forward", None)
    for dtype in (torch.float16, torch.bfloat16):
        a, b = pair(torch.nn.BatchNorm2d(3, dtype=dtype), ours.BatchNorm2d)
        x = torch.randn(2, 3, 4, 4, dtype=dtype)
        assert torch.equal(b(x), a(x))
        assert torch.equal(b.running_var, a.running_var)
        a, b = pair(torch.nn.LayerNorm(4, dtype=dtype), ours.LayerNorm)
        assert torch.equal(b(x), a(x))
    a, b = pair(torch.nn.BatchNorm1d(3, momentum=1.5), ours.BatchNorm1d)  # beyond our momentum range
    x = torch.randn(5, 3)
    assert torch.equal(b(x), a(x)) and torch.equal(b.running_mean, a.running_mean)
    a, b = pair(torch.nn.LayerNorm(3, eps=-1e-9), ours.LayerNorm)
    torch.testing.assert_close(b(x), a(x), equal_nan=True)
    with pytest.raises(RuntimeError):  # mixed dtypes: torch's own error
        ours.BatchNorm2d(3)(torch.randn(2, 3, 4, 4, dtype=torch.float64))


# -- channels-last ---------------------------------------------------------------------------


def spy(monkeypatch, name):
    """Records, per call of nndl_fast.norm.<name>, the data pointers of the tensors it was handed."""
    seen: list[list[int]] = []
    real = getattr(nndl_fast.norm, name)

    def wrapped(*args, **kw):
        seen.append([a.data_ptr() for a in args if isinstance(a, torch.Tensor)])
        return real(*args, **kw)

    monkeypatch.setattr(nndl_fast.norm, name, wrapped)
    return seen


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    ("theirs", "mine", "shape", "fmt"),
    [
        (torch.nn.BatchNorm2d, ours.BatchNorm2d, (3, 5, 7, 9), torch.channels_last),
        (torch.nn.BatchNorm3d, ours.BatchNorm3d, (2, 5, 3, 4, 3), torch.channels_last_3d),
    ],
    ids=["2d", "3d"],
)
def test_batch_norm_channels_last_without_a_copy(theirs, mine, shape, fmt, dtype, monkeypatch):
    torch.manual_seed(1)
    a, b = pair(theirs(shape[1], dtype=dtype), mine)
    fwd, bwd = spy(monkeypatch, "batch_norm_forward"), spy(monkeypatch, "batch_norm_backward")
    x = torch.randn(shape, dtype=dtype).contiguous(memory_format=fmt)
    dy = torch.randn(shape, dtype=dtype).contiguous(memory_format=fmt)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = a(xa), b(xb)
    assert fwd[0][0] == xb.data_ptr()  # the kernel read x where it lies
    assert yb.is_contiguous(memory_format=fmt) and ya.is_contiguous(memory_format=fmt)
    assert yb.stride() == ya.stride()
    ya.backward(dy)
    yb.backward(dy)
    assert bwd[0][:2] == [dy.data_ptr(), xb.data_ptr()]
    assert xb.grad.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(yb, ya, **tol(dtype))
    torch.testing.assert_close(xb.grad, xa.grad, **tol(dtype))
    assert_params_close(a, b, dtype)


def test_batch_norm_1d_reads_a_transposed_nlc_input_in_place(monkeypatch):
    """(N, C, L) stored as (N, L, C) -- a transformer's activations transposed -- is channels-last."""
    fwd = spy(monkeypatch, "batch_norm_forward")
    a, b = pair(torch.nn.BatchNorm1d(6), ours.BatchNorm1d)
    x = torch.randn(4, 9, 6).transpose(1, 2)
    ours.BatchNorm1d(6)(x)
    assert fwd[0][0] == x.data_ptr()
    ya, yb, dxa, dxb = run_both(a, b, x)
    torch.testing.assert_close(yb, ya, **tol(torch.float32))
    torch.testing.assert_close(dxb, dxa, **tol(torch.float32))


def test_batch_norm_strided_input_is_copied_then_matches():
    a, b = pair(torch.nn.BatchNorm2d(3), ours.BatchNorm2d)
    x = torch.randn(4, 3, 10, 9)[:, :, ::2, 1:]  # gaps: neither layout
    ya, yb, dxa, dxb = run_both(a, b, x)
    torch.testing.assert_close(yb, ya, **tol(torch.float32))
    torch.testing.assert_close(dxb, dxa, **tol(torch.float32))


# -- layer norm ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    ("shape", "normalized", "options"),
    [
        ((7, 5), 5, {}),
        ((3, 4, 7), (4, 7), {}),
        ((2, 3, 11), 11, {"elementwise_affine": False}),
        ((2, 3, 11), 11, {"bias": False}),
        ((13,), 13, {"eps": 1e-3}),
    ],
    ids=str,
)
def test_layer_norm_matches_torch(shape, normalized, options, dtype, nthreads, monkeypatch):
    torch.manual_seed(2)
    calls = spy(monkeypatch, "layer_norm_forward"), spy(monkeypatch, "layer_norm_backward")
    a, b = pair(torch.nn.LayerNorm(normalized, dtype=dtype, **options), ours.LayerNorm)
    if a.weight is not None:
        with torch.no_grad():
            a.weight.uniform_(0.5, 1.5)
            b.weight.copy_(a.weight)
    x = torch.randn(shape, dtype=dtype) * 3 + 1
    ya, yb, dxa, dxb = run_both(a, b, x)
    torch.testing.assert_close(yb, ya, **tol(dtype))
    torch.testing.assert_close(dxb, dxa, **tol(dtype))
    assert_params_close(a, b, dtype)
    assert [len(c) for c in calls] == [1, 1]  # our kernels, not torch's


def test_layer_norm_wrong_shape_is_torchs_error():
    with pytest.raises(RuntimeError, match="normalized_shape"):
        ours.LayerNorm(5)(torch.randn(3, 4))


# -- local response norm ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(
    ("shape", "size", "options"),
    [((2, 7, 5), 3, {}), ((2, 6, 3, 4), 4, {"alpha": 0.5, "beta": 0.5}), ((1, 9, 2, 2, 3), 5, {"k": 2.0})],
    ids=str,
)
def test_local_response_norm_matches_torch(shape, size, options, dtype, monkeypatch):
    torch.manual_seed(3)
    calls = spy(monkeypatch, "local_response_norm"), spy(monkeypatch, "local_response_norm_backward")
    a, b = pair(torch.nn.LocalResponseNorm(size, **options), ours.LocalResponseNorm)
    ya, yb, dxa, dxb = run_both(a, b, torch.randn(shape, dtype=dtype))
    torch.testing.assert_close(yb, ya, **tol(dtype))
    torch.testing.assert_close(dxb, dxa, **tol(dtype))
    assert [len(c) for c in calls] == [1, 1]  # our kernels, not torch's


@pytest.mark.parametrize("fmt", [torch.channels_last, torch.channels_last_3d], ids=str)
def test_local_response_norm_keeps_channels_last_as_torch(fmt):
    shape = (2, 6, 4, 5) if fmt == torch.channels_last else (2, 6, 3, 4, 5)
    x = torch.randn(shape).contiguous(memory_format=fmt)
    a, b = pair(torch.nn.LocalResponseNorm(3), ours.LocalResponseNorm)
    ya, yb, dxa, dxb = run_both(a, b, x)
    assert yb.is_contiguous(memory_format=fmt) and ya.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(yb, ya, **tol(torch.float32))
    torch.testing.assert_close(dxb, dxa, **tol(torch.float32))


def test_local_response_norm_leaves_what_torch_alone_takes_to_torch():
    x = torch.randn(2, 5, 3)
    a, b = pair(torch.nn.LocalResponseNorm(3, k=0.0), ours.LocalResponseNorm)  # k = 0: out of our range
    torch.testing.assert_close(b(x), a(x), equal_nan=True)
    with pytest.raises(ValueError, match="3D or higher"):
        ours.LocalResponseNorm(3)(torch.randn(2, 5))


# -- dropout ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dropout_is_inverted_dropout_with_our_mask(dtype):
    torch.manual_seed(4)
    p = 0.3
    d = ours.Dropout(p)
    x = torch.randn(3, 1001, dtype=dtype) + 5.0  # no zeros in x: a zero in y is a dropped unit
    xr = x.clone().requires_grad_()
    rng_state = torch.get_rng_state()
    y = d(xr)
    dy = torch.randn_like(y)
    y.backward(dy)
    kept = y != 0
    scale = 1 / (1 - p)  # x·(m/(1 − p)), as torch's x·noise
    torch.testing.assert_close(y[kept], x[kept] * scale, rtol=0, atol=0)
    torch.testing.assert_close(xr.grad, torch.where(kept, dy * scale, torch.zeros_like(dy)), rtol=0, atol=0)
    assert 0.25 < 1 - kept.double().mean().item() < 0.35
    torch.set_rng_state(rng_state)  # the seed the forward drew: our Philox mask, not torch's bernoulli
    seed = int(torch.empty((), dtype=torch.int64).random_())
    assert torch.equal(kept, torch.from_numpy(nf_dropout.dropout_mask(tuple(x.shape), drop_prob=p, seed=seed)))
    d.eval()
    assert d(x) is x


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_dropout2d_drops_whole_channels_with_our_mask(dtype):
    torch.manual_seed(7)
    p = 0.4
    d = ours.Dropout2d(p)
    x = torch.randn(5, 33, 3, 7, dtype=dtype) + 5.0
    xr = x.clone().requires_grad_()
    rng_state = torch.get_rng_state()
    y = d(xr)
    dy = torch.randn_like(y)
    y.backward(dy)
    scale = 1 / (1 - p)
    plane = (y != 0)[:, :, :1, :1]
    assert torch.equal(y != 0, plane.expand_as(y))  # whole (n, c) planes
    torch.testing.assert_close(y, torch.where(plane, x * scale, torch.zeros_like(x)), rtol=0, atol=0)
    torch.testing.assert_close(xr.grad, torch.where(plane, dy * scale, torch.zeros_like(dy)), rtol=0, atol=0)
    torch.set_rng_state(rng_state)
    seed = int(torch.empty((), dtype=torch.int64).random_())
    want = nf_dropout.dropout_mask((5, 33), drop_prob=p, seed=seed)
    assert torch.equal(plane[:, :, 0, 0], torch.from_numpy(want))
    d.eval()
    assert d(x) is x
    nhwc = torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last)
    d.train()
    torch.manual_seed(1)
    want_cl = torch.nn.Dropout2d(p)(nhwc)  # channels-last strides: handed to torch's own forward
    torch.manual_seed(1)
    assert torch.equal(d(nhwc), want_cl)
    assert ours.convert(torch.nn.Sequential(torch.nn.Dropout2d())).swapped[0][2].endswith("Dropout2d")


def test_dropout3d_drops_whole_channels():
    torch.manual_seed(8)
    x = torch.randn(3, 5, 2, 3, 4, dtype=torch.float64) + 5.0
    xr = x.clone().requires_grad_()
    y = ours.Dropout3d(0.5)(xr)
    y.backward(torch.ones_like(y))
    plane = (y != 0)[:, :, :1, :1, :1]
    assert torch.equal(y != 0, plane.expand_as(y)) and torch.equal(xr.grad != 0, y != 0)
    torch.testing.assert_close(y, torch.where(plane, x * 2, torch.zeros_like(x)), rtol=0, atol=0)
    model = torch.nn.Sequential(torch.nn.Dropout3d())
    ours.convert(model)
    assert type(model[0]) is ours.Dropout3d


def test_dropout_masks_follow_torch_manual_seed():
    d = ours.Dropout(0.5)
    x = torch.randn(100)
    torch.manual_seed(5)
    y1, y2 = d(x), d(x)
    torch.manual_seed(5)
    assert torch.equal(d(x), y1) and not torch.equal(y1, y2)


def test_dropout_edge_probabilities_and_inplace():
    x = torch.randn(4, 6)
    assert ours.Dropout(0.0)(x) is x  # torch: x itself
    assert torch.equal(ours.Dropout(1.0)(x), torch.nn.Dropout(1.0)(x))
    xi = x.clone()
    torch.manual_seed(6)
    y = ours.Dropout(0.5, inplace=True)(xi)
    assert y.data_ptr() == xi.data_ptr() and torch.equal(y, xi)
    assert torch.equal((y == 0), (xi == 0)) and (y == 0).any()
    with pytest.raises(ValueError):
        ours.Dropout(1.5)


def test_dropout_inplace_inside_a_graph_backpropagates():
    torch.manual_seed(7)
    w = torch.randn(5, 8, requires_grad=True)
    h = w * 2.0
    y = ours.Dropout(0.4, inplace=True)(h)
    y.sum().backward()
    kept = y != 0
    torch.testing.assert_close(w.grad, torch.where(kept, torch.full_like(w, 2 / 0.6), torch.zeros_like(w)))


def test_dropout_channels_last_keeps_the_layout_without_a_copy(monkeypatch):
    seen = []
    real = nf_dropout.dropout
    monkeypatch.setattr(nf_dropout, "dropout", lambda x, **k: seen.append(x.data_ptr()) or real(x, **k))
    x = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = ours.Dropout(0.5)(x)
    assert seen == [x.data_ptr()]
    assert y.stride() == x.stride()
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, (y != 0).to(x.dtype) * 2.0)


# -- gradcheck (float64) -----------------------------------------------------------------------


def test_gradcheck_batch_norm_train_eval_channels_last():
    torch.manual_seed(8)
    for train, fmt in ((True, torch.contiguous_format), (False, torch.contiguous_format), (True, torch.channels_last)):
        bn = ours.BatchNorm2d(3, dtype=torch.float64).train(train)
        with torch.no_grad():  # eval: away from the initial (0, 1) statistics
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 1.5)
        x = torch.randn(2, 3, 3, 4, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
        w = torch.rand(3, dtype=torch.float64, requires_grad=True)
        b = torch.randn(3, dtype=torch.float64, requires_grad=True)

        def f(x, w, b, bn=bn):
            return torch.func.functional_call(bn, {"weight": w, "bias": b}, (x,))

        assert torch.autograd.gradcheck(f, (x, w, b))


def test_gradcheck_layer_norm_and_local_response_norm():
    torch.manual_seed(9)
    ln = ours.LayerNorm((3, 4), dtype=torch.float64)
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.rand(3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: torch.func.functional_call(ln, {"weight": w, "bias": b}, (x,)), (x, w, b)
    )
    lrn = ours.LocalResponseNorm(3, alpha=0.5, beta=0.75, k=1.0)
    assert torch.autograd.gradcheck(lrn, (torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True),))


def test_gradcheck_dropout_with_a_fixed_seed():
    x = torch.randn(3, 17, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: _DropoutFn.apply(x, 0.4, 123, False), (x,))


# -- state_dict both ways ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "cls", "shape"),
    [
        (lambda: torch.nn.BatchNorm2d(4, momentum=None), ours.BatchNorm2d, (5, 4, 2, 3)),
        (lambda: torch.nn.BatchNorm1d(4, affine=False), ours.BatchNorm1d, (5, 4)),
        (lambda: torch.nn.LayerNorm((2, 4)), ours.LayerNorm, (5, 2, 4)),
    ],
    ids=["bn2d", "bn1d", "ln"],
)
def test_state_dict_moves_both_ways_strict(make, cls, shape):
    torch.manual_seed(10)
    theirs = make()
    mine = cls(*_ctor_args(theirs))
    x = torch.randn(shape)
    mine(x)  # ours trained one step
    assert list(mine.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict(mine.state_dict(), strict=True)
    for k, v in mine.state_dict().items():
        assert torch.equal(theirs.state_dict()[k], v)
    theirs(x)
    mine.load_state_dict(theirs.state_dict(), strict=True)
    for k, v in theirs.state_dict().items():
        assert torch.equal(mine.state_dict()[k], v)


def _ctor_args(m):
    if isinstance(m, torch.nn.LayerNorm):
        return (m.normalized_shape,)
    return (m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)


# -- convert -----------------------------------------------------------------------------------


def small_cnn(dtype=torch.float32):
    torch.manual_seed(11)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.25),
        torch.nn.Flatten(),
        torch.nn.Sequential(torch.nn.Linear(4 * 6 * 6, 8), torch.nn.LayerNorm(8)),
        torch.nn.Linear(8, 3),
    ).to(dtype)


def test_convert_swaps_in_place_keeping_parameters_and_training_flag():
    model = small_cnn(torch.float64)
    model[1].momentum = None
    model.eval()
    params = [id(p) for p in model.parameters()]
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(5, 3, 6, 6, dtype=torch.float64)
    before = model(x)
    report = ours.convert(model)
    assert [(p, new.rsplit(".", 1)[1]) for p, _, new in report.swapped] == [
        ("1", "BatchNorm2d"),
        ("3", "Dropout"),
        ("5.1", "LayerNorm"),
    ]
    assert report.left == []
    assert type(model[1]) is ours.BatchNorm2d and isinstance(model[1], torch.nn.BatchNorm2d)
    assert model[1].momentum is None and not model[1].training and not model[3].training
    assert [id(p) for p in model.parameters()] == params  # an optimizer made before keeps working
    assert list(model.state_dict()) == list(sd)
    torch.testing.assert_close(model(x), before, rtol=1e-12, atol=1e-12)
    assert "1: torch.nn.modules.batchnorm.BatchNorm2d -> nndl_fast.torch.nn.batch_norm.BatchNorm2d" in str(report)


def test_convert_trains_like_torch():
    """Several SGD steps of the converted model against torch's, from the same state, with
    Dropout off (our masks differ from torch's)."""
    theirs = small_cnn()
    theirs[3].p = 0.0
    mine = copy.deepcopy(theirs)
    ours.convert(mine)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (theirs, mine)]
    torch.manual_seed(12)
    for _ in range(3):
        x, t = torch.randn(8, 3, 6, 6), torch.randint(0, 3, (8,))
        for m, opt in zip((theirs, mine), opts):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), t).backward()
            opt.step()
    for (k, a), b in zip(theirs.state_dict().items(), mine.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=k)


def test_convert_leaves_and_reports_what_it_cannot_take():
    class MyBN(torch.nn.BatchNorm2d):
        pass

    shared = torch.nn.BatchNorm1d(3)
    model = torch.nn.Sequential(
        torch.nn.BatchNorm2d(3).half(),
        MyBN(3),
        torch.nn.GroupNorm(1, 3),
        torch.nn.Dropout1d(),
        shared,
        torch.nn.Sequential(shared),
    )
    report = ours.convert(model)
    assert report.swapped == [
        ("4", "torch.nn.modules.batchnorm.BatchNorm1d", "nndl_fast.torch.nn.batch_norm.BatchNorm1d")
    ]
    assert model[4] is model[5][0] and type(model[4]) is ours.BatchNorm1d  # one module, one entry
    left = {path: why for path, _, why in report.left}
    assert set(left) == {"0", "1", "2", "3"}
    assert "float16" in left["0"] and "subclass" in left["1"]
    assert type(model[0]) is torch.nn.BatchNorm2d and type(model[1]) is MyBN
    with pytest.raises(TypeError, match="torch.nn.Module"):
        ours.convert([torch.nn.BatchNorm1d(3)])
    alone = torch.nn.BatchNorm1d(3)
    assert [path for path, _, _ in ours.convert(alone).swapped] == [""]  # the model itself
    assert type(alone) is ours.BatchNorm1d


def test_convert_keeps_the_module_objects_their_hooks_and_references():
    model = small_cnn()
    bn = model[1]
    seen = []
    handle = bn.register_forward_hook(lambda m, i, o: seen.append(type(m)))
    ours.convert(model)
    assert model[1] is bn and type(bn) is ours.BatchNorm2d
    model(torch.randn(2, 3, 6, 6))
    assert seen == [ours.BatchNorm2d]
    handle.remove()
    model(torch.randn(2, 3, 6, 6))
    assert seen == [ours.BatchNorm2d]
    assert ours.convert(model).swapped == []  # already ours: nothing to swap, nothing left
