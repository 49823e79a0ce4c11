"""The README's two set-up commands: the second reuses the first one's build, and CI runs the
second as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def setup_commands() -> list[str]:
    section = ROOT.joinpath("README.md").read_text().split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.startswith("    pip install")]


def test_two_commands_without_build_isolation_with_the_build_requirements_first():
    """A new isolated build environment makes scikit-build-core drop its CMake cache (every object
    is compiled again), so both commands build in the environment the first one prepares."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    requires = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text())["build-system"]["requires"]
    commands = setup_commands()
    assert len(commands) == 2, commands
    for cmd in commands:
        prepare = re.match(r"pip install (.*?) && pip install --no-build-isolation ", cmd).group(1)
        assert prepare.split() == [f'"{r}"' for r in requires] + ["cmake", "ninja"], cmd
    assert commands[1].endswith('--no-build-isolation ".[test]" && python -m pytest')


def test_ci_runs_the_readme_test_command():
    ci = ROOT.joinpath(".ci", "run").read_text()
    pattern = re.search(r"grep -m1 -E '(.*?)' README.md", ci).group(1)
    matches = [c for c in setup_commands() if re.search(pattern, "    " + c)]
    assert matches == [setup_commands()[1]]
