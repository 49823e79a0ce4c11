"""Writes tests/data/golden_dropout.npz: outputs of the dropout kernels from the build before
the consolidation pass (issue 9), which tests/test_golden_dropout.py replays through the
current API and compares bitwise.

Run from the repository root with the original build importable:

    PYTHONPATH=/work/orig python3 tests/data/make_golden_dropout.py

The case table is written in the current API's words (``convention="torch"``); ``run_case``
translates them for the original build (``mode="inverted"``) when ``legacy`` is true, so
the generator and the test share one description of every call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parent / "golden_dropout.npz"
DTYPES = ("float32", "float64")
SIZES = (1, 7, 63, 64, 65, 129, 333)
STREAMS = ((0, 0), (2**40 + 12345, 2**33 + 7), (2**64 - 1, 3))  # (seed, offset)
PROBS = (("keep_prob", 0.7, "chapter"), ("drop_prob", 0.3, "torch"), ("keep_prob", 0.1, "torch"))


def _data(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    for i, v in enumerate((np.inf, np.nan, -0.0, -np.inf, -3.0)):
        if i < flat.size:
            flat[(7 * i) % flat.size] = v
    return x


def cases() -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Inputs (by key) and the calls, each naming its inputs and producing outputs `key`."""
    rng = np.random.default_rng(9)
    arrays: dict[str, np.ndarray] = {}
    calls: list[dict[str, Any]] = []
    for dtype in DTYPES:
        for n in SIZES:
            x, dy = f"x_{dtype}_{n}", f"dy_{dtype}_{n}"
            arrays[x] = _data(rng, (n,), dtype)
            arrays[dy] = _data(rng, (n,), dtype)
            for p, (name, prob, conv) in enumerate(PROBS):
                for s, (seed, offset) in enumerate(STREAMS):
                    key = f"fwd_{dtype}_{n}_{p}_{s}"
                    kw = {name: prob, "convention": conv, "seed": seed, "offset": offset}
                    calls.append({"key": key, "fn": "dropout", "arg": x, "kw": kw, "mask_out": True})
                    calls.append(
                        {
                            "key": f"bwdm_{key}",
                            "fn": "dropout_backward",
                            "arg": dy,
                            "kw": {name: prob, "convention": conv},
                            "mask": f"{key}_mask",
                        }
                    )
                    calls.append({"key": f"bwds_{key}", "fn": "dropout_backward", "arg": dy, "kw": kw})
                kw = {name: prob, "convention": conv, "training": False}
                calls.append({"key": f"eval_{dtype}_{n}_{p}", "fn": "dropout", "arg": x, "kw": kw, "out": True})
                calls.append({"key": f"evalb_{dtype}_{n}_{p}", "fn": "dropout_backward", "arg": dy, "kw": kw})
        # a 2-D array of more than 256 blocks of 64: the kernels' parallel path
        big = f"x_{dtype}_big"
        arrays[big] = _data(rng, (129, 131) if dtype == "float32" else (5, 61), dtype)
        calls.append(
            {
                "key": f"fwd_{dtype}_big",
                "fn": "dropout",
                "arg": big,
                "kw": {"keep_prob": 0.55, "convention": "torch", "seed": 77, "offset": 5},
                "mask_out": True,
            }
        )
        for layout, shape in (("TNF", (5, 3, 7)), ("NTF", (3, 5, 7)), ("TNF", (4, 9, 13)), ("NTF", (2, 6, 1))):
            x, dy = f"vx_{dtype}_{layout}_{shape}", f"vdy_{dtype}_{layout}_{shape}"
            arrays[x], arrays[dy] = _data(rng, shape, dtype), _data(rng, shape, dtype)
            for p, (name, prob, conv) in enumerate(PROBS):
                seed, offset = STREAMS[p]
                key = f"var_{dtype}_{layout}_{shape}_{p}"
                kw = {name: prob, "convention": conv, "layout": layout, "seed": seed, "offset": offset}
                calls.append(
                    {
                        "key": key,
                        "fn": "variational_dropout",
                        "arg": x,
                        "kw": kw,
                        "mask_out": True,
                        "nf": shape[2] * (shape[1] if layout == "TNF" else shape[0]),
                    }
                )
                calls.append(
                    {
                        "key": f"varbm_{key}",
                        "fn": "variational_dropout_backward",
                        "arg": dy,
                        "kw": {name: prob, "convention": conv, "layout": layout},
                        "mask": f"{key}_mask",
                    }
                )
                calls.append({"key": f"varbs_{key}", "fn": "variational_dropout_backward", "arg": dy, "kw": kw})
                calls.append(
                    {
                        "key": f"vareval_{key}",
                        "fn": "variational_dropout",
                        "arg": x,
                        "kw": {name: prob, "convention": conv, "layout": layout, "training": False},
                        "out": True,
                    }
                )
        w = f"w_{dtype}"
        arrays[w] = _data(rng, (13, 29), dtype)
        for p, (name, prob, conv) in enumerate(PROBS):
            kw = {name: prob, "convention": conv, "seed": 31 + p, "offset": p}
            calls.append({"key": f"dc_{dtype}_{p}", "fn": "dropconnect", "arg": w, "kw": kw, "mask_out": True})
    for n in (0, 1, 8, 100, 1001):
        for s, (seed, offset) in enumerate(STREAMS):
            calls.append(
                {
                    "key": f"mask_{n}_{s}",
                    "fn": "dropout_mask",
                    "arg": None,
                    "kw": {"shape": n, "keep_prob": 0.37, "seed": seed, "offset": offset, "packed": True},
                }
            )
    return arrays, calls


