"""Build facts, SIMD target selection and thread count controls."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nndl_fast
from nndl_fast.bench.harness import Bench, time_call


def test_build_info_reports_targets_and_threads():
    info = nndl_fast.build_info()
    assert info["selected_target"] in info["available_targets"]
    assert set(info["available_targets"]) <= set(info["compiled_targets"])
    assert info["available_targets"][0] == "baseline"
    assert info["openmp"] >= 201511
    assert info["num_threads"] >= 1 and info["compiler"]


def test_set_simd_target_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown SIMD target 'sse9'"):
        nndl_fast.set_simd_target("sse9")
    before = nndl_fast.get_simd_target()
    with nndl_fast.simd_target("baseline"):
        assert nndl_fast.get_simd_target() == "baseline"
    assert nndl_fast.get_simd_target() == before


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120)


@pytest.mark.parametrize("target", nndl_fast.available_simd_targets())
def test_environment_variable_forces_a_target(target):
    out = run_python("import nndl_fast; print(nndl_fast.get_simd_target())", NNDL_FAST_SIMD=target)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == target


def test_environment_variable_with_a_bad_name_fails_loudly():
    out = run_python("import nndl_fast", NNDL_FAST_SIMD="avx9000")
    assert out.returncode != 0
    assert "unknown SIMD target 'avx9000'" in out.stderr


def test_threads():
    with nndl_fast.threads(1):
        assert nndl_fast.get_num_threads() == 1
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        nndl_fast.set_num_threads(0)
    with pytest.raises(TypeError, match="n must be an int"):
        nndl_fast.set_num_threads(1.5)


def test_threadpoolctl_sees_and_limits_our_openmp():
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl not installed")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert nndl_fast.get_num_threads() == 1


def test_harness_records_and_json(tmp_path):
    x = np.zeros(1 << 16, np.float32)
    bench = Bench(quick=True, threads=nndl_fast.get_num_threads())
    bench.probe_gbps = {"copy": 10.0, "triad": 10.0, "inplace": 10.0}
    bench.measure("probe", "small", "nndl_fast", lambda: nndl_fast._core.stream_inplace(x, 1.0),
                  nbytes=8 * x.size, min_seconds=0.01)
    bench.measure("probe", "small", "numpy", lambda: np.multiply(x, 1.0, out=x), nbytes=8 * x.size,
                  min_seconds=0.01)
    assert bench.records == []  # a case is timed when it is complete: its rows interleaved
    rec, rec_np = bench.flush()
    assert rec_np.impl == "numpy" and rec_np.seconds > 0
    assert rec.seconds > 0 and rec.gbps == pytest.approx(8 * x.size / rec.seconds / 1e9)
    assert rec.fraction_of_limit == pytest.approx(rec.gbps / 10.0)
    path = tmp_path / "b.json"
    bench.to_json(str(path), {"cpu": "test"})
    doc = json.loads(path.read_text())
    assert {"kernel", "case", "impl", "seconds", "bytes", "gbps", "fraction_of_limit"} <= set(doc["records"][0])
    assert x[0] > 0  # the probe ran: x = 1·x + 1 each call
    assert time_call(lambda: None, min_seconds=0.001, repeats=2) >= 0
