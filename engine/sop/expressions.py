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

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
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


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _to_cel(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALAR_TYPES:
        return value
    if kind is dict or kind is MappingProxyType or isinstance(value, Mapping):
        return {str(k): _to_cel(v) for k, v in value.items()}
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        return [_to_cel(v) for v in value]
    return value


# ---- names and field paths without CEL at run time ----------------------------------------
#
# An expression that is only a name or a field path (``email``, ``result.intent``) is
# type-checked by CEL like any other, then evaluated by direct lookup. The lookup gives
# exactly what CEL gives (the value converted the way CEL converts it: a fresh dict/list
# copy, tuples as lists, int as float for a number field) for the values it recognises,
# and hands everything else to CEL: a missing name or key, a null where a map is
# expected, a value CEL cannot hold (a datetime inside a map, bytes, a str subclass, a
# string with NUL or a lone surrogate, an integer out of range, an instant or duration at
# the edge of CEL's range). So results and errors are CEL's by construction.


class _Unusual(Exception):
    """A value the lookup does not reproduce exactly: let CEL evaluate instead.

    Always raised as a fresh instance (``raise _Unusual``): re-raising one shared instance
    would chain every raise's traceback onto it and keep each step's frames alive.
    """


_INT_MIN, _INT_MAX, _UINT_MAX = -(2**63), 2**63 - 1, 2**64 - 1
_EXACT_FLOAT = 2**53
_MAX_DAYS = 3_652_000  # CEL durations end at 10,000 years (3,652,500 days)
_PATH = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*$")
_RESERVED = frozenset({"true", "false", "null", "in", "as", "break", "const", "continue",
                       "else", "for", "function", "if", "import", "let", "loop", "package",
                       "namespace", "return", "var", "void", "while"})


def _text(value: str) -> str:
    """A string CEL keeps as is (it cuts at NUL and refuses lone surrogates)."""
    if "\x00" in value:
        raise _Unusual
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Unusual from None
    return value


def _dyn(value: Any) -> Any:
    """``value`` as CEL's ``dyn`` gives it back (plain_value of the converted value)."""
    kind = type(value)
    if kind is str:
        return value if value.isascii() and "\x00" not in value else _text(value)
    if kind is bool or kind is float or value is None:
        return value
    if kind is int:
        if _INT_MIN <= value <= _UINT_MAX:
            return value
        raise _Unusual
    if kind is dict or kind is MappingProxyType:
        return _dyn_map(value)
    if kind is list or kind is tuple:
        return [_dyn(v) for v in value]
    raise _Unusual  # datetime, timedelta, bytes, subclasses, objects: CEL decides


def _dyn_map(value: Mapping[Any, Any]) -> dict[str, Any]:
    """``_dyn`` of a map, with the checks of string keys and values written out (hot)."""
    out = {}
    for k, v in value.items():
        if type(k) is not str:
            raise _Unusual
        if not k.isascii() or "\x00" in k:
            _text(k)
        kind = type(v)
        if kind is str:
            if not v.isascii() or "\x00" in v:
                _text(v)
        elif not (kind is bool or kind is float or v is None):
            v = _dyn(v)
        out[k] = v
    return out


def _as_string(value: Any) -> Any:
    if type(value) is str:
        return value if value.isascii() and "\x00" not in value else _text(value)
    raise _Unusual


def _as_int(value: Any) -> Any:
    if type(value) is int and _INT_MIN <= value <= _INT_MAX:
        return value
    raise _Unusual


def _as_double(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int and -_EXACT_FLOAT <= value <= _EXACT_FLOAT:
        return float(value)
    raise _Unusual


def _as_bool(value: Any) -> Any:
    if type(value) is bool:
        return value
    raise _Unusual


def _as_timestamp(value: Any) -> Any:
    if type(value) is datetime and value.tzinfo is UTC and 1 < value.year < 9999:
        return value
    raise _Unusual


def _as_duration(value: Any) -> Any:
    if type(value) is timedelta and -_MAX_DAYS < value.days < _MAX_DAYS:
        return value
    raise _Unusual


def _as_map(value: Any) -> Any:
    kind = type(value)
    if kind is dict or kind is MappingProxyType:
        return _dyn_map(value)
    raise _Unusual


_Convert = Callable[[Any], Any]
_CONVERTERS: Mapping[str, _Convert] = {
    "string": _as_string,
    "integer": _as_int,
    "number": _as_double,
    "boolean": _as_bool,
    "timestamp": _as_timestamp,
    "duration": _as_duration,
    "object": _as_map,
}


def _converter(type_name: str, items: str | None = None) -> _Convert:
    """How CEL converts a value of a declared case-data type (see ``cel_type``)."""
    if type_name == "array":
        item = _CONVERTERS.get(items or "", _dyn)

        def as_list(value: Any) -> Any:
            if type(value) is list or type(value) is tuple:
                return [item(v) for v in value]
            raise _Unusual

        return as_list
    return _CONVERTERS.get(type_name, _dyn)


def _lookup(
    root: str, convert: _Convert, keys: tuple[str, ...]
) -> Callable[[Mapping[str, Any]], Any]:
    """The direct evaluation of ``root.keys...``; raises _Unusual where CEL must decide."""
    if not keys and convert is _as_string:  # the commonest read: a text field, checked here
        def text(variables: Mapping[str, Any]) -> Any:
            try:
                value = variables[root]
            except KeyError:
                raise _Unusual from None
            if type(value) is str and value.isascii() and "\x00" not in value:
                return value
            return _as_string(value)

        return text
    if not keys:
        def name(variables: Mapping[str, Any]) -> Any:
            try:
                value = variables[root]
            except KeyError:
                raise _Unusual from None
            return convert(value)

        return name

    def path(variables: Mapping[str, Any]) -> Any:
        try:
            value = convert(variables[root])
            for key in keys:
                if type(value) is not dict:
                    raise _Unusual
                value = value[key]
        except KeyError:
            raise _Unusual from None
        return value

    return path


# ---- small expressions without CEL at run time ------------------------------------------
#
# Beyond names and paths, the commonest conditions are comparisons with literals joined by
# && and || (``intent == "reset" && email != ""``, ``case.tier == "gold"``,
# ``topic in ["a", "b"]``, ``flag ? "x" : y``). ``_Small`` turns such a (type-checked)
# expression into nested Python functions. Each operator works only on operands whose types
# make CEL's result certain (== and != on two strings, int64s, doubles, bools or nulls;
# < <= > >= on two strings, int64s, doubles or bools; + on two strings, two doubles or two
# int64s whose sum is an int64; &&, || and ! on bools; a bool condition) and raises _Unusual
# otherwise, which hands the whole expression to CEL. Both sides of && and || are always
# evaluated, so CEL's rules for errors on either side never come into play.

_Fn = Callable[[Mapping[str, Any]], Any]
_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"[^"\\\n\r]*"|'[^'\\\n\r]*')|(?P<int>\d+)(?![\w.])"""
    r"""|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>==|!=|<=|>=|&&|\|\||[<>!?:().\[\],+]))"""
)
_EQ_TYPES = frozenset({str, int, float, bool, type(None)})
_ORDERED_TYPES = frozenset({str, int, float, bool})
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


