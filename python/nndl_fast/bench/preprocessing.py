"""Pre-processing rows of the benchmark harness: StandardScaler and MinMaxScaler fit and
fit+transform on (1 000 000, 64) and (60 000, 784) float32, PCA whitening on (60 000, 784).

Floor: a fit reads x once (4 bytes per element); fit+transform reads x twice and writes y
once (12 bytes). A fit is a read-only pass, compared with the copy probe (read one stream,
write one): the nearest the harness measures. scikit-learn's rows are its
StandardScaler / MinMaxScaler / PCA(whiten=True, svd_solver="full"); NumPy's are the
direct formulas (mean and var, or min and max, then the broadcast map); torch's is
var_mean over the rows. PCA whitening is compute-bound (co-moments and projection are
matmuls): its rows give the time, split into statistics / eigh / projection.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import preprocessing
from .harness import Bench


def _sklearn() -> Any:
    try:
        import sklearn.decomposition
        import sklearn.preprocessing

        return sklearn
    except ImportError:
        return None


def _scaler_rows(bench: Bench, torch: Any, sk: Any, x: np.ndarray, case: str) -> None:
    y = np.empty_like(x)
    nbytes = x.nbytes
    if bench.wants("standard_scaler_fit"):
        bench.measure(
            "standard_scaler_fit",
            case,
            "nndl_fast",
            lambda: preprocessing.StandardScaler().fit(x),
            nbytes=nbytes,
            limit="sum",
            note="read-only pass",
        )
        if sk is not None:
            bench.measure(
                "standard_scaler_fit",
                case,
                "scikit-learn",
                lambda: sk.preprocessing.StandardScaler().fit(x),
                nbytes=nbytes,
                limit="sum",
                min_seconds=0.3,
            )
        bench.measure(
            "standard_scaler_fit",
            case,
            "numpy",
            lambda: (x.mean(axis=0), x.var(axis=0)),
            nbytes=nbytes,
            limit="sum",
            min_seconds=0.3,
        )
        if torch is not None:
            xt = torch.from_numpy(x)
            bench.measure(
                "standard_scaler_fit",
                case,
                "torch var_mean",
                lambda: torch.var_mean(xt, dim=0, unbiased=False),
                nbytes=nbytes,
                limit="sum",
                min_seconds=0.3,
            )
        bench.flush()
    if bench.wants("standard_scaler_fit_transform"):

        def ours() -> None:
            preprocessing.StandardScaler().fit(x).transform(x, out=y)

        def numpy_ft() -> None:
            np.divide(np.subtract(x, x.mean(axis=0), out=y), x.std(axis=0), out=y)

        bench.measure("standard_scaler_fit_transform", case, "nndl_fast", ours, nbytes=3 * nbytes, limit="copy")
        if sk is not None:
            bench.measure(
                "standard_scaler_fit_transform",
                case,
                "scikit-learn",
                lambda: sk.preprocessing.StandardScaler().fit_transform(x),
                nbytes=3 * nbytes,
                limit="copy",
                min_seconds=0.3,
            )
        bench.measure(
            "standard_scaler_fit_transform", case, "numpy", numpy_ft, nbytes=3 * nbytes, limit="copy", min_seconds=0.3
        )
        bench.flush()
    if bench.wants("min_max_scaler_fit"):
        bench.measure(
            "min_max_scaler_fit",
            case,
            "nndl_fast",
            lambda: preprocessing.MinMaxScaler().fit(x),
            nbytes=nbytes,
            limit="sum",
            note="read-only pass",
        )
        if sk is not None:
            bench.measure(
                "min_max_scaler_fit",
                case,
                "scikit-learn",
                lambda: sk.preprocessing.MinMaxScaler().fit(x),
                nbytes=nbytes,
                limit="sum",
                min_seconds=0.3,
            )
        bench.measure(
            "min_max_scaler_fit",
            case,
            "numpy",
            lambda: (x.min(axis=0), x.max(axis=0)),
            nbytes=nbytes,
            limit="sum",
            min_seconds=0.3,
        )
        bench.flush()
    if bench.wants("min_max_scaler_fit_transform"):

        def ours_mm() -> None:
            preprocessing.MinMaxScaler().fit(x).transform(x, out=y)

        def numpy_mm() -> None:
            lo = x.min(axis=0)
            np.divide(np.subtract(x, lo, out=y), x.max(axis=0) - lo, out=y)

        bench.measure("min_max_scaler_fit_transform", case, "nndl_fast", ours_mm, nbytes=3 * nbytes, limit="copy")
        if sk is not None:
            bench.measure(
                "min_max_scaler_fit_transform",
                case,
                "scikit-learn",
                lambda: sk.preprocessing.MinMaxScaler().fit_transform(x),
                nbytes=3 * nbytes,
                limit="copy",
                min_seconds=0.3,
            )
        bench.measure(
            "min_max_scaler_fit_transform", case, "numpy", numpy_mm, nbytes=3 * nbytes, limit="copy", min_seconds=0.3
        )
        bench.flush()


def _pca_rows(bench: Bench, sk: Any, x: np.ndarray, case: str) -> None:
    if not bench.wants("pca_whitening"):
        return
    from ..reference import preprocessing as ref

    est = preprocessing.PCAWhitening(eps=0.0)
    nbytes = 2 * x.nbytes + x.nbytes  # read to fit, read and write (k = d) to transform
    bench.measure(
        "pca_whitening_fit_transform",
        case,
        "nndl_fast",
        lambda: est.fit_transform(x),
        nbytes=nbytes,
        limit="copy",
        min_seconds=1.0,
    )
    if sk is not None:
        pca = sk.decomposition.PCA(whiten=True, svd_solver="full")
        bench.measure(
            "pca_whitening_fit_transform",
            case,
            "scikit-learn",
            lambda: pca.fit_transform(x),
            nbytes=nbytes,
            limit="copy",
            min_seconds=1.0,
        )
    bench.measure(
        "pca_whitening_fit_transform",
        case,
        "numpy reference",
        lambda: ref.pca_whiten(x, eps=0.0),
        nbytes=nbytes,
        limit="copy",
        min_seconds=1.0,
    )
    bench.flush()
    # Where our time goes: co-moments (one pass, BLAS), eigh of the (d, d) covariance, projection.
    est.fit(x)
    cov = est._state[2] / (x.shape[0] - 1)
    split = "split of nndl_fast's fit+transform"
    bench.measure(
        "pca_whitening_stats",
        case,
        "nndl_fast",
        lambda: est._comoments(x, None),
        nbytes=x.nbytes,
        limit="sum",
        note=split,
        min_seconds=1.0,
    )
    bench.measure(
        "pca_whitening_eigh",
        case,
        "numpy.linalg.eigh",
        lambda: np.linalg.eigh(cov),
        nbytes=cov.nbytes,
        limit="copy",
        note=split,
        min_seconds=1.0,
    )
    bench.measure(
        "pca_whitening_projection",
        case,
        "nndl_fast",
        lambda: est.transform(x),
        nbytes=2 * x.nbytes,
        limit="copy",
        note=split,
        min_seconds=1.0,
    )
    bench.flush()


def run(bench: Bench, torch: Any) -> None:
    sk = _sklearn()
    rng = np.random.default_rng(0)
    shapes = [(1_000_000, 64), (60_000, 784)]
    for n, d in shapes:
        x = (rng.standard_normal((n, d), dtype=np.float32) * 2.0 + 1.0).astype(np.float32)
        _scaler_rows(bench, torch, sk, x, f"({n}, {d}) f32")
    n, d = 60_000, 784
    x = rng.standard_normal((n, d), dtype=np.float32) @ rng.standard_normal((d, d), dtype=np.float32) * 0.05
    _pca_rows(bench, sk, x.astype(np.float32), f"({n}, {d}) f32")
