"""The content hash of an SOP: sha256 of a canonical JSON of its meaning.

Insensitive to YAML formatting, comments, key order, quoting, spans and the file name, and
to how a duration is spelled (``P2D`` = ``48h``); sensitive to every semantic change
(conditions, targets, branch order, versions, titles). Fields at their default value are
left out, so adding an optional field to the model does not change existing hashes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from enum import StrEnum
from typing import Any

from engine.sop.model import Duration, Expr, SopSpec

__all__ = ["canonical_json", "content_hash"]

_UNORDERED = frozenset({"outcomes", "form"})  # tuples built from YAML mappings: order is cosmetic
_SKIP = frozenset({"span", "source"})
_MISSING = object()
_FIELDS: dict[type, tuple[tuple[str, Any], ...]] = {}


def _fields_of(cls: type) -> tuple[tuple[str, Any], ...]:
    """(name, default) of the fields that enter the hash; defaults are left out of it, so
    adding an optional field to the model does not change existing hashes."""
    found = _FIELDS.get(cls)
    if found is None:
        out = []
        for f in fields(cls):
            if f.name in _SKIP:
                continue
            if f.default is not MISSING:
                default = f.default
            elif f.default_factory is not MISSING:
                default = f.default_factory()
            else:
                default = _MISSING
            out.append((f.name, default))
        found = _FIELDS[cls] = tuple(out)
    return found


def _canonical(value: Any, name: str = "") -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value.value if isinstance(value, StrEnum) else value
    if isinstance(value, Duration):
        return {"seconds": value.seconds}
    if isinstance(value, Expr):
        return {"cel": value.source}
    if is_dataclass(value) and not isinstance(value, type):
        out = {}
        for field_name, default in _fields_of(type(value)):
            item = getattr(value, field_name)
            if default is not _MISSING and item == default:
                continue
            out[field_name] = _canonical(item, field_name)
        return out
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        items = [_canonical(v) for v in value]
        if name in _UNORDERED:
            items.sort(key=lambda item: json.dumps(item, sort_keys=True, default=str))
        return items
    return str(value)


def canonical_json(spec: SopSpec) -> str:
    """A canonical JSON text of ``spec``: no spans, sorted keys, durations in seconds."""
    return json.dumps(_canonical(spec), sort_keys=True, separators=(",", ":"), default=str)


def content_hash(spec: SopSpec) -> str:
    """sha256 hex of ``canonical_json(spec)``: same meaning, same hash."""
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()
