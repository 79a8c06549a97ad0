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
        text = _entry_text(entry, detail_json)
        if text is None:
            head = canonical_json({**entry, "detail": None})
            text = head.replace('"detail":null', f'"detail":{detail_json}', 1)
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


_ENC = json.encoder.encode_basestring_ascii  # what json.dumps uses for str (ensure_ascii)


def _entry_text(entry: Mapping[str, Any], detail_json: str) -> str | None:
    """The canonical JSON of an ``entry_fields`` mapping, built without json.dumps.

    Byte-identical to ``canonical_json`` (keys in sorted order, the same string escaping,
    ``int.__repr__``); None when ``entry`` is not of the usual shape (then the caller
    falls back to json.dumps).
    """
    if len(entry) != 8 or type(entry) is not dict:
        return None
    try:
        actor, at, case, kind = entry["actor"], entry["at"], entry["case"], entry["kind"]
        node, seq, sop = entry["node"], entry["seq"], entry["sop"]
    except KeyError:
        return None
    if not (type(actor) is str and type(at) is str and type(case) is str  # noqa: E721
            and type(kind) is str and type(sop) is str and type(seq) is int  # noqa: E721
            and "detail" in entry and (node is None or type(node) is str)):  # noqa: E721
        return None
    return (f'{{"actor":{_ENC(actor)},"at":{_ENC(at)},"case":{_ENC(case)},'
            f'"detail":{detail_json},"kind":{_ENC(kind)},'
            f'"node":{"null" if node is None else _ENC(node)},"seq":{int.__repr__(seq)},'
            f'"sop":{_ENC(sop)}}}')


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
