r"""Data pre-processing (section 1.4 of the chapter): min-max scaling, z-score standardisation,
PCA and ZCA whitening, as scikit-learn-compatible transformers.

With x_j^{(n)} feature j of sample n (N samples, D features):

**Min-max scaling** (1.38), then mapped onto ``feature_range`` = (a, b):

.. math::
   \hat x_j^{(n)} = \frac{x_j^{(n)} - \min_n x_j^{(n)}}{\max_n x_j^{(n)} - \min_n x_j^{(n)}}\,(b - a) + a

**Standardisation** (1.39–1.41), with the biased (1/N) variance, as the chapter and
scikit-learn's ``StandardScaler`` define it:

.. math::
   \mu_j = \frac1N \sum_n x_j^{(n)}, \qquad
   \sigma_j^2 = \frac1N \sum_n \bigl(x_j^{(n)} - \mu_j\bigr)^2, \qquad
   \hat x_j^{(n)} = \frac{x_j^{(n)} - \mu_j}{\sigma_j}

**PCA whitening**: with the covariance Σ = Xcᵀ Xc / (N − 1) of the centred data Xc and its
eigendecomposition Σ = U diag(λ) Uᵀ (λ descending), keep the first k eigenvectors U_k and

.. math::
   \hat x = (x - \mu)\, U_k\, \mathrm{diag}\bigl(1/\sqrt{\lambda_k + \varepsilon}\bigr)

(decorrelated features of equal variance). **ZCA whitening** rotates back:
W = U diag(1/√(λ + ε)) Uᵀ, x̂ = (x − μ) W — of all whitenings, the output closest to the
input in mean squared distance. With ε = 0 the output's covariance is the identity;
ε > 0 damps the directions of smallest variance instead of blowing up their noise.

Symbols → attributes (scikit-learn's names): μ → ``mean_``, σ² → ``var_``, σ → ``scale_``
(StandardScaler), min/max → ``data_min_`` / ``data_max_``, λ → ``explained_variance_``,
Uᵀ → ``components_``, W → ``whitening_``, N → ``n_samples_seen_``.

**How they run.** Fitting reads the data once: count, mean, M2 = Σ(x − μ)², min and max of
every column in one pass, in double, in blocks of rows merged in a fixed order (Chan,
Golub & LeVeque), so the statistics are bitwise identical for any thread count, and
``partial_fit`` over runs of rows gives the same statistics as one ``fit`` to rounding
(bitwise when every run but the last is a multiple of ``_core.column_stats_rows`` rows).
Whitening accumulates the co-moment matrix Σ(x − μ)(x − μ)ᵀ chunk by chunk (BLAS matmul,
chunks merged by Chan's formula) and takes its eigenvectors with ``numpy.linalg.eigh``.
Transforming the scalers is one fused pass y = (x − shift)·scale (+ offset); ``copy=False``
or ``out=`` writes in place, and float32 stays float32. Input may be C- or F-ordered, and a
``numpy.memmap`` larger than memory is read chunk by chunk, each chunk's pages released
after use.

**Degenerate input.** A feature of zero variance (standardisation) or zero range (min-max)
gets scale 1, as in scikit-learn, with a :class:`DegenerateFeatureWarning` naming it. A NaN
in the data given to ``fit`` / ``partial_fit`` is an error naming the feature, or, with
``nan_policy="omit"`` (the scalers), is left out of that feature's statistics; a scaler's
``transform`` passes NaNs through (as scikit-learn's do), a whitening's rejects them. ±inf in
fitted data is always an error. Empty data, one sample for a whitening (no covariance), and a
feature count other than the fitted one raise ValueError.

**scikit-learn.** The transformers follow its estimator protocol (``get_params``,
``set_params``, ``clone``, fitted attributes ending in ``_``) without importing it, so they
work in a ``Pipeline`` or ``GridSearchCV``; scikit-learn is not a dependency.
"""

from __future__ import annotations

import inspect
import mmap
import numbers
import operator
import warnings
from typing import Any

import numpy as np

from . import _checks, _core

