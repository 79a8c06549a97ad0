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


_PLAIN = (str, int, float, bool, type(None))


def _any_out(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict or kind is types.MappingProxyType:  # frozen_map: skip the Mapping ABC test
        return {str(k): _any_out(v) for k, v in value.items()}
    if kind is list:
        return [_any_out(v) for v in value]
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
    if type(value) in _PLAIN:
        return value
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


# ---- typed values: converters compiled once per type ---------------------------------------

Conv = Callable[[Any], Any]
_SCALAR_TYPES = _PLAIN


def _identity(value: Any) -> Any:
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@cache
def _encoder(typ: Any) -> Conv:
    """A function writing values of type ``typ`` as JSON-able data."""
    if typ is Any:
        return _any_out
    if typ in _SCALAR_TYPES:
        return _identity
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (types.UnionType, typing.Union):
        inner = _encoder(next(a for a in args if a is not type(None)))
        return lambda v: None if v is None else inner(v)
    if typ is datetime:
        return lambda v: v.isoformat()
    if isinstance(typ, type) and issubclass(typ, Enum):
        return lambda v: v.value
    if isinstance(typ, type) and dataclasses.is_dataclass(typ):
        hints = _hints(typ)
        plan = [(f.name, _encoder(hints[f.name])) for f in dataclasses.fields(typ)]
        return lambda v: {name: enc(getattr(v, name)) for name, enc in plan}
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _encoder(args[0])
        return lambda v: [item(x) for x in v]
    if origin is tuple and args:
        items = [_encoder(a) for a in args]
        return lambda v: [enc(x) for enc, x in zip(items, v, strict=True)]
    if origin in (Mapping, dict) or typ is Mapping:
        val = _encoder(args[1]) if len(args) == 2 else _any_out
        return lambda v: {str(k): val(x) for k, x in v.items()}
    return _any_out


@cache
def _decoder(typ: Any) -> Conv:
    """A function reading values of type ``typ`` from what ``_encoder`` wrote."""
    if typ is Any:
        return _any_in
    if typ in _SCALAR_TYPES:
        return _identity
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (types.UnionType, typing.Union):
        inner = _decoder(next(a for a in args if a is not type(None)))
        return lambda v: None if v is None else inner(v)
    if typ is datetime:
        return datetime.fromisoformat
    if isinstance(typ, type) and issubclass(typ, Enum):
        return typ
    if isinstance(typ, type) and dataclasses.is_dataclass(typ):
        return lambda v: _dataclass_in(typ, v)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _decoder(args[0])
        return lambda v: tuple(item(x) for x in v)
    if origin is tuple and args:
        items = [_decoder(a) for a in args]
        return lambda v: tuple(dec(x) for dec, x in zip(items, v, strict=True))
    if origin in (Mapping, dict) or typ is Mapping:
        val = _decoder(args[1]) if len(args) == 2 else _any_in
        return lambda v: frozen_map({k: val(x) for k, x in v.items()})
    return _identity


@cache
def _field_decoders(cls: type) -> dict[str, Conv]:
    hints = _hints(cls)
    return {f.name: _decoder(hints[f.name]) for f in dataclasses.fields(cls)}


def _dataclass_in(cls: type, doc: Mapping[str, Any]) -> Any:
    if not isinstance(doc, Mapping):
        raise StateSchemaError(f"{cls.__name__}: expected an object, got {type(doc).__name__}")
    decoders = _field_decoders(cls)
    try:
        kwargs = {k: decoders[k](v) for k, v in doc.items() if k != "type"}
    except KeyError as exc:
        unknown = sorted(set(doc) - set(decoders) - {"type"})
        raise StateSchemaError(f"{cls.__name__}: unknown field(s) {unknown}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise StateSchemaError(f"{cls.__name__}: {exc}") from exc
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise StateSchemaError(f"{cls.__name__}: {exc}") from exc


def _out(value: Any, typ: Any) -> Any:
    return _encoder(typ)(value)


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
