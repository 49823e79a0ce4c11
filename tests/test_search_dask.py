"""nndl_fast.search on a Dask cluster: a LocalCluster of two worker processes runs the same trials
as the serial run with the same seed."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("scipy")
distributed = pytest.importorskip("distributed")

from nndl_fast.search import GPSampler, Study  # noqa: E402
from nndl_fast.search import functions as fx  # noqa: E402
from nndl_fast.search.schedulers import Hyperband  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    )
    client = distributed.Client(cluster, timeout=60)
    try:
        client.wait_for_workers(2, timeout=60)
        yield client
    finally:
        client.close()
        cluster.close()


def trials_of(study):
    return [(t.number, t.params, t.state, t.value, t.error, t.intermediate) for t in study.trials]


@pytest.mark.slow  # a cluster of two processes starts in seconds
def test_dask_study_equals_the_serial_run(client):
    serial = Study(fx.branin_space(), GPSampler(n_startup_trials=4), seed=8)
    serial.optimize(fx.branin_objective, 10, n_jobs=2)
    on_dask = Study(fx.branin_space(), GPSampler(n_startup_trials=4), seed=8)
    on_dask.optimize(fx.branin_objective, 10, executor=client.get_executor(), n_jobs=2)
    assert trials_of(on_dask) == trials_of(serial)
    assert len(client.scheduler_info()["workers"]) == 2


@pytest.mark.slow
def test_dask_hyperband_equals_the_serial_run(client):
    serial = Study(fx.crossing_curves_space(), seed=8)
    Hyperband(9, 3).optimize(serial, fx.crossing_curves_objective, n_jobs=2)
    on_dask = Study(fx.crossing_curves_space(), seed=8)
    Hyperband(9, 3).optimize(on_dask, fx.crossing_curves_objective, executor=client.get_executor(), n_jobs=2)
    assert trials_of(on_dask) == trials_of(serial)
