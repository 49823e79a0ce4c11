"""Hyper-parameter optimisation (1.6): grid, random and Bayesian search, successive halving, Hyperband.

Plain Python over NumPy (SciPy for the GP sampler, tqdm for ``progress=True``:
``pip install 'nndl_fast[search]'``).

- :mod:`.space`: ``Space`` of ``Float``, ``Int``, ``Categorical`` with conditions (``when=``),
  sampling and the unit-cube encoding.
- :mod:`.study`: ``Study`` (``ask``, ``tell``, ``optimize(objective, n_trials, executor=, n_jobs=)``,
  ``save``/``load``) and ``Trial`` (``report``, ``should_stop``).
- :mod:`.samplers`: ``GridSampler`` (1.6.1), ``RandomSampler`` (1.6.2); :mod:`.gp`: ``GPSampler``
  (1.6.3, Algorithm 1.1, eq. 1.58) and its ``GaussianProcess``.
- :mod:`.schedulers`: ``SuccessiveHalving`` (1.6.4, Algorithm 1.2) and ``Hyperband``.
- :mod:`.functions`: Branin, Hartmann6 and a learning-curve model (benchmark and tests);
  :mod:`.example`: Hyperband tuning an MLP on scikit-learn's digits.

The saved file (``Study.save``; ``Study.load`` reads it back and the study continues exactly as
if never interrupted) is one JSON object::

    {"format": "nndl_fast.search.Study/1",
     "direction": "minimize" | "maximize", "seed": int,
     "space": {name: {"type": "Float" | "Int", "low", "high", "log", "when": {parent: [values]}}
                   | {"type": "Categorical", "choices": [...], "when": {...}}, ...},   # in order
     "sampler": {"type": "RandomSampler" | "GridSampler" | "GPSampler",
                 "config": {constructor arguments}, "state": {...}},   # GPSampler: theta, n_fit
     "trials": [{"number", "params": {active parameters}, "state", "value", "error",
                 "intermediate": [[resource, value], ...], "resource", "resumed_from"}, ...]}

Floats are written as Python's ``repr`` and so read back to the same bits; ``value`` is null for
failed and running trials. GPSampler's ``theta`` is (log ℓ per parameter, log σ_f², log σ_n²),
the hyper-parameters of its last fit, the warm start of the next. A scheduler's progress through
its brackets is not saved: save a study between scheduler runs.
"""

from __future__ import annotations

from .gp import GaussianProcess, GPSampler, expected_improvement
from .samplers import GridSampler, RandomSampler, Sampler
from .space import Categorical, Float, Int, Space
from .study import Study, Trial

__all__ = [
    "Categorical",
    "Float",
    "GPSampler",
    "GaussianProcess",
    "GridSampler",
    "Int",
    "RandomSampler",
    "Sampler",
    "Space",
    "Study",
    "Trial",
    "expected_improvement",
]
