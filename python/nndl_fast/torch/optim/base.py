r"""The base class of the torch optimizers: torch's ``Optimizer`` contract over our fused steps.

A subclass names the layer-1 rule it runs (:mod:`nndl_fast.optim`), maps a torch param group
to that rule's hyper-parameters (``_hp``) and checks torch's arguments by torch's names
(``_check``). Everything else is shared:

- ``step(closure=None)`` reads ``p.grad``; a parameter whose grad is None is skipped (no state
  change, no step count change). Each group is one kernel launch over all its tensors (one per
  distinct step count, when some parameters skipped steps).
- State is torch's, under torch's keys (``state[p]["step"]`` a 0-d tensor of torch's scalar
  dtype, ``"exp_avg"``, ...), created lazily at a parameter's first step, as torch does, so
  ``state_dict()``/``load_state_dict()`` move checkpoints to and from ``torch.optim``.
- The NumPy views the kernels take (of parameters and state) are built once and kept: they
  are rebuilt only when ``param_groups`` or ``state`` change (``add_param_group``,
  ``load_state_dict``, a state tensor replaced) or a parameter's ``data_ptr`` changes
  (``p.data = ...``). Only the gradients, new tensors at each backward, are handed over per
  step, as DLPack capsules (``torch.utils.dlpack.to_dlpack``: cheaper to make than ``.numpy()``).
  The step counts of a group live in one tensor, of which each ``state[p]["step"]`` is a 0-d
  view, so that counting a step is one operation instead of one per tensor.
- The update is in place, under the parameters' own storage, and bumps each updated
  parameter's autograd version counter as torch's in-place ops do: a graph that saved a
  parameter before the step raises at ``backward`` instead of using the new values.
- ``max_norm`` clips the gradients by their global norm inside the step (torch's coefficient
  max_norm/(‖g‖ + 1e-6), at most 1): one read-only pass for the norm, and the coefficient
  joins the update pass, the gradients themselves are never written. The norm is kept in
  ``last_grad_norm``. With ``clip_per_tensor=True`` each gradient is clipped by its own norm
  instead (a loop of torch's ``clip_grad_norm_`` over the tensors, or Keras's ``clipnorm``),
  fused the same way; ``last_grad_norm`` is then an array with one norm per parameter of
  ``param_groups`` (NaN where the grad is None).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
import torch.optim.optimizer as _optimizer_module
from torch.utils.dlpack import to_dlpack

from ... import _checks, _core
from ... import clip as _clip
from ...optim import base as _base

_profiler_enabled = torch._C._autograd._profiler_enabled  # what record_function itself asks first


def scalar_dtype() -> torch.dtype:
    """torch's dtype of the step count (torch.optim.optimizer._get_scalar_dtype, unfused)."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def check_impl(group: Mapping[str, Any]) -> None:
    """torch's implementation switches: foreach/fused None or a bool; no capturable/differentiable."""
    for key in ("foreach", "fused"):
        if key in group and group[key] is not None:
            _checks.flag(key, group[key])
    for key in ("capturable", "differentiable"):
        if key in group and _checks.flag(key, group[key]):
            raise ValueError(f"{key}=True is not supported: the fused CPU step is not {key}")


def check_nonneg(group: Mapping[str, Any], *names: str) -> None:
    """torch's ``0.0 <= x`` checks, by torch's argument names (NaN fails, as it does in torch)."""
    for name in names:
        _checks.real(name, group[name], 0.0)


def check_flags(group: Mapping[str, Any], *names: str) -> None:
    for name in names:
        _checks.flag(name, group[name])


def common(group: Mapping[str, Any], *, decoupled: bool = False) -> dict[str, Any]:
    """The layer-1 terms of a torch group: ``weight_decay`` as L2 (1.59) or, ``decoupled``, as
    torch's AdamW decay θ ← (1 − α·λ)θ (1.64 scaled by α), and ``maximize``."""
    wd = float(group["weight_decay"])
    return {
        **_base.COMMON_DEFAULTS,
        "weight_decay": 0.0 if decoupled else wd,
        "decoupled_weight_decay": wd if decoupled else 0.0,
        "decay_scaled_by_lr": decoupled,
        "maximize": group["maximize"],
    }


