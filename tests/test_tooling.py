"""The Python layer stays type-clean (mypy, from the test extra); lint and format: test_style.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # a minute from a cold cache (a fresh clone)
def test_mypy_is_clean():
    pytest.importorskip("mypy", reason="mypy not installed (pip install '.[test]')")
    out = run([sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / "build" / "mypy-cache")])
    assert out.returncode == 0, out.stdout + out.stderr
