r"""Optimizer update rules of section 1.2 as fused, in-place, multi-tensor kernels.

Each rule comes twice: a class a PyTorch user recognises (``Adam(params, lr=...)``,
``step(grads)``, ``state_dict()``) and a functional form over lists of arrays for users
who keep their own state (``adam(params, grads, exp_avg, exp_avg_sq, step=t, ...)``).
One call updates a whole list of tensors in one pass over memory, in one parallel region.

Defaults follow the chapter; every PyTorch convention is an explicit option, and the
class docstrings say how to reproduce ``torch.optim`` exactly. Notation: θ parameters,
g gradient, α learning rate (``lr``), t the 1-based step, ⊙ elementwise.

Terms shared by every rule, applied in the same pass (the kernel sees g', not g):

.. math::

    g' = s\,g + \lambda_2\,\theta + \lambda_1\,\theta/\sqrt{\theta^2 + \epsilon_1}
    \qquad \theta \leftarrow d\,\theta \text{ before the update}

* ``grad_scale`` s (a ``step`` argument): loss-scaling inverse or a clip coefficient;
  ``maximize=True`` flips its sign (ascent), as torch's ``maximize``.
* ``weight_decay`` λ₂: L2 regularisation (1.59), torch's ``weight_decay=`` of SGD/Adam.
* ``l1`` λ₁ with ``l1_eps`` ε₁: the smooth ℓ1 penalty (1.62); with ``weight_decay`` this
  is the elastic net (1.63).
* ``decoupled_weight_decay`` w: weight decay (1.64), d = 1 − w; with
  ``decay_scaled_by_lr=True``, d = 1 − α·w (torch's AdamW). In plain SGD this equals
  L2 with λ₂ = w/α (exercise 1-4); in Adam it does not.

``step(..., skip_nonfinite=True)`` first checks every gradient of the call; if any
holds NaN or Inf the whole step is skipped, nothing (parameters, state, step count) is
modified, and ``step`` returns False. It costs one extra read of the gradients.

Learning rates may be numbers or callables of the 1-based step t (see
:mod:`nndl_fast.schedules`); a group's ``lr`` may be changed between steps, as with torch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Union

import numpy as np

from . import _core
from . import clip as _clip

__all__ = [
    "SGD",
    "AdaDelta",
    "AdaGrad",
    "Adam",
    "AdamW",
    "Momentum",
    "Nadam",
    "Nesterov",
    "Optimizer",
    "RMSprop",
    "adadelta",
    "adagrad",
    "adam",
    "nadam",
    "rmsprop",
    "sgd",
]

LR = Union[float, Callable[[int], float]]  # a number or a schedule of the 1-based step


# --------------------------------------------------------------------------------------
# Hyper-parameter checks (shared by classes and functional forms)
# --------------------------------------------------------------------------------------
def _check_range(name: str, value: Any, lo: float, hi: float = math.inf, *, lo_open: bool = False,
                 hi_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok or math.isnan(v):
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {left}{lo}, {hi}{right}, got {value}")


def _check_lr(lr: Any) -> None:
    if callable(lr):
        return
    _check_range("lr", lr, 0.0)


def _lr_at(lr: Any, t: int) -> float:
    if callable(lr):
        value = float(lr(t))
        if not value >= 0.0:
            raise ValueError(f"the lr schedule returned {value} at step {t}; it must be >= 0")
        return value
    return float(lr)


def _check_betas(betas: Any) -> None:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    _check_range("betas[0]", betas[0], 0.0, 1.0, hi_open=True)
    _check_range("betas[1]", betas[1], 0.0, 1.0, hi_open=True)


def _check_common(hp: Mapping[str, Any]) -> None:
    _check_lr(hp["lr"])
    _check_range("weight_decay", hp["weight_decay"], 0.0)
    _check_range("l1", hp["l1"], 0.0)
    _check_range("l1_eps", hp["l1_eps"], 0.0, lo_open=True)
    _check_range("decoupled_weight_decay", hp["decoupled_weight_decay"], 0.0, 1.0)
    for flag in ("maximize", "decay_scaled_by_lr"):
        if not isinstance(hp[flag], bool):
            raise TypeError(f"{flag} must be a bool, got {type(hp[flag]).__name__}")


def _eps_split(eps: float, inside: bool) -> tuple[float, float]:
    """(ε inside the root, ε outside): the chapter's sqrt(G + ε) or torch's sqrt(G) + ε."""
    return (eps, 0.0) if inside else (0.0, eps)


def _terms(hp: Mapping[str, Any], lr: float, grad_scale: float) -> tuple[float, float, float, float, float]:
    """(scale, l2, l1, l1_eps, decay) of the module docstring, for the kernel."""
    scale = -grad_scale if hp["maximize"] else grad_scale
    w = hp["decoupled_weight_decay"]
    decay = 1.0 - (lr * w if hp["decay_scaled_by_lr"] else w)
    return (float(scale), float(hp["weight_decay"]), float(hp["l1"]), float(hp["l1_eps"]), decay)


_COMMON_DEFAULTS: dict[str, Any] = {
    "weight_decay": 0.0,
    "l1": 0.0,
    "l1_eps": 1e-8,
    "decoupled_weight_decay": 0.0,
    "decay_scaled_by_lr": False,
    "maximize": False,
}


def _hparams(kwargs: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(kwargs) - set(defaults) - set(_COMMON_DEFAULTS)
    if unknown:
        raise TypeError(f"unexpected hyper-parameter(s): {', '.join(sorted(unknown))}")
    hp = {**_COMMON_DEFAULTS, **defaults}
    hp.update(kwargs)
    return hp


# --------------------------------------------------------------------------------------
# The per-rule launches: coefficients (in double, once per call) and the kernel call.
# Each takes hp (a group's hyper-parameters), the lists, t (1-based step of this update).
# --------------------------------------------------------------------------------------
def _sgd_launch(hp, params, grads, bufs, t, grad_scale, skip):
    lr = _lr_at(hp["lr"], t)
    terms = _terms(hp, lr, grad_scale)
    mu = float(hp["momentum"])
    if mu == 0.0:
        return _core.sgd_step(params, grads, None, terms, lr, 0.0, 0.0, 0.0, 0.0, False, skip)
    nesterov = bool(hp["nesterov"])
    if hp["momentum_form"] == "chapter":
        # Δθ ← ρΔθ − α g' ; θ ← θ + Δθ  (1.15); Nesterov on look-ahead parameters (1.18)
        a, c, s, n = mu, -lr, (mu if nesterov else 1.0), (-lr if nesterov else 0.0)
    else:
        # torch: b ← μ b + (1 − dampening) g' (b = g' at the first step) ; θ ← θ − α (b | g' + μ b)
        first = t == 1
        a, c = (0.0, 1.0) if first else (mu, 1.0 - float(hp["dampening"]))
        s, n = (-lr * mu, -lr) if nesterov else (-lr, 0.0)
    return _core.sgd_step(params, grads, bufs[0], terms, lr, a, c, s, n, nesterov, skip)


def _adagrad_launch(hp, params, grads, bufs, t, grad_scale, skip):
    lr = _lr_at(hp["lr"], t)
    clr = lr / (1.0 + (t - 1) * float(hp["lr_decay"]))
    eps_in, eps_out = _eps_split(float(hp["eps"]), hp["eps_inside_sqrt"])
    return _core.adagrad_step(params, grads, bufs[0], _terms(hp, clr, grad_scale), clr, eps_in, eps_out, skip)


def _rmsprop_launch(hp, params, grads, bufs, t, grad_scale, skip):
    lr = _lr_at(hp["lr"], t)
    eps_in, eps_out = _eps_split(float(hp["eps"]), hp["eps_inside_sqrt"])
    return _core.rmsprop_step(params, grads, bufs[0], bufs[1], bufs[2], _terms(hp, lr, grad_scale), lr,
                              float(hp["beta"]), eps_in, eps_out, float(hp["momentum"]), skip)


def _adadelta_launch(hp, params, grads, bufs, t, grad_scale, skip):
    lr = _lr_at(hp["lr"], t)
    return _core.adadelta_step(params, grads, bufs[0], bufs[1], _terms(hp, lr, grad_scale), lr,
                               float(hp["rho"]), float(hp["eps"]), skip)


def _adam_launch(hp, params, grads, bufs, t, grad_scale, skip):
    lr = _lr_at(hp["lr"], t)
    beta1, beta2 = float(hp["betas"][0]), float(hp["betas"][1])
    c_m = lr / (1.0 - beta1**t)  # α / (1 − β1ᵗ): M̂ (1.21) folded into the step size
    c2 = 1.0 / (1.0 - beta2**t)  # Ĝ = G / (1 − β2ᵗ) (1.22)
    eps_in, eps_out = _eps_split(float(hp["eps"]), hp["eps_inside_sqrt"])
    return _core.adam_step(params, grads, bufs[0], bufs[1], bufs[2], _terms(hp, lr, grad_scale),
                           beta1, beta2, c_m, 0.0, c2, eps_in, eps_out, skip)


def _nadam_mu(beta1: float, momentum_decay: float, t: int) -> float:
    """μ_t = β1 (1 − ½·0.96^{tψ}) (Dozat 2016; torch NAdam)."""
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))


def _nadam_launch(hp, params, grads, bufs, t, grad_scale, skip, mu_product):
    """mu_product: Π_{i<t} μ_i before this step. Returns (applied, Π_{i≤t} μ_i)."""
    lr = _lr_at(hp["lr"], t)
    beta1, beta2 = float(hp["betas"][0]), float(hp["betas"][1])
    mu = _nadam_mu(beta1, float(hp["momentum_decay"]), t)
    mu_next = _nadam_mu(beta1, float(hp["momentum_decay"]), t + 1)
    mu_product = mu_product * mu
    c_g = lr * (1.0 - mu) / (1.0 - mu_product)
    c_m = lr * mu_next / (1.0 - mu_product * mu_next)
    c2 = 1.0 / (1.0 - beta2**t)
    eps_in, eps_out = _eps_split(float(hp["eps"]), hp["eps_inside_sqrt"])
    applied = _core.adam_step(params, grads, bufs[0], bufs[1], None, _terms(hp, lr, grad_scale),
                              beta1, beta2, c_m, c_g, c2, eps_in, eps_out, skip)
    return applied, mu_product


# --------------------------------------------------------------------------------------
# Rules: defaults, checks, state buffers
# --------------------------------------------------------------------------------------
class _Rule:
    """A rule's name, defaults, hyper-parameter checks, state buffers and kernel launch."""

    name: str
    defaults: dict[str, Any]
    launch: Callable[..., Any]

    @staticmethod
    def check(hp: Mapping[str, Any]) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @staticmethod
    def buffers(hp: Mapping[str, Any]) -> tuple[str | None, ...]:  # pragma: no cover
        """Names of the state buffers the kernel takes, None where an optional one is absent."""
        raise NotImplementedError

    @staticmethod
    def initial(name: str, hp: Mapping[str, Any]) -> float:
        return 0.0


