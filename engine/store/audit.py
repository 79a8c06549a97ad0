"""The audit log's hash chain: each entry's hash covers the previous one, per case.

``hash = sha256(prev_hash || canonical JSON of the entry)``; the first entry of a case has
``prev_hash = ""``. Rewriting or deleting an entry breaks every later hash, which
``verify_chain`` detects. Canonical JSON: sorted keys, no spaces, ISO-8601 instants.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

__all__ = ["canonical_json", "chain_hash", "verify_chain"]


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    # frozen_map values are MappingProxyType: a plain type test before the Mapping ABC
    # check, whose isinstance is many times slower (same result)
    if type(value) is MappingProxyType or isinstance(value, Mapping):
        return dict(value)
    return str(value)


def canonical_json(value: Any) -> str:
    """Deterministic JSON text of ``value`` (sorted keys, compact separators)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_default)


def chain_hash(prev_hash: str, entry: Mapping[str, Any], detail_json: str | None = None) -> str:
    """The hash of ``entry`` chained onto ``prev_hash``.

    ``detail_json``: the canonical JSON of ``entry["detail"]`` when the caller has it
    already (the hash is the same either way).
    """
    if detail_json is None:
        text = canonical_json(entry)
    else:
        head = canonical_json({**entry, "detail": None})
        text = head.replace('"detail":null', f'"detail":{detail_json}', 1)
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


def entry_fields(
    case_id: str, seq: int, at: datetime, actor: str, kind: str, node: str | None,
    sop_hash: str, detail: Any,
) -> dict[str, Any]:
    """The fields the hash covers, as one mapping."""
    return {"case": case_id, "seq": seq, "at": at.isoformat(), "actor": actor, "kind": kind,
            "node": node, "sop": sop_hash, "detail": detail}


def verify_chain(rows: Iterable[Any]) -> int | None:
    """The ``seq`` of the first audit row (ordered by seq) whose hash does not check, else None.

    ``rows`` are objects with the AuditRow attributes.
    """
    prev = ""
    for row in rows:
        entry = entry_fields(row.case_id, row.seq, row.at, row.actor, row.kind, row.node,
                             row.sop_hash, row.detail)
        if row.prev_hash != prev or chain_hash(prev, entry) != row.hash:
            return int(row.seq)
        prev = row.hash
    return None
