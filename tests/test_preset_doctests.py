"""The preset examples in the docstrings of the normalisation and dropout modules run as written
(one per convention= preset: chapter, torch, keras, onnx)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "nndl_fast.norm.batch_norm",
    "nndl_fast.norm.layer_norm",
    "nndl_fast.norm.local_response_norm",
    "nndl_fast.dropout",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0
