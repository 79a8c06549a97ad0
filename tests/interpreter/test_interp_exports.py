"""Contract: every public module of the interpreter and the actions lists what it exports."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = [
    "engine.interpreter", "engine.interpreter.types", "engine.interpreter.context",
    "engine.interpreter.step", "engine.interpreter.codec", "engine.interpreter.rejections",
    "engine.interpreter.waiting", "engine.interpreter.work", "engine.interpreter.nodes",
    "engine.interpreter.events", "engine.interpreter.sla_ops", "engine.actions",
    "engine.actions.registry", "engine.actions.builtin",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_complete_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.__all__ names missing {symbol!r}"
    defined = {
        n for n, obj in vars(module).items()
        if not n.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == name
    }
    assert defined <= exported, f"{name} defines but does not export {sorted(defined - exported)}"
    assert (module.__doc__ or "").strip(), f"{name} has no docstring"
