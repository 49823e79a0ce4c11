"""Search spaces (1.6): the hyper-parameters, their ranges, and the conditions that activate them.

A :class:`Space` maps names to parameters. It samples configurations (dicts holding the *active*
parameters only), encodes a configuration to a point of the unit cube ``[0, 1]^dim`` and decodes
a point back (the Bayesian sampler models the objective on the cube):

- ``Float(low, high)``: one coordinate, ``(v - low) / (high - low)``; with ``log=True`` the same
  in ``log v``.
- ``Int(low, high)``: one coordinate; the integer ``k`` owns the cell ``[k - 0.5, k + 0.5]``
  (in log space with ``log=True``) so that every integer gets the same share of the cube;
  decoding rounds to the nearest integer.
- ``Categorical(choices)``: one coordinate per choice (one-hot); decoding takes the largest.

A parameter with ``when={"optimizer": ["momentum", "nesterov"]}`` is active only when every
named parent (declared earlier in the space) is active and takes one of the listed values. An
inactive parameter is absent from the configuration and encoded as a constant (0.5, or all-zero
one-hot), so that it does not separate points that differ only there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np

from .. import _checks

Value = Union[float, int, str, bool, None]


def _when(when: Any) -> dict[str, tuple[Any, ...]]:
    if when is None:
        return {}
    if not isinstance(when, Mapping):
        raise TypeError(f"when must be a dict {{parent: values}}, got {type(when).__name__}")
    out = {}
    for parent, values in when.items():
        if not isinstance(parent, str):
            raise TypeError(f"when's keys must be parameter names (str), got {type(parent).__name__}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"when[{parent!r}] must be a list of values, got {type(values).__name__}")
        if len(values) == 0:
            raise ValueError(f"when[{parent!r}] must list at least one value")
        out[parent] = tuple(values)
    return out


class Float:
    """A real hyper-parameter in [low, high], uniform (``log=False``) or log-uniform."""

    kind = "float"

    def __init__(self, low: float, high: float, *, log: bool = False, when: Any = None) -> None:
        self.low = _checks.real("low", low)
        self.high = _checks.real("high", high)
        self.log = _checks.flag("log", log)
        if self.low >= self.high:
            raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")
        if self.log and self.low <= 0:
            raise ValueError(f"log=True needs low > 0, got low={low!r}")
        self.when = _when(when)

    @property
    def dim(self) -> int:
        return 1

    def _ends(self) -> tuple[float, float]:
        return (math.log(self.low), math.log(self.high)) if self.log else (self.low, self.high)

    def sample(self, rng: np.random.Generator) -> float:
        return self.decode(np.array([rng.random()]))

    def encode(self, v: Any) -> np.ndarray:
        a, b = self._ends()
        x = math.log(v) if self.log else float(v)
        return np.array([(x - a) / (b - a)])

    def decode(self, u: np.ndarray) -> float:
        a, b = self._ends()
        x = a + float(np.clip(u[0], 0.0, 1.0)) * (b - a)
        return float(min(max(math.exp(x) if self.log else x, self.low), self.high))

    def contains(self, v: Any) -> bool:
        return (
            isinstance(v, (int, float, np.floating, np.integer))
            and not isinstance(v, bool)
            and bool(self.low <= v <= self.high)
        )

    def to_json(self) -> dict[str, Any]:
        return {"type": "Float", "low": self.low, "high": self.high, "log": self.log, "when": _when_json(self.when)}

    def __repr__(self) -> str:
        return f"Float({self.low!r}, {self.high!r}, log={self.log}{_when_repr(self.when)})"


class Int(Float):
    """An integer hyper-parameter in [low, high] (both included), uniform or log-uniform."""

    kind = "int"

    def __init__(self, low: int, high: int, *, log: bool = False, when: Any = None) -> None:
        lo = _checks.integer("low", low)
        hi = _checks.integer("high", high)
        super().__init__(lo, hi, log=log, when=when)
        self.low, self.high = lo, hi

    def _ends(self) -> tuple[float, float]:
        a, b = self.low - 0.5, self.high + 0.5
        return (math.log(a), math.log(b)) if self.log else (a, b)

    def decode(self, u: np.ndarray) -> int:  # type: ignore[override]
        a, b = self._ends()
        x = a + float(np.clip(u[0], 0.0, 1.0)) * (b - a)
        v = math.exp(x) if self.log else x
        return int(min(max(round(v), self.low), self.high))

    def contains(self, v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and bool(self.low <= v <= self.high)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "type": "Int"}

    def __repr__(self) -> str:
        return f"Int({self.low!r}, {self.high!r}, log={self.log}{_when_repr(self.when)})"


class Categorical:
    """A choice among ``choices`` (JSON scalars: str, int, float, bool or None), encoded one-hot."""

    kind = "categorical"

    def __init__(self, choices: Sequence[Value], *, when: Any = None) -> None:
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise TypeError(f"choices must be a list, got {type(choices).__name__}")
        if len(choices) == 0:
            raise ValueError("choices must not be empty")
        for i, c in enumerate(choices):
            if c is not None and not isinstance(c, (str, int, float, bool)):
                raise TypeError(f"choices[{i}] must be a str, int, float, bool or None, got {type(c).__name__}")
        if len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"choices must be distinct, got {list(choices)!r}")
        self.choices = tuple(choices)
        self.when = _when(when)

    @property
    def dim(self) -> int:
        return len(self.choices)

    def _index(self, v: Any) -> int:
        for i, c in enumerate(self.choices):
            if type(c) is type(v) and c == v:
                return i
        raise ValueError(f"{v!r} is not one of {list(self.choices)!r}")

    def sample(self, rng: np.random.Generator) -> Value:
        return self.choices[int(rng.integers(len(self.choices)))]

    def encode(self, v: Any) -> np.ndarray:
        e = np.zeros(len(self.choices))
        e[self._index(v)] = 1.0
        return e

    def decode(self, u: np.ndarray) -> Value:
        return self.choices[int(np.argmax(u))]

    def contains(self, v: Any) -> bool:
        try:
            self._index(v)
        except ValueError:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {"type": "Categorical", "choices": list(self.choices), "when": _when_json(self.when)}

    def __repr__(self) -> str:
        return f"Categorical({list(self.choices)!r}{_when_repr(self.when)})"


Param = Union[Float, Int, Categorical]


def _when_json(when: dict[str, tuple[Any, ...]]) -> dict[str, list[Any]]:
    return {k: list(v) for k, v in when.items()}


def _when_repr(when: dict[str, tuple[Any, ...]]) -> str:
    return f", when={_when_json(when)!r}" if when else ""


class Space:
    """Named hyper-parameters, in order; conditional ones name parents declared before them.

    >>> space = Space({"optimizer": Categorical(["sgd", "momentum"]), "lr": Float(1e-4, 1, log=True),
    ...                "momentum": Float(0.5, 0.99, when={"optimizer": ["momentum"]})})
    """

    def __init__(self, params: Mapping[str, Param]) -> None:
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict {{name: Float|Int|Categorical}}, got {type(params).__name__}")
        if len(params) == 0:
            raise ValueError("params must not be empty: a search space needs at least one parameter")
        self.params: dict[str, Param] = {}
        self.slices: dict[str, slice] = {}
        start = 0
        for name, p in params.items():
            if not isinstance(name, str):
                raise TypeError(f"parameter names must be str, got {type(name).__name__}")
            if not isinstance(p, (Float, Categorical)):
                raise TypeError(f"params[{name!r}] must be a Float, Int or Categorical, got {type(p).__name__}")
            for parent, values in p.when.items():
                if parent not in self.params:
                    raise ValueError(f"params[{name!r}]: when names {parent!r}, which is not declared before it")
                for v in values:
                    if not self.params[parent].contains(v):
                        raise ValueError(f"params[{name!r}]: when[{parent!r}] lists {v!r}, not a value of {parent!r}")
            self.params[name] = p
            self.slices[name] = slice(start, start + p.dim)
            start += p.dim
        self.dim = start

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def is_active(self, name: str, config: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active given the values already chosen in ``config``."""
        for parent, values in self.params[name].when.items():
            if parent not in config or not any(type(v) is type(config[parent]) and v == config[parent] for v in values):
                return False
        return True

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """A configuration drawn uniformly (log-uniformly where asked); inactive parameters absent."""
        config: dict[str, Any] = {}
        for name, p in self.params.items():
            u = p.sample(rng)  # drawn even when inactive, so that a condition does not shift later draws
            if self.is_active(name, config):
                config[name] = u
        return config

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """The point of [0, 1]^dim of a configuration; inactive parameters get their constant."""
        u = np.empty(self.dim)
        for name, p in self.params.items():
            if name in config:
                u[self.slices[name]] = p.encode(config[name])
            else:
                u[self.slices[name]] = 0.0 if isinstance(p, Categorical) else 0.5
        return u

    def decode(self, u: np.ndarray) -> dict[str, Any]:
        """The configuration of a point of the cube: active parameters only."""
        config: dict[str, Any] = {}
        for name, p in self.params.items():
            if self.is_active(name, config):
                config[name] = p.decode(u[self.slices[name]])
        return config

    def canonical(self, U: np.ndarray) -> np.ndarray:
        """``encode(decode(u))`` for every row of U at once: integers to their cell's centre, one
        choice per categorical, inactive parameters to their constant; floats clipped to [0, 1]."""
        U = np.clip(np.array(U, float), 0.0, 1.0)
        values: dict[str, np.ndarray] = {}
        active: dict[str, np.ndarray] = {}
        for name, p in self.params.items():
            sl = self.slices[name]
            if isinstance(p, Categorical):
                idx = np.argmax(U[:, sl], axis=1)
                U[:, sl] = 0.0
                U[np.arange(len(U)), sl.start + idx] = 1.0
                values[name] = idx
            else:
                a, b = p._ends()
                x = a + U[:, sl.start] * (b - a)
                v = np.exp(x) if p.log else x
                if p.kind == "int":
                    v = np.clip(np.round(v), p.low, p.high)
                    U[:, sl.start] = ((np.log(v) if p.log else v) - a) / (b - a)
                values[name] = np.clip(v, p.low, p.high)
            on = np.ones(len(U), bool)
            for parent, allowed in p.when.items():
                q = self.params[parent]
                if isinstance(q, Categorical):
                    ok = np.isin(values[parent], [q._index(v) for v in allowed])
                else:
                    ok = np.isin(values[parent], np.array(allowed, float))
                on &= active[parent] & ok
            active[name] = on
            if p.when:
                U[~on, sl] = 0.0 if isinstance(p, Categorical) else 0.5
        return U

    def check(self, config: Mapping[str, Any], name: str = "params") -> dict[str, Any]:
        """``config`` as a dict, refused unless it holds exactly the active parameters, each in range."""
        if not isinstance(config, Mapping):
            raise TypeError(f"{name} must be a dict, got {type(config).__name__}")
        out: dict[str, Any] = {}
        for key, p in self.params.items():
            if self.is_active(key, out):
                if key not in config:
                    raise ValueError(f"{name} misses the active parameter {key!r}")
                if not p.contains(config[key]):
                    raise ValueError(f"{name}[{key!r}] = {config[key]!r} is outside {p!r}")
                out[key] = config[key]
            elif key in config:
                raise ValueError(f"{name}[{key!r}] is given but inactive (its condition {p.when!r} does not hold)")
        unknown = set(config) - set(self.params)
        if unknown:
            raise ValueError(f"{name} names unknown parameters {sorted(unknown)!r}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {name: p.to_json() for name, p in self.params.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Space:
        kinds = {"Float": Float, "Int": Int}
        params: dict[str, Param] = {}
        for name, d in data.items():
            if d["type"] == "Categorical":
                params[name] = Categorical(d["choices"], when=d["when"] or None)
            else:
                params[name] = kinds[d["type"]](d["low"], d["high"], log=d["log"], when=d["when"] or None)
        return cls(params)

    def __repr__(self) -> str:
        return f"Space({self.params!r})"
