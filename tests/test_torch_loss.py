"""nndl_fast.torch.nn.CrossEntropyLoss against torch.nn.CrossEntropyLoss: loss and gradient in
float32/float64, class-index and probability targets, gradcheck, and the inputs left to torch."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch not installed")

from nndl_fast.torch.nn import CrossEntropyLoss  # noqa: E402
from nndl_fast.torch.nn import loss as nn_loss  # noqa: E402

TOL = {torch.float32: dict(rtol=2e-6, atol=2e-7), torch.float64: dict(rtol=1e-12, atol=1e-14)}


def _case(dtype, n=13, k=7, soft=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (3 * torch.randn(n, k, generator=g, dtype=dtype)).requires_grad_()
    if soft:
        t = torch.softmax(torch.randn(n, k, generator=g, dtype=dtype), 1)
    else:
        t = torch.randint(0, k, (n,), generator=g)
        t[2] = -100
    return x, t


def _both(x, t, grad_out=None, **kw):
    out = []
    for cls in (CrossEntropyLoss, torch.nn.CrossEntropyLoss):
        xi = x.detach().clone().requires_grad_()
        loss = cls(**kw)(xi, t)
        loss.backward(grad_out if grad_out is not None else torch.ones_like(loss))
        out.append((loss.detach(), xi.grad))
    return out


def _kernel_calls(monkeypatch):
    calls = []
    real = nn_loss._CrossEntropyFn.apply

    def spy(*a):
        calls.append(a)
        return real(*a)

    monkeypatch.setattr(nn_loss._CrossEntropyFn, "apply", spy)
    return calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
def test_matches_torch(monkeypatch, dtype, soft, reduction, smoothing, weighted):
    calls = _kernel_calls(monkeypatch)
    x, t = _case(dtype, soft=soft)
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    if weighted:
        kw["weight"] = torch.rand(x.shape[1], dtype=dtype) + 0.5
    grad_out = torch.rand(x.shape[0], dtype=dtype) if reduction == "none" else torch.tensor(1.7, dtype=dtype)
    (mine, dmine), (theirs, dtheirs) = _both(x, t, grad_out, **kw)
    assert len(calls) == 1  # our kernel ran, not torch's fallback
    assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
    torch.testing.assert_close(mine, theirs, **TOL[dtype])
    torch.testing.assert_close(dmine, dtheirs, **TOL[dtype])


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_gradcheck(soft, reduction):
    x, t = _case(torch.float64, n=5, k=4, soft=soft)
    w = torch.rand(4, dtype=torch.float64) + 0.5
    m = CrossEntropyLoss(weight=w, reduction=reduction, label_smoothing=0.1)
    assert torch.autograd.gradcheck(lambda z: m(z, t), (x,))


def test_eval_without_grad_and_no_grad_kept(monkeypatch):
    calls = _kernel_calls(monkeypatch)
    x, t = _case(torch.float32)
    with torch.no_grad():
        loss = CrossEntropyLoss()(x, t)
    assert len(calls) == 1 and not loss.requires_grad
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(x.detach(), t))


def _fallback_inputs():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 5, generator=g, dtype=torch.float64)
    t = torch.randint(0, 5, (6,), generator=g)
    yield "spatial (N, C, d)", torch.randn(6, 5, 3, dtype=torch.float64), torch.randint(0, 5, (6, 3)), {}
    yield "unbatched (C,)", x[0], t[0], {}
    yield "half precision", x.to(torch.bfloat16), t, {}
    yield "uint8 target", x, t.to(torch.uint8), {}
    yield "all rows ignored (NaN)", x, torch.full((6,), -100), {}
    yield "no rows (NaN)", x[:0], t[:0], {}
    yield "a NaN logit", torch.where(torch.arange(6)[:, None] == 2, float("nan"), x), t, {}


@pytest.mark.parametrize("name, x, t, kw", list(_fallback_inputs()), ids=lambda v: v if isinstance(v, str) else "")
def test_inputs_our_kernel_does_not_take_run_torch(name, x, t, kw):
    mine = CrossEntropyLoss(**kw)(x, t)
    theirs = torch.nn.CrossEntropyLoss(**kw)(x, t)
    torch.testing.assert_close(mine, theirs, equal_nan=True)


def test_soft_target_requiring_grad_gets_torch_gradient():
    x, t = _case(torch.float64, soft=True)
    t = t.requires_grad_()
    CrossEntropyLoss()(x, t).backward()
    ref = t.detach().clone().requires_grad_()
    torch.nn.functional.cross_entropy(x.detach(), ref).backward()
    torch.testing.assert_close(t.grad, ref.grad)


def test_bad_class_index_is_refused():
    x, _ = _case(torch.float64)
    with pytest.raises(ValueError):
        CrossEntropyLoss()(x, torch.full((x.shape[0],), x.shape[1]))


def test_state_dict_and_constructor_are_torchs():
    w = torch.rand(4)
    mine, theirs = CrossEntropyLoss(weight=w, ignore_index=3), torch.nn.CrossEntropyLoss(weight=w, ignore_index=3)
    assert mine.state_dict().keys() == theirs.state_dict().keys()
    assert isinstance(mine, torch.nn.CrossEntropyLoss) and mine.ignore_index == 3
