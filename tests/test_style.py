"""The source tree keeps one format: clang-format (.clang-format) over cpp/, ruff over python/, tests/,
tools/ and examples/. Both tools come with the test extra (pip install '.[test]'); a test skips without them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Formatting differs between clang-format majors: the check uses the one pyproject's test extra pins.
CLANG_FORMAT_MAJOR = 23


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def clang_format() -> str:
    """The test extra's clang-format (the PyPI wheel's binary), else the one on PATH; skips when
    there is none, or when its major version formats differently from the pinned one."""
    try:
        import clang_format as wheel  # the PyPI package ships the binary beside its module

        exe: str | None = wheel.get_executable("clang-format")
    except ImportError:
        exe = shutil.which("clang-format")
    if exe is None or not Path(exe).exists():
        pytest.skip("clang-format not installed (pip install '.[test]')")
    version = run([exe, "--version"]).stdout
    found = re.search(r"version (\d+)\.", version)
    if found is None or int(found.group(1)) != CLANG_FORMAT_MAJOR:
        pytest.skip(
            f"{exe} is {version.strip()!r}; the style is that of clang-format {CLANG_FORMAT_MAJOR} "
            "(pip install '.[test]')"
        )
    return exe


def ruff() -> list[str]:
    try:
        import ruff as _  # noqa: F401

        return [sys.executable, "-m", "ruff"]
    except ImportError:
        exe = shutil.which("ruff")
        if exe is None:
            pytest.skip("ruff not installed (pip install '.[test]')")
        return [exe]


def test_cpp_is_clang_format_clean():
    sources = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "cpp").rglob("*") if p.suffix in {".cpp", ".hpp"})
    assert sources
    out = run([clang_format(), "--dry-run", "--Werror", *sources])
    assert out.returncode == 0, "run clang-format -i over cpp/:\n" + out.stderr[-5000:]


def test_python_is_ruff_format_clean():
    out = run([*ruff(), "format", "--check", "python", "tests", "tools", "examples"])
    assert out.returncode == 0, "run ruff format python tests tools examples:\n" + (out.stdout + out.stderr)[-5000:]


def test_python_is_ruff_check_clean():
    out = run([*ruff(), "check", "python", "tests", "tools", "examples"])
    assert out.returncode == 0, out.stdout + out.stderr
