"""Automated actions: the registry (built-ins + entry-point plugins) and the built-in actions.

``load_actions()`` builds an ActionRegistry from the entry-point group ``careflow.actions``
(never at import time); ``known_actions()`` lists every action name an SOP may use.
"""

from __future__ import annotations

from engine.actions.registry import (
    ActionContext,
    ActionRegistry,
    PluginValidationError,
    known_actions,
    load_actions,
)

__all__ = [
    "ActionContext",
    "ActionRegistry",
    "PluginValidationError",
    "known_actions",
    "load_actions",
]
