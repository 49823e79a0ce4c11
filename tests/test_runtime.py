"""Build facts, SIMD target selection and thread count controls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

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


def test_set_num_threads_is_capped_and_typed():
    """100 000 used to be accepted, then crash the next kernel (SIGSEGV) or exit the process."""
    limit = nndl_fast.build_info()["thread_limit"]
    assert limit == 4 * nndl_fast.build_info()["num_procs"]
    before = nndl_fast.get_num_threads()
    for bad in (0, -1, limit + 1, 100_000):
        with pytest.raises(ValueError, match=rf"n must be in \[1, {limit}\]"):
            nndl_fast.set_num_threads(bad)
    for bad in (1.5, True, "2", None):
        with pytest.raises(TypeError, match="n must be an integer"):
            nndl_fast.set_num_threads(bad)
    assert nndl_fast.get_num_threads() == before
    with nndl_fast.threads(np.int64(limit)):
        assert nndl_fast.get_num_threads() == limit


def test_set_num_threads_is_process_wide():
    """OpenMP's own setting is per calling thread: another Python thread used not to see it."""
    seen: list[int] = []
    n = 3 if nndl_fast.get_num_threads() != 3 else 2
    with nndl_fast.threads(n):
        worker = threading.Thread(target=lambda: seen.append(nndl_fast.get_num_threads()))
        worker.start()
        worker.join()
    assert seen == [n]


def test_threadpoolctl_sees_and_limits_our_openmp():
    threadpoolctl = pytest.importorskip("threadpoolctl", reason="threadpoolctl not installed")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert nndl_fast.get_num_threads() == 1


def test_harness_records_and_json(tmp_path):
    x = np.zeros(1 << 16, np.float32)
    bench = Bench(quick=True, threads=nndl_fast.get_num_threads())
    bench.probe_gbps = {"copy": 10.0, "triad": 10.0, "inplace": 10.0}
    bench.measure(
        "probe",
        "small",
        "nndl_fast",
        lambda: nndl_fast._core.stream_inplace(x, 1.0),
        nbytes=8 * x.size,
        min_seconds=0.01,
    )
    bench.measure("probe", "small", "numpy", lambda: np.multiply(x, 1.0, out=x), nbytes=8 * x.size, min_seconds=0.01)
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


# A child forked after a parallel kernel used to hang forever in its first parallel kernel.
# The script runs in its own interpreter with a timeout, so a regression cannot hang the suite.
FORK_SCRIPT = """
import multiprocessing as mp
import numpy as np
import nndl_fast
from nndl_fast import optim

def adam_once():
    rng = np.random.default_rng(1)
    p, g = (rng.standard_normal(1 << 20).astype(np.float32) for _ in range(2))
    optim.adam([p], [g], [np.zeros_like(p)], [np.zeros_like(p)], step=1, lr=1e-3)
    return p

def child(queue):
    threads = nndl_fast.get_num_threads()
    try:
        nndl_fast.set_num_threads(2)
        raised = ""
    except RuntimeError as e:
        raised = str(e)
    queue.put((adam_once().tobytes(), threads, raised))

nndl_fast.set_num_threads(2)
parent = adam_once()  # 1 Mi elements: a parallel region with 2 threads
ctx = mp.get_context("fork")
queue = ctx.Queue()
proc = ctx.Process(target=child, args=(queue,))
proc.start()
data, threads, raised = queue.get(timeout=30)
proc.join(timeout=30)
assert proc.exitcode == 0, proc.exitcode
assert data == parent.tobytes(), "the child's result differs from the parent's"
assert threads == 1, threads
assert "forked" in raised, raised
print("ok")
"""


def test_a_child_forked_after_a_parallel_kernel_runs_kernels():
    out = run_python(FORK_SCRIPT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# libgomp starts its worker threads at the first region with more than one thread, so a call
# that opens no region leaves the process with its one thread.
SMALL_WORK_SCRIPT = """
import os
import numpy as np
import nndl_fast
from nndl_fast import clip, optim

def os_threads():
    return len(os.listdir("/proc/self/task"))

nndl_fast.set_num_threads(2)
before = os_threads()  # the interpreter's, OpenBLAS's
rng = np.random.default_rng(0)
for n in (({size}),):
    ps = [rng.standard_normal(k).astype(np.float32) for k in n]
    gs = [rng.standard_normal(k).astype(np.float32) for k in n]
    optim.adam(ps, gs, [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps], step=1,
               lr=1e-3, skip_nonfinite=True)
    clip.clip_grad_norm_(gs, 1.0)
print(os_threads() - before)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
@pytest.mark.parametrize(("sizes", "workers"), [("3, 5, 20_000, 20_000", 0), ("1 << 17, 1 << 17", 1)])
def test_small_work_opens_no_parallel_region(sizes, workers):
    """Four chunks, but fewer elements than two threads' worth: one thread does it all."""
    out = run_python(SMALL_WORK_SCRIPT.format(size=sizes), OMP_NUM_THREADS="2")
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == workers


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({}, "GOMP_SPINCOUNT = '1000'"),
        ({"OMP_WAIT_POLICY": "ACTIVE"}, "OMP_WAIT_POLICY = 'ACTIVE'"),
        ({"GOMP_SPINCOUNT": "1M"}, "GOMP_SPINCOUNT = '1000000'"),
    ],
)
def test_threads_spin_briefly_unless_the_user_chose(env, shown):
    """libgomp prints the policy it read at load (OMP_DISPLAY_ENV)."""
    env = {"OMP_DISPLAY_ENV": "VERBOSE", **env}
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, nndl_fast; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))",
        ],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert shown in out.stderr
    # What nndl_fast set for libgomp is not handed on to child processes; the user's is kept.
    assert out.stdout.split() == [env.get("OMP_WAIT_POLICY", "None"), env.get("GOMP_SPINCOUNT", "None")]


def test_kernels_leave_the_x87_unit_usable(simd):
    # GCC once moved 64-bit values of the baseline min-max loop through MMX registers, with no
    # EMMS: the x87 unit was left in MMX state and the caller's next long-double arithmetic
    # (libm, LAPACK inside numpy.linalg.eigh) raised "invalid" and gave NaN. The build passes
    # -mno-mmx; this runs kernels of several families on each target, then uses the x87 unit.
    from nndl_fast import loss, preprocessing

    rng = np.random.default_rng(3)
    x = rng.standard_normal((301, 600)).astype(np.float32)
    with nndl_fast.threads(1):
        preprocessing.MinMaxScaler().fit(x)
        preprocessing.StandardScaler().fit_transform(x)
        for k in (10, 40, 600):
            z = x[:, :k].copy()
            y = rng.integers(0, k, 301)
            loss.softmax_cross_entropy(z, y, label_smoothing=0.1, dlogits=np.empty_like(z))
            loss.distillation_loss(z, z[::-1].copy(), y, temperature=2.0, dstudent=np.empty_like(z))
    with np.errstate(all="raise"):
        assert np.sqrt(np.longdouble(2)) ** 2 == pytest.approx(2)
    np.linalg.eigh(np.cov(x[:, :9].T.astype(np.float64)))
