"""Rich tables whose identifier columns are never cut: an id a user cannot copy is useless."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich is imported when a table is drawn, not when the CLI starts
    from rich.table import Table

__all__ = ["id_table"]


def id_table(*headers: str, ids: dict[str, Iterable[str]], title: str | None = None) -> Table:
    """A Table whose columns named in ``ids`` are as wide as their longest value, unwrapped."""
    from rich.table import Column, Table

    columns = []
    for name in headers:
        if name in ids:
            width = max((len(v) for v in ids[name]), default=len(name))
            columns.append(Column(name, no_wrap=True, min_width=max(width, len(name))))
        else:
            columns.append(Column(name))
    return Table(*columns, title=title)