class _SgdRule(_Rule):
    launch = staticmethod(_sgd_launch)
    name = "sgd"
    defaults = {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "momentum_form": "chapter"}

    @staticmethod
    def check(hp):
        _check_common(hp)
        _check_range("momentum", hp["momentum"], 0.0)
        _check_range("dampening", hp["dampening"], 0.0, 1.0)
        if hp["momentum_form"] not in ("chapter", "torch"):
            raise ValueError(f"momentum_form must be 'chapter' or 'torch', got {hp['momentum_form']!r}")
        if hp["momentum_form"] == "chapter" and hp["dampening"] != 0:
            raise ValueError("dampening exists only in momentum_form='torch'")
        if hp["nesterov"] and (hp["momentum"] <= 0 or hp["dampening"] != 0):
            raise ValueError("nesterov requires momentum > 0 and zero dampening")

    @staticmethod
    def buffers(hp):
        return ("momentum_buffer",) if hp["momentum"] != 0 else (None,)


class _AdagradRule(_Rule):
    launch = staticmethod(_adagrad_launch)
    name = "adagrad"
    defaults = {"lr": 1e-2, "eps": 1e-10, "eps_inside_sqrt": True, "lr_decay": 0.0,
                "initial_accumulator_value": 0.0}

    @staticmethod
    def check(hp):
        _check_common(hp)
        _check_range("eps", hp["eps"], 0.0)
        _check_range("lr_decay", hp["lr_decay"], 0.0)
        _check_range("initial_accumulator_value", hp["initial_accumulator_value"], 0.0)

    @staticmethod
    def buffers(hp):
        return ("sum",)

    @staticmethod
    def initial(name, hp):
        return float(hp["initial_accumulator_value"])


