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

Speed: every advanced case is decoded and encoded once per store batch, so each dataclass
gets a straight-line encoder and decoder generated from its type hints on first use
(``_Plan``). The decoder expects a complete document; anything else (fields left out,
unknown fields, malformed values) takes the general, checked path (``_dataclass_in``)
which applies defaults or raises StateSchemaError. Both paths give equal results. SLA
clock states (``ClockRef.state``) decode to a ClockDoc that decodes the clock itself only
when a step touches it.
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
from engine.interpreter.types import ClockDoc
from engine.slots import fast_constructor
from engine.sop.model import EMPTY, frozen_map

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
_PLAIN_SET = frozenset(_PLAIN)


def _any_out(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN_SET:
        return value
    if kind is dict or kind is types.MappingProxyType:  # frozen_map: skip the Mapping ABC test
        return _map_out(value)
    if kind is list:
        plain = _PLAIN_SET
        return [v if type(v) in plain else _any_out(v) for v in value]
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
    kind = type(value)
    if kind in _PLAIN_SET:
        return value
    if kind is list:
        plain = _PLAIN_SET
        return [v if type(v) in plain else _any_in(v) for v in value]
    if kind is dict or isinstance(value, dict):
        if len(value) == 1:
            if "$dt" in value:
                return datetime.fromisoformat(value["$dt"])
            if "$td" in value:
                days, secs, micros = value["$td"]
                return timedelta(days=days, seconds=secs, microseconds=micros)
            if "$tuple" in value:
                return tuple(_any_in(v) for v in value["$tuple"])
        return _map_in(value)
    if isinstance(value, list):
        return [_any_in(v) for v in value]
    return value


def _map_out(value: Mapping[Any, Any]) -> dict[str, Any]:
    """A free-form map as ``_any_out`` writes it (scalar values without a call)."""
    plain = _PLAIN_SET
    return {k if type(k) is str else str(k): v if type(v) in plain else _any_out(v)
            for k, v in value.items()}


def _map_in(value: Mapping[str, Any]) -> dict[str, Any]:
    """A free-form map as ``_any_in`` reads it (scalar values without a call)."""
    plain = _PLAIN_SET
    return {k: v if type(v) in plain else _any_in(v) for k, v in value.items()}


def _clock_out(value: Any) -> Any:
    """``ClockRef.state``: the clock's JSON form (a fresh dict)."""
    if type(value) is ClockDoc:
        if value.decoded is None:
            return value.to_json()  # made by a step: encode the clock
        value = value.decoded  # read by the codec: write it as it was read
    return _map_out(value)


def _clock_in(value: Any) -> ClockDoc:
    """``ClockRef.state`` as a ClockDoc (the clock is decoded when a step needs it)."""
    return ClockDoc(doc=types.MappingProxyType(_map_in(value)))


def _fixed(n: int) -> Callable[[Any], Any]:
    """A check that a fixed-size tuple has ``n`` items (else ValueError, like zip strict)."""
    def wrong(value: Any) -> Any:
        raise ValueError(f"expected {n} items, got {len(value)}")

    return wrong


#: fields whose values are converted by a function of their own
_SPECIAL_OUT: dict[tuple[type, str], Callable[[Any], Any]] = {(t.ClockRef, "state"): _clock_out}
_SPECIAL_IN: dict[tuple[type, str], Callable[[Any], Any]] = {(t.ClockRef, "state"): _clock_in}


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
        return _plan(typ).encode
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
        return lambda v: _checked_in(typ, v)
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
    return {f.name: _SPECIAL_IN.get((cls, f.name)) or _decoder(hints[f.name])
            for f in dataclasses.fields(cls)}


def _dataclass_in(cls: type, doc: Mapping[str, Any]) -> Any:
    """The ``cls`` value of ``doc``: the generated decoder, else the checked path."""
    try:
        return _plan(cls).decode(doc)
    except (_Incomplete, KeyError, TypeError, ValueError, AttributeError):
        return _checked_in(cls, doc)


def _checked_in(cls: type, doc: Mapping[str, Any]) -> Any:
    """Field by field, with defaults for fields left out and errors that name the class."""
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


# ---- generated straight-line converters -------------------------------------------------


class _Incomplete(Exception):
    """The document is not complete (fields left out or unknown): use the checked path."""


class _Plan:
    """The generated ``encode(value) -> dict`` and ``decode(doc) -> value`` of one dataclass.

    The encoder writes exactly what the general converters write; the decoder reads a
    complete document (every field, plus at most a ``type`` tag) and raises otherwise.
    """

    __slots__ = ("_count", "_ns", "decode", "encode")

    def __init__(self, cls: type) -> None:
        try:
            make: Callable[..., Any] = fast_constructor(cls)
        except TypeError:
            make = cls
        ns: dict[str, Any] = {"cls": make, "any_out": _any_out, "any_in": _any_in,
                              "fromiso": datetime.fromisoformat, "frozen": types.MappingProxyType,
                              "Incomplete": _Incomplete, "map_out": _map_out,
                              "map_in": _map_in, "EMPTY": EMPTY}  # one shared empty view
        self._ns = ns
        self._count = 0
        hints = _hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        outs, ins = [], []
        for name in names:
            special_out = _SPECIAL_OUT.get((cls, name))
            special_in = _SPECIAL_IN.get((cls, name))
            outs.append(f"{name!r}: " + (
                f"{self._bind(special_out)}(v.{name})" if special_out
                else self._out(hints[name], f"v.{name}")))
            ins.append(f"{self._bind(special_in)}(d[{name!r}])" if special_in
                       else self._in(hints[name], f"d[{name!r}]"))
        n = len(names)
        source = (
            "def encode(v):\n"
            f"    return {{{', '.join(outs)}}}\n"
            "def decode(d):\n"
            "    n = len(d)\n"
            f"    if n != {n} and (n != {n + 1} or 'type' not in d):\n"
            "        raise Incomplete\n"
            f"    return cls({', '.join(ins)})\n"
        )
        exec(compile(source, f"<codec {cls.__name__}>", "exec"), ns)  # noqa: S102 - own text
        self.encode: Conv = ns["encode"]
        self.decode: Conv = ns["decode"]

    def _bind(self, obj: Any) -> str:
        self._count += 1
        name = f"_f{self._count}"
        self._ns[name] = obj
        return name

    def _var(self) -> str:
        self._count += 1
        return f"_x{self._count}"

    def _out(self, typ: Any, x: str) -> str:
        """Python text writing ``x`` (of type ``typ``) as JSON-able data."""
        if typ is Any:
            return f"any_out({x})"
        if typ in _SCALAR_TYPES:
            return x
        origin, args = typing.get_origin(typ), typing.get_args(typ)
        if origin in (types.UnionType, typing.Union):
            inner = self._out(next(a for a in args if a is not type(None)), x)
            return x if inner == x else f"(None if {x} is None else {inner})"
        if typ is datetime:
            return f"{x}.isoformat()"
        if isinstance(typ, type) and issubclass(typ, Enum):
            return f"{x}._value_"  # the member's value without the Enum property call
        if isinstance(typ, type) and dataclasses.is_dataclass(typ):
            return f"{self._bind(_plan(typ).encode)}({x})"
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item = self._var()
            inner = self._out(args[0], item)
            return f"list({x})" if inner == item else f"[{inner} for {item} in {x}]"
        if origin is tuple and args:
            if all(a in _SCALAR_TYPES for a in args):
                wrong = self._bind(_fixed(len(args)))
                return f"(list({x}) if len({x}) == {len(args)} else {wrong}({x}))"
            return f"{self._bind(_encoder(typ))}({x})"
        if origin in (Mapping, dict) or typ is Mapping:
            if len(args) != 2 or args[1] is Any:
                return f"({{}} if {x} == {{}} else map_out({x}))"
            k, item = self._var(), self._var()
            return (f"({{}} if {x} == {{}} else "
                    f"{{str({k}): {self._out(args[1], item)} for {k}, {item} in {x}.items()}})")
        return f"any_out({x})"

    def _in(self, typ: Any, x: str) -> str:
        """Python text reading a ``typ`` value from ``x`` (what ``_out`` wrote)."""
        if typ is Any:
            return f"any_in({x})"
        if typ in _SCALAR_TYPES:
            return x
        origin, args = typing.get_origin(typ), typing.get_args(typ)
        if origin in (types.UnionType, typing.Union):
            inner = self._in(next(a for a in args if a is not type(None)), x)
            return x if inner == x else f"(None if {x} is None else {inner})"
        if typ is datetime:
            return f"fromiso({x})"
        if isinstance(typ, type) and issubclass(typ, Enum):
            return f"{self._bind({m.value: m for m in typ})}[{x}]"
        if isinstance(typ, type) and dataclasses.is_dataclass(typ):
            return f"{self._bind(_plan(typ).decode)}({x})"
        if origin is tuple and args:
            return self._tuple_in(typ, args, x)
        if origin in (Mapping, dict) or typ is Mapping:
            return self._map_in(args, x)
        return x

    def _tuple_in(self, typ: Any, args: tuple[Any, ...], x: str) -> str:
        if len(args) == 2 and args[1] is Ellipsis:
            item = self._var()
            inner = self._in(args[0], item)
            return f"tuple({x})" if inner == item else f"tuple([{inner} for {item} in {x}])"
        if all(a in _SCALAR_TYPES for a in args):
            wrong = self._bind(_fixed(len(args)))
            return f"(tuple({x}) if len({x}) == {len(args)} else {wrong}({x}))"
        return f"{self._bind(_decoder(typ))}({x})"

    def _map_in(self, args: tuple[Any, ...], x: str) -> str:
        if len(args) != 2 or args[1] is Any:
            return f"(EMPTY if {x} == {{}} else frozen(map_in({x})))"
        k, item = self._var(), self._var()
        val = self._in(args[1], item)
        if val == item:  # values as they are: a copy of the object (a list is refused)
            return f"(EMPTY if {x} == {{}} else frozen({x}.copy()))"
        return (f"(EMPTY if {x} == {{}} else "
                f"frozen({{{k}: {val} for {k}, {item} in {x}.items()}}))")


@cache
def _plan(cls: type) -> _Plan:
    return _Plan(cls)


# ---- public -------------------------------------------------------------------------------


def state_to_json(state: t.CaseState) -> dict[str, Any]:
    """The whole case state as a JSON-able dict (with ``schema_version``)."""
    out: dict[str, Any] = _plan(t.CaseState).encode(state)
    return out


def state_from_json(doc: Mapping[str, Any]) -> t.CaseState:
    """The CaseState ``state_to_json`` wrote, upgraded to the current schema version.

    Raises:
        StateSchemaError: a newer or unknown schema version, or a malformed document.
    """
    if type(doc) is dict:  # the usual case: a current document, read as it is
        current = doc.get("schema_version", 1)
        if type(current) is int and current == t.SCHEMA_VERSION:
            state: t.CaseState = _dataclass_in(t.CaseState, doc)
            return state
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
    upgraded: t.CaseState = _dataclass_in(t.CaseState, data)
    return upgraded


def _tagged_out(value: Any, kinds: Mapping[str, type]) -> dict[str, Any]:
    name = type(value).__name__
    if kinds.get(name) is not type(value):
        raise TypeError(f"not a known type: {name}")
    return {"type": name, **_plan(type(value)).encode(value)}


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
