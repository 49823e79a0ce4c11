"""Hyper-parameter optimisation (1.6): grid, random and Bayesian search, successive halving, Hyperband.

Plain Python over NumPy (SciPy for the GP sampler: ``pip install 'nndl_fast[search]'``).
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
