"""CaseState, events and commands <-> JSON-able dicts, exact round trip.

Typed fields are written plainly (datetimes as ISO 8601 strings, enums as their values,
tuples as lists); free-form values (case data, payloads, results, audit details) keep
their exact Python types through tags: ``{"$dt": iso}`` for datetimes,
``{"$td": [days, seconds, microseconds]}`` for timedeltas and ``{"$tuple": [...]}`` for
tuples (``$``-keys never occur in case data written by the interpreter). Events and
commands carry ``"type": <class name>``.

``state_from_json`` checks ``schema_version``: older versions are upgraded by one
function per version (``UPGRADES[v]`` turns version v into v + 1, its docstring says what
changed); newer versions are refused.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import Enum
from functools import cache
from typing import Any

from engine.errors import RunError
from engine.interpreter import types as t
from engine.sop.model import frozen_map

__all__ = [
    "UPGRADES",
    "StateSchemaError",
    "command_from_json",
    "command_to_json",
    "event_from_json",
    "event_to_json",
    "state_from_json",
    "state_to_json",
]

#: upgrade functions: UPGRADES[v](doc) turns a version-v document into version v + 1
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

_EVENTS: dict[str, type] = {c.__name__: c for c in typing.get_args(t.Event)}
_COMMANDS: dict[str, type] = {c.__name__: c for c in typing.get_args(t.Command)}


class StateSchemaError(RunError):
    """A stored case state cannot be read (unknown schema version, malformed document)."""


# ---- free-form values ---------------------------------------------------------------------


def _any_out(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$td": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, tuple):
        return {"$tuple": [_any_out(v) for v in value]}
    if isinstance(value, Mapping):
        return {str(k): _any_out(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_any_out(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    return value


def _any_in(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            if "$dt" in value:
                return datetime.fromisoformat(value["$dt"])
            if "$td" in value:
                days, secs, micros = value["$td"]
                return timedelta(days=days, seconds=secs, microseconds=micros)
            if "$tuple" in value:
                return tuple(_any_in(v) for v in value["$tuple"])
        return {k: _any_in(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_any_in(v) for v in value]
    return value


# ---- typed values -------------------------------------------------------------------------


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _out(value: Any, typ: Any) -> Any:
    if typ is Any:
        return _any_out(value)
    if value is None:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = _hints(type(value))
        return {f.name: _out(getattr(value, f.name), hints[f.name])
                for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (types.UnionType, typing.Union):
        inner = next(a for a in args if a is not type(None))
        return _out(value, inner)
    if isinstance(value, Mapping):
        vtyp = args[1] if len(args) == 2 else Any
        return {str(k): _out(v, vtyp) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return [_out(v, args[0]) for v in value]
        if origin is tuple and args:
            return [_out(v, a) for v, a in zip(value, args, strict=True)]
        return [_any_out(v) for v in value]
    return value


def _in(value: Any, typ: Any) -> Any:
    if typ is Any:
        return _any_in(value)
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)]
        return _in(value, inner[0])
    if isinstance(typ, type) and dataclasses.is_dataclass(typ):
        return _dataclass_in(typ, value)
    if isinstance(typ, type) and issubclass(typ, Enum):
        return typ(value)
    if typ is datetime:
        return datetime.fromisoformat(value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_in(v, args[0]) for v in value)
        return tuple(_in(v, a) for v, a in zip(value, args, strict=True))
    if origin in (Mapping, dict, typing.Mapping) or typ is Mapping:
        vtyp = args[1] if len(args) == 2 else Any
        return frozen_map({k: _in(v, vtyp) for k, v in value.items()})
    return value


def _dataclass_in(cls: type, doc: Mapping[str, Any]) -> Any:
    if not isinstance(doc, Mapping):
        raise StateSchemaError(f"{cls.__name__}: expected an object, got {type(doc).__name__}")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(doc) - names - {"type"}
    if unknown:
        raise StateSchemaError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}")
    kwargs = {k: _in(v, hints[k]) for k, v in doc.items() if k in names}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise StateSchemaError(f"{cls.__name__}: {exc}") from exc


# ---- public -------------------------------------------------------------------------------


def state_to_json(state: t.CaseState) -> dict[str, Any]:
    """The whole case state as a JSON-able dict (with ``schema_version``)."""
    out: dict[str, Any] = _out(state, t.CaseState)
    return out


def state_from_json(doc: Mapping[str, Any]) -> t.CaseState:
    """The CaseState ``state_to_json`` wrote, upgraded to the current schema version.

    Raises:
        StateSchemaError: a newer or unknown schema version, or a malformed document.
    """
    data = dict(doc)
    version = data.get("schema_version", 1)
    case_id = data.get("case_id")
    if not isinstance(version, int) or version > t.SCHEMA_VERSION:
        raise StateSchemaError(
            f"case state schema_version {version!r} is newer than this engine's "
            f"({t.SCHEMA_VERSION})", case_id=case_id)
    while version < t.SCHEMA_VERSION:
        upgrade = UPGRADES.get(version)
        if upgrade is None:
            raise StateSchemaError(f"no upgrade from case state schema_version {version}",
                                   case_id=case_id)
        data = upgrade(data)
        version += 1
        data["schema_version"] = version
    state: t.CaseState = _dataclass_in(t.CaseState, data)
    return state


def _tagged_out(value: Any, kinds: Mapping[str, type]) -> dict[str, Any]:
    name = type(value).__name__
    if kinds.get(name) is not type(value):
        raise TypeError(f"not a known type: {name}")
    return {"type": name, **_out(value, type(value))}


def _tagged_in(doc: Mapping[str, Any], kinds: Mapping[str, type], what: str) -> Any:
    cls = kinds.get(str(doc.get("type")))
    if cls is None:
        raise StateSchemaError(f"unknown {what} type {doc.get('type')!r}")
    return _dataclass_in(cls, doc)


def event_to_json(event: t.Event) -> dict[str, Any]:
    """``{"type": "TaskCompleted", ...fields}``."""
    return _tagged_out(event, _EVENTS)


def event_from_json(doc: Mapping[str, Any]) -> t.Event:
    """The event ``event_to_json`` wrote. Raises StateSchemaError for an unknown type."""
    event: t.Event = _tagged_in(doc, _EVENTS, "event")
    return event


def command_to_json(command: t.Command) -> dict[str, Any]:
    """``{"type": "ScheduleTimer", ...fields}`` (for the audit log and the outbox)."""
    return _tagged_out(command, _COMMANDS)


def command_from_json(doc: Mapping[str, Any]) -> t.Command:
    """The command ``command_to_json`` wrote."""
    command: t.Command = _tagged_in(doc, _COMMANDS, "command")
    return command
