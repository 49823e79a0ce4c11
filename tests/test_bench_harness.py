"""The harness's comparison column says who is faster: nndl_fast's time against each row's."""

from __future__ import annotations

import json

import pytest

from nndl_fast.bench.harness import HEADER, Bench, format_row, plot_label


def bench_with_rows(rows: list[tuple[str, float]], **add_kw) -> Bench:
    """A Bench holding one case whose rows were timed elsewhere (Bench.add): no timing here."""
    bench = Bench(quick=True, threads=1)
    bench.probe_gbps = {"copy": 10.0, "triad": 10.0, "inplace": 10.0, "fill": 10.0}
    for impl, seconds in rows:
        bench.add("adam", "1 x 1e7", impl, seconds, nbytes=80_000_000, **add_kw.get(impl, {}))
    bench.flush()
    return bench


def test_the_column_says_how_many_times_faster_nndl_fast_is(capsys):
    bench = bench_with_rows([("nndl_fast", 0.002), ("numpy reference", 0.0748), ("torch fused", 0.001)])
    ours, numpy_row, torch_row = bench.records
    assert "nndl_fast is Nx faster" in HEADER and "speed-up" not in HEADER
    assert ours.nndl_fast_times_faster == 1.0
    assert numpy_row.nndl_fast_times_faster == pytest.approx(37.4)
    assert torch_row.nndl_fast_times_faster == pytest.approx(0.5)  # below 1: torch is faster here
    printed = capsys.readouterr().out.splitlines()
    assert printed == [format_row(r) for r in bench.records]
    assert printed[1].endswith(" 37.40x") and printed[2].endswith(" 0.50x")
    assert len(printed[1]) == len(HEADER)  # the value sits under its column's name


def test_the_reference_is_the_nndl_fast_row_wherever_it_sits():
    numpy_row, torch_row, ours = bench_with_rows(
        [("numpy reference", 0.03), ("torch", 0.02), ("nndl_fast", 0.01)]
    ).records
    assert numpy_row.nndl_fast_times_faster == pytest.approx(3.0)
    assert torch_row.nndl_fast_times_faster == pytest.approx(2.0)
    assert ours.nndl_fast_times_faster == 1.0


def test_a_row_timed_in_a_subprocess_is_compared_with_ours_from_there():
    rows = [("nndl_fast", 0.010), ("torch, fresh process", 0.040)]
    bench = bench_with_rows(rows, **{"torch, fresh process": {"vs_seconds": 0.005}})
    assert bench.records[1].nndl_fast_times_faster == pytest.approx(8.0)


def test_no_nndl_fast_row_leaves_the_column_empty():
    (row,) = bench_with_rows([("numpy reference", 0.03)]).records
    assert row.nndl_fast_times_faster is None
    assert format_row(row).endswith("% " + " " * len("nndl_fast is Nx faster"))


def test_json_and_chart_name_the_column(tmp_path):
    bench = bench_with_rows([("nndl_fast", 0.002), ("numpy reference", 0.0748)])
    path = tmp_path / "b.json"
    bench.to_json(str(path), {"cpu": "test"})
    doc = json.loads(path.read_text())
    assert [r["nndl_fast_times_faster"] for r in doc["records"]] == pytest.approx([1.0, 37.4])
    assert "nndl_fast is this many times faster" in doc["record_keys"]["nndl_fast_times_faster"]
    assert plot_label(bench.records[1]) == "adam 1 x 1e7 [numpy reference]: nndl_fast 37.40x faster"
    assert plot_label(bench.records[0]) == "adam 1 x 1e7 [nndl_fast]"
