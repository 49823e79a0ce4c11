"""The source tree stays lint-clean (ruff) and type-clean (mypy); both come with the test extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed (pip install '.[test]')")
def test_ruff_check_is_clean():
    out = run(["ruff", "check", "python", "tests"])
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_is_clean():
    pytest.importorskip("mypy", reason="mypy not installed (pip install '.[test]')")
    out = run([sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / "build" / "mypy-cache")])
    assert out.returncode == 0, out.stdout + out.stderr
