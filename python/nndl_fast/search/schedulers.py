r"""Dynamic resource allocation (1.6.4): successive halving (Algorithm 1.2) and Hyperband.

A scheduler runs *brackets*; a bracket is a list of rungs (n_i configurations, resource r_i).
The first rung's configurations come from the study's sampler (``study.ask()``); each is trained
to r_i and evaluated, and the best n_{i+1} (smallest value when minimising; the lower trial
number on a tie; failed trials last) go on to the next rung, the others are told "pruned" with
their last value. The configurations of the last rung are told "complete".

Resource: the objective receives ``trial.resource`` (train up to it) and ``trial.resumed_from``
(what it was already trained to, 0 on the first rung). A resumable objective trains from
``resumed_from`` to ``resource``, so moving a configuration from r_a to r_b costs r_b − r_a; ``spent``
counts that way, and ``cost(resumable=False)`` gives the bill of an objective that retrains
from scratch.

Ask/tell, as for a study: ``trial = sched.ask(study)`` gives the next (trial, resource) job or None
while the rung waits for results, ``sched.tell(study, trial, value)`` records one; ``optimize`` is
that loop, with the jobs of a rung run ``n_jobs`` at a time on an executor.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from concurrent.futures import Executor
from fractions import Fraction
from typing import Any, NamedTuple, Union

from .. import _checks
from .study import Study, Trial, progress_bar, run_batch

Resource = Union[int, float]


class Rung(NamedTuple):
    """n_configs configurations trained to ``resource`` each."""

    n_configs: int
    resource: Resource


def _resource(x: Fraction) -> Resource:
    return int(x) if x.denominator == 1 else float(x)


class _Scheduler:
    brackets: list[list[Rung]]

    def _reset(self) -> None:
        self.spent: float = 0
        self._b = 0  # bracket
        self._i = 0  # rung
        self._live: list[Trial] = []  # the configurations of the current rung
        self._queue: list[Trial] = []  # those not yet handed out
        self._results: dict[int, float] = {}  # number -> sign * value at this rung (inf: failed)
        self._started = False

    @property
    def done(self) -> bool:
        return self._b >= len(self.brackets)

    @property
    def n_evaluations(self) -> int:
        """Objective calls of a full run: the sum of n_i over every rung of every bracket."""
        return sum(r.n_configs for b in self.brackets for r in b)

    def cost(self, resumable: bool = True) -> float:
        """The resource a full run trains: Σ n_i (r_i − r_{i−1}) when resumable, else Σ n_i r_i."""
        total: float = 0
        for rungs in self.brackets:
            prev: Resource = 0
            for r in rungs:
                total += r.n_configs * (r.resource - prev if resumable else r.resource)
                prev = r.resource
        return total

    def ask(self, study: Study) -> Trial | None:
        """The next job of the current rung (``trial.resource`` set), or None: the rung waits, or
        the run is over (``done``)."""
        if self.done:
            return None
        if not self._started:
            self._started = True
            self._live = [study.ask() for _ in range(self.brackets[self._b][0].n_configs)]
            self._queue = list(self._live)
        if not self._queue:
            return None
        trial = self._queue.pop(0)
        rungs = self.brackets[self._b]
        trial.resumed_from = rungs[self._i - 1].resource if self._i else 0
        trial.resource = rungs[self._i].resource
        return trial

    def tell(self, study: Study, trial: Trial, value: Any, *, error: str | None = None) -> None:
        """The value of a job from :meth:`ask` at its resource (None or non-finite: failed)."""
        if self.done or trial not in self._live or trial in self._queue or trial.number in self._results:
            raise ValueError(f"trial {getattr(trial, 'number', trial)!r} is not a job this scheduler is waiting for")
        ok = error is None and isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        self.spent += trial.resource - trial.resumed_from  # type: ignore[operator]
        if ok:
            if not trial.intermediate or trial.intermediate[-1][0] != trial.resource:
                trial.report(value, trial.resource)  # type: ignore[arg-type]
            self._results[trial.number] = study.sign * float(value)
        else:
            msg = error or f"the objective returned {value!r}"
            study.tell(trial, state="failed", error=msg)
            self._results[trial.number] = math.inf
        if len(self._results) == len(self._live):
            self._advance(study)

    def _advance(self, study: Study) -> None:
        rungs = self.brackets[self._b]
        ranked = sorted(
            (t for t in self._live if t.state == "running"), key=lambda t: (self._results[t.number], t.number)
        )
        last = self._i + 1 == len(rungs)
        keep = len(ranked) if last else rungs[self._i + 1].n_configs
        for k, t in enumerate(ranked):
            if k >= keep:
                study.tell(t, study.sign * self._results[t.number], state="pruned")
            elif last:
                study.tell(t, study.sign * self._results[t.number])
        self._results = {}
        if last or not ranked:
            self._b += 1
            self._i = 0
            self._live, self._queue, self._started = [], [], False
        else:
            self._i += 1
            self._live = ranked[:keep]
            self._queue = list(self._live)

    def optimize(
        self,
        study: Study,
        objective: Callable[[Trial], float],
        *,
        executor: Executor | None = None,
        n_jobs: int = 1,
        progress: bool = False,
    ) -> Trial | None:
        """Run every bracket with ``objective(trial) -> value at trial.resource``; the best trial.

        The jobs of a rung run ``n_jobs`` at a time on ``executor`` (None: here, one by one) and
        are told in order, so the result depends on the seed and ``n_jobs`` only.
        """
        if not isinstance(study, Study):
            raise TypeError(f"study must be a Study, got {type(study).__name__}")
        if not callable(objective):
            raise TypeError(f"objective must be callable, got {type(objective).__name__}")
        n_jobs = _checks.integer("n_jobs", n_jobs, 1)
        self._reset()
        bar = progress_bar(progress, self.n_evaluations, type(self).__name__)
        try:
            while not self.done:
                batch: list[Trial] = []
                while len(batch) < n_jobs:
                    t = self.ask(study)
                    if t is None:
                        break
                    batch.append(t)
                for t, outcome in zip(batch, run_batch(objective, batch, executor)):
                    t.intermediate = list(outcome.intermediate)
                    self.tell(study, t, outcome.value, error=outcome.error)
                if bar is not None:
                    bar.update(len(batch))
                    best = study.best_trial
                    if best is not None:
                        bar.set_postfix(best=f"{best.value:.4g}")
        finally:
            if bar is not None:
                bar.close()
        return study.best_trial


class SuccessiveHalving(_Scheduler):
    r"""Successive halving exactly as the chapter's Algorithm 1.2 (Jamieson & Talwalkar 2016).

    Given a budget B and N configurations: T = ⌈log₂ N⌉ − 1 rounds; in round t = 1..T each of the
    |S_t| configurations gets r_t = ⌊B / (|S_t| T)⌋ resources (S_1 = the N sampled ones), and the
    best ⌊|S_t|/2⌋ form S_{t+1}. **fix**: the chapter writes S_t ← argmax(S_t, y_t, |S_t|/2) and
    outputs S_K; the kept half is S_{t+1}, halved by ⌊·⌋ for odd sizes, and the output is the best
    configuration of the last round. Each round trains at most B/T (without resuming), so a run
    trains at most B. N ≥ 3 (N = 2 would give T = 0 rounds) and B ≥ N·T (r_1 ≥ 1).
    """

    def __init__(self, budget: int, n_configs: int) -> None:
        self.budget = _checks.integer("budget", budget, 1)
        self.n_configs = _checks.integer("n_configs", n_configs, 3)
        T = (self.n_configs - 1).bit_length() - 1  # ⌈log₂ N⌉ − 1, exactly
        if self.budget < self.n_configs * T:
            raise ValueError(
                f"budget must be >= n_configs * T = {self.n_configs * T} (T = {T} rounds), "
                f"so that the first round's r_1 = floor(B / (N T)) >= 1; got {budget}"
            )
        self.T = T
        rungs, size = [], self.n_configs
        for _ in range(T):
            rungs.append(Rung(size, self.budget // (size * T)))
            size //= 2
        self.brackets = [rungs]
        self._reset()

    def __repr__(self) -> str:
        return f"SuccessiveHalving(budget={self.budget}, n_configs={self.n_configs})"


class Hyperband(_Scheduler):
    r"""Hyperband (Li et al. 2018, Algorithm 1): successive halving for several N.

    R = ``max_resource`` (in units of the smallest resource worth training), η = ``eta``:
    s_max = ⌊log_η R⌋, B = (s_max + 1) R; for s = s_max, ..., 0 a bracket starts
    n = ⌈B η^s / (R (s + 1))⌉ configurations at r = R η^{−s}, and its rung i = 0..s trains
    n_i = ⌊n η^{−i}⌋ configurations to r_i = r η^i, keeping the best ⌊n_i / η⌋. R = 81, η = 3 gives
    the paper's table: brackets of (81, 34, 15, 8, 5) configurations. Resources are ints where
    exact, floats otherwise.
    """

    def __init__(self, max_resource: Resource, eta: int = 3) -> None:
        R = _checks.real("max_resource", max_resource, 1.0)
        self.eta = _checks.integer("eta", eta, 2)
        self.max_resource = max_resource
        Rf = Fraction(R)
        s_max = 0
        while Fraction(self.eta) ** (s_max + 1) <= Rf:
            s_max += 1
        self.s_max = s_max
        self.brackets = []
        for s in range(s_max, -1, -1):
            n = math.ceil(Fraction((s_max + 1) * self.eta**s, s + 1))
            r = Rf / self.eta**s
            self.brackets.append([Rung(n // self.eta**i, _resource(r * self.eta**i)) for i in range(s + 1)])
        self._reset()

    def __repr__(self) -> str:
        return f"Hyperband(max_resource={self.max_resource!r}, eta={self.eta})"