class _StateDict(dict):
    """One parameter's state: a dict that counts its edits in the optimizer's counter, so that a
    step re-reads the state only after a tensor was replaced or removed."""

    __slots__ = ("_edits",)
    _edits: list[int]

    def _touch(self) -> None:
        self._edits[0] += 1

    def __setitem__(self, key: Any, value: Any) -> None:
        self._touch()
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
        super().update(*args, **kwargs)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._touch()
        return super().setdefault(key, default)

    def __ior__(self, other: Any) -> _StateDict:  # type: ignore[misc,override]
        self.update(other)
        return self

    def __reduce__(self) -> Any:  # pickled as a plain dict: a checkpoint needs no nndl_fast
        return (dict, (dict(self),))


class _State(defaultdict):
    """``optimizer.state``: torch's defaultdict(dict), whose entries are _StateDicts."""

    def __init__(self, edits: list[int]) -> None:
        super().__init__()
        self._edits = edits

    def __missing__(self, key: Any) -> _StateDict:
        d = _StateDict()
        d._edits = self._edits
        dict.__setitem__(self, key, d)
        self._edits[0] += 1
        return d

    def __setitem__(self, key: Any, value: Any) -> None:
        self._edits[0] += 1
        if not isinstance(value, _StateDict):
            d = _StateDict()
            d._edits = self._edits
            dict.update(d, value)
            value = d
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self._edits[0] += 1
        super().__delitem__(key)

    def pop(self, *args: Any) -> Any:
        self._edits[0] += 1
        return super().pop(*args)

    def popitem(self) -> Any:
        self._edits[0] += 1
        return super().popitem()

    def clear(self) -> None:
        self._edits[0] += 1
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        for k, v in dict(*args, **kwargs).items():
            self[k] = v

    def __reduce__(self) -> Any:  # pickled as torch's defaultdict(dict)
        return (_plain_state, (dict(self),))


def _plain_state(items: dict[Any, Any]) -> defaultdict:
    return defaultdict(dict, {k: dict(v) for k, v in items.items()})


def _memory_order(t: torch.Tensor) -> tuple[int, ...] | None:
    """None for a C-contiguous tensor; else the permutation that makes a dense one C-contiguous
    (channels_last weights), so the elementwise kernels run over its memory in order."""
    if t.is_contiguous() or t.dim() < 2:
        return None
    strides, sizes = t.stride(), t.shape
    order = tuple(sorted(range(t.dim()), key=lambda d: (-strides[d], -sizes[d])))
    return order if t.permute(order).is_contiguous() else None


def _view(t: torch.Tensor, order: tuple[int, ...] | None) -> Any:
    """The NumPy view of a tensor's memory (in memory order); the tensor itself when it has
    none (wrong device, sparse, ...), for the kernel's argument check to reject by name."""
    if order is not None:
        t = t.permute(order)
    try:
        return t.numpy() if not t.requires_grad else t.detach().numpy()
    except (RuntimeError, TypeError):
        return t


def _grad_view(g: torch.Tensor, order: tuple[int, ...] | None) -> Any:
    """A gradient's view in the parameter's memory order. A gradient is only read, so one laid
    out otherwise (strided, or another memory format) is copied: a copy loses nothing here,
    unlike for a parameter or a state buffer."""
    try:
        if order is not None:
            g = g.permute(order)
        if not g.is_contiguous():
            g = g.contiguous()
        return g.numpy()
    except (RuntimeError, TypeError):
        return g  # requires_grad (create_graph=True), another device, sparse: the check decides


def _as_views(launches: list[Any]) -> bool:
    """Replace each gradient passed as a DLPack capsule by its view through ``_grad_view`` (a
    contiguous copy when strided: a gradient is only read, a copy loses nothing); False when
    there was none, so the error was another. The views' checks then name what is wrong."""
    replaced = False
    for gc, _, _, _, grads, _, _ in launches:
        for k, g in enumerate(grads):
            if g is not None and not isinstance(g, (np.ndarray, torch.Tensor)):
                grads[k] = _grad_view(gc.params[k].grad, gc.entries[k].order)
                replaced = True
    return replaced


class _Entry:
    """One parameter's cached views: its data pointer, layout, view and state buffers' views."""

    __slots__ = ("bufs", "dtype", "order", "ptr", "view")

    def __init__(self, p: torch.Tensor, order: Any, bufs: tuple[Any, ...]) -> None:
        self.ptr = p.data_ptr()
        self.dtype = p.dtype
        self.order = order
        self.view = _view(p, order)
        self.bufs = bufs


