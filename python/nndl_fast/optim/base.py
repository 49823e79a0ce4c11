r"""What every update rule shares: the gradient terms, the rule interface, the Optimizer
base class and the builder of the functional forms.

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

These cross into the kernel as one record of named numbers, ``terms`` (the C++ GradTerms);
each rule's own coefficients cross as another, ``coeffs`` (AdamCoeffs, ...), built by the
rule's module: ``_core.adam_step(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq,
terms, coeffs, skip_nonfinite)`` with ``coeffs = {"beta1": ..., "c_m": ..., ...}``. The
binding reads each field by name and refuses a missing or unknown one. Per-tensor clipping adds
``terms["tensor_scale"]``: one float64 factor of the scale per item of grads.
"""

from __future__ import annotations

import copy
import itertools
import math
import operator
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Union

import numpy as np

from .. import _checks, _core
from .. import clip as _clip

LR = Union[float, Callable[[int], float]]  # a number or a schedule of n, the updates already done

COMMON_DEFAULTS: dict[str, Any] = {
    "weight_decay": 0.0,
    "l1": 0.0,
    "l1_eps": 1e-8,
    "decoupled_weight_decay": 0.0,
    "decay_scaled_by_lr": False,
    "maximize": False,
}

COMMON_DOC = """
    Common options (:mod:`nndl_fast.optim.base`): ``weight_decay`` (L2, 1.59), ``l1``/``l1_eps``
    (smooth ℓ1, 1.62; elastic net 1.63 with ``weight_decay``), ``decoupled_weight_decay``
    and ``decay_scaled_by_lr`` (1.64), ``maximize``."""


# --------------------------------------------------------------------------------------
# Hyper-parameter checks shared by the rules (all through _checks)
# --------------------------------------------------------------------------------------
def check_lr(lr: Any) -> None:
    """A number α >= 0, or a callable of the step (evaluated, and checked, at each step)."""
    if not callable(lr):
        _checks.real("lr", lr, 0.0)


def lr_at(lr: Any, t: int) -> float:
    """α of step t (1-based): the number, or the schedule's value at n = t − 1 updates done
    (α₀ at the first step, as torch's schedulers), which must be a finite number >= 0."""
    if not callable(lr):
        return float(lr)
    return _checks.real(f"the lr schedule's value at n={t - 1} (step {t})", lr(t - 1), 0.0)


def check_betas(betas: Any) -> None:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    _checks.real("betas[0]", betas[0], 0.0, 1.0, hi_open=True)
    _checks.real("betas[1]", betas[1], 0.0, 1.0, hi_open=True)


def check_common(hp: Mapping[str, Any]) -> None:
    check_lr(hp["lr"])
    _checks.real("weight_decay", hp["weight_decay"], 0.0)
    _checks.real("l1", hp["l1"], 0.0)
    _checks.real("l1_eps", hp["l1_eps"], 0.0, lo_open=True)
    _checks.real("decoupled_weight_decay", hp["decoupled_weight_decay"], 0.0, 1.0)
    _checks.flag("maximize", hp["maximize"])
    _checks.flag("decay_scaled_by_lr", hp["decay_scaled_by_lr"])


def eps_split(eps: float, inside: bool) -> tuple[float, float]:
    """(ε inside the root, ε outside): the chapter's sqrt(G + ε) or torch's sqrt(G) + ε."""
    return (eps, 0.0) if inside else (0.0, eps)


def grad_terms(hp: Mapping[str, Any], lr: float, grad_scale: float) -> dict[str, float]:
    """The module docstring's s, λ₂, λ₁, ε₁ and d, named as the kernel's GradTerms."""
    scale = -grad_scale if hp["maximize"] else grad_scale
    w = hp["decoupled_weight_decay"]
    decay = 1.0 - (lr * w if hp["decay_scaled_by_lr"] else w)
    return {
        "scale": float(scale),
        "l2": float(hp["weight_decay"]),
        "l1": float(hp["l1"]),
        "l1_eps": float(hp["l1_eps"]),
        "decay": decay,
    }