class _RmspropRule(_Rule):
    launch = staticmethod(_rmsprop_launch)
    name = "rmsprop"
    defaults = {"lr": 1e-3, "beta": 0.9, "eps": 1e-8, "eps_inside_sqrt": True, "momentum": 0.0,
                "centered": False}

    @staticmethod
    def check(hp):
        _check_common(hp)
        _check_range("beta", hp["beta"], 0.0, 1.0, hi_open=True)
        _check_range("eps", hp["eps"], 0.0)
        _check_range("momentum", hp["momentum"], 0.0)

    @staticmethod
    def buffers(hp):
        return ("square_avg", "momentum_buffer" if hp["momentum"] > 0 else None,
                "grad_avg" if hp["centered"] else None)


class _AdadeltaRule(_Rule):
    launch = staticmethod(_adadelta_launch)
    name = "adadelta"
    defaults = {"lr": 1.0, "rho": 0.9, "eps": 1e-6}

    @staticmethod
    def check(hp):
        _check_common(hp)
        _check_range("rho", hp["rho"], 0.0, 1.0, hi_open=True)
        _check_range("eps", hp["eps"], 0.0, lo_open=True)

    @staticmethod
    def buffers(hp):
        return ("square_avg", "acc_delta")


class _AdamRule(_Rule):
    launch = staticmethod(_adam_launch)
    name = "adam"
    defaults = {"lr": 1e-3, "betas": (0.9, 0.99), "eps": 1e-8, "eps_inside_sqrt": True, "amsgrad": False}

    @staticmethod
    def check(hp):
        _check_common(hp)
        _check_betas(hp["betas"])
        _check_range("eps", hp["eps"], 0.0)

    @staticmethod
    def buffers(hp):
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq" if hp["amsgrad"] else None)


class _NadamRule(_Rule):
    launch = staticmethod(_nadam_launch)
    name = "nadam"
    defaults = {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8, "eps_inside_sqrt": True,
                "momentum_decay": 4e-3}

    @staticmethod
    def check(hp):
        _check_common(hp)
        _check_betas(hp["betas"])
        _check_range("eps", hp["eps"], 0.0)
        _check_range("momentum_decay", hp["momentum_decay"], 0.0)

    @staticmethod
    def buffers(hp):
        return ("exp_avg", "exp_avg_sq")


# --------------------------------------------------------------------------------------
# The optimizer base class
# --------------------------------------------------------------------------------------
def _as_param(x: Any, where: str) -> np.ndarray:
    """Parameters are updated in place: they must be the caller's own float arrays."""
    if not isinstance(x, np.ndarray):
        numpy = getattr(x, "numpy", None)  # a torch CPU tensor: share its memory
        if numpy is not None and hasattr(x, "detach"):
            x = x.detach().numpy()
        else:
            raise TypeError(f"{where} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{where} must be float32 or float64, got {x.dtype}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{where} must be C-contiguous (a copy would not receive the update)")
    if not x.flags.writeable:
        raise ValueError(f"{where} is read-only but is updated in place")
    return x