# The Dropout layer: (constructor keywords, steps); each step's output is stored.
LAYER_SCRIPTS = [
    (
        {"keep_prob": 0.5, "convention": "torch", "seed": 77},
        ["fwd", "fwd", "bwd", "eval", "fwd", "bwd", "train", "fwd", "bwd"],
    ),
    # drop_prob= brings torch's convention since #11: the chapter's, which the file holds, by name
    ({"drop_prob": 0.25, "convention": "chapter", "seed": 5, "store_mask": True}, ["fwd", "bwd", "fwd", "bwd"]),
    ({"keep_prob": 0.6, "variational": "NTF", "seed": 2, "offset": 9}, ["fwd", "bwd", "fwd", "bwd"]),
]


def _legacy(kw: dict[str, Any]) -> dict[str, Any]:
    kw = dict(kw)
    if "convention" in kw:
        kw["mode"] = "inverted" if kw.pop("convention") == "torch" else "chapter"
    return kw


def run_case(D: Any, case: dict[str, Any], arrays: dict[str, np.ndarray], legacy: bool) -> dict[str, np.ndarray]:
    """Calls one case through module D (nndl_fast.dropout); returns its outputs by key."""
    kw = _legacy(case["kw"]) if legacy else dict(case["kw"])
    if case["fn"] == "dropout_mask":
        return {case["key"]: D.dropout_mask(**kw)}
    x = arrays[case["arg"]].copy()
    mask = None
    if case.get("mask_out"):
        mask = np.zeros(D.packed_size(case.get("nf", x.size)), np.uint8)
        kw["mask_out"] = mask
    if "mask" in case:
        kw["mask"] = arrays[case["mask"]]
    if case.get("out"):
        kw["out"] = np.full_like(x, 7.0)
    y = getattr(D, case["fn"])(x, **kw)
    result = {case["key"]: np.array(y, copy=True)}
    if mask is not None:
        result[f"{case['key']}_mask"] = mask
    return result


def run_layer(D: Any, index: int, legacy: bool) -> dict[str, np.ndarray]:
    kw, steps = LAYER_SCRIPTS[index]
    layer = D.Dropout(**(_legacy(kw) if legacy else kw))
    rng = np.random.default_rng(100 + index)
    shape = (3, 5, 7) if "variational" in kw else (6, 45)
    results = {}
    for t, step in enumerate(steps):
        a = rng.standard_normal(shape)
        if step == "fwd":
            results[f"layer_{index}_{t}"] = np.array(layer(a), copy=True)
        elif step == "bwd":
            results[f"layer_{index}_{t}"] = np.array(layer.backward(a), copy=True)
        else:
            getattr(layer, step)()
    return results


def main() -> None:
    import nndl_fast
    from nndl_fast import dropout as D

    legacy = "mode" in D.dropout.__kwdefaults__
    if not legacy:
        raise SystemExit("run with PYTHONPATH=/work/orig: the golden outputs come from the original build")
    arrays, calls = cases()
    outputs: dict[str, np.ndarray] = {}
    for case in calls:
        outputs.update(run_case(D, case, {**arrays, **outputs}, legacy))
    for i in range(len(LAYER_SCRIPTS)):
        outputs.update(run_layer(D, i, legacy))
    clash = set(arrays) & set(outputs)
    assert not clash, clash
    np.savez_compressed(OUT, **arrays, **outputs)
    print(f"{OUT}: {len(outputs)} outputs of {len(calls)} calls, from {nndl_fast.__file__}, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
