"""Grid search (1.6.1) and random search (1.6.2); the sampler interface the GP sampler shares."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .space import Space

if TYPE_CHECKING:
    from .study import Study


class Sampler:
    """Proposes configurations. ``sample(study, number)`` draws from ``study.rng(number)`` only,
    so that a seed fixes the sequence; ``to_json``/``sampler_from_json`` save settings and state."""

    space: Space

    def bind(self, space: Space) -> None:
        self.space = space

    def sample(self, study: Study, number: int) -> dict[str, Any]:
        raise NotImplementedError

    def remaining(self, study: Study) -> float:
        """How many more configurations the sampler can give (a grid is finite)."""
        return float("inf")

    def config(self) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass

    def to_json(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "config": self.config(), "state": self.state()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config().items())})"


class RandomSampler(Sampler):
    """Random search (1.6.2, Bergstra & Bengio 2012): every parameter uniform on its range,
    log-uniform where the space says ``log=True``; conditional parameters only when active."""

    def sample(self, study: Study, number: int) -> dict[str, Any]:
        return self.space.sample(study.rng(number))


class GridSampler(Sampler):
    """Grid search (1.6.1): every combination of the given values, each once.

    Order: ``itertools.product`` over ``grid`` in its order, the last parameter varying fastest
    (``{"a": [1, 2], "b": [3, 4]}`` gives (1, 3), (1, 4), (2, 3), (2, 4)). A parameter inactive
    in a combination is dropped from it, and a combination equal to an earlier one is skipped,
    so a conditional grid has no duplicates. Trial k gets point k; the study stops at the end.
    Every parameter of the space must be in ``grid``.
    """

    def __init__(self, grid: Mapping[str, Sequence[Any]]) -> None:
        if not isinstance(grid, Mapping):
            raise TypeError(f"grid must be a dict {{name: list of values}}, got {type(grid).__name__}")
        if len(grid) == 0:
            raise ValueError("grid must not be empty")
        for name, values in grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise TypeError(f"grid[{name!r}] must be a list of values, got {type(values).__name__}")
            if len(values) == 0:
                raise ValueError(f"grid[{name!r}] must not be empty")
        self.grid = {k: list(v) for k, v in grid.items()}
        self.points: list[dict[str, Any]] = []

    def bind(self, space: Space) -> None:
        missing = set(space.params) - set(self.grid)
        unknown = set(self.grid) - set(space.params)
        if missing or unknown:
            raise ValueError(
                f"grid must name every parameter of the space: missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        for name, values in self.grid.items():
            for v in values:
                if not space.params[name].contains(v):
                    raise ValueError(f"grid[{name!r}] holds {v!r}, outside {space.params[name]!r}")
        super().bind(space)
        names = [n for n in space.params]  # the space's order decides activity; the grid's the order
        seen: set[str] = set()
        self.points = []
        for combo in itertools.product(*self.grid.values()):
            full = dict(zip(self.grid, combo))
            point: dict[str, Any] = {}
            for n in names:
                if space.is_active(n, point):
                    point[n] = full[n]
            point = {n: point[n] for n in self.grid if n in point}
            key = repr(sorted((k, type(v).__name__, repr(v)) for k, v in point.items()))
            if key not in seen:
                seen.add(key)
                self.points.append(point)

    def __len__(self) -> int:
        return len(self.points)

    def sample(self, study: Study, number: int) -> dict[str, Any]:
        if number >= len(self.points):
            raise ValueError(f"the grid has {len(self.points)} points, all asked")
        return dict(self.points[number])

    def remaining(self, study: Study) -> float:
        return len(self.points) - len(study.trials)

    def config(self) -> dict[str, Any]:
        return {"grid": self.grid}


def sampler_from_json(d: dict[str, Any]) -> Sampler:
    """A sampler from ``Sampler.to_json()`` (settings and state)."""
    from .gp import GPSampler

    kinds: dict[str, Any] = {"RandomSampler": RandomSampler, "GridSampler": GridSampler, "GPSampler": GPSampler}
    if d.get("type") not in kinds:
        raise ValueError(f"unknown sampler type {d.get('type')!r}")
    sampler = kinds[d["type"]](**d["config"])
    sampler.load_state(d["state"])
    return sampler