class _Unset:
    """The default of an option that ``convention=`` decides (the preset's value unless given)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:  # one object, also after pickling
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "unset"

    def __reduce__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def hparams(kwargs: Mapping[str, Any], rule: Rule) -> dict[str, Any]:
    """The hyper-parameters: the rule's defaults, then its ``convention`` preset, then the options
    given (an option left ``UNSET`` takes the preset's value)."""
    unknown = set(kwargs) - set(rule.defaults) - set(COMMON_DEFAULTS)
    if unknown:
        raise TypeError(f"unexpected hyper-parameter(s): {', '.join(sorted(unknown))}")
    given = {k: v for k, v in kwargs.items() if v is not UNSET}
    hp = {**COMMON_DEFAULTS, **rule.defaults}
    if "convention" in rule.defaults:
        convention = _checks.convention(given.get("convention", rule.defaults["convention"]), tuple(rule.presets))
        hp.update(rule.presets[convention])
    hp.update(given)
    return hp


# --------------------------------------------------------------------------------------
# The rule interface: one subclass per rule, in the rule's module
# --------------------------------------------------------------------------------------
class Rule:
    """A rule's defaults, checks, state buffers, coefficients and kernel.

    ``state`` names the buffers in the kernel's order; ``needs`` says, for each optional
    one, which hyper-parameter setting needs it. ``scalars`` is scalar state with its value
    before the first step (Nadam's ``mu_product``). The launch is the same for every rule:
    ``kernel(params, grads, *buffers, terms, coeffs, skip_nonfinite)`` (``pad`` fills the
    kernel's buffer slots the rule never uses: Nadam runs Adam's kernel without amsgrad).
    """

    name: str
    defaults: dict[str, Any]
    presets: dict[str, dict[str, Any]] = {"chapter": {}}  # convention -> the defaults it changes
    variant_options: tuple[str, ...] = ()  # the options ``variant`` reads
    state: tuple[str, ...]
    needs: dict[str, str] = {}
    scalars: dict[str, float] = {}
    pad: tuple[None, ...] = ()

    def check(self, hp: Mapping[str, Any]) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def buffers(self, hp: Mapping[str, Any]) -> tuple[str | None, ...]:
        """The state buffers the kernel takes with these hyper-parameters (None: absent)."""
        return self.state

    def variant(self, hp: Mapping[str, Any]) -> Rule:
        """The rule whose ``coefficients`` compute these hyper-parameters' formula: this one, or a
        subclass that also computes the peers' variants (so the default path has no branch for
        them). A variant rule answers itself for any hyper-parameters."""
        return self

    def initial(self, name: str, hp: Mapping[str, Any]) -> float:
        return 0.0

    def step_lr(self, hp: Mapping[str, Any], t: int, lr: float) -> float:
        """The learning rate of step t given α_t (AdaGrad's lr_decay changes it)."""
        return lr

    def constants(self, hp: Mapping[str, Any]) -> Any:
        """What ``coefficients`` reads of the hyper-parameters, prepared once per checked group
        (the default: the hyper-parameters themselves)."""
        return hp

    def coefficients(
        self, k: Any, t: int, lr: float, scalars: Mapping[str, float]
    ) -> tuple[Any, dict[str, float]]:  # pragma: no cover
        """(the kernel's coefficients by name, the scalar state after this step); ``k`` is
        ``constants(hp)``."""
        raise NotImplementedError

    def check_scalar(self, where: str, name: str, value: Any) -> float:
        """A saved or passed-in value of the scalar state ``name``, checked."""
        return _checks.real(where, value)

    def kernel(self, *args: Any, **kwargs: Any) -> int:  # pragma: no cover - overridden
        """0: skipped (a non-finite gradient); 1: applied; 2: applied, a None grad left a tensor out."""
        raise NotImplementedError

    def launch(self, params, grads, bufs, terms, coeffs, skip: bool) -> bool:
        return bool(self.kernel(params, grads, *bufs, *self.pad, terms, coeffs, skip))


def _plan(rule: Rule, hp: Mapping[str, Any], k: Any, t: int, scalars: Mapping[str, float]) -> tuple[float, Any, dict]:
    """Everything of step t but the gradient scale, computed (and checked) before any kernel
    runs; ``k`` is ``rule.constants(hp)``."""
    lr = hp["lr"]
    lr = rule.step_lr(hp, t, lr_at(lr, t) if callable(lr) else float(lr))
    coeffs, new_scalars = rule.coefficients(k, t, lr, scalars)
    return lr, coeffs, new_scalars


def _check_per_tensor(clip_per_tensor: Any, max_norm: Any) -> bool:
    """step's clip_per_tensor: a bool, True only with a max_norm."""
    per_tensor = _checks.flag("clip_per_tensor", clip_per_tensor)
    if per_tensor and max_norm is None:
        raise ValueError("clip_per_tensor=True needs max_norm, the bound of each gradient's norm")
    return per_tensor


def _grad_scale(grad_scale: Any, skip: bool) -> float | None:
    """The gradient scale as a float; None when it is NaN or ±inf and skip_nonfinite skips the step."""
    try:
        return _checks.real("grad_scale", grad_scale)
    except ValueError:  # without bounds, only a non-finite value
        if skip:
            return None
        raise


# --------------------------------------------------------------------------------------
# The optimizer base class
# --------------------------------------------------------------------------------------
def _as_array(x: Any) -> Any:
    """A torch CPU tensor as a zero-copy NumPy view (the arrays themselves are checked in C++)."""
    if not isinstance(x, np.ndarray) and hasattr(x, "detach") and hasattr(x, "numpy"):
        return x.detach().numpy()
    return x


class _TrackedDict(dict):
    """A dict that counts its edits in a shared counter, so that ``step`` re-reads the state
    lists only after a buffer was replaced or removed (``Optimizer.state`` and each of its
    entries are such dicts; the arrays themselves are updated in place by the kernels)."""

    def _touch(self) -> None:
        edits = getattr(self, "_edits", None)  # absent while pickle restores the items
        if edits is not None:
            edits[0] += 1

    def __setitem__(self, key: Any, value: Any) -> None:
        self._touch()
        if isinstance(value, dict) and not isinstance(value, _TrackedDict) and hasattr(self, "_edits"):
            value = _tracked(value, self._edits)  # a parameter's new state dict is tracked too
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self._touch()
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self._touch()
        return super().pop(*args)

    def popitem(self) -> Any:
        self._touch()
        return super().popitem()

    def clear(self) -> None:
        self._touch()
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._touch()
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._touch()
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, other: Any) -> _TrackedDict:  # type: ignore[misc,override]
        self.update(other)
        return self