class Optimizer:
    """Base class: parameter groups, state, ``step``, ``state_dict``.

    ``params`` is a list of arrays, or a list of dicts ``{"params": [...], **hyper}``
    whose hyper-parameters override the constructor's for that group (torch's param
    groups). ``step(grads)`` takes the gradients aligned with the parameters, flattened
    over the groups in order. State buffers are created at construction, as zeros (or the
    rule's initial value) of each parameter's shape and dtype, and are exposed as
    ``optimizer.state[i][name]`` for the i-th parameter.
    """

    _rule: type[_Rule]

    def __init__(self, params: Iterable[Any], **hyper: Any) -> None:
        self.defaults = _hparams(hyper, self._rule.defaults)
        self._rule.check(self.defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, np.ndarray]] = {}
        self._group_steps: list[int] = []  # completed steps, per group
        self._group_extra: list[dict[str, float]] = []  # scalar state (Nadam's μ product)
        self._bufs: list[tuple[list[np.ndarray] | None, ...]] = []
        self.last_grad_norm: float | None = None  # set by step(max_norm=...)
        self._buf_names: list[tuple[str | None, ...]] = []  # the buffers each group's lists hold
        params = list(params)
        if not params:
            raise ValueError("params is an empty list")
        groups = params if isinstance(params[0], Mapping) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    # -- groups ----------------------------------------------------------------------
    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group ``{"params": [...], **hyper}``; missing hyper-parameters take the defaults."""
        if not isinstance(param_group, Mapping) or "params" not in param_group:
            raise TypeError("param_group must be a dict with a 'params' list")
        raw = param_group["params"]
        raw = [raw] if isinstance(raw, np.ndarray) else list(raw)
        if not raw:
            raise ValueError("param_group['params'] is an empty list")
        gi = len(self.param_groups)
        arrays = [_as_param(p, f"params[{gi}][{k}]" if gi else f"params[{k}]") for k, p in enumerate(raw)]
        dtypes = {a.dtype for a in arrays}
        seen = {id(a) for g in self.param_groups for a in g["params"]}
        for k, a in enumerate(arrays):
            if id(a) in seen:
                raise ValueError(f"parameter {k} of group {gi} appears in more than one place")
            seen.add(id(a))
        if len(dtypes) > 1:
            raise TypeError(f"params of one group must share a dtype, got {sorted(map(str, dtypes))}")
        hp = dict(self.defaults)
        hp.update({k: v for k, v in param_group.items() if k != "params"})
        unknown = set(hp) - set(self.defaults)
        if unknown:
            raise TypeError(f"unexpected hyper-parameter(s) in param_group: {', '.join(sorted(unknown))}")
        self._rule.check(hp)
        hp["params"] = arrays
        first_index = sum(len(g["params"]) for g in self.param_groups)
        self.param_groups.append(hp)
        self._group_steps.append(0)
        self._group_extra.append(self._initial_extra())
        for k, p in enumerate(arrays):
            self.state[first_index + k] = {
                name: np.full_like(p, self._rule.initial(name, hp))
                for name in self._rule.buffers(hp)
                if name is not None
            }
        self._rebuild_buffer_lists(gi)

    def _initial_extra(self) -> dict[str, float]:
        return {}

    def _group_indices(self, gi: int) -> range:
        start = sum(len(g["params"]) for g in self.param_groups[:gi])
        return range(start, start + len(self.param_groups[gi]["params"]))

    def _rebuild_buffer_lists(self, gi: int) -> None:
        """Cache, per group, the lists of state buffers the kernel takes (None if absent)."""
        names = self._rule.buffers(self.param_groups[gi])
        self._buf_names[gi:gi + 1] = [names]
        lists = tuple(
            None if name is None else [self.state[i][name] for i in self._group_indices(gi)] for name in names
        )
        if gi == len(self._bufs):
            self._bufs.append(lists)
        else:
            self._bufs[gi] = lists

    # -- step ------------------------------------------------------------------------
    def step(self, grads: Sequence[np.ndarray], *, grad_scale: float = 1.0, max_norm: float | None = None,
             norm_type: float | str = 2.0, clip_rule: str = "chapter", skip_nonfinite: bool = False) -> bool:
        """Apply one update with ``grads`` (aligned with the parameters).

        ``grad_scale`` multiplies every gradient inside the same pass (loss scaling, a clip
        coefficient). ``max_norm`` clips by the global norm first (1.25; see
        :func:`nndl_fast.clip.clip_grad_norm_` for ``norm_type`` and ``clip_rule``), fused:
        one read-only pass computes ‖grad_scale·g‖, and the clip coefficient joins
        grad_scale inside the update pass, so the gradients are never written. The norm
        is kept in ``last_grad_norm``. With ``skip_nonfinite``, a NaN/Inf anywhere skips the
        whole step and returns False (with ``max_norm`` the norm pass detects it at no
        extra cost). Bad input raises before anything is modified.
        """
        groups = self.param_groups
        for gi in range(len(groups)):
            self._check_buffers(gi)
        if len(groups) == 1 and max_norm is None:
            return self._step_group(0, grads, grad_scale, skip_nonfinite)
        per_group = [grads] if len(groups) == 1 else self._split(grads)
        # Several kernel calls: check every group's input, and the non-finite guard, first,
        # so that a rejected call never leaves earlier groups updated.
        for gi, g in enumerate(per_group):
            _core.check_step_lists(groups[gi]["params"], g)
        if max_norm is not None:
            total = _clip.global_norm_of_groups(per_group, norm_type) * abs(grad_scale)
            self.last_grad_norm = total
            if not math.isfinite(total) and skip_nonfinite:
                return False
            grad_scale = grad_scale * _clip.clip_coefficient(total, max_norm, clip_rule)
        elif skip_nonfinite and any(_core.any_nonfinite(g) for g in per_group):
            return False
        for gi, g in enumerate(per_group):
            self._step_group(gi, g, grad_scale, False)
        return True

    def _split(self, grads: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        if not isinstance(grads, (list, tuple)):
            raise TypeError(f"grads must be a list of arrays, got {type(grads).__name__}")
        total = sum(len(g["params"]) for g in self.param_groups)
        if len(grads) != total:
            raise ValueError(f"grads has {len(grads)} arrays but the optimizer has {total} parameters")
        out, start = [], 0
        for g in self.param_groups:
            n = len(g["params"])
            out.append(list(grads[start:start + n]))
            start += n
        return out

    def _check_buffers(self, gi: int) -> None:
        """A group's hyper-parameters may change between steps (lr, betas, ...), but not in a
        way that needs other state buffers: that would silently drop a term."""
        if self._rule.buffers(self.param_groups[gi]) != self._buf_names[gi]:
            raise ValueError(
                f"param group {gi}: a hyper-parameter that decides the state buffers (momentum, "
                "amsgrad, centered) changed after construction; build a new optimizer instead"
            )

    def _step_group(self, gi: int, grads: Sequence[np.ndarray], grad_scale: float, skip: bool) -> bool:
        hp = self.param_groups[gi]
        t = self._group_steps[gi] + 1
        applied = self._launch(gi, hp, grads, t, grad_scale, skip)
        if applied:
            self._group_steps[gi] = t
        return bool(applied)

    def _launch(self, gi, hp, grads, t, grad_scale, skip) -> bool:
        return self._rule.launch(hp, hp["params"], grads, self._bufs[gi], t, grad_scale, skip)

    # -- state -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A deep copy: ``{"state": {i: {"step": t, name: array}}, "param_groups": [...]}``.

        Parameters appear by index, as in torch. Learning-rate callables are kept as
        they are (they must be picklable to pickle the dict).
        """
        state: dict[int, dict[str, Any]] = {}
        groups = []
        for gi, g in enumerate(self.param_groups):
            idx = list(self._group_indices(gi))
            for i in idx:
                state[i] = {"step": self._group_steps[gi], **self._group_extra[gi],
                            **{k: v.copy() for k, v in self.state[i].items()}}
            groups.append({**{k: copy.copy(v) for k, v in g.items() if k != "params"}, "params": idx})
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; the resumed run is bitwise identical to an uninterrupted one.

        Everything is checked before anything is changed: group count and sizes, buffer
        names, shapes and dtypes, and one step count per group.
        """
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("state_dict must be a dict with keys 'state' and 'param_groups'")
        groups, state = state_dict["param_groups"], state_dict["state"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict has {len(groups)} param groups, the optimizer {len(self.param_groups)}")
        new_groups, new_state, new_steps, new_extra = [], {}, [], []
        for gi, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            idx = list(self._group_indices(gi))
            if len(saved["params"]) != len(idx):
                raise ValueError(f"param group {gi} has {len(saved['params'])} params in state_dict, "
                                 f"{len(idx)} in the optimizer")
            hp = {**{k: v for k, v in saved.items() if k != "params"}}
            if set(hp) != set(self.defaults):
                raise ValueError(f"param group {gi} of state_dict has hyper-parameters {sorted(hp)}, "
                                 f"expected {sorted(self.defaults)}")
            self._rule.check(hp)
            names = [n for n in self._rule.buffers(hp) if n is not None]
            steps = set()
            extras = []
            for own_i, saved_i in zip(idx, saved["params"]):
                entry = state.get(saved_i, state.get(str(saved_i)))
                if entry is None:
                    raise ValueError(f"state_dict has no state for parameter {saved_i}")
                p = mine["params"][own_i - idx[0]]
                bufs = {}
                for n in names:
                    if n not in entry:
                        raise ValueError(f"state of parameter {saved_i} lacks buffer {n!r}")
                    b = np.asarray(entry[n])
                    if b.shape != p.shape or b.dtype != p.dtype:
                        raise ValueError(f"state[{saved_i}][{n!r}] has shape {b.shape} and dtype {b.dtype}, "
                                         f"the parameter {p.shape} and {p.dtype}")
                    bufs[n] = np.array(b, order="C", copy=True)
                new_state[own_i] = bufs
                steps.add(int(entry["step"]))
                extras.append({k: float(entry[k]) for k in self._initial_extra()})
            if len(steps) != 1:
                raise ValueError(f"parameters of group {gi} have different step counts {sorted(steps)}")
            if any(e != extras[0] for e in extras):
                raise ValueError(f"parameters of group {gi} have different scalar state")
            hp["params"] = mine["params"]
            new_groups.append(hp)
            new_steps.append(steps.pop())
            new_extra.append(extras[0])
        self.param_groups, self.state = new_groups, new_state
        self._group_steps, self._group_extra = new_steps, new_extra
        self._bufs = []
        for gi in range(len(self.param_groups)):
            self._rebuild_buffer_lists(gi)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for gi, g in enumerate(self.param_groups):
            hp = ", ".join(f"{k}={v!r}" for k, v in g.items() if k != "params")
            lines.append(f"  group {gi}: {len(g['params'])} params, {hp}")
        return "\n".join(lines) + "\n)"




# --------------------------------------------------------------------------------------
# The nine rules
# --------------------------------------------------------------------------------------
_COMMON_DOC = """
    Common options (module docstring): ``weight_decay`` (L2, 1.59), ``l1``/``l1_eps``
    (smooth ℓ1, 1.62; elastic net 1.63 with ``weight_decay``), ``decoupled_weight_decay``
    and ``decay_scaled_by_lr`` (1.64), ``maximize``."""


class SGD(Optimizer):
    r"""Stochastic gradient descent (1.3), with momentum (1.15) and Nesterov (1.18).

    .. math::

        \theta_t = \theta_{t-1} - \alpha\, g_t                        \quad (1.3)

    With ``momentum`` ρ > 0 and ``momentum_form="chapter"`` (default):

    .. math::

        \Delta\theta_t = \rho\,\Delta\theta_{t-1} - \alpha_t g_t,\qquad
        \theta_t = \theta_{t-1} + \Delta\theta_t                       \quad (1.15)

    ``momentum_form="torch"`` keeps torch's buffer b instead: b ← μ b + (1 − dampening) g
    (b = g at the first step), θ ← θ − α b. The two agree while α is constant and differ
    under a schedule (the chapter's Δθ remembers past learning rates).
    ``nesterov=True``: see :class:`Nesterov`.

    Symbols → arguments: α ``lr``, ρ (μ) ``momentum``. State: ``momentum_buffer``
    (Δθ in the chapter's form, b in torch's). To reproduce ``torch.optim.SGD``:
    ``SGD(params, lr, momentum=μ, momentum_form="torch", dampening=..., nesterov=...)``.
    """

    _rule = _SgdRule

    def __init__(self, params, lr: LR = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, momentum_form: str = "chapter", **common: Any) -> None:
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                         momentum_form=momentum_form, **common)


class Momentum(SGD):
    """SGD with the chapter's momentum (1.15), ρ = 0.9 by default. See :class:`SGD`."""

    def __init__(self, params, lr: LR = 1e-3, momentum: float = 0.9, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, momentum=momentum, **kwargs)


class Nesterov(SGD):
    r"""Nesterov accelerated gradient (1.16–1.18), ρ = 0.9 by default.

    .. math::

        \Delta\theta_t = \rho\,\Delta\theta_{t-1}
            - \alpha\, g(\theta_{t-1} + \rho\,\Delta\theta_{t-1})            \quad (1.18)

    The gradient is taken at the look-ahead point θ̂ = θ + ρΔθ (1.16). The optimizer
    therefore holds the look-ahead parameters φ = θ + ρΔθ, at which the user evaluates
    the gradient (the usual reformulation, Sutskever et al. 2013):

    .. math::

        \Delta\theta_t = \rho\,\Delta\theta_{t-1} - \alpha\, g(\varphi_{t-1}),\qquad
        \varphi_t = \varphi_{t-1} + \rho\,\Delta\theta_t - \alpha\, g(\varphi_{t-1})

    so that θ_t = φ_t − ρΔθ_t follows (1.18) exactly. Since Δθ₀ = 0, φ₀ = θ₀. This is
    torch's ``SGD(nesterov=True)`` (b ← μb + g; θ ← θ − α(g + μb)) up to the learning-rate
    schedule, as for :class:`Momentum`; ``momentum_form="torch"`` reproduces it exactly.
    """

    def __init__(self, params, lr: LR = 1e-3, momentum: float = 0.9, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, momentum=momentum, nesterov=True, **kwargs)


class AdaGrad(Optimizer):
    r"""AdaGrad (1.8–1.9; Duchi et al. 2011).

    .. math::

        G_t = G_{t-1} + g_t \odot g_t \quad (1.8)\qquad
        \theta_t = \theta_{t-1} - \frac{\alpha}{\sqrt{G_t + \epsilon}} \odot g_t \quad (1.9)

    Symbols → arguments: α ``lr`` (the chapter gives no value; torch's 0.01), ε ``eps``
    (1e-10, in the chapter's range 1e-7…1e-10), G state ``sum``. torch differences:
    ε outside the root (``eps_inside_sqrt=False``), ``lr_decay`` (α/(1 + (t−1)·lr_decay)),
    ``initial_accumulator_value`` (G₀); all available here.
    """

    _rule = _AdagradRule

    def __init__(self, params, lr: LR = 1e-2, eps: float = 1e-10, eps_inside_sqrt: bool = True,
                 lr_decay: float = 0.0, initial_accumulator_value: float = 0.0, **common: Any) -> None:
        super().__init__(params, lr=lr, eps=eps, eps_inside_sqrt=eps_inside_sqrt, lr_decay=lr_decay,
                         initial_accumulator_value=initial_accumulator_value, **common)


class RMSprop(Optimizer):
    r"""RMSprop (1.10–1.12; Tieleman and Hinton 2012).

    .. math::

        G_t = \beta G_{t-1} + (1-\beta)\, g_t \odot g_t \quad (1.10)\qquad
        \theta_t = \theta_{t-1} - \frac{\alpha}{\sqrt{G_t + \epsilon}} \odot g_t \quad (1.12)

    Symbols → arguments: α ``lr`` (0.001), β ``beta`` (0.9; torch calls it ``alpha`` and
    uses 0.99), ε ``eps`` (1e-8), G state ``square_avg``. torch options: ε outside the
    root (``eps_inside_sqrt=False``), ``centered`` (G − ḡ² with ḡ the mean gradient, state
    ``grad_avg``), ``momentum`` μ (b ← μ b + g/√…; θ ← θ − α b, state ``momentum_buffer``).
    ``torch.optim.RMSprop(lr, alpha=a, eps=e)`` = ``RMSprop(lr, beta=a, eps=e, eps_inside_sqrt=False)``.
    """

    _rule = _RmspropRule

    def __init__(self, params, lr: LR = 1e-3, beta: float = 0.9, eps: float = 1e-8,
                 eps_inside_sqrt: bool = True, momentum: float = 0.0, centered: bool = False,
                 **common: Any) -> None:
        super().__init__(params, lr=lr, beta=beta, eps=eps, eps_inside_sqrt=eps_inside_sqrt,
                         momentum=momentum, centered=centered, **common)


class AdaDelta(Optimizer):
    r"""AdaDelta (1.13–1.14; Zeiler 2012).

    .. math::

        G_t = \rho G_{t-1} + (1-\rho)\, g_t\odot g_t,\quad
        \Delta\theta_t = -\frac{\sqrt{\Delta X^2_{t-1} + \epsilon}}{\sqrt{G_t + \epsilon}}\, g_t
        \quad (1.14),\quad
        \Delta X^2_t = \rho\,\Delta X^2_{t-1} + (1-\rho)\,\Delta\theta_t\odot\Delta\theta_t \quad (1.13)

    and θ_t = θ_{t−1} + α·Δθ_t with α = ``lr`` = 1 (the chapter's rule has no α; torch's
    ``lr`` factor). ρ ``rho`` (0.9; the chapter's β₁, used for both averages as in Zeiler's
    paper and torch), ε ``eps`` (1e-6). State: ``square_avg`` (G), ``acc_delta`` (ΔX²).
    Identical to ``torch.optim.Adadelta``.
    """

    _rule = _AdadeltaRule

    def __init__(self, params, lr: LR = 1.0, rho: float = 0.9, eps: float = 1e-6, **common: Any) -> None:
        super().__init__(params, lr=lr, rho=rho, eps=eps, **common)


class Adam(Optimizer):
    r"""Adam (1.19–1.23; Kingma and Ba 2015).

    .. math::

        M_t = \beta_1 M_{t-1} + (1-\beta_1) g_t \quad (1.19)\qquad
        G_t = \beta_2 G_{t-1} + (1-\beta_2)\, g_t\odot g_t \quad (1.20)

        \hat M_t = \frac{M_t}{1-\beta_1^t}\quad (1.21)\qquad
        \hat G_t = \frac{G_t}{1-\beta_2^t}\quad (1.22)\qquad
        \theta_t = \theta_{t-1} - \frac{\alpha}{\sqrt{\hat G_t + \epsilon}}\, \hat M_t \quad (1.23)

    Symbols → arguments: α ``lr`` (0.001; a schedule such as α₀/√t is a callable),
    β₁, β₂ ``betas`` (the chapter's (0.9, 0.99)), ε ``eps`` (1e-8), M state ``exp_avg``,
    G state ``exp_avg_sq``.

    .. warning:: ε placement. The chapter puts ε inside the root; torch (and the paper)
       outside: θ ← θ − α M̂/(√Ĝ + ε). Set ``eps_inside_sqrt=False`` for torch's.

    torch's ``torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=λ,
    amsgrad=..., maximize=...)`` = ``Adam(lr, betas=(0.9, 0.999), eps=1e-8,
    eps_inside_sqrt=False, weight_decay=λ, amsgrad=..., maximize=...)``. ``amsgrad``
    keeps max Ĝ (state ``max_exp_avg_sq``) as Reddi et al. 2018.
    """

    _rule = _AdamRule

    def __init__(self, params, lr: LR = 1e-3, betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8,
                 eps_inside_sqrt: bool = True, amsgrad: bool = False, **common: Any) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, eps_inside_sqrt=eps_inside_sqrt,
                         amsgrad=amsgrad, **common)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (1.64; Loshchilov and Hutter 2019).

    Before each Adam step (see :class:`Adam`), θ ← (1 − w)·θ: the chapter's weight decay
    (1.64), with w = ``weight_decay`` (default 5e-4, the chapter's example value). Unlike
    L2 regularisation, the decay does not pass through Adam's per-coordinate scaling.
    torch's AdamW multiplies by α·λ instead: ``decay_scaled_by_lr=True``.
    ``torch.optim.AdamW(lr, weight_decay=0.01)`` = ``AdamW(lr, betas=(0.9, 0.999),
    weight_decay=0.01, decay_scaled_by_lr=True, eps_inside_sqrt=False)``.
    """

    def __init__(self, params, lr: LR = 1e-3, betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8,
                 weight_decay: float = 5e-4, decay_scaled_by_lr: bool = False, eps_inside_sqrt: bool = True,
                 amsgrad: bool = False, l2_weight_decay: float = 0.0, **common: Any) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, eps_inside_sqrt=eps_inside_sqrt, amsgrad=amsgrad,
                         decoupled_weight_decay=weight_decay, decay_scaled_by_lr=decay_scaled_by_lr,
                         weight_decay=l2_weight_decay, **common)


class Nadam(Optimizer):
    r"""Nadam: Adam with Nesterov momentum (chapter 1.2.3.3; Dozat 2016).

    With the momentum schedule μ_t = β₁(1 − ½·0.96^{tψ}) (ψ = ``momentum_decay``):

    .. math::

        M_t, G_t \text{ as Adam (1.19–1.20)},\qquad
        \theta_t = \theta_{t-1} - \frac{\alpha}{\sqrt{\hat G_t + \epsilon}} \left(
            \frac{(1-\mu_t)\, g_t}{1 - \prod_{i\le t}\mu_i}
            + \frac{\mu_{t+1} M_t}{1 - \prod_{i\le t+1}\mu_i} \right)

    Defaults are Dozat's and torch's (the chapter gives none): α = 0.002,
    β = (0.9, 0.999), ψ = 0.004, ε = 1e-8 inside the root as in the chapter's Adam
    (``eps_inside_sqrt=False`` for torch's ``NAdam``). State: ``exp_avg``, ``exp_avg_sq``
    and the scalar ``mu_product``. torch's ``decoupled_weight_decay=True`` is
    ``decoupled_weight_decay=λ, decay_scaled_by_lr=True`` here.
    """

    _rule = _NadamRule

    def __init__(self, params, lr: LR = 2e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 eps_inside_sqrt: bool = True, momentum_decay: float = 4e-3, **common: Any) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, eps_inside_sqrt=eps_inside_sqrt,
                         momentum_decay=momentum_decay, **common)

    def _initial_extra(self) -> dict[str, float]:
        return {"mu_product": 1.0}

    def _launch(self, gi, hp, grads, t, grad_scale, skip) -> bool:
        extra = self._group_extra[gi]
        applied, mu_product = _nadam_launch(hp, hp["params"], grads, self._bufs[gi], t, grad_scale, skip,
                                            extra["mu_product"])
        if applied:
            extra["mu_product"] = mu_product
        return applied


for _cls in (SGD, AdaGrad, RMSprop, AdaDelta, Adam, Nadam):
    _cls.__doc__ = (_cls.__doc__ or "") + _COMMON_DOC


# --------------------------------------------------------------------------------------
# Functional forms: the same kernels over the caller's own lists of arrays and state.
# Each updates params and the state buffers in place and returns True (False when
# skip_nonfinite found NaN/Inf, in which case nothing was modified). ``step`` is the
# 1-based index of this update. Formulas: the class of the same name.
# --------------------------------------------------------------------------------------
def _functional(rule: type[_Rule], hyper: dict[str, Any], step: int) -> dict[str, Any]:
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step must be an int >= 1 (the 1-based index of this update), got {step!r}")
    hp = _hparams(hyper, rule.defaults)
    rule.check(hp)
    return hp


def sgd(params, grads, momentum_buffers=None, *, step: int, grad_scale: float = 1.0,
        skip_nonfinite: bool = False, **hyper: Any) -> bool:
    """SGD / momentum / Nesterov (see :class:`SGD`); ``momentum_buffers`` needed when momentum > 0."""
    hp = _functional(_SgdRule, hyper, step)
    if (momentum_buffers is None) != (hp["momentum"] == 0):
        raise ValueError("momentum_buffers must be given exactly when momentum > 0")
    return _sgd_launch(hp, params, grads, (momentum_buffers,), int(step), grad_scale, skip_nonfinite)


def adagrad(params, grads, sum, *, step: int, grad_scale: float = 1.0, skip_nonfinite: bool = False,
            **hyper: Any) -> bool:
    """AdaGrad (see :class:`AdaGrad`); ``sum`` is G."""
    hp = _functional(_AdagradRule, hyper, step)
    return _adagrad_launch(hp, params, grads, (sum,), int(step), grad_scale, skip_nonfinite)


def rmsprop(params, grads, square_avg, momentum_buffer=None, grad_avg=None, *, step: int,
            grad_scale: float = 1.0, skip_nonfinite: bool = False, **hyper: Any) -> bool:
    """RMSprop (see :class:`RMSprop`); the optional buffers go with ``momentum`` > 0 and ``centered``."""
    hp = _functional(_RmspropRule, hyper, step)
    if (momentum_buffer is None) != (hp["momentum"] == 0):
        raise ValueError("momentum_buffer must be given exactly when momentum > 0")
    if (grad_avg is None) == bool(hp["centered"]):
        raise ValueError("grad_avg must be given exactly when centered=True")
    return _rmsprop_launch(hp, params, grads, (square_avg, momentum_buffer, grad_avg), int(step), grad_scale,
                           skip_nonfinite)


def adadelta(params, grads, square_avg, acc_delta, *, step: int, grad_scale: float = 1.0,
             skip_nonfinite: bool = False, **hyper: Any) -> bool:
    """AdaDelta (see :class:`AdaDelta`)."""
    hp = _functional(_AdadeltaRule, hyper, step)
    return _adadelta_launch(hp, params, grads, (square_avg, acc_delta), int(step), grad_scale, skip_nonfinite)


def adam(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step: int, grad_scale: float = 1.0,
         skip_nonfinite: bool = False, **hyper: Any) -> bool:
    """Adam / AdamW (see :class:`Adam`, :class:`AdamW`: AdamW is ``decoupled_weight_decay=w``).

    ``max_exp_avg_sq`` is given exactly when ``amsgrad=True``.
    """
    hp = _functional(_AdamRule, hyper, step)
    if (max_exp_avg_sq is None) == bool(hp["amsgrad"]):
        raise ValueError("max_exp_avg_sq must be given exactly when amsgrad=True")
    return _adam_launch(hp, params, grads, (exp_avg, exp_avg_sq, max_exp_avg_sq), int(step), grad_scale,
                        skip_nonfinite)


def nadam(params, grads, exp_avg, exp_avg_sq, *, step: int, mu_product: float, grad_scale: float = 1.0,
          skip_nonfinite: bool = False, **hyper: Any) -> tuple[bool, float]:
    """Nadam (see :class:`Nadam`). ``mu_product`` is Π_{i<t} μ_i (1.0 before the first step);
    returns (applied, the product to pass next time)."""
    hp = _functional(_NadamRule, hyper, step)
    applied, new_product = _nadam_launch(hp, params, grads, (exp_avg, exp_avg_sq), int(step), grad_scale,
                                         skip_nonfinite, float(mu_product))
    return applied, (new_product if applied else float(mu_product))