class _NotSmall(Exception):
    """The expression is outside the subset: CEL evaluates it every time."""


def _tokens(source: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos, end = 0, len(source.rstrip())
    while pos < end:
        m = _TOKEN.match(source, pos)
        if m is None or m.end() == pos:
            raise _NotSmall
        pos = m.end()
        kind = m.lastgroup or ""
        text = m.group(kind)
        if kind == "str":
            try:
                out.append(("lit", _text(text[1:-1])))
            except _Unusual:
                raise _NotSmall from None
        elif kind == "int":
            value = int(text)
            if value > _INT_MAX:
                raise _NotSmall
            out.append(("lit", value))
        elif kind == "id" and text in ("true", "false", "null"):
            out.append(("lit", {"true": True, "false": False, "null": None}[text]))
        elif kind == "id" and text == "in":
            out.append(("op", "in"))
        else:
            out.append((kind, text))
    return out


def _eq_operands(a: Any, b: Any) -> None:
    kind = type(a)
    if kind is not type(b) or kind not in _EQ_TYPES:
        raise _Unusual
    if kind is int and not (_INT_MIN <= a <= _INT_MAX and _INT_MIN <= b <= _INT_MAX):
        raise _Unusual


def _literal(value: Any) -> _Fn:
    """A literal's evaluation; ``.literal`` holds ``(value,)`` for operators to inline it."""
    def literal(v: Mapping[str, Any]) -> Any:
        return value

    literal.literal = (value,)  # type: ignore[attr-defined]
    return literal


def _fn(node: Any) -> _Fn:
    """An operand that is a function (a list literal may only follow ``in``)."""
    if isinstance(node, tuple):
        raise _NotSmall
    fn: _Fn = node
    return fn


def _truth(value: Any) -> bool:
    if type(value) is not bool:
        raise _Unusual
    return value


class _Small:
    """Recursive descent over CEL's grammar, restricted to the subset (see above)."""

    def __init__(self, source: str, converters: Mapping[str, _Convert]) -> None:
        self._tokens = _tokens(source)
        self._at = 0
        self._converters = converters

    def build(self) -> _Fn:
        fn = _fn(self._expr())
        if self._at != len(self._tokens):
            raise _NotSmall
        return fn

    def _peek(self) -> tuple[str, Any] | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self, op: str) -> bool:
        if self._peek() == ("op", op):
            self._at += 1
            return True
        return False

    def _expr(self) -> Any:
        first = self._or()
        if not self._take("?"):
            return first
        cond, yes = _fn(first), _fn(self._or())
        if not self._take(":"):
            raise _NotSmall
        no = _fn(self._expr())

        def choose(v: Mapping[str, Any]) -> Any:
            return yes(v) if _truth(cond(v)) else no(v)

        return choose

    def _or(self) -> Any:
        left = self._and()
        while self._take("||"):
            left = self._logic(left, self._and(), either=True)
        return left

    def _and(self) -> Any:
        left = self._relation()
        while self._take("&&"):
            left = self._logic(left, self._relation(), either=False)
        return left

    @staticmethod
    def _logic(first: Any, second: Any, *, either: bool) -> _Fn:
        a, b = _fn(first), _fn(second)
        if either:
            def any_of(v: Mapping[str, Any]) -> bool:
                x, y = _truth(a(v)), _truth(b(v))
                return x or y

            return any_of

        def all_of(v: Mapping[str, Any]) -> bool:
            x, y = _truth(a(v)), _truth(b(v))
            return x and y

        return all_of

    def _relation(self) -> Any:
        left = self._addition()
        while True:
            token = self._peek()
            if token in (("op", "=="), ("op", "!=")):
                self._at += 1
                left = self._equality(left, self._addition(), negate=token[1] == "!=")
            elif token == ("op", "in"):
                self._at += 1
                left = self._member_of(left, self._addition())
            elif token is not None and token[0] == "op" and token[1] in _ORDER:
                self._at += 1
                left = self._ordering(left, self._addition(), _ORDER[token[1]])
            else:
                return left

    @staticmethod
    def _ordering(first: Any, second: Any, compare: Callable[[Any, Any], bool]) -> _Fn:
        a, b = _fn(first), _fn(second)

        def ordered(v: Mapping[str, Any]) -> bool:
            x, y = a(v), b(v)
            kind = type(x)
            if kind is not type(y) or kind not in _ORDERED_TYPES:
                raise _Unusual
            if kind is int and not (_INT_MIN <= x <= _INT_MAX and _INT_MIN <= y <= _INT_MAX):
                raise _Unusual
            return compare(x, y)

        return ordered

    @staticmethod
    def _equality(first: Any, second: Any, *, negate: bool) -> _Fn:
        a, b = _fn(first), _fn(second)
        literal = getattr(b, "literal", None)
        kind = type(literal[0]) if literal else None
        if literal and kind in _EQ_TYPES and (kind is not int
                                              or _INT_MIN <= literal[0] <= _INT_MAX):
            value = literal[0]

            def equal_literal(v: Mapping[str, Any]) -> bool:  # x == "text", x != null ...
                x = a(v)
                if type(x) is not kind or (kind is int and not _INT_MIN <= x <= _INT_MAX):
                    raise _Unusual
                return (x != value) if negate else (x == value)

            return equal_literal

        def equal(v: Mapping[str, Any]) -> bool:
            x, y = a(v), b(v)
            _eq_operands(x, y)
            return (x != y) if negate else (x == y)

        return equal

    @staticmethod
    def _member_of(first: Any, items: Any) -> _Fn:
        a = _fn(first)
        if not isinstance(items, tuple):
            raise _NotSmall
        kinds = {type(i) for i in items}
        if len(kinds) > 1 or not kinds <= {str, int}:
            raise _NotSmall
        kind = next(iter(kinds), None)
        values = frozenset(items)

        def member(v: Mapping[str, Any]) -> bool:
            x = a(v)
            if type(x) is not kind or (kind is int and not _INT_MIN <= x <= _INT_MAX):
                raise _Unusual
            return x in values

        return member

    def _addition(self) -> Any:
        left = self._unary()
        while self._take("+"):
            left = self._plus(left, self._unary())
        return left

    @staticmethod
    def _plus(first: Any, second: Any) -> _Fn:
        a, b = _fn(first), _fn(second)

        def plus(v: Mapping[str, Any]) -> Any:
            x, y = a(v), b(v)
            kind = type(x)
            if kind is not type(y):
                raise _Unusual
            if kind is str or kind is float:
                return x + y
            if kind is int and _INT_MIN <= x <= _INT_MAX and _INT_MIN <= y <= _INT_MAX:
                total = x + y
                if _INT_MIN <= total <= _INT_MAX:  # CEL reports an overflow
                    return total
            raise _Unusual

        return plus

    def _unary(self) -> Any:
        nots = 0
        while self._take("!"):
            nots += 1
        primary = self._primary()
        if not nots:
            return primary
        operand = _fn(primary)
        odd = nots % 2 == 1

        def negation(v: Mapping[str, Any]) -> bool:
            x = _truth(operand(v))
            return not x if odd else x

        return negation

    def _primary(self) -> Any:
        token = self._peek()
        if token is None:
            raise _NotSmall
        self._at += 1
        kind, value = token
        if kind == "lit":
            return _literal(value)
        if kind == "id":
            return self._path(value)
        if token == ("op", "("):
            inner = self._expr()
            if not self._take(")") or self._peek() in (("op", "."), ("op", "[")):
                raise _NotSmall
            return inner
        if token == ("op", "["):
            return self._list()
        raise _NotSmall

    def _path(self, root: str) -> _Fn:
        """``root.key.key...`` (just read: the root identifier)."""
        keys = []
        while self._take("."):
            nxt = self._peek()
            if nxt is None or nxt[0] != "id" or nxt[1] in _RESERVED:
                raise _NotSmall
            keys.append(nxt[1])
            self._at += 1
        if root in _RESERVED or root not in self._converters or self._peek() in (
                ("op", "("), ("op", "[")):
            raise _NotSmall
        return _lookup(root, self._converters[root], tuple(keys))

    def _list(self) -> tuple[Any, ...]:
        """A list of literals (just read: ``[``), as a tuple; only ``in`` takes one."""
        items: list[Any] = []
        while not self._take("]"):
            if items and not self._take(","):
                raise _NotSmall
            nxt = self._peek()
            if nxt is None or nxt[0] != "lit":
                raise _NotSmall
            items.append(nxt[1])
            self._at += 1
        return tuple(items)