class _Group:
    """One param group's cache: the group as last checked, its rule hyper-parameters, the
    entries (None until a parameter's state exists) and its step counts."""

    __slots__ = (
        "checked",
        "consts",
        "dtypes",
        "entries",
        "every",
        "group",
        "hp",
        "lists",
        "names",
        "params",
        "ptrs",
        "scalars",
        "steps",
        "steps_np",
        "uniform",
    )

    def __init__(self, group: dict[str, Any], n: int, dtype: torch.dtype, scalars: Iterable[str]) -> None:
        self.group = group
        self.params = group["params"]
        self.checked: tuple[Any, ...] = ()  # (k0, v0, k1, v1, ...) of the group as last checked
        self.hp: dict[str, Any] = {}
        self.consts: Any = None  # rule.constants(hp): what the coefficients read, prepared once
        self.names: tuple[str | None, ...] = ()
        self.entries: list[_Entry | None] = [None] * n
        self.steps = torch.zeros(n, dtype=dtype)  # completed steps; state[p]["step"] views it
        self.steps_np = self.steps.numpy()
        # (completed steps, steps._version) while every parameter is known to be at that count:
        # our own counting goes through steps_np (no version bump), anyone else's through torch
        self.uniform: tuple[int, int] | None = None
        self.scalars = {name: torch.zeros(n, dtype=dtype) for name in scalars}  # NAdam's mu_product
        self.lists: tuple[list[Any], list[Any]] | None = None  # (param views, state lists) of every entry
        # the entries' data_ptr (0: no entry yet) while the step may take _core.torch_grads
        self.ptrs: np.ndarray | None = None
        self.every: list[int] = []  # range(n): the indices of a step where every parameter has a grad
        self.dtypes: set[torch.dtype] = set()  # of the entries: several mean one launch per dtype


