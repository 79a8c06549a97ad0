"""Action registry: names -> callables, loaded from the ``careflow.actions`` entry points.

An action is ``fn(inputs: Mapping[str, Any], ctx: ActionContext) -> Any``. It should be
pure or talk only to the ports passed in ``ctx.ports`` (knowledge base, CRM, ...), and be
safe to run more than once with the same ``ctx.idempotency_key`` (delivery is at least
once). Raise ``engine.errors.ActionFailed(retryable=...)`` to say whether a retry may help;
any other exception counts as retryable.

Each entry point of the group names a ``Mapping[str, callable]`` (several actions) or a
single callable (registered under the entry point's name). Names are checked when they are
registered; errors name the plugin (PluginValidationError). A plugin may replace a
built-in action of the same name (e.g. engine.knowledge's ``kb_lookup`` replaces the
port-only fallback); two plugins registering one name is an error.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from engine.errors import ActionFailed, CareflowError

if TYPE_CHECKING:  # the interpreter is imported only when an action is executed
    from engine.interpreter.types import ActionCompleted, ActionFailedEvent, RunAction

__all__ = [
    "ENTRY_POINT_GROUP",
    "ActionContext",
    "ActionFn",
    "ActionRegistry",
    "context_maker",
    "PluginValidationError",
    "known_actions",
    "load_actions",
    "pure_action",
    "static_names",
]

ENTRY_POINT_GROUP = "careflow.actions"
#: the plugin name of engine.actions.builtin; any other plugin may replace a built-in action
BUILTIN = "builtin"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class ActionContext:
    """What an action knows about its call: which case, node, attempt, and its ports."""

    case_id: str
    node: str
    attempt: int
    idempotency_key: str
    now: datetime
    ports: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


ActionFn = Callable[[Mapping[str, Any], ActionContext], Any]

#: the attribute ``pure_action`` sets on an action function
PURE_MARK = "careflow_pure"


def pure_action(fn: ActionFn) -> ActionFn:
    """Mark ``fn`` as a pure action: its result depends on its inputs (and the context's
    case id, node and instant) alone; it does no I/O and uses no port.

    The interpreter runs a pure action inside the step that reaches its node (the runtime
    hands the registry's pure actions to ``StepContext.inline_actions``): no RunAction
    command, no ActionCompleted event, the same ``set``, audit and route as when it runs
    outside. Replaying the event log runs it again with the same inputs. A pure action
    that raises is run the ordinary way instead, so ``retry`` and ``on_error`` apply.
    """
    setattr(fn, PURE_MARK, True)
    return fn


class PluginValidationError(CareflowError):
    """An action plugin is malformed (bad name, not callable, duplicate name).

    Attributes:
        plugin: the plugin (entry point) name.
    """

    def __init__(self, plugin: str, message: str) -> None:
        self.plugin = plugin
        super().__init__(f"action plugin {plugin!r}: {message}")


class ActionRegistry:
    """Action names mapped to callables; which plugin registered each."""

    def __init__(self) -> None:
        self._actions: dict[str, ActionFn] = {}
        self._plugins: dict[str, str] = {}

    def register(self, name: str, fn: ActionFn, *, plugin: str = "<direct>") -> None:
        """Add one action.

        Raises:
            PluginValidationError: the name is not ``[a-z][a-z0-9_]*`` (at most 64), ``fn``
                is not callable, or another plugin registered the name already.
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginValidationError(plugin, f"action name {name!r} must match {_NAME.pattern}")
        if not callable(fn):
            raise PluginValidationError(plugin, f"action {name!r} is not callable")
        if name in self._actions and self._actions[name] is not fn:
            holder = self._plugins[name]
            if plugin == BUILTIN:
                return  # a plugin already provides a richer version of this built-in
            if holder != BUILTIN:
                raise PluginValidationError(
                    plugin, f"action {name!r} is already registered by plugin {holder!r}"
                )
        self._actions[name] = fn
        self._plugins[name] = plugin

    def register_all(self, actions: Mapping[str, ActionFn], *, plugin: str) -> None:
        if not isinstance(actions, Mapping):
            raise PluginValidationError(plugin, "must be a mapping of name -> callable")
        for name, fn in actions.items():
            self.register(name, fn, plugin=plugin)

    def names(self) -> frozenset[str]:
        return frozenset(self._actions)

    def plugin_of(self, name: str) -> str | None:
        return self._plugins.get(name)

    def get(self, name: str) -> ActionFn:
        """The action ``name``.

        Raises:
            ActionFailed: no such action (not retryable).
        """
        try:
            return self._actions[name]
        except KeyError:
            raise ActionFailed(f"unknown action {name!r}", retryable=False) from None

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def pure(self) -> Mapping[str, ActionFn]:
        """The registered actions marked with ``pure_action``, by name."""
        return MappingProxyType({n: fn for n, fn in self._actions.items()
                                 if getattr(fn, PURE_MARK, False) is True})

    def execute(
        self, command: RunAction, *, case_id: str, now: datetime,
        ports: Mapping[str, Any] | None = None,
    ) -> ActionCompleted | ActionFailedEvent:
        """Run the action a RunAction asks for and answer with the event to feed back."""
        context, completed, failed = _makers()
        ctx = context(case_id, command.node, command.attempt, command.idempotency_key,
                      now, MappingProxyType(dict(ports)) if ports else _NO_PORTS)
        try:
            fn = self._actions.get(command.action) or self.get(command.action)
            result = fn(command.inputs, ctx)
        except ActionFailed as exc:
            return failed(command.action_id, exc.message, exc.retryable)
        except Exception as exc:  # noqa: BLE001 - any action error becomes a (retryable) failure
            return failed(command.action_id, f"{type(exc).__name__}: {exc}", True)
        return completed(command.action_id, result)


_NO_PORTS: Mapping[str, Any] = MappingProxyType({})


def context_maker() -> Callable[..., ActionContext]:
    """ActionContext's positional constructor (case_id, node, attempt, idempotency_key,
    now, ports), several times faster than the dataclass's own (the interpreter builds
    one per inline action)."""
    return _makers()[0]


@lru_cache(maxsize=1)
def _makers() -> tuple[
    Callable[..., ActionContext], Callable[..., ActionCompleted], Callable[..., ActionFailedEvent]
]:
    """Positional constructors of the action context and the interpreter's result events
    (the interpreter is imported when an action is first executed)."""
    from engine.interpreter.types import ActionCompleted, ActionFailedEvent
    from engine.slots import fast_constructor

    return (fast_constructor(ActionContext), fast_constructor(ActionCompleted),
            fast_constructor(ActionFailedEvent))


def _entry_point_actions() -> Iterable[tuple[str, Any]]:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
        except Exception as exc:  # noqa: BLE001 - report which plugin failed to import
            raise PluginValidationError(ep.name, f"cannot be loaded: {exc}") from exc
        yield ep.name, loaded


def load_actions(*, include_entry_points: bool = True) -> ActionRegistry:
    """A registry with the built-in actions and every ``careflow.actions`` plugin.

    Raises:
        PluginValidationError: a plugin cannot be imported or registers a bad action.
    """
    from engine.actions.builtin import ACTIONS

    registry = ActionRegistry()
    registry.register_all(ACTIONS, plugin=BUILTIN)
    if include_entry_points:
        for name, loaded in _entry_point_actions():
            if isinstance(loaded, Mapping):
                registry.register_all(loaded, plugin=name)
            else:
                registry.register(name, loaded, plugin=name)
    return registry


def _literal_names(node: ast.expr) -> frozenset[str] | None:
    """Keys of a dict literal (optionally wrapped in one call, e.g. ``frozen_map({...})``)."""
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        node = node.args[0]
    if not isinstance(node, ast.Dict) or any(k is None for k in node.keys):
        return None
    keys = [k.value if isinstance(k, ast.Constant) else None for k in node.keys]
    if not all(isinstance(k, str) for k in keys):
        return None
    return frozenset(str(k) for k in keys)


def static_names(module: str, attr: str) -> frozenset[str] | None:
    """Action names a plugin declares as a literal mapping, read from its source without
    importing it (plugins may import heavy libraries); None when not statically clear."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    found: frozenset[str] | None = None
    target: ast.expr
    for stmt in tree.body:
        if isinstance(stmt, ast.AnnAssign):
            target, value = stmt.target, stmt.value
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id == attr and value is not None:
            found = _literal_names(value)
    return found


@lru_cache(maxsize=1)
def known_actions() -> frozenset[str]:
    """Every action name an SOP may use (built-ins + plugins); cached for the process.

    Fast path for validation: a plugin whose entry point names a literal mapping
    (``ACTIONS = {"name": fn, ...}``) is read from its source, not imported, so a plugin
    that imports a database library costs nothing here. Anything else is imported (and
    checked) like ``load_actions`` does.

    Raises:
        PluginValidationError: a plugin that had to be imported is malformed.
    """
    from engine.actions.builtin import ACTIONS

    names = set(ACTIONS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module, _, attr = ep.value.partition(":")
        declared = static_names(module.strip(), attr.strip()) if attr else None
        if declared is None:
            try:
                loaded = ep.load()
            except Exception as exc:  # noqa: BLE001 - report which plugin failed to import
                raise PluginValidationError(ep.name, f"cannot be loaded: {exc}") from exc
            probe = ActionRegistry()
            if isinstance(loaded, Mapping):
                probe.register_all(loaded, plugin=ep.name)
            else:
                probe.register(ep.name, loaded, plugin=ep.name)
            declared = probe.names()
        bad = sorted(n for n in declared if not _NAME.match(n))
        if bad:
            raise PluginValidationError(ep.name, f"action name {bad[0]!r} must match "
                                                 f"{_NAME.pattern}")
        names.update(declared)
    return frozenset(names)
