"""Trials and the ask/tell study (1.6): every sampler and scheduler works through ``ask``/``tell``.

Reproducibility: trial ``k`` of a study seeded ``s`` draws its random numbers from
``np.random.default_rng([s, k])`` and the samplers are deterministic functions of those numbers
and of the trials told so far, so the same seed gives the same trials, a study saved and loaded
continues exactly as the uninterrupted one, and an executor changes nothing (see ``optimize``).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _checks
from .space import Space

STATES = ("running", "complete", "pruned", "failed")
FORMAT = "nndl_fast.search.Study/1"


@dataclass
class Trial:
    """One configuration and what became of it.

    ``state`` is "running" (asked, not told), "complete", "pruned" (stopped by a scheduler at a
    lower resource; ``value`` is its last one) or "failed" (the objective raised or returned a
    non-finite value; ``error`` says which). ``intermediate`` holds the ``(resource, value)``
    pairs given to :meth:`report`. Schedulers set ``resource`` (train up to it) and
    ``resumed_from`` (what the configuration was already trained to: a resumable objective trains
    from there, so moving it from r_a to r_b costs r_b - r_a).
    """

    number: int
    params: dict[str, Any]
    state: str = "running"
    value: float | None = None
    intermediate: list[tuple[float, float]] = field(default_factory=list)
    error: str | None = None
    resource: float | None = None
    resumed_from: float = 0

    def report(self, value: float, resource: float) -> None:
        """Record an intermediate value (e.g. a validation loss) after training up to ``resource``."""
        v = _checks.real("value", value, finite=False) if not _is_nan(value) else float("nan")
        r = _checks.real("resource", resource, 0.0)
        self.intermediate.append((r, v))

    def should_stop(self) -> bool:
        """True once the trial has reported a value at the resource its scheduler gave it.

        A training loop reports after each epoch and stops when this says so; the scheduler then
        decides whether the configuration continues (with a larger ``resource``) or is pruned.
        Without a scheduler (``resource`` None) it is always False.
        """
        return self.resource is not None and bool(self.intermediate) and self.intermediate[-1][0] >= self.resource

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "params": self.params,
            "state": self.state,
            "value": self.value,
            "intermediate": [list(p) for p in self.intermediate],
            "error": self.error,
            "resource": self.resource,
            "resumed_from": self.resumed_from,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Trial:
        return cls(
            number=d["number"],
            params=d["params"],
            state=d["state"],
            value=d["value"],
            intermediate=[(r, v) for r, v in d["intermediate"]],
            error=d["error"],
            resource=d["resource"],
            resumed_from=d["resumed_from"],
        )


def _is_nan(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isnan(v)


@dataclass
class _Outcome:
    value: float | None
    error: str | None
    intermediate: list[tuple[float, float]]


def run_objective(objective: Callable[[Trial], float], trial: Trial) -> _Outcome:
    """Call the objective; an exception becomes an error string (the study goes on). Picklable."""
    try:
        value = objective(trial)
    except Exception as e:  # a failing configuration must not end the search
        return _Outcome(None, f"{type(e).__name__}: {e}", list(trial.intermediate))
    return _Outcome(value, None, list(trial.intermediate))


def run_batch(
    objective: Callable[[Trial], float], trials: list[Trial], executor: Executor | None
) -> Iterable[_Outcome]:
    """The outcomes of a batch, in the batch's order (what the executor runs concurrently)."""
    if executor is None:
        return [run_objective(objective, t) for t in trials]
    futures = [executor.submit(run_objective, objective, t) for t in trials]
    out = []
    for t, f in zip(trials, futures):
        try:
            out.append(f.result())
        except Exception as e:  # the executor itself failed (pickling, a lost worker)
            out.append(_Outcome(None, f"{type(e).__name__}: {e}", list(t.intermediate)))
    return out