class Optimizer(torch.optim.Optimizer):
    """A ``torch.optim.Optimizer`` whose step is one of nndl_fast's fused kernels (see the module)."""

    _rule: _base.Rule
    _counts_steps = True  # torch keeps state["step"] (SGD does not)
    _scalar_state: tuple[str, ...] = ()  # torch's per-parameter scalar tensors (NAdam: mu_product)

    def __init__(
        self,
        params: Any,
        defaults: dict[str, Any],
        max_norm: Any = None,
        norm_type: Any = 2.0,
        clip_per_tensor: Any = False,
    ) -> None:
        self._check(defaults)
        self.clip_per_tensor = _base._check_per_tensor(clip_per_tensor, max_norm)
        self.max_norm: float | None = None
        if max_norm is not None and self.clip_per_tensor:  # > 0: Keras's clipnorm=0 means no clipping
            self.max_norm = _checks.real("max_norm", max_norm, 0.0, lo_open=True, finite=False)
        elif max_norm is not None:
            self.max_norm = _clip.check_max_norm(max_norm)
        self.norm_type = _clip.check_norm_type(norm_type)
        self.last_grad_norm: float | np.ndarray | None = None
        self._edits = [0]
        self._cache: Any = None
        super().__init__(params, defaults)
        self.state = self._tracked(self.state)

    # -- what a subclass defines ---------------------------------------------------------
    def _check(self, group: Mapping[str, Any]) -> None:  # pragma: no cover - overridden
        """torch's checks of a group's hyper-parameters, naming torch's arguments."""
        raise NotImplementedError

    def _hp(self, group: Mapping[str, Any]) -> dict[str, Any]:  # pragma: no cover - overridden
        """The layer-1 rule's hyper-parameters (nndl_fast.optim) for this torch group."""
        raise NotImplementedError

    def _initial(self, name: str, group: Mapping[str, Any]) -> float:
        """The value a state buffer starts from (Adagrad's initial_accumulator_value)."""
        return 0.0

    def _first_step(self, state: Mapping[str, Any]) -> float:
        """The completed steps of a parameter whose state has no "step" (SGD: its buffer's age)."""
        return 0.0

    # -- torch's Optimizer interface -------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if isinstance(param_group, Mapping):
            self._check({**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}})
        super().add_param_group(param_group)

    def __getstate__(self) -> dict[str, Any]:
        return {
            **super().__getstate__(),
            "max_norm": self.max_norm,
            "norm_type": self.norm_type,
            "clip_per_tensor": self.clip_per_tensor,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__dict__.setdefault("max_norm", None)
        self.__dict__.setdefault("norm_type", 2.0)
        self.__dict__.setdefault("clip_per_tensor", False)
        self.__dict__.setdefault("last_grad_norm", None)
        self.__dict__.setdefault("_edits", [0])  # (a copy or an unpickled optimizer)
        self._cache = None
        for group in self.param_groups:  # a checkpoint of an older torch lacks its newer keys
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    def state_dict(self) -> dict[str, Any]:
        """torch's ``state_dict``, with each parameter's state a plain dict and its "step" (and
        NAdam's "mu_product") its own 0-d tensor, exactly as torch.optim writes them."""
        sd = super().state_dict()
        shared = ("step", *self._scalar_state)
        sd["state"] = {
            i: {k: (v.clone() if k in shared and isinstance(v, torch.Tensor) else v) for k, v in s.items()}
            for i, s in sd["state"].items()
        }
        return sd

    def _tracked(self, state: Mapping[Any, Any]) -> _State:
        if isinstance(state, _State) and state._edits is self._edits:
            return state
        tracked = _State(self._edits)
        for k, v in state.items():
            tracked[k] = v
        return tracked

    # -- the step --------------------------------------------------------------------------
    def _patch_step_function(self) -> None:
        """torch's step wrapper (profiler range, step hooks) around ``step``, taken only when a
        profiler runs or a hook is registered: without them it is 20–25 µs of a step's Python."""
        self._zero_grad_profile_name = f"Optimizer.zero_grad#{type(self).__name__}.zero_grad"
        cls = type(self)
        if getattr(cls.step, "hooked", False):
            return
        plain = cls.step
        hooked = torch.optim.Optimizer.profile_hook_step(plain)

        @functools.wraps(plain)
        def step(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
            if (
                self._optimizer_step_pre_hooks
                or self._optimizer_step_post_hooks
                or _optimizer_module._global_optimizer_pre_hooks
                or _optimizer_module._global_optimizer_post_hooks
                or _profiler_enabled()
            ):
                return hooked(self, *args, **kwargs)
            out = plain(self, *args, **kwargs)
            self._optimizer_step_code()
            return out

        step.hooked = True  # type: ignore[attr-defined]
        cls.step = step  # type: ignore[method-assign]

    def step(self, closure: Any = None) -> Any:
        """One update of every parameter that has a gradient; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._fused_step()  # no autograd op: torch.no_grad() is needed only where state is made
        return loss

    def _valid_cache(self) -> list[_Group]:
        """The per-group caches, rebuilt for whatever changed since the last step."""
        cache = self._cache
        groups = self.param_groups
        if (
            cache is not None
            and cache[0] is self.state
            and cache[1] == self._edits[0]
            and cache[2] is groups
            and len(cache[3]) == len(groups)
            and all(
                gc.group is g and gc.params is g["params"] and len(gc.entries) == len(g["params"])
                for gc, g in zip(cache[3], groups)
            )
        ):
            return cache[3]
        self.state = state = self._tracked(self.state)
        old = {id(gc.group): gc for gc in cache[3]} if cache is not None and cache[0] is state else {}
        built = []
        for g in groups:
            gc = old.get(id(g))
            if gc is None or gc.group is not g or gc.params is not g["params"] or len(gc.entries) != len(g["params"]):
                gc = _Group(g, len(g["params"]), scalar_dtype(), self._scalar_state)
            gc.entries = [None] * len(gc.entries)  # views re-read from state, lazily
            gc.uniform = None
            gc.lists = gc.ptrs = None
            gc.dtypes = set()
            gc.checked = ()
            built.append(gc)
        self._cache = (state, self._edits[0], groups, built)
        return built

    def _checked_hp(self, gi: int, gc: _Group) -> dict[str, Any]:
        """The group's rule hyper-parameters, checked again when a value changed (a scheduler's lr)."""
        g = gc.group
        if _core.same_items(g, gc.checked):
            return gc.hp
        try:
            self._check(g)
        except (TypeError, ValueError) as e:
            raise type(e)(f"param_groups[{gi}]: {e}") from None
        hp = self._hp(g)
        names = self._rule.buffers(hp)
        if names != gc.names:
            gc.names = names
            gc.entries = [None] * len(gc.entries)
            gc.lists = gc.ptrs = None
        gc.hp = hp
        gc.consts = self._rule.constants(hp)
        gc.checked = tuple(x for item in g.items() for x in item)
        return hp

    @torch.no_grad()
    def _entry(self, gc: _Group, k: int, p: torch.Tensor) -> _Entry:
        """Parameter k's views, creating its state first if this is its first step (as torch)."""
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params must be torch tensors, got {type(p).__name__}")
        state = self.state
        st = dict.get(state, p)
        if st is None:
            st = _StateDict()
            st._edits = self._edits
            if self._counts_steps or any(gc.names):  # (torch's SGD without momentum keeps no state)
                dict.__setitem__(state, p, st)  # our own edit: the cache stays valid
        order = _memory_order(p)
        if self._counts_steps:
            gc.steps[k] = float(st["step"]) if "step" in st else 0.0
            dict.__setitem__(st, "step", gc.steps[k])  # a 0-d view: counting is one op per group
        else:
            gc.steps[k] = self._first_step(st)
        for scalar, values in gc.scalars.items():
            values[k] = float(st[scalar]) if scalar in st else self._rule.scalars[scalar]
            dict.__setitem__(st, scalar, values[k])
        bufs: list[Any] = []
        for name in gc.names:
            if name is None:
                bufs.append(None)
                continue
            b = st.get(name)
            if not isinstance(b, torch.Tensor):
                b = torch.full_like(p, self._initial(name, gc.group), memory_format=torch.preserve_format)
                dict.__setitem__(st, name, b)
            elif order is not None and b.stride() != p.stride() and b.shape == p.shape:
                b = torch.empty_like(p, memory_format=torch.preserve_format).copy_(b)  # the parameter's layout
                dict.__setitem__(st, name, b)
            bufs.append(_view(b, order))
        e = _Entry(p, order, tuple(bufs))
        gc.entries[k] = e
        gc.dtypes.add(e.dtype)
        gc.lists = gc.ptrs = None
        return e

    def _grads(self, gc: _Group) -> tuple[list[int], list[Any]]:
        """(indices of the parameters with a grad, their grads or None per parameter), making the
        entries of parameters at their first step; the general form of _core.torch_grads."""
        entries = gc.entries
        idx: list[int] = []
        grads: list[Any] = []
        for k, p in enumerate(gc.params):
            g = p.grad
            if g is None:
                grads.append(None)
                continue
            e = entries[k]
            if e is None or p.data_ptr() != e.ptr:
                e = self._entry(gc, k, p)
            idx.append(k)
            if e.order is None:
                try:
                    grads.append(to_dlpack(g))  # strided: a copy on _fused_step's retry
                    continue
                except (RuntimeError, TypeError, BufferError):
                    pass
            grads.append(_grad_view(g, e.order))
        if all(e is None or e.order is None for e in entries):
            gc.ptrs = np.array([0 if e is None else e.ptr for e in entries], dtype=np.int64)
            gc.every = list(range(len(entries)))
        return idx, grads

    def _plan(self, gc: _Group, hp: dict[str, Any], t: int, scalars: dict[str, float]) -> Any:
        """(lr, the kernel's coefficients, the scalar state after the step) for step t."""
        return _base._plan(self._rule, hp, gc.consts, t, scalars)

    def _fused_step(self) -> None:
        groups = self._valid_cache()
        launches = []  # (group cache, hp, indices stepped, params, grads, state lists, (lr, coeffs, scalars))
        for gi, gc in enumerate(groups):
            hp = self._checked_hp(gi, gc)
            entries = gc.entries
            fast = None if gc.ptrs is None else _core.torch_grads(gc.params, gc.ptrs, to_dlpack)
            if fast is not None:
                grads, present = fast  # grads[k] None: tensor k is left out of the kernel's lists
                idx = gc.every if present == len(grads) else [k for k, g in enumerate(grads) if g is not None]
            else:
                idx, grads = self._grads(gc)
            if not idx:
                continue
            if gc.lists is None:  # a parameter without state yet has no views: its grad is None
                gc.lists = (
                    [None if e is None else e.view for e in entries],
                    [
                        None if n is None else [None if e is None else e.bufs[j] for e in entries]
                        for j, n in enumerate(gc.names)
                    ],
                )
            classes = self._by_step(gc, idx)
            for sub, t, scalars in classes:
                lr, coeffs, new_scalars = self._plan(gc, hp, t, scalars)
                if len(classes) > 1:  # a rule may rewrite one coefficient record per group at each plan
                    coeffs = dict(coeffs)
                if sub is not idx:  # parameters at another step count wait for their own launch
                    grads_t = [None] * len(grads)
                    for k in sub:
                        grads_t[k] = grads[k]
                else:
                    grads_t = grads
                launches.append((gc, hp, sub, gc.lists[0], grads_t, gc.lists[1], (lr, coeffs, new_scalars)))
        if not launches:
            return
        try:
            self._run(launches)
        except (TypeError, ValueError):
            if not _as_views(launches):
                raise
            self._run(launches)  # nothing ran: every array is checked before the first kernel

    def _run(self, launches: list[Any]) -> None:
        scale = 1.0
        factors = None
        if self.clip_per_tensor and self.max_norm is not None:  # torch's coefficient, each tensor by its own norm
            norms, factors, _ = _core.clip_tensor_coefficients(
                [gl for _, _, _, _, gl, _, _ in launches], self.norm_type, self.max_norm, "torch", 1.0
            )
        elif self.max_norm is not None:
            total = _clip.global_norm_of_groups(
                [[g for g in gl if g is not None] for _, _, _, _, gl, _, _ in launches], self.norm_type
            )
            scale = _clip.clip_coefficient(total, self.max_norm, convention="torch")
        if len(launches) > 1:  # several launches: check them all first, so that a rejected step changes nothing
            _base.check_launches(self._rule, [(pv, gl, bufs) for _, _, _, pv, gl, bufs, _ in launches])
        if factors is not None:
            self.last_grad_norm = self._per_parameter(launches, norms)
        elif self.max_norm is not None:
            self.last_grad_norm = total
        touched: list[torch.Tensor] = []
        start = 0
        for gc, hp, idx, pv, gl, bufs, (lr, coeffs, scalars) in launches:
            terms = _base.grad_terms(hp, lr, scale)
            if factors is not None:  # this launch's slice of the per-tensor factors, aligned with gl
                terms["tensor_scale"] = factors[start : start + len(gl)]
                start += len(gl)
            self._rule.launch(pv, gl, bufs, terms, coeffs, False)
            every = len(idx) == len(gc.entries)
            if every:
                gc.steps_np += 1
                touched.extend(gc.params)
                if gc.uniform is not None:
                    gc.uniform = (gc.uniform[0] + 1, gc.uniform[1])
            else:
                gc.steps_np[idx] += 1
                touched.extend(gc.params[k] for k in idx)
                gc.uniform = None
            for name, value in scalars.items():
                gc.scalars[name].numpy()[slice(None) if every else idx] = value
        torch.autograd.graph.increment_version(touched)

    def _per_parameter(self, launches: list[Any], norms: np.ndarray) -> np.ndarray:
        """The per-tensor norms of the launches, one per parameter of param_groups in order (NaN
        for a parameter whose grad is None)."""
        firsts, n = {}, 0
        for group in self.param_groups:
            firsts[id(group["params"])] = n
            n += len(group["params"])
        out = np.full(n, np.nan)
        start = 0
        for gc, _, idx, _, gl, _, _ in launches:  # gc.params is its group's list (_valid_cache)
            out[[firsts[id(gc.params)] + k for k in idx]] = norms[[start + k for k in idx]]
            start += len(gl)
        return out

    def _by_step(self, gc: _Group, idx: list[int]) -> list[tuple[list[int], int, dict[str, float]]]:
        """The launches of a group: (the indices it steps, 1-based step t, scalar state), one per
        distinct step count (and scalar state) among the parameters in idx; usually one, idx itself."""
        every = len(idx) == len(gc.entries)
        mixed = len(gc.dtypes) > 1  # one kernel call takes one dtype
        if every and not mixed and gc.uniform is not None and gc.uniform[1] == gc.steps._version:
            return [(idx, gc.uniform[0] + 1, {})]
        steps = gc.steps_np if every else gc.steps_np[idx]
        scal = {name: v.numpy() if every else v.numpy()[idx] for name, v in gc.scalars.items()}
        first = float(steps[0])
        if not mixed and (steps == first).all() and all((v == v[0]).all() for v in scal.values()):
            if every and not scal:  # (a scalar state, NAdam's, changes every step: no shortcut)
                gc.uniform = (int(first), gc.steps._version)
            return [(idx, int(first) + 1, {name: float(v[0]) for name, v in scal.items()})]
        keys: dict[tuple[Any, ...], list[int]] = {}
        for j, k in enumerate(idx):
            dtype = str(gc.entries[k].dtype) if mixed else ""  # type: ignore[union-attr]
            keys.setdefault((float(steps[j]), *(float(v[j]) for v in scal.values()), dtype), []).append(k)
        return [(ks, int(key[0]) + 1, dict(zip(gc.scalars, key[1:-1]))) for key, ks in sorted(keys.items())]