@dataclass(frozen=True, slots=True)
class Program:
    """A compiled, type-checked expression ready to evaluate.

    ``_direct`` is set for a bare name or field path (evaluated by lookup, see ``_lookup``)
    and for the small expressions ``_Small`` knows; it falls back to CEL for anything it
    does not reproduce exactly.
    """

    source: str
    result_type: str
    reads: frozenset[str]
    _expr: Any
    _direct: Callable[[Mapping[str, Any]], Any] | None = field(default=None, compare=False)

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        """Evaluate with ``variables`` (case fields, ``case``, ``event``, ``result``, ``now``).

        Raises:
            ExpressionError: a field has no value, a type does not fit at run time, or the
                iteration budget ran out.
        """
        if self._direct is not None:
            try:
                return self._direct(variables)
            except (_Unusual, RecursionError):
                pass
        return self.evaluate_cel(variables)

    def evaluate_cel(self, variables: Mapping[str, Any]) -> Any:
        """``evaluate`` always through the CEL runtime (the reference of the direct path)."""
        data = {k: _to_cel(variables[k]) for k in self.reads if k in variables}
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
        fields = list(fields)
        variables = {name: cel_type(t, items) for name, t, items in fields}
        variables.update(
            case=_DYN_MAP, event=_DYN_MAP, result=_DYN_MAP, now=cel.Type.TIMESTAMP
        )
        converters = {name: _converter(t, items) for name, t, items in fields}
        converters.update(case=_as_map, event=_as_map, result=_as_map, now=_as_timestamp)
        self._converters: Mapping[str, _Convert] = converters
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
        return Program(source, rtype.lower(), referenced_names(source) & self.names, expr,
                       self._direct(source))

    def _direct(self, source: str) -> Callable[[Mapping[str, Any]], Any] | None:
        """The Python evaluation of a (type-checked) name, path or small expression; None
        for anything else."""
        m = _PATH.match(source)
        if m is not None:
            root, keys = m.group(1), tuple(m.group(2).split(".")[1:])
            if root in self._converters and not _RESERVED.intersection((root, *keys)):
                return _lookup(root, self._converters[root], keys)
        try:
            return _Small(source, self._converters).build()
        except (_NotSmall, RecursionError):
            return None

def to_timestamp(value: datetime) -> datetime:
    """Normalise an instant for CEL (aware UTC)."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def seconds(value: timedelta) -> int:
    return int(value.total_seconds())