__all__ = [
    "DegenerateFeatureWarning",
    "MinMaxScaler",
    "NotFittedError",
    "PCAWhitening",
    "StandardScaler",
    "ZCAWhitening",
]

# Bytes of a memmap read per kernel call: large enough to keep the threads busy, small enough
# that the resident pages of one chunk are a small part of the memory.
_MAPPED_CHUNK_BYTES = 64 << 20
# Rows per chunk of the whitening passes (float64 copy, centring, matmul): a few MB per chunk.
_WHITEN_ROWS = 4096
_NAN_POLICIES = ("raise", "omit")


class DegenerateFeatureWarning(UserWarning):
    """A feature with zero variance or zero range: it is given scale 1 (only shifted)."""


class NotFittedError(ValueError, AttributeError):
    """``transform`` or ``inverse_transform`` before ``fit`` (scikit-learn's exception bases)."""


# --------------------------------------------------------------------------------------------
# Input


def _table(X: Any, who: str) -> np.ndarray:
    """X as a 2-D float32/float64 array, C- or F-contiguous; other array-likes are converted as
    scikit-learn converts them (integers and objects to float64). Arrays already in that form,
    memmaps included, are used as they are."""
    if hasattr(X, "tocsr") or hasattr(X, "toarray"):
        raise TypeError(f"{who} does not support sparse input: pass a dense array (X.toarray())")
    if not isinstance(X, np.ndarray) and hasattr(X, "detach") and hasattr(X, "numpy"):
        X = X.detach().numpy()  # a torch CPU tensor: a view of its memory
    a = X if isinstance(X, np.memmap) else np.asarray(X)  # a memmap stays one: read by chunks
    if a.dtype.kind == "c":
        raise ValueError(f"{who}: Complex data not supported")
    if a.dtype.kind not in "fiub" and a.dtype != object:
        raise ValueError(f"{who}: X must be numeric, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(
            f"{who} expects a 2D array (n_samples, n_features), got {a.ndim}D array of shape {a.shape}. "
            "Reshape your data with array.reshape(-1, 1) for a single feature or array.reshape(1, -1) "
            "for a single sample"
        )
    want = a.dtype if a.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    if a.dtype != want or not a.dtype.isnative or not a.flags.aligned:
        a = a.astype(want.newbyteorder("="), order="K")
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        a = np.ascontiguousarray(a)
    n, d = a.shape
    if d == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={a.shape}) while a minimum of 1 is required by {who}.")
    if n == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={a.shape}) while a minimum of 1 is required by {who}.")
    return a


def _f_order(a: np.ndarray) -> bool:
    return a.flags.f_contiguous and not a.flags.c_contiguous


def _release(a: np.ndarray) -> None:
    """Drops the pages of a memmap chunk from the process's resident set (they stay in the
    page cache; a written page is still written back), so a pass over a mapping larger than
    memory holds one chunk at a time."""
    mm = getattr(a, "_mmap", None)
    dontneed = getattr(mmap, "MADV_DONTNEED", None)
    if not isinstance(mm, mmap.mmap) or not hasattr(mm, "madvise") or dontneed is None:
        return
    base = np.frombuffer(mm, np.uint8, count=1).ctypes.data
    start = a.ctypes.data - base
    lo = start // mmap.PAGESIZE * mmap.PAGESIZE
    mm.madvise(dontneed, lo, start + a.nbytes - lo)


