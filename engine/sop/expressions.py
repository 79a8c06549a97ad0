"""CEL expressions: compile and type-check against the SOP's case data, evaluate with a budget.

The Common Expression Language (cel-expr-python, the cel-cpp binding) is side-effect free,
terminating and type-checked; its runtime enforces an iteration budget. careflow never uses
``eval``.

Names an expression can use:

- every declared case-data field, by name, with its declared type (``intent == "x"``);
- ``case``: ``map(string, dyn)`` with ``id``, ``level``, ``priority``, ``tier``, ``channel``, ``sop``;
- ``event``: ``map(string, dyn)``, the channel event (in ``wait.on[].when``, ``on_event``, routing);
- ``result``: ``map(string, dyn)``, what an action or sub-SOP returned (in ``set`` of those nodes);
- ``now``: ``timestamp``, the instant of evaluation (injected, never the wall clock).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cel_expr_python import cel

from engine.errors import ExpressionError

__all__ = [
    "BUILTIN_NAMES",
    "ExpressionEnv",
    "Program",
    "referenced_names",
]

BUILTIN_NAMES = frozenset({"case", "event", "result", "now"})

_DYN_MAP = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
_SCALARS: Mapping[str, Any] = {
    "string": cel.Type.STRING,
    "integer": cel.Type.INT,
    "number": cel.Type.DOUBLE,
    "boolean": cel.Type.BOOL,
    "timestamp": cel.Type.TIMESTAMP,
    "duration": cel.Type.DURATION,
    "object": _DYN_MAP,
}
_MAX_SOURCE = 4096
_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*?)(?:\n|$)")
_STRING_LITERAL = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_IDENT = re.compile(r"(?<![.\w])([A-Za-z_][A-Za-z0-9_]*)")
_KEYWORDS = frozenset({"true", "false", "null", "in", "has", "size", "int", "uint", "double",
                       "string", "bytes", "bool", "type", "timestamp", "duration", "dyn",
                       "matches", "exists", "all", "exists_one", "map", "filter"})


def cel_type(type_name: str, items: str | None = None) -> Any:
    """The CEL type of a declared case-data type name."""
    if type_name == "array":
        return cel.Type.List(_SCALARS.get(items or "", cel.Type.DYN))
    return _SCALARS.get(type_name, cel.Type.DYN)


def referenced_names(source: str) -> frozenset[str]:
    """Top-level identifiers an expression reads (string literals and members ignored).

    >>> sorted(referenced_names('intent == "a b" && case.level == "L1" && size(tags) > 0'))
    ['case', 'intent', 'tags']
    """
    stripped = _STRING_LITERAL.sub('""', source)
    names = {m.group(1) for m in _IDENT.finditer(stripped)}
    # macro loop variables: x in `list.all(x, ...)` shadow nothing we declare, drop them
    loop_vars = set(re.findall(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)", stripped))
    return frozenset(names - _KEYWORDS - loop_vars)


def _to_cel(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _to_cel(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_cel(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled, type-checked expression ready to evaluate."""

    source: str
    result_type: str
    reads: frozenset[str]
    _expr: Any

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Evaluate with ``variables`` (case fields, ``case``, ``event``, ``result``, ``now``).

        Raises:
            ExpressionError: a field has no value, a type does not fit at run time, or the
                iteration budget ran out.
        """
        data = {k: _to_cel(v) for k, v in variables.items() if k in self.reads}
        try:
            value = self._expr.eval(data=data)
        except RuntimeError as exc:
            raise ExpressionError(self.source, _clean(str(exc))) from exc
        if value.type() == cel.Type.ERROR:
            missing = sorted(self.reads - set(data))
            detail = _clean(str(value.value()))
            if missing:
                detail = f"no value yet for {', '.join(missing)} ({detail})"
            raise ExpressionError(self.source, detail)
        return value.plain_value()

    def test(self, variables: Mapping[str, Any]) -> bool:
        """Evaluate a condition; anything but ``true`` is False."""
        return self.evaluate(variables) is True


def _clean(detail: str) -> str:
    return re.sub(r"\s*\[(INVALID_ARGUMENT|INTERNAL|UNKNOWN)\]\s*$", "", detail).replace(
        "INVALID_ARGUMENT: ", "").replace("INTERNAL: ", "").replace("UNKNOWN: ", "")


class ExpressionEnv:
    """The typing environment of one SOP: its case-data fields plus the built-in names."""

    def __init__(self, fields: Iterable[tuple[str, str, str | None]] = ()) -> None:
        """``fields`` are (name, type, items) triples from the case-data declaration."""
        variables = {name: cel_type(t, items) for name, t, items in fields}
        variables.update(
            case=_DYN_MAP, event=_DYN_MAP, result=_DYN_MAP, now=cel.Type.TIMESTAMP
        )
        self.names = frozenset(variables)
        self._env = cel.NewEnv(variables=variables)

    def compile(self, source: str, *, expect_bool: bool = False) -> Program:
        """Parse and type-check ``source``.

        Raises:
            ExpressionError: syntax or type error; ``column`` is 1-based within ``source``.
        """
        if not isinstance(source, str) or not source.strip():
            raise ExpressionError(str(source), "an expression must be a non-empty string")
        if len(source) > _MAX_SOURCE:
            raise ExpressionError(source[:40] + "...", f"longer than {_MAX_SOURCE} characters")
        try:
            expr = self._env.compile(source)
        except RuntimeError as exc:
            text = str(exc)
            m = _POSITION.search(text)
            if m:
                raise ExpressionError(source, _clean(m.group(3)), column=int(m.group(2))) from exc
            raise ExpressionError(source, _clean(text.splitlines()[0])) from exc
        rtype = expr.return_type().name()
        if expect_bool and rtype not in ("bool", "BOOL", "dyn", "DYN"):
            raise ExpressionError(source, f"a condition must be bool, this is {rtype.lower()}")
        return Program(source, rtype.lower(), referenced_names(source) & self.names, expr)


def to_timestamp(value: datetime) -> datetime:
    """Normalise an instant for CEL (aware UTC)."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def seconds(value: timedelta) -> int:
    return int(value.total_seconds())