def _tracked(d: Mapping[Any, Any], edits: list[int]) -> _TrackedDict:
    t = _TrackedDict()
    t._edits = edits  # type: ignore[attr-defined]
    for k, v in d.items():
        t[k] = v
    return t


def _same_lists(hp: Mapping[str, Any], lists: tuple[tuple[str, list[Any]], ...]) -> bool:
    """The list values of a checked group still hold the same objects, item for item."""
    for k, saved in lists:
        now = hp[k]
        if len(now) != len(saved) or any(a is not b for a, b in zip(now, saved)):
            return False
    return True


def _has_none(grads: Iterable[Any]) -> bool:
    return any(map(operator.is_, grads, itertools.repeat(None)))  # (not `None in grads`: ndarray ==)


def _only(grads: Sequence[Any], members: list[int]) -> list[Any]:
    """grads with None wherever a parameter is not in members (left out of this launch)."""
    out: list[Any] = [None] * len(grads)
    for k in members:
        out[k] = grads[k]
    return out


class Optimizer:
    """Base class: parameter groups, state, ``step``, ``state_dict``.

    ``params`` is a list of arrays, or a list of dicts ``{"params": [...], **hyper}``
    whose hyper-parameters override the constructor's for that group (torch's param
    groups). ``step(grads)`` takes the gradients aligned with the parameters, flattened
    over the groups in order. State buffers are created at construction, as zeros (or the
    rule's initial value) of each parameter's shape and dtype, and are exposed as
    ``optimizer.state[i][name]`` for the i-th parameter.

    Edits between steps: a group's hyper-parameters (``lr``, ``betas``, ...) may be changed
    in ``param_groups``, as with torch; every step checks them all again, and evaluates every
    schedule, before any kernel runs. A buffer in ``state`` may be replaced by another array
    of the parameter's shape and dtype: ``step`` always uses what ``state`` holds.

    Threads: ``step``, ``add_param_group``, ``state_dict`` and ``load_state_dict`` hold the
    optimizer's lock, so one optimizer shared by several threads applies every step, one
    after the other (the kernels themselves run in parallel).
    """

    _rule: Rule

    def __init__(self, params: Iterable[Any], **hyper: Any) -> None:
        self._given = {k: v for k, v in hyper.items() if v is not UNSET}  # a group's convention= re-resolves
        self.defaults = hparams(hyper, self._rule)
        self._rule.check(self.defaults)
        self.param_groups: list[dict[str, Any]] = []
        self._edits = [0]  # edits of state (see _TrackedDict)
        self.state: dict[int, dict[str, np.ndarray]] = _tracked({}, self._edits)
        self._bufs: list[tuple[list[Any] | None, ...]] = []  # the state lists each group's kernel takes
        self._bufs_seen: list[tuple[Any, int]] = []  # (state, edits) when _bufs[gi] was read
        self._group_steps: list[int] = []  # completed steps, per group
        self._group_scalars: list[dict[str, float]] = []  # scalar state (Nadam's μ product)
        # Per-parameter counts of a group once a None grad made them differ (else None): see _advance
        self._tensor_steps: list[list[int] | None] = []
        self._tensor_scalars: list[list[dict[str, float]] | None] = []
        self._buf_names: list[tuple[str | None, ...]] = []  # the buffers each group was built with
        self._counts: list[int] = []  # parameters per group
        self._ranges: list[range] = []  # the indices in state of each group's parameters
        self._checked_hp: list[tuple[Any, ...]] = []  # see _check_group
        self._checked_lists: list[tuple[tuple[str, list[Any]], ...]] = []
        self._terms_cache: list[tuple[float, float, dict[str, float]] | None] = []  # (lr, scale, terms)
        self._consts: list[Any] = []  # rule.constants of each checked group
        # set by step(max_norm=...): the global norm, or with clip_per_tensor one norm per gradient
        self.last_grad_norm: float | np.ndarray | None = None
        self._lock = threading.Lock()
        params = list(params)
        if not params:
            raise ValueError("params is an empty list")
        groups = params if isinstance(params[0], Mapping) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # -- groups ----------------------------------------------------------------------
    def _list_name(self, gi: int, name: str, groups: int) -> str:
        return name if groups == 1 else f"param_groups[{gi}].{name}"

    def _names_for(self, n: int) -> list[tuple[str, str, tuple[str, ...]]]:
        """(params, grads, state lists) names of each of n groups in error messages, built once."""
        cached = self.__dict__.get("_names_cache")
        if cached is None or len(cached) != n:
            cached = [
                (
                    self._list_name(gi, "params", n),
                    self._list_name(gi, "grads", n),
                    tuple(self._list_name(gi, s, n) for s in self._rule.state),
                )
                for gi in range(n)
            ]
            self._names_cache = cached
        return cached

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Add a group ``{"params": [...], **hyper}``; missing hyper-parameters take the defaults.

        Its parameters may not share memory with each other nor with another group's.
        """
        if not isinstance(param_group, Mapping) or "params" not in param_group:
            raise TypeError("param_group must be a dict with a 'params' list")
        raw = param_group["params"]
        raw = [raw] if isinstance(raw, np.ndarray) else list(raw)
        arrays = [_as_array(p) for p in raw]
        own = {k: v for k, v in param_group.items() if k != "params"}
        unknown = set(own) - set(self.defaults)
        if unknown:
            raise TypeError(f"unexpected hyper-parameter(s) in param_group: {', '.join(sorted(unknown))}")
        if own.get("convention", UNSET) is not UNSET:  # the group's own preset, under the options given
            hp = hparams({**self._given, **own}, self._rule)
        else:
            hp = {**self.defaults, **{k: v for k, v in own.items() if v is not UNSET}}
        self._rule.check(hp)
        with self._lock:
            groups = [g["params"] for g in self.param_groups] + [arrays]
            _core.check_step_groups(
                [[(self._list_name(gi, "params", len(groups)), g, True)] for gi, g in enumerate(groups)]
            )
            self._use_rule(self._rule.variant(hp))  # once everything is checked
            hp["params"] = arrays
            first_index = sum(self._counts)
            self.param_groups.append(hp)
            self._group_steps.append(0)
            self._group_scalars.append(dict(self._rule.scalars))
            self._tensor_steps.append(None)
            self._tensor_scalars.append(None)
            self._buf_names.append(self._rule.buffers(hp))
            self._counts.append(len(arrays))
            self._ranges.append(range(first_index, first_index + len(arrays)))
            self._checked_hp.append(())
            self._checked_lists.append(())
            self._terms_cache.append(None)
            self._consts.append(None)
            self._bufs.append(())
            self._bufs_seen.append((None, -1))
            for k, p in enumerate(arrays):
                self.state[first_index + k] = {
                    name: np.full_like(p, self._rule.initial(name, hp))
                    for name in self._rule.buffers(hp)
                    if name is not None
                }

    def _group_indices(self, gi: int) -> range:
        return self._ranges[gi]

    def _use_rule(self, rule: Rule) -> None:
        """Step with ``rule`` (a variant of the class's rule a group's formula options need) from
        now on; the groups' checked constants are rebuilt by it at the next step."""
        if type(rule) is not type(self._rule):
            self._rule = rule
            self._checked_hp = [() for _ in self._checked_hp]
            self._checked_lists = [() for _ in self._checked_lists]
            self._consts = [None for _ in self._consts]

    def _check_group(self, gi: int, hp: Mapping[str, Any]) -> None:
        """Check group gi's hyper-parameters and remember the objects that passed (a list is
        copied, so that an edit in place shows), so that a step re-checks only what changed."""
        try:
            if not isinstance(hp, dict):
                raise TypeError(f"must be a dict, got {type(hp).__name__}")
            missing = sorted(set(self.defaults) - set(hp))
            if missing:
                raise ValueError(f"lacks the hyper-parameter(s) {missing}")
            self._rule.check(hp)
            if not isinstance(hp["params"], list):
                raise TypeError(f"'params' must stay a list, got {type(hp['params']).__name__}")
        except (TypeError, ValueError) as e:
            raise type(e)(f"param_groups[{gi}]: {e}") from None
        if self._rule.buffers(hp) != self._buf_names[gi]:
            raise ValueError(
                f"param_groups[{gi}]: a hyper-parameter that decides the state buffers (momentum, "
                "amsgrad, centered) changed after construction; build a new optimizer instead"
            )
        if type(self._rule.variant(hp)) is not type(self._rule):
            raise ValueError(
                f"param_groups[{gi}]: {', '.join(self._rule.variant_options)} chose another formula after "
                "construction; build a new optimizer with it instead"
            )
        # The items that passed, compared by identity at the next step (a list value, but the
        # parameters', is compared by value: an edit in place must show).
        self._checked_hp[gi] = tuple(x for kv in hp.items() for x in kv)
        self._checked_lists[gi] = tuple((k, list(v)) for k, v in hp.items() if type(v) is list and k != "params")
        self._consts[gi] = self._rule.constants(hp)
        self._terms_cache[gi] = None

    def _checked_group(self, gi: int) -> tuple[dict[str, Any], tuple[list[Any] | None, ...]]:
        """Group gi's hyper-parameters, checked again if edited since the last step, and the
        state lists its kernel takes, read from ``state`` (a buffer may have been replaced)."""
        hp = self.param_groups[gi]
        lists = self._checked_lists[gi]
        if not (_core.same_items(hp, self._checked_hp[gi]) and (not lists or _same_lists(hp, lists))):
            self._check_group(gi, hp)
        idx = self._ranges[gi]
        if len(hp["params"]) != len(idx):
            raise ValueError(
                f"param_groups[{gi}]: 'params' must stay the list of {len(idx)} arrays it was "
                "built with; use add_param_group to add parameters"
            )
        state = self.state
        seen_state, seen_edits = self._bufs_seen[gi]
        if seen_state is state and seen_edits == self._edits[0]:
            return hp, self._bufs[gi]
        try:
            bufs = tuple(None if name is None else [state[i][name] for i in idx] for name in self._buf_names[gi])
        except (KeyError, TypeError):
            for name in self._buf_names[gi]:
                for i in idx:
                    if name is not None and (not isinstance(state.get(i), dict) or name not in state[i]):
                        raise ValueError(f"state[{i}] has no {name!r} buffer, which the rule needs") from None
            raise
        if isinstance(state, _TrackedDict):  # otherwise (a dict set by the caller) read at every step
            self._bufs[gi], self._bufs_seen[gi] = bufs, (state, self._edits[0])
        return hp, bufs

    # -- step ------------------------------------------------------------------------
    def step(
        self,
        grads: Sequence[np.ndarray],
        *,
        grad_scale: float = 1.0,
        max_norm: float | None = None,
        norm_type: float | str = 2.0,
        convention: str = "chapter",
        clip_per_tensor: bool = False,
        skip_nonfinite: bool = False,
    ) -> bool:
        """Apply one update with ``grads`` (aligned with the parameters).

        A grad of None (a frozen or unused parameter) leaves that parameter out: its value,
        state and step count do not change (torch's rule; never a zero-fill, which would let
        momentum move it). Each parameter counts its own steps (``state_dict()["state"][i]
        ["step"]``), so a later step uses each one's own t.

        ``grad_scale`` multiplies every gradient inside the same pass (loss scaling, a clip
        coefficient). ``max_norm`` clips by the global norm first (1.25; see
        :func:`nndl_fast.clip.clip_grad_norm_` for ``norm_type`` and ``convention``), fused:
        one read-only pass computes ‖grad_scale·g‖, and the clip coefficient joins
        grad_scale inside the update pass, so the gradients are never written. The norm
        is kept in ``last_grad_norm``. With ``skip_nonfinite``, a NaN/Inf anywhere (in a
        gradient or in ``grad_scale``) skips the whole step and returns False (with
        ``max_norm`` the norm pass detects it at no extra cost).

        ``clip_per_tensor=True`` (with ``max_norm`` > 0) clips each gradient by its own norm
        instead, as Keras's ``clipnorm``: gₖ ← cₖ·gₖ with cₖ the coefficient of
        ‖grad_scale·gₖ‖ (``convention="chapter"``: cₖ = min(1, b/‖gₖ‖), Keras's
        gₖ·b/max(‖gₖ‖, b) up to rounding, and cₖ = 1 at ‖gₖ‖ = 0 as Keras leaves a zero
        gradient alone; ``"torch"``: min(1, b/(‖gₖ‖ + 1e-6)), a loop of
        ``torch.nn.utils.clip_grad_norm_`` over the tensors one by one). Fused the same way:
        one read-only pass computes every tensor's norm in one call, and each tensor's
        coefficient joins grad_scale inside the update pass. ``last_grad_norm`` is then a
        float64 array with one norm per gradient (NaN for a None grad), and a non-finite norm
        of any tensor counts as a NaN/Inf for ``skip_nonfinite``.

        Bad input raises before anything is modified: every group's hyper-parameters and
        schedule, every array of every group, then the kernels run.
        """
        with self._lock:
            if clip_per_tensor is False:  # the common case: nothing more to check
                return self._step(grads, grad_scale, max_norm, norm_type, convention, skip_nonfinite)
            per_tensor = _check_per_tensor(clip_per_tensor, max_norm)
            return self._step(grads, grad_scale, max_norm, norm_type, convention, skip_nonfinite, per_tensor)

    def _step(self, grads, grad_scale, max_norm, norm_type, convention, skip_nonfinite, per_tensor=False) -> bool:
        skip = skip_nonfinite if type(skip_nonfinite) is bool else _checks.flag("skip_nonfinite", skip_nonfinite)
        if max_norm is not None:
            if per_tensor:  # Keras's clipnorm=0 means no clipping: refused rather than read as "clip to 0"
                max_norm = _checks.real("max_norm", max_norm, 0.0, lo_open=True, finite=False)
            else:
                max_norm = _clip.check_max_norm(max_norm)
            norm_type = _clip.check_norm_type(norm_type)
            convention = _checks.convention(convention)
        if type(grad_scale) is float and math.isfinite(grad_scale):  # the common case, checked inline
            scale: float | None = grad_scale
        else:
            scale = _grad_scale(grad_scale, skip)
        groups = self.param_groups
        if len(groups) != len(self._counts):
            raise ValueError(
                f"param_groups has {len(groups)} groups, the optimizer {len(self._counts)}: "
                "use add_param_group to add one"
            )
        rule = self._rule
        if len(groups) == 1 and max_norm is None and self._tensor_steps[0] is None:
            # one kernel call, which checks every array first
            hp, bufs = self._checked_group(0)
            lr, coeffs, scalars = _plan(rule, hp, self._consts[0], self._group_steps[0] + 1, self._group_scalars[0])
            if scale is None:
                return False  # skipped, as a non-finite gradient is
            applied = rule.kernel(hp["params"], grads, *bufs, *rule.pad, self._terms(0, hp, lr, scale), coeffs, skip)
            if not applied:
                return False  # skipped: a non-finite gradient
            if applied == 2:  # a None grad left its parameter out: that parameter's count stays
                self._advance(0, grads, None, self._group_steps[0] + 1, scalars)
                return True
            self._group_steps[0] += 1
            self._group_scalars[0] = scalars
            return True
        checked = [self._checked_group(gi) for gi in range(len(groups))]
        per_group = self._split(grads)
        # One launch per group, or per distinct step count where None grads made them differ.
        launches = []
        for gi, ((hp, _), g) in enumerate(zip(checked, per_group)):
            classes = self._classes(gi, g)
            for members, t, scalars in classes:
                plan = self._plan(gi, hp, t, scalars, len(classes) > 1)
                launches.append((gi, members, t, g if members is None else _only(g, members), plan))
        if scale is None:  # a non-finite grad_scale: skipped, as a non-finite gradient is
            return False
        # Several passes (groups, or the norm pass first): check every array of every launch
        # first (overlap across groups included), so that a rejected call changes nothing.
        names = self._names_for(len(groups))
        _core.check_step_groups(
            [
                [
                    (names[gi][0], checked[gi][0]["params"], True),
                    (names[gi][1], g, False, True),
                    *zip(names[gi][2], checked[gi][1], (True,) * len(checked[gi][1])),
                ]
                for gi, _, _, g, _ in launches
            ]
        )
        tensor_scale = None
        if per_tensor:
            norms, tensor_scale, finite = _core.clip_tensor_coefficients(
                per_group, norm_type, max_norm, convention, scale
            )
            self.last_grad_norm = norms
            if not finite and skip:
                return False
        elif max_norm is not None:
            total = _clip.global_norm_of_groups([[x for x in g if x is not None] for g in per_group], norm_type)
            total *= abs(scale)
            self.last_grad_norm = total
            if not math.isfinite(total) and skip:
                return False
            scale = scale * _clip.clip_coefficient(total, max_norm, convention=convention)
        elif skip and any(_core.any_nonfinite(g) for g in per_group):
            return False
        for gi, members, t, g, (lr, coeffs, scalars) in launches:
            hp, bufs = checked[gi]
            terms = self._terms(gi, hp, lr, scale)
            if tensor_scale is not None:  # group gi's slice of the per-tensor factors, aligned with its grads
                r = self._ranges[gi]
                terms = {**terms, "tensor_scale": tensor_scale[r.start : r.stop]}
            rule.launch(hp["params"], g, bufs, terms, coeffs, False)
            self._advance(gi, g, members, t, scalars)
        return True

    def _plan(self, gi: int, hp: Mapping[str, Any], t: int, scalars: Mapping[str, float], copy_: bool) -> Any:
        """_plan for group gi at step t; ``copy_``: the coefficient record copied, for a group
        making several launches (a rule may rewrite one record per group at each plan)."""
        lr, coeffs, new_scalars = _plan(self._rule, hp, self._consts[gi], t, scalars)
        return lr, (dict(coeffs) if copy_ else coeffs), new_scalars

    def _terms(self, gi: int, hp: Mapping[str, Any], lr: float, scale: float) -> dict[str, float]:
        """grad_terms(hp, lr, scale), reused while group gi, lr and scale stay the same (the kernel
        only reads it); a zero scale is not cached, since 0.0 == -0.0."""
        cached = self._terms_cache[gi]
        if cached is not None and cached[0] == lr and cached[1] == scale and scale != 0.0:
            return cached[2]
        terms = grad_terms(hp, lr, scale)
        self._terms_cache[gi] = (lr, scale, terms)
        return terms

    # -- per-parameter step counts ---------------------------------------------------
    # A group's parameters share one step count (and scalar state) until a None grad leaves
    # one out of a step; then each keeps its own, as torch's state[p]["step"], and a step
    # makes one launch per distinct count, until the counts meet again.
    def _classes(self, gi: int, grads: Sequence[Any]) -> list[tuple[list[int] | None, int, dict[str, float]]]:
        """(the parameters it steps, None for every one with a grad; 1-based t; scalar state
        before the step) of each launch of group gi."""
        steps, scalars = self._tensor_steps[gi], self._tensor_scalars[gi]
        if steps is None or scalars is None:
            return [(None, self._group_steps[gi] + 1, self._group_scalars[gi])]
        classes: dict[tuple[int, tuple[tuple[str, float], ...]], list[int]] = {}
        for k, g in enumerate(grads):
            if g is not None:
                classes.setdefault((steps[k], tuple(scalars[k].items())), []).append(k)
        return [(ks, done + 1, dict(sc)) for (done, sc), ks in sorted(classes.items())]

    def _advance(self, gi: int, grads: Sequence[Any], members: list[int] | None, t: int, scalars: dict) -> None:
        """Count step t for the parameters of group gi that it updated (members, or every one
        whose grad is not None)."""
        if self._tensor_steps[gi] is None:
            if not _has_none(grads):
                self._group_steps[gi], self._group_scalars[gi] = t, scalars
                return
            n = self._counts[gi]
            self._tensor_steps[gi] = [self._group_steps[gi]] * n
            self._tensor_scalars[gi] = [dict(self._group_scalars[gi]) for _ in range(n)]
        steps, per = self._tensor_steps[gi], self._tensor_scalars[gi]
        assert steps is not None and per is not None
        for k in members if members is not None else (k for k, g in enumerate(grads) if g is not None):
            steps[k], per[k] = t, scalars
        if all(s == steps[0] for s in steps) and all(p == per[0] for p in per):  # met again: one count
            self._group_steps[gi], self._group_scalars[gi] = steps[0], per[0]
            self._tensor_steps[gi] = self._tensor_scalars[gi] = None

    def _count_of(self, gi: int, k: int) -> tuple[int, dict[str, float]]:
        """(completed steps, scalar state) of parameter k of group gi."""
        steps, per = self._tensor_steps[gi], self._tensor_scalars[gi]
        if steps is None or per is None:
            return self._group_steps[gi], self._group_scalars[gi]
        return steps[k], per[k]

    def _split(self, grads: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        if not isinstance(grads, (list, tuple)):
            raise TypeError(f"grads must be a list of arrays, got {type(grads).__name__}")
        total = sum(self._counts)
        if len(grads) != total:
            raise ValueError(f"grads has {len(grads)} arrays but the optimizer has {total} parameters")
        out, start = [], 0
        for n in self._counts:
            out.append(list(grads[start : start + n]))
            start += n
        return out

    # -- state -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A deep copy: ``{"state": {i: {"step": t, name: array}}, "param_groups": [...]}``.

        Parameters appear by index, as in torch. Learning-rate callables are kept as
        they are (they must be picklable to pickle the dict).
        """
        with self._lock:
            state: dict[int, dict[str, Any]] = {}
            groups = []
            for gi, g in enumerate(self.param_groups):
                idx = list(self._group_indices(gi))
                for j, i in enumerate(idx):
                    step, scalars = self._count_of(gi, j)
                    state[i] = {
                        "step": step,
                        **scalars,
                        **{k: np.array(v, copy=True) for k, v in self.state[i].items()},
                    }
                groups.append({**{k: copy.copy(v) for k, v in g.items() if k != "params"}, "params": idx})
            return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; the resumed run is bitwise identical to an uninterrupted one.

        Everything is checked before anything is changed: group count and sizes,
        hyper-parameters, buffer names, shapes and dtypes, one step count (an int >= 0) per
        group and the rule's scalar state. Errors name the offending key.
        """
        with self._lock:
            self._load_state_dict(state_dict)

    def _load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        if set(state_dict) != {"state", "param_groups"}:
            raise ValueError("state_dict must be a dict with keys 'state' and 'param_groups'")
        groups, state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(groups, Sequence) or not isinstance(state, Mapping):
            raise TypeError("state_dict['param_groups'] must be a list and state_dict['state'] a dict")
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict['param_groups'] has {len(groups)} groups, the optimizer {len(self.param_groups)}"
            )
        new_groups, new_state, new_counts = [], {}, []
        for gi, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            where = f"state_dict['param_groups'][{gi}]"
            if not isinstance(saved, Mapping) or "params" not in saved:
                raise ValueError(f"{where} must be a dict with a 'params' list")
            idx = list(self._group_indices(gi))
            if len(saved["params"]) != len(idx):
                raise ValueError(
                    f"param group {gi} has {len(saved['params'])} params in state_dict, {len(idx)} in the optimizer"
                )
            hp = {k: v for k, v in saved.items() if k != "params"}
            if set(hp) != set(self.defaults):
                raise ValueError(f"{where} has hyper-parameters {sorted(hp)}, expected {sorted(self.defaults)}")
            try:
                self._rule.check(hp)
            except (TypeError, ValueError) as e:
                raise type(e)(f"{where}: {e}") from None
            names = [n for n in self._rule.buffers(hp) if n is not None]
            steps, scalars = [], []
            for own_i, saved_i in zip(idx, saved["params"]):
                entry = state.get(saved_i, state.get(str(saved_i)))
                key = f"state_dict['state'][{saved_i!r}]"
                if not isinstance(entry, Mapping):
                    raise ValueError(f"{key} is missing: state_dict has no state for parameter {saved_i}")
                p = mine["params"][own_i - idx[0]]
                bufs = {}
                for n in names:
                    if n not in entry:
                        raise ValueError(f"{key} lacks buffer {n!r}")
                    b = np.asarray(entry[n])
                    if b.shape != p.shape or b.dtype != p.dtype:
                        raise ValueError(
                            f"{key}[{n!r}] has shape {b.shape} and dtype {b.dtype}, "
                            f"the parameter {p.shape} and {p.dtype}"
                        )
                    bufs[n] = np.array(b, order="C", copy=True)
                for n in ("step", *self._rule.scalars):
                    if n not in entry:
                        raise ValueError(f"{key} lacks {n!r}")
                new_state[own_i] = bufs
                steps.append(_checks.integer(f"{key}['step']", entry["step"], 0))
                scalars.append({n: self._rule.check_scalar(f"{key}[{n!r}]", n, entry[n]) for n in self._rule.scalars})
            hp["params"] = mine["params"]
            new_groups.append(hp)
            new_counts.append((steps, scalars))  # per parameter: they differ after None grads
        self.param_groups, self.state = new_groups, _tracked(new_state, self._edits)
        for hp in new_groups:
            self._use_rule(self._rule.variant(hp))
        self._bufs_seen = [(None, -1) for _ in new_groups]
        self._group_steps = [steps[0] for steps, _ in new_counts]
        self._group_scalars = [scalars[0] for _, scalars in new_counts]
        uniform = [all(s == steps[0] for s in steps) and all(c == sc[0] for c in sc) for steps, sc in new_counts]
        self._tensor_steps = [None if u else steps for u, (steps, _) in zip(uniform, new_counts)]
        self._tensor_scalars = [None if u else sc for u, (_, sc) in zip(uniform, new_counts)]
        self._buf_names = [self._rule.buffers(hp) for hp in new_groups]
        self._checked_hp = [() for _ in new_groups]
        self._checked_lists = [() for _ in new_groups]
        self._terms_cache = [None for _ in new_groups]
        self._consts = [None for _ in new_groups]

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for gi, g in enumerate(self.param_groups):
            hp = ", ".join(f"{k}={v!r}" for k, v in g.items() if k != "params")
            lines.append(f"  group {gi}: {len(g['params'])} params, {hp}")
        return "\n".join(lines) + "\n)"