def _chunks(a: np.ndarray) -> list[tuple[slice, slice]]:
    """(rows, columns) pieces of a memmap, each contiguous: runs of whole statistics blocks of
    rows (C order) or runs of columns (F order); one piece for an array in memory."""
    n, d = a.shape
    if not isinstance(a, np.memmap) or a.nbytes <= _MAPPED_CHUNK_BYTES:
        return [(slice(None), slice(None))]
    if _f_order(a):
        cols = max(1, _MAPPED_CHUNK_BYTES // (n * a.itemsize))
        return [(slice(None), slice(c, min(d, c + cols))) for c in range(0, d, cols)]
    block = _core.column_stats_rows
    rows = max(1, _MAPPED_CHUNK_BYTES // (block * d * a.itemsize)) * block
    return [(slice(r, min(n, r + rows)), slice(None)) for r in range(0, n, rows)]


def _empty_stats(d: int) -> np.ndarray:
    st = np.zeros((5, d))
    st[3], st[4] = np.inf, -np.inf
    return st


def _update_stats(stats: np.ndarray, a: np.ndarray, omit_nan: bool, moments: bool) -> None:
    """stats (5, d) = (count, mean, M2, min, max) per column, updated with the rows of a;
    with ``moments`` count, mean and M2 only (min and max, which no moments user reads, stay as
    they were: a quarter of the pass's arithmetic); else count, min and max (mean is 0, or NaN
    once X held NaN or ±inf)."""
    minmax = not moments
    for rows, cols in _chunks(a):
        piece = a[rows, cols]
        if cols == slice(None):
            _core.column_stats_update(piece, stats, omit_nan, moments, minmax)
        else:
            sub = np.ascontiguousarray(stats[:, cols])
            _core.column_stats_update(piece, sub, omit_nan, moments, minmax)
            stats[:, cols] = sub
        _release(piece)


def _affine(
    a: np.ndarray,
    out: np.ndarray | None,
    shift: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray | None,
    clip: tuple[float, float] | None = None,
) -> np.ndarray:
    """out = (a − shift)·scale (+ offset), clipped when asked, in a's dtype."""
    dt = a.dtype
    shift, scale = shift.astype(dt), scale.astype(dt)
    offset = None if offset is None else offset.astype(dt)
    lo, hi = clip if clip is not None else (0.0, 0.0)
    pieces = _chunks(a)
    if len(pieces) == 1:
        return _core.column_affine(a, out, shift, scale, offset, clip is not None, lo, hi)
    if out is None:
        out = np.empty(a.shape, dt, order="F" if _f_order(a) else "C")
    for rows, cols in pieces:
        o = None if offset is None else offset[cols]
        _core.column_affine(a[rows, cols], out[rows, cols], shift[cols], scale[cols], o, clip is not None, lo, hi)
        _release(a[rows, cols])
        _release(out[rows, cols])
    return out


def _names(mask: np.ndarray, limit: int = 10) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:limit])
    return shown + (f" and {idx.size - limit} more" if idx.size > limit else "")


def _check_finite_stats(stats: np.ndarray, who: str, omit_nan: bool, moments: bool = False) -> None:
    """Raises ValueError naming the features whose data held NaN (unless omitted) or ±inf
    (with ``moments``, mean and M2 show them: min and max were not computed)."""
    finite = np.isfinite(stats[1]) & np.isfinite(stats[2])
    bad = ~(finite if moments else finite & np.isfinite(stats[3]) & np.isfinite(stats[4]))
    bad &= stats[0] > 0
    if bad.any():
        what = "infinity" if omit_nan else "NaN or infinity"
        hint = "" if omit_nan else ' (nan_policy="omit" leaves NaNs out of a feature\'s statistics)'
        raise ValueError(f"{who}: X contains {what} in feature(s) {_names(bad)}{hint}")
    empty = stats[0] == 0
    if empty.any():
        raise ValueError(f"{who}: feature(s) {_names(empty)} have no value that is not NaN")


def _samples_seen(counts: np.ndarray) -> int | np.ndarray:
    """scikit-learn's n_samples_seen_: an int when every feature counted every sample."""
    if np.all(counts == counts[0]):
        return int(counts[0])
    return counts.astype(np.int64)


# --------------------------------------------------------------------------------------------
# The estimator protocol, by hand