def progress_bar(progress: bool, total: int, desc: str) -> Any:
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError as e:
        raise ImportError("progress=True needs tqdm: pip install 'nndl_fast[search]'") from e
    return tqdm(total=total, desc=desc)


class Study:
    """An ask/tell search over ``space`` with ``sampler`` (default :class:`RandomSampler`).

    >>> study = Study(Space({"x": Float(-5, 5)}), RandomSampler(), seed=0)
    >>> trial = study.ask()
    >>> study.tell(trial, trial.params["x"] ** 2)

    ``direction`` is "minimize" or "maximize"; samplers always see minimisation.
    """

    def __init__(self, space: Space, sampler: Any = None, *, direction: str = "minimize", seed: int = 0) -> None:
        from .samplers import RandomSampler, Sampler

        if not isinstance(space, Space):
            raise TypeError(f"space must be a Space, got {type(space).__name__}")
        if sampler is None:
            sampler = RandomSampler()
        if not isinstance(sampler, Sampler):
            raise TypeError(f"sampler must be a Sampler (GridSampler, RandomSampler, GPSampler), got {sampler!r}")
        self.space = space
        self.sampler = sampler
        self.direction = _checks.choice("direction", direction, ("minimize", "maximize"))
        self.seed = _checks.integer("seed", seed, 0)
        self.trials: list[Trial] = []
        sampler.bind(space)

    @property
    def sign(self) -> float:
        """+1 when minimising, -1 when maximising: samplers minimise ``sign * value``."""
        return 1.0 if self.direction == "minimize" else -1.0

    def rng(self, number: int) -> np.random.Generator:
        """The random numbers of trial ``number`` (a function of the seed and the number only)."""
        return np.random.default_rng([self.seed, number])

    def ask(self) -> Trial:
        """A new running trial with the sampler's next configuration."""
        number = len(self.trials)
        params = self.sampler.sample(self, number)
        trial = Trial(number, params)
        self.trials.append(trial)
        return trial

    def enqueue(self, params: dict[str, Any]) -> Trial:
        """A new running trial with the given configuration (a known-good start, say)."""
        trial = Trial(len(self.trials), self.space.check(params))
        self.trials.append(trial)
        return trial

    def _lookup(self, trial: Trial | int) -> Trial:
        number = trial.number if isinstance(trial, Trial) else trial
        if isinstance(number, bool) or not isinstance(number, numbers.Integral):
            raise TypeError(f"trial must be a Trial or a trial number, got {type(trial).__name__}")
        if not 0 <= number < len(self.trials) or (isinstance(trial, Trial) and self.trials[number] is not trial):
            raise ValueError(f"trial {number} was not asked by this study")
        return self.trials[number]

    def tell(
        self, trial: Trial | int, value: Any = None, *, state: str = "complete", error: str | None = None
    ) -> Trial:
        """Finish a running trial: its value (complete or pruned), or failed with ``error``.

        A non-finite value, or a missing one for a complete trial, records the trial as failed
        (a diverged training is a result, not a crash); a value that is not a number is a TypeError.
        """
        t = self._lookup(trial)
        state = _checks.choice("state", state, STATES[1:])
        if t.state != "running":
            raise ValueError(f"trial {t.number} is already {t.state}")
        v: float | None = None
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"value must be a real number, got {type(value).__name__}")
            v = float(value)
        if state != "failed" and v is None:
            state, error = "failed", error or "no value"
        elif state != "failed" and not math.isfinite(v):  # type: ignore[arg-type]
            state, error = "failed", error or f"non-finite value {v!r}"
        t.state, t.value = state, (v if state != "failed" else None)
        t.error = error if state == "failed" else None
        return t

    def finish(self, trial: Trial, outcome: _Outcome, state: str = "complete") -> Trial:
        """Tell an objective's outcome (from :func:`run_objective`)."""
        trial.intermediate = list(outcome.intermediate)
        if outcome.error is not None:
            return self.tell(trial, state="failed", error=outcome.error)
        if isinstance(outcome.value, bool) or not isinstance(outcome.value, numbers.Real):
            return self.tell(trial, state="failed", error=f"the objective returned {type(outcome.value).__name__}")
        return self.tell(trial, outcome.value, state=state)

    def optimize(
        self,
        objective: Callable[[Trial], float],
        n_trials: int,
        *,
        executor: Executor | None = None,
        n_jobs: int = 1,
        progress: bool = False,
    ) -> Trial | None:
        """Run ``n_trials`` trials of ``objective(trial) -> value``; returns the best trial.

        Trials run in batches of ``n_jobs``: the batch is asked (a GP sampler proposes it by a
        constant liar), run on ``executor`` (any ``concurrent.futures.Executor``: a thread or
        process pool, or a Dask ``Client().get_executor()``; None runs it here, one by one), and
        told in trial order. The trials depend only on the seed and ``n_jobs``, never on the
        executor or on which trial finished first. A grid sampler stops the run when its grid is
        exhausted.
        """
        if not callable(objective):
            raise TypeError(f"objective must be callable, got {type(objective).__name__}")
        n_trials = _checks.integer("n_trials", n_trials, 0)
        n_jobs = _checks.integer("n_jobs", n_jobs, 1)
        if executor is not None and not isinstance(executor, Executor):
            if not callable(getattr(executor, "submit", None)):
                raise TypeError(f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}")
        bar = progress_bar(progress, n_trials, "trials")
        done = 0
        try:
            while done < n_trials:
                k = int(min(n_jobs, n_trials - done, self.sampler.remaining(self)))
                if k <= 0:
                    break
                batch = [self.ask() for _ in range(k)]
                for t, outcome in zip(batch, run_batch(objective, batch, executor)):
                    self.finish(t, outcome)
                done += k
                if bar is not None:
                    bar.update(k)
                    best = self.best_trial
                    if best is not None:
                        bar.set_postfix(best=f"{best.value:.4g}")
        finally:
            if bar is not None:
                bar.close()
        return self.best_trial

    @property
    def best_trial(self) -> Trial | None:
        """The complete trial with the best value (the first one on a tie), or None."""
        done = [t for t in self.trials if t.state == "complete"]
        if not done:
            return None
        return min(done, key=lambda t: (self.sign * t.value, t.number))  # type: ignore[operator]

    @property
    def best_params(self) -> dict[str, Any] | None:
        best = self.best_trial
        return None if best is None else best.params

    @property
    def best_value(self) -> float | None:
        best = self.best_trial
        return None if best is None else best.value

    # -- persistence -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: space, sampler (settings and state), seed, trials.

        The file format (JSON) is documented in the package's docstring; floats are written by
        ``repr`` and so read back to the same bits.
        """
        return {
            "format": FORMAT,
            "direction": self.direction,
            "seed": self.seed,
            "space": self.space.to_json(),
            "sampler": self.sampler.to_json(),
            "trials": [t.to_json() for t in self.trials],
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the study to ``path`` (JSON; written to a temporary file, then renamed)."""
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.state_dict(), f, indent=1)
        os.replace(tmp, path)

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> Study:
        from .samplers import sampler_from_json

        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"not a saved study (format {FORMAT!r} expected)")
        study = cls(
            Space.from_json(d["space"]), sampler_from_json(d["sampler"]), direction=d["direction"], seed=d["seed"]
        )
        study.trials = [Trial.from_json(t) for t in d["trials"]]
        return study

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Study:
        """A study saved by :meth:`save`, ready to continue."""
        with open(path, encoding="utf-8") as f:
            return cls.from_state_dict(json.load(f))

    def __repr__(self) -> str:
        counts = {s: sum(t.state == s for t in self.trials) for s in STATES}
        return f"Study({self.direction}, seed={self.seed}, sampler={self.sampler!r}, trials={counts})"
