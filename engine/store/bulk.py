"""Bulk statements at driver speed, and the store's one JSON codec.

The batch commit writes tens of thousands of rows; SQLAlchemy's per-row parameter
processing (bind processors, type decorators, ``json.dumps``) costs more than SQLite's own
insert. Here a statement's SQL text is built once per (table, columns, dialect), and the
rows are plain tuples of driver values handed to the driver's ``executemany``:

- JSON columns get their text from ``dumps`` (orjson; ``json`` for what orjson refuses,
  e.g. non-string keys), cast with ``::json`` on PostgreSQL;
- datetimes are stored as SQLAlchemy stores them (engine.store.models.UtcDateTime): naive
  UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` on SQLite, aware values on PostgreSQL;
- booleans as 1/0 on SQLite.

Reads through the ORM see exactly what a SQLAlchemy insert would have written (a test
compares both row by row). ``dumps``/``loads`` are also the engine's JSON serializer
(engine.store.db), so every JSON column in the store uses the same, fast codec.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import orjson
from sqlalchemy import JSON, Boolean, Table

from engine.store.models import UtcDateTime

__all__ = ["Bulk", "driver_converter", "dumps", "execute_in", "json_read", "loads", "rows_in"]

def _default(value: object) -> object:
    if type(value) is MappingProxyType:  # frozen_map: the commonest by far
        return value.copy()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """Compact JSON text of ``value`` (what a JSON column stores)."""
    try:
        return orjson.dumps(value, default=_default).decode()
    except TypeError:  # non-string keys, integers beyond 64 bits: the standard library's way
        return json.dumps(value, separators=(",", ":"), default=_default)


def loads(text: str | bytes) -> Any:
    """The value of JSON ``text``."""
    return orjson.loads(text)


def json_read(value: Any) -> Any:
    """A JSON column's value as the driver returns it: text on SQLite (parsed here, by
    orjson), already parsed on PostgreSQL."""
    return loads(value) if type(value) is str else value


def _in_chunks(conn: Any, sql: str, ids: Sequence[Any], chunk: int) -> Iterator[Any]:
    """The driver results of ``sql`` for ``ids``, ``chunk`` ids per statement; ``sql`` holds
    ``{ids}`` where the ``IN`` list's placeholders go."""
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    for start in range(0, len(ids), chunk):
        part = tuple(ids[start:start + chunk])
        yield conn.exec_driver_sql(sql.format(ids=", ".join([mark] * len(part))), part)


def rows_in(conn: Any, sql: str, ids: Sequence[Any], *, chunk: int = 500) -> Iterator[Any]:
    """The driver rows of ``sql`` for ``ids``, ``chunk`` ids per statement, e.g.
    ``SELECT case_id, state FROM case_states WHERE case_id IN ({ids})``."""
    for result in _in_chunks(conn, sql, ids, chunk):
        yield from result


def execute_in(conn: Any, sql: str, ids: Sequence[Any], *, chunk: int = 500) -> None:
    """Run the statement ``sql`` (no rows back) for ``ids``, ``chunk`` ids per statement,
    e.g. ``UPDATE timers SET status = 'cancelled' WHERE case_id IN ({ids})``."""
    for _ in _in_chunks(conn, sql, ids, chunk):
        pass


@lru_cache(maxsize=4096)
def sqlite_time(value: datetime | None) -> str | None:
    """``value`` as SQLite stores a UtcDateTime: naive UTC text with microseconds."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:"
            f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}")


def _pg_time(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _json_value(value: Any) -> str | None:
    return None if value is None else dumps(value)


def _sqlite_bool(value: Any) -> int | None:
    return None if value is None else int(bool(value))


def _same(value: Any) -> Any:
    return value


def driver_converter(column: Any, dialect: str) -> Callable[[Any], Any]:
    """The function that turns a Python value of ``column`` into its driver value."""
    return _converter(column, dialect)


def _converter(column: Any, dialect: str) -> Callable[[Any], Any]:
    kind = column.type
    if isinstance(kind, JSON):
        return _json_value
    if isinstance(kind, Boolean):
        return _sqlite_bool if dialect == "sqlite" else _same
    if isinstance(kind, UtcDateTime):
        return sqlite_time if dialect == "sqlite" else _pg_time
    return _same


class Bulk:
    """``INSERT``/``UPDATE ... WHERE`` of many rows through the driver, for one table.

    Args:
        table: the SQLAlchemy table.
        columns: the columns every row gives, in tuple order.
        dialect: ``sqlite`` or ``postgresql`` (others are not supported here).
    """

    def __init__(self, table: Table, columns: Sequence[str], dialect: str) -> None:
        if dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"bulk statements support sqlite and postgresql, not {dialect}")
        self.table = table
        self.columns = tuple(columns)
        self.dialect = dialect
        self.convert = tuple(_converter(table.c[c], dialect) for c in self.columns)
        self._row = _row_function(self.convert)

    def mark(self, column: str) -> str:
        if self.dialect == "sqlite":
            return "?"
        return "%s::json" if isinstance(self.table.c[column].type, JSON) else "%s"

    def row(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """``values`` (Python values, in column order) as driver values."""
        try:
            return self._row(*values)
        except TypeError:
            if len(values) == len(self.columns):
                raise
            raise ValueError(f"{self.table.name}: {len(values)} values for {len(self.columns)} "
                             f"columns ({', '.join(self.columns)})") from None

    def insert_sql(self, suffix: str = "") -> str:
        marks = ", ".join(self.mark(c) for c in self.columns)
        return (f"INSERT INTO {self.table.name} ({', '.join(self.columns)}) VALUES ({marks})"
                f"{suffix}")

    def insert(self, conn: Any, rows: Sequence[Sequence[Any]], *, suffix: str = "",
               converted: bool = False) -> None:
        """Insert ``rows`` (tuples of Python values, or driver values if ``converted``)."""
        if rows:
            data = rows if converted else [self.row(r) for r in rows]
            conn.exec_driver_sql(self.insert_sql(suffix), list(data))


def _row_function(converters: Sequence[Callable[[Any], Any]]) -> Callable[..., tuple[Any, ...]]:
    """``(v0, v1, ...) -> (v0, c1(v1), ...)``: one tuple display, a call only for the
    columns that need a conversion (a batch converts tens of thousands of rows)."""
    names = [f"v{i}" for i in range(len(converters))]
    items = [name if f is _same else f"c{i}({name})" for i, (name, f) in
             enumerate(zip(names, converters, strict=True))]
    namespace = {f"c{i}": f for i, f in enumerate(converters) if f is not _same}
    exec(f"def row({', '.join(names)}):\n    return ({', '.join(items)},)\n", namespace)  # noqa: S102
    return namespace["row"]


@lru_cache(maxsize=256)
def bulk_for(table: Table, columns: tuple[str, ...], dialect: str) -> Bulk:
    """The (cached) ``Bulk`` of ``table`` and ``columns`` on ``dialect``."""
    return Bulk(table, columns, dialect)