class _Estimator:
    """get_params / set_params / __repr__ as scikit-learn's BaseEstimator defines them: the
    constructor stores its arguments verbatim (checked at fit), so clone() and grid searches
    work without scikit-learn."""

    n_features_in_: int  # set by fit (scikit-learn's test of "fitted": hasattr)

    def fit(self, X: Any, y: Any = None) -> Any:
        raise NotImplementedError

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments, as stored (``deep`` is accepted: no sub-estimators)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> _Estimator:
        """Sets constructor arguments by name (checked at the next fit); returns self."""
        valid = self._param_names()
        for key in params:
            if key not in valid:
                raise ValueError(f"Invalid parameter {key!r} for estimator {self!r}. Valid parameters are: {valid!r}.")
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        changed = []
        for name in self._param_names():
            default = sig.parameters[name].default
            value = getattr(self, name, default)
            same = value is default or (type(value) is type(default) and _eq(value, default))
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags  # only scikit-learn calls this

        return Tags(
            estimator_type="transformer",
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"]),
            input_tags=InputTags(allow_nan=self._allow_nan),
        )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_features_in_")

    _allow_nan = False

    def _fitted(self, who: str) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet: call fit or partial_fit before {who}."
            )

    def _check_features(self, a: np.ndarray) -> None:
        if a.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {a.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """fit(X), then transform(X): one pass over X to fit, one to transform."""
        return self.fit(X, y, **fit_params).transform(X)

    def _feature_prefix(self) -> str | None:
        return None

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output feature names: the input's (scalers) or ``<classname><i>`` (whitenings)."""
        self._fitted("get_feature_names_out")
        prefix = self._feature_prefix()
        if prefix is not None:
            return np.asarray([f"{prefix}{i}" for i in range(self._n_out())], dtype=object)
        if input_features is None:
            return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        names = np.asarray(input_features, dtype=object)
        if names.shape != (self.n_features_in_,):
            raise ValueError(f"input_features should have length equal to number of features ({self.n_features_in_})")
        return names

    def _n_out(self) -> int:
        return int(self.n_features_in_)


def _eq(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (ValueError, TypeError):
        return False


def _out_target(a: np.ndarray, copy: Any, out: Any) -> Any:
    """Where transform writes: ``out`` if given, else x itself for ``copy=False`` (in place), else
    a new array (None)."""
    copy = True if copy is None else _checks.flag("copy", copy)
    if out is not None:
        return out
    return None if copy else a


# --------------------------------------------------------------------------------------------
# Scalers


class _Scaler(_Estimator):
    _allow_nan = True  # transform passes NaNs through, as scikit-learn's scalers do
    _moments = True  # the fit needs mean and M2 (else only count, min and max)
    nan_policy: Any
    _stats: np.ndarray
    mean_: Any
    var_: Any
    scale_: Any

    def _check_params(self) -> None:
        raise NotImplementedError

    def _set_attributes(self, stats: np.ndarray) -> None:
        raise NotImplementedError

    def _forward(self) -> tuple:
        """(shift, scale, offset or None, (lo, hi) or None) of transform."""
        raise NotImplementedError

    def _backward(self) -> tuple:
        """(shift, scale, offset or None) of inverse_transform."""
        raise NotImplementedError

    def _policy(self) -> bool:
        return _checks.choice("nan_policy", self.nan_policy, _NAN_POLICIES) == "omit"

    def fit(self, X: Any, y: Any = None) -> _Scaler:
        """Statistics of X (one pass), replacing any earlier fit. Returns self."""
        self._check_params()
        a = _table(X, type(self).__name__)
        return self._fit_rows(a, None)

    def partial_fit(self, X: Any, y: Any = None) -> _Scaler:
        """Adds the rows of X to the statistics (merged by Chan's formula). Returns self."""
        self._check_params()
        a = _table(X, type(self).__name__)
        old = None
        if self.__sklearn_is_fitted__():
            self._check_features(a)
            old = self._stats
        return self._fit_rows(a, old)

    def _fit_rows(self, a: np.ndarray, old: np.ndarray | None) -> _Scaler:
        omit = self._policy()
        stats = _empty_stats(a.shape[1]) if old is None else old.copy()
        _update_stats(stats, a, omit, self._moments)
        _check_finite_stats(stats, type(self).__name__, omit, self._moments)
        self._stats = stats  # nothing changed before this line: a rejected call leaves the fit as it was
        self.n_features_in_ = a.shape[1]
        self.n_samples_seen_ = _samples_seen(stats[0])
        self._set_attributes(stats)
        return self

    def transform(self, X: Any, copy: Any = None, *, out: Any = None) -> np.ndarray:
        """The fitted map of X, in X's dtype (float32 stays float32; other types become float64).
        ``copy=False`` writes into X when X is a float32/float64 C- or F-contiguous array;
        ``out=`` writes into ``out`` (X's shape, dtype and memory order)."""
        self._fitted("transform")
        a = _table(X, type(self).__name__)
        self._check_features(a)
        shift, scale, offset, clip = self._forward()
        return _affine(a, _out_target(a, copy, out), shift, scale, offset, clip)

    def inverse_transform(self, X: Any, copy: Any = None, *, out: Any = None) -> np.ndarray:
        """The inverse map (back to the original units); ``copy`` and ``out`` as for transform."""
        self._fitted("inverse_transform")
        a = _table(X, type(self).__name__)
        self._check_features(a)
        shift, scale, offset = self._backward()
        return _affine(a, _out_target(a, copy, out), shift, scale, offset)


def _warn_degenerate(mask: np.ndarray, who: str, what: str) -> None:
    if mask.any():
        warnings.warn(
            f"{who}: feature(s) {_names(mask)} have {what}; their scale is 1 (they are only shifted)",
            DegenerateFeatureWarning,
            stacklevel=4,
        )


class StandardScaler(_Scaler):
    r"""Z-score standardisation (1.39–1.41): :math:`\hat x_j = (x_j - \mu_j)/\sigma_j`, σ² the
    biased (1/N) variance; see the module docstring.

    ``with_mean=False`` skips the centring, ``with_std=False`` the scaling. A feature of zero
    variance (to rounding, by scikit-learn's test) gets σ = 1, with a
    :class:`DegenerateFeatureWarning`. ``nan_policy="omit"`` leaves NaNs out of each feature's
    statistics (``n_samples_seen_`` is then per feature when the counts differ).

    Fitted attributes: ``mean_``, ``var_``, ``scale_`` (σ, 1 where σ = 0), ``n_samples_seen_``,
    ``n_features_in_``. Differs from scikit-learn's StandardScaler in: no ``copy`` parameter
    (``transform(X, copy=False)`` or ``out=`` instead), no sparse input, no sample weights.
    """

    def __init__(self, with_mean: Any = True, with_std: Any = True, *, nan_policy: Any = "raise") -> None:
        self.with_mean = with_mean
        self.with_std = with_std
        self.nan_policy = nan_policy

    def _check_params(self) -> None:
        _checks.flag("with_mean", self.with_mean)
        _checks.flag("with_std", self.with_std)
        self._policy()

    def _set_attributes(self, stats: np.ndarray) -> None:
        n, mean, m2 = stats[0], stats[1], stats[2]
        self.mean_ = mean.copy() if (self.with_mean or self.with_std) else None
        if not self.with_std:
            self.var_ = self.scale_ = None
            return
        var = m2 / n
        eps = np.finfo(np.float64).eps
        constant = var <= n * eps * var + (n * mean * eps) ** 2  # scikit-learn's _is_constant_feature
        _warn_degenerate(constant, "StandardScaler", "zero variance")
        self.var_ = var
        self.scale_ = np.where(constant, 1.0, np.sqrt(var))

    def _forward(self) -> tuple:
        d = self.n_features_in_
        shift = self.mean_ if self.with_mean else np.zeros(d)
        scale = 1.0 / self.scale_ if self.with_std else np.ones(d)
        return shift, scale, None, None

    def _backward(self) -> tuple:
        d = self.n_features_in_
        offset = self.mean_ if self.with_mean else None
        scale = self.scale_ if self.with_std else np.ones(d)
        return np.zeros(d), scale, offset


class MinMaxScaler(_Scaler):
    r"""Min-max scaling (1.38) onto ``feature_range`` = (a, b):
    :math:`\hat x_j = (x_j - \min_j)/(\max_j - \min_j)\cdot(b - a) + a`.

    A feature of zero range gets scale b − a (its values all map to a), as in scikit-learn,
    with a :class:`DegenerateFeatureWarning`. ``clip=True`` limits transformed values to
    [a, b] (for data outside the fitted range). ``nan_policy="omit"`` leaves NaNs out of each
    feature's min and max.

    Fitted attributes (scikit-learn's): ``data_min_``, ``data_max_``, ``data_range_``,
    ``scale_`` = (b − a)/range, ``min_`` = a − data_min_·scale_ (so x·scale_ + min_ is the
    map), ``n_samples_seen_``, ``n_features_in_``. The map is computed as
    (x − data_min_)·scale_ + a, which is exact at x = data_min_.
    """

    _moments = False  # min and max only: one cheap pass in the input's type

    def __init__(self, feature_range: Any = (0, 1), clip: Any = False, *, nan_policy: Any = "raise") -> None:
        self.feature_range = feature_range
        self.clip = clip
        self.nan_policy = nan_policy

    def _range(self) -> tuple[float, float]:
        fr = self.feature_range
        if isinstance(fr, (str, bytes)) or not hasattr(fr, "__len__") or len(fr) != 2:
            raise TypeError(f"feature_range must be a pair (min, max), got {fr!r}")
        a = _checks.real("feature_range[0]", fr[0])
        b = _checks.real("feature_range[1]", fr[1])
        if not a < b:
            raise ValueError(f"feature_range must have min < max, got {tuple(fr)!r}")
        return a, b

    def _check_params(self) -> None:
        self._range()
        _checks.flag("clip", self.clip)
        self._policy()

    def _set_attributes(self, stats: np.ndarray) -> None:
        a, b = self._range()
        self.data_min_ = stats[3].copy()
        self.data_max_ = stats[4].copy()
        self.data_range_ = self.data_max_ - self.data_min_
        zero = self.data_range_ == 0
        _warn_degenerate(zero, "MinMaxScaler", "zero range")
        self.scale_ = (b - a) / np.where(zero, 1.0, self.data_range_)
        self.min_ = a - self.data_min_ * self.scale_

    def _forward(self) -> tuple:
        a, b = self._range()
        d = self.n_features_in_
        clip = (a, b) if _checks.flag("clip", self.clip) else None
        return self.data_min_, self.scale_, np.full(d, a), clip

    def _backward(self) -> tuple:
        a, _ = self._range()
        return np.full(self.n_features_in_, a), 1.0 / self.scale_, self.data_min_


# --------------------------------------------------------------------------------------------
# Whitening


class _Whitening(_Estimator):
    """Co-moments Σ(x − μ)(x − μ)ᵀ streamed in chunks of rows, merged by Chan's formula;
    eigh of the covariance; transform (x − μ)·W by chunks (the centring in C++, the product
    through BLAS)."""

    eps: Any
    whitening_: np.ndarray
    _unwhitening: np.ndarray
    _state: tuple

    def _check_params(self) -> None:
        raise NotImplementedError

    def _keep(self, lam: np.ndarray, n: int) -> int:
        """How many components to keep."""
        raise NotImplementedError

    def _set_whitening(self, u: np.ndarray, lam: np.ndarray, k: int, eps: float) -> None:
        raise NotImplementedError

    def _check_eps(self) -> float:
        return _checks.real("eps", self.eps, 0.0)

    def fit(self, X: Any, y: Any = None) -> _Whitening:
        """Mean and covariance of X, then the whitening matrix. Returns self."""
        self._check_params()
        a = _table(X, type(self).__name__)
        return self._finish(a.shape[1], self._comoments(a, None))

    def partial_fit(self, X: Any, y: Any = None) -> _Whitening:
        """Adds the rows of X to the co-moments and recomputes the whitening. Returns self."""
        self._check_params()
        a = _table(X, type(self).__name__)
        state = None
        if self.__sklearn_is_fitted__():
            self._check_features(a)
            state = self._state
        return self._finish(a.shape[1], self._comoments(a, state))

    def _comoments(self, a: np.ndarray, state: tuple | None) -> tuple:
        """(n, mean, M) of the rows of a merged into state (None: nothing yet)."""
        who = type(self).__name__
        n, d = a.shape
        total = state
        for r0 in range(0, n, _WHITEN_ROWS):
            piece = a[r0 : r0 + _WHITEN_ROWS]
            xc = np.array(piece, dtype=np.float64, order="C")
            _release(piece)
            st = _empty_stats(d)
            _core.column_stats_update(xc, st, False, True, False)
            _check_finite_stats(st, who, False, True)
            mean = st[1].copy()
            _core.column_affine(xc, xc, mean, np.ones(d), None, False, 0.0, 0.0)  # centre in place
            m = xc.T @ xc
            nb = float(xc.shape[0])
            if total is None:
                total = (nb, mean, m)
                continue
            na, ma, mm = total
            nt = na + nb
            delta = mean - ma
            total = (nt, ma + delta * (nb / nt), mm + m + np.outer(delta, delta) * (na * nb / nt))
        assert total is not None  # _table rejected an empty x
        return total

    def _finish(self, d: int, state: tuple) -> _Whitening:
        """The fitted attributes from the merged (n, mean, M); checks everything first."""
        who = type(self).__name__
        n = state[0]
        if n < 2:
            raise ValueError(f"{who} needs at least 2 samples to estimate a covariance, got 1 sample (n_samples=1)")
        eps = self._check_eps()
        cov = state[2] / (n - 1)
        lam, u = np.linalg.eigh((cov + cov.T) / 2)  # symmetric to the last bit
        lam, u = np.maximum(lam[::-1], 0.0), u[:, ::-1]
        # scikit-learn's sign rule: the largest |entry| of each component is positive
        big = np.argmax(np.abs(u), axis=0)
        u = u * np.sign(u[big, np.arange(u.shape[1])])
        k = self._keep(lam, int(n))
        if eps == 0 and np.any(lam[:k] == 0):
            raise ValueError(f"{who}: the covariance has a zero eigenvalue and eps=0: no whitening exists")
        self._state = state
        self.n_features_in_ = d
        self.n_samples_seen_ = int(n)
        self.mean_ = state[1].copy()
        self.n_components_ = k
        total = lam.sum()
        self.components_ = np.ascontiguousarray(u[:, :k].T)
        self.explained_variance_ = lam[:k].copy()
        self.explained_variance_ratio_ = lam[:k] / total if total > 0 else np.zeros(k)
        self._set_whitening(u, lam, k, eps)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """(x − mean_)·whitening_, in X's dtype (float32 stays float32)."""
        self._fitted("transform")
        a = _table(X, type(self).__name__)
        self._check_features(a)
        return self._map(a, self.mean_, self.whitening_, True)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """x = x̂·whitening_⁻¹ + mean_ (exact only when every component was kept)."""
        self._fitted("inverse_transform")
        a = _table(X, type(self).__name__)
        if a.shape[1] != self._n_out():
            raise ValueError(
                f"X has {a.shape[1]} features, but {type(self).__name__}.inverse_transform is expecting "
                f"{self._n_out()} features as input."
            )
        return self._map(a, None, self._unwhitening, False)

    def _map(self, a: np.ndarray, mean: np.ndarray | None, w: np.ndarray, check: bool) -> np.ndarray:
        dt = a.dtype
        n, d = a.shape
        w = w.astype(dt)
        y = np.empty((n, w.shape[1]), dt)
        for r0 in range(0, n, _WHITEN_ROWS):
            piece = a[r0 : r0 + _WHITEN_ROWS]
            if check and not np.isfinite(piece).all():
                raise ValueError(f"{type(self).__name__}: X contains NaN or infinity")
            if mean is not None:
                xc = _core.column_affine(
                    np.ascontiguousarray(piece), None, mean.astype(dt), np.ones(d, dt), None, False, 0, 0
                )
            else:
                xc = piece
            np.matmul(xc, w, out=y[r0 : r0 + _WHITEN_ROWS])
            _release(piece)
        if mean is None:  # inverse: add the mean back, in place
            _core.column_affine(y, y, (-self.mean_).astype(dt), np.ones(y.shape[1], dt), None, False, 0, 0)
        return y

    def _feature_prefix(self) -> str | None:
        return type(self).__name__.lower()


class PCAWhitening(_Whitening):
    r"""PCA whitening: :math:`\hat x = (x - \mu)\,U_k\,\mathrm{diag}(1/\sqrt{\lambda_k + \varepsilon})`
    (module docstring). Σ uses 1/(N − 1), as ``sklearn.decomposition.PCA``; with ``eps=0`` the
    transform equals ``PCA(whiten=True).transform``.

    ``n_components``: None keeps min(N, D) components; an int k keeps k; a float in (0, 1)
    keeps the fewest components whose explained variance ratio sums to at least it.

    Fitted attributes (scikit-learn's): ``mean_``, ``components_`` (k, D) = U_kᵀ,
    ``explained_variance_`` (λ_k), ``explained_variance_ratio_``, ``n_components_``,
    ``n_samples_seen_``, ``n_features_in_``, and ``whitening_`` (D, k), the matrix applied.
    """

    def __init__(self, n_components: Any = None, eps: Any = 1e-5) -> None:
        self.n_components = n_components
        self.eps = eps

    def _check_params(self) -> None:
        self._check_eps()
        nc = self.n_components
        if nc is None:
            return
        if isinstance(nc, numbers.Integral) and not isinstance(nc, bool):
            _checks.integer("n_components", nc, 1)
        elif isinstance(nc, numbers.Real) and not isinstance(nc, bool):
            _checks.real("n_components", nc, 0.0, 1.0, lo_open=True, hi_open=True)
        else:
            raise TypeError(f"n_components must be None, an int or a float in (0, 1), got {type(nc).__name__}")

    def _keep(self, lam: np.ndarray, n: int) -> int:
        d = lam.size
        nc = self.n_components
        if nc is None:
            return min(n, d)
        if isinstance(nc, numbers.Integral):
            k = operator.index(nc)
            if k > d:
                raise ValueError(f"n_components={nc} must be at most n_features={d}")
            return k
        ratio = np.cumsum(lam) / lam.sum() if lam.sum() > 0 else np.ones(d)
        k = int(np.searchsorted(ratio, float(nc), side="right")) + 1
        return min(k, d)

    def _set_whitening(self, u: np.ndarray, lam: np.ndarray, k: int, eps: float) -> None:
        root = np.sqrt(lam[:k] + eps)
        self.whitening_ = u[:, :k] / root
        self._unwhitening = root[:, None] * u[:, :k].T

    def _n_out(self) -> int:
        return int(self.n_components_)


class ZCAWhitening(_Whitening):
    r"""ZCA whitening: W = U diag(1/√(λ + ε)) Uᵀ, :math:`\hat x = (x - \mu) W` (module
    docstring): the PCA whitening rotated back into the input's coordinates, so that of all
    whitened outputs it is the closest to the input in mean squared distance. Every
    component is kept.

    Fitted attributes: ``mean_``, ``components_`` (D, D) = Uᵀ, ``explained_variance_`` (λ),
    ``explained_variance_ratio_``, ``n_components_`` = D, ``n_samples_seen_``,
    ``n_features_in_``, and ``whitening_`` = W (D, D, symmetric).
    """

    def __init__(self, eps: Any = 1e-5) -> None:
        self.eps = eps

    def _check_params(self) -> None:
        self._check_eps()

    def _keep(self, lam: np.ndarray, n: int) -> int:
        return int(lam.size)

    def _set_whitening(self, u: np.ndarray, lam: np.ndarray, k: int, eps: float) -> None:
        root = np.sqrt(lam + eps)
        self.whitening_ = (u / root) @ u.T
        self._unwhitening = (u * root) @ u.T

    def _feature_prefix(self) -> str | None:
        return None