# --------------------------------------------------------------------------------------
# Functional forms: the same rule over the caller's own lists of arrays and state
# --------------------------------------------------------------------------------------
def functional(rule: Rule, cls_name: str) -> Callable[..., Any]:
    """``<rule>(params, grads, *state, step, [scalar state], grad_scale=1.0,
    skip_nonfinite=False, **hyper)``: one step of ``rule`` over the caller's lists.

    The state lists are the rule's buffers in order (each may also be passed by name);
    an optional one is given exactly when the hyper-parameters need it. Returns True
    (False when skip_nonfinite found NaN/Inf, and nothing was modified); a rule with scalar
    state (Nadam's ``mu_product``) returns ``(applied, *the scalar state to pass next time)``.
    """
    import inspect

    names = rule.state
    passed: dict[Any, tuple[dict[str, Any], tuple[str | None, ...], Rule]] = {}  # see checked()

    def checked(hyper: dict[str, Any]) -> tuple[dict[str, Any], tuple[str | None, ...], Rule]:
        """The hyper-parameters with defaults, checked, and the buffers they need; remembered by
        value and type (True == 1, but only 1 passes), so a loop that calls with the same ones
        checks them once."""
        key: Any
        try:
            key = tuple((k, type(v), tuple(map(type, v)) if type(v) is tuple else None, v) for k, v in hyper.items())
            hit = passed.get(key)
        except TypeError:  # an unhashable value (a list): checked at every call
            key = hit = None
        if hit is None:
            hp = hparams(hyper, rule)
            rule.check(hp)
            hit = (hp, rule.buffers(hp), rule.variant(hp))
            if key is not None:
                if len(passed) >= 64:
                    passed.clear()
                passed[key] = hit
        return hit

    def step_fn(params, grads, *state, step, grad_scale=1.0, skip_nonfinite=False, **hyper):
        if len(state) > len(names):
            raise TypeError(f"{rule.name}() takes {len(names)} state lists ({', '.join(names)}), got {len(state)}")
        bufs = list(state) + [None] * (len(names) - len(state))
        for j, name in enumerate(names):
            if name in hyper:
                if j < len(state):
                    raise TypeError(f"{rule.name}() got {name} both by position and by name")
                bufs[j] = hyper.pop(name)
        scalars = {}
        for name in rule.scalars:
            if name not in hyper:
                raise TypeError(
                    f"{rule.name}() needs the keyword argument {name} ({rule.scalars[name]!r} before the first step)"
                )
            scalars[name] = rule.check_scalar(name, name, hyper.pop(name))
        t = step if type(step) is int and step >= 1 else _checks.integer("step", step, 1)
        skip = skip_nonfinite if type(skip_nonfinite) is bool else _checks.flag("skip_nonfinite", skip_nonfinite)
        hp, needed, r = checked(hyper)
        for name, given, b in zip(names, needed, bufs):
            if (given is None) != (b is None):
                raise ValueError(f"{name} must be given exactly when {rule.needs[name]}")
        scale = grad_scale if type(grad_scale) is float and math.isfinite(grad_scale) else _grad_scale(grad_scale, skip)
        lr, coeffs, new_scalars = _plan(r, hp, r.constants(hp), t, scalars)
        if scale is None:
            return (False, *scalars.values()) if rule.scalars else False
        applied = r.launch(params, grads, bufs, grad_terms(hp, lr, scale), coeffs, skip)
        if rule.scalars:
            return (applied, *(new_scalars if applied else scalars).values())
        return applied

    params = [
        inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("grads", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    for name in names:
        default = None if name in rule.needs else inspect.Parameter.empty
        params.append(inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))
    params.append(inspect.Parameter("step", inspect.Parameter.KEYWORD_ONLY, annotation=int))
    params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=float) for n in rule.scalars]
    params += [
        inspect.Parameter("grad_scale", inspect.Parameter.KEYWORD_ONLY, default=1.0),
        inspect.Parameter("skip_nonfinite", inspect.Parameter.KEYWORD_ONLY, default=False),
        inspect.Parameter("hyper", inspect.Parameter.VAR_KEYWORD),
    ]
    step_fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    step_fn.__name__ = step_fn.__qualname__ = rule.name
    optional = ", ".join(f"``{n}`` when {w}" for n, w in rule.needs.items())
    step_fn.__doc__ = (
        f"{cls_name} (see :class:`{cls_name}`) over the caller's lists: ``step`` is the 1-based index of "
        f"this update; the state lists are {', '.join(f'``{n}``' for n in names)}"
        + (f" (given exactly as needed: {optional})" if optional else "")
        + "; hyper-parameters as the class. A grad of None leaves its tensor out (its parameter and "
        "state are neither read nor written). "
        "Updates in place and returns True (False when ``skip_nonfinite`` found NaN/Inf and nothing changed)"
        + (
            f"; returns ``(applied, {', '.join(rule.scalars)})`` instead, the value to pass next time"
            if rule.scalars
            else ""
        )
        + "."
    )
    return step_fn


def check_launches(rule: Rule, launches: Sequence[tuple[Any, Any, Sequence[Any]]]) -> None:
    """Check the arrays of several launches of ``rule`` at once, overlap across them included,
    updating nothing: each launch is (params, grads, state lists in the kernel's order, None
    for an absent one), a grad of None leaving its tensor out, as in the kernel. A caller that
    makes several kernel calls for one step (one per param group, or per step count) checks
    them all first, so that a rejected step changes nothing."""
    _core.check_step_groups(
        [
            [
                ("params", params, True),
                ("grads", grads, False, True),
                *((n, b, True) for n, b in zip(rule.state, bufs)),
            ]
            for params, grads, bufs in launches
        ]
    )
