"""The examples in engine.sla docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["engine.sla.duration", "engine.sla.calendar", "engine.sla.policy"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0
