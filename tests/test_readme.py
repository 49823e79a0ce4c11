"""The README's usage example runs as written."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    has_torch = importlib.util.find_spec("torch") is not None
    for code in blocks:
        if "nndl_fast.torch" in code and not has_torch:
            continue  # torch is optional: its section runs where torch is installed
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert "selected_target" in capsys.readouterr().out
