"""The audit log's hash chain: each entry's hash covers the previous one, per case.

``hash = sha256(prev_hash || canonical JSON of the entry)``; the first entry of a case has
``prev_hash = ""``. Rewriting or deleting an entry breaks every later hash, which
``verify_chain`` detects.

Canonical JSON: the value in the JSON data model (tuples and sets as arrays, mappings as
objects, instants as ISO-8601 text, anything else as its ``str``), object keys sorted by
code point, no whitespace, UTF-8 text without ``\\u`` escapes except for control
characters, integers in decimal, floats in their shortest round-trip form (orjson's).
It is idempotent: the canonical JSON of the parsed canonical JSON is the same text, so a
verifier that reads ``detail`` back from the database recomputes every hash exactly.

Chains written before 2026-11 used Python's ``json.dumps(sort_keys=True,
ensure_ascii=True)``; ``verify_chain`` accepts an entry whose hash matches that legacy form.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from types import MappingProxyType
from typing import Any

import orjson

__all__ = ["TrailProblem", "canonical_json", "chain_entry", "chain_hash", "check_trails",
           "entry_fields", "verify_chain"]

#: sorted keys; datetimes and dataclasses go through ``_default`` like everything orjson
#: does not write itself, so the data model is the same as the legacy form's
_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _default(value: object) -> object:
    if type(value) is MappingProxyType:  # frozen_map: the commonest by far
        return value.copy()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    # frozen_map values are MappingProxyType: a plain type test before the Mapping ABC
    # check, whose isinstance is many times slower (same result)
    if type(value) is MappingProxyType or isinstance(value, Mapping):
        return dict(value)
    return str(value)


def _plain(value: Any) -> Any:
    """``value`` in the JSON data model (what parsing its JSON gives back)."""
    return json.loads(json.dumps(value, default=_default))


def canonical_bytes(value: Any) -> bytes:
    """The canonical JSON of ``value`` as UTF-8 bytes (see the module docstring)."""
    try:
        return orjson.dumps(value, default=_default, option=_SORTED)
    except TypeError:  # non-string keys, integers beyond 64 bits, dataclasses, ...
        try:
            return orjson.dumps(_plain(value), option=_SORTED)
        except TypeError:  # integers beyond 64 bits: the standard library writes them
            return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()


def canonical_json(value: Any) -> str:
    """Deterministic JSON text of ``value`` (sorted keys, compact separators)."""
    return canonical_bytes(value).decode()


def chain_hash(prev_hash: str, entry: Mapping[str, Any], detail_json: str | None = None) -> str:
    """The hash of ``entry`` chained onto ``prev_hash``.

    ``detail_json``: the canonical JSON of ``entry["detail"]`` when the caller has it
    already (the hash is the same either way).
    """
    if detail_json is not None:
        entry = {**entry, "detail": orjson.Fragment(detail_json)}
    return hashlib.sha256(prev_hash.encode() + canonical_bytes(entry)).hexdigest()


def chain_entry(prev_hash: str, case_id: str, seq: int, at_iso: str, actor: str, kind: str,
                node: str | None, sop_hash: str, detail: Any) -> tuple[str, str]:
    """(canonical JSON of ``detail``, hash of the entry) in one serialization: the entry's
    canonical bytes, with the detail's text cut out of them (keys are sorted, so ``detail``
    stands between ``case`` and ``kind``; the JSON strings around it cannot hold an
    unescaped quote, so the two markers below are found exactly once)."""
    text = canonical_bytes({"actor": actor, "at": at_iso, "case": case_id, "detail": detail,
                            "kind": kind, "node": node, "seq": seq, "sop": sop_hash})
    start = text.index(b',"detail":') + 10
    end = text.rindex(b',"kind":')
    return text[start:end].decode(), hashlib.sha256(prev_hash.encode() + text).hexdigest()


def _legacy_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    text = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=_default)
    return hashlib.sha256((prev_hash + text).encode()).hexdigest()


def entry_fields(
    case_id: str, seq: int, at: datetime | str, actor: str, kind: str, node: str | None,
    sop_hash: str, detail: Any,
) -> dict[str, Any]:
    """The fields the hash covers, as one mapping (``at`` as a datetime or its ISO text)."""
    return {"case": case_id, "seq": seq, "at": at if type(at) is str else at.isoformat(),
            "actor": actor, "kind": kind, "node": node, "sop": sop_hash, "detail": detail}


def verify_chain(rows: Iterable[Any]) -> int | None:
    """The ``seq`` of the first audit row (ordered by seq) whose hash does not check, else None.

    ``rows`` are objects with the AuditRow attributes.
    """
    prev = ""
    for row in rows:
        entry = entry_fields(row.case_id, row.seq, row.at, row.actor, row.kind, row.node,
                             row.sop_hash, row.detail)
        if row.prev_hash != prev or (row.hash != chain_hash(prev, entry)
                                     and row.hash != _legacy_hash(prev, entry)):
            return int(row.seq)
        prev = row.hash
    return None


@dataclass(frozen=True, slots=True)
class TrailProblem:
    """A case whose audit trail does not check: where, and why."""

    case_id: str
    seq: int | None  # the first entry that fails, None when the trail's end is wrong
    reason: str


def check_trails(session: Any, case_ids: Sequence[str] | None = None, *,
                 chunk: int = 500) -> Iterator[TrailProblem]:
    """Verify the audit trail of ``case_ids`` (every case when None), ``chunk`` cases at a
    time (memory stays bounded at any number of cases).

    Per case: every entry's hash chains onto the one before (``verify_chain``), and the last
    entry is the one the case row points at (``cases.audit_seq`` / ``audit_hash``), so
    entries deleted from the end are caught too.
    """
    from sqlalchemy import select

    from engine.store.models import AuditRow, CaseRow

    heads = select(CaseRow.id, CaseRow.audit_seq, CaseRow.audit_hash).order_by(CaseRow.id)
    if case_ids is not None:
        heads = heads.where(CaseRow.id.in_(list(case_ids)))
    rows = session.execute(heads.execution_options(yield_per=chunk))
    for part in rows.partitions(chunk):
        expected = {cid: (seq, digest) for cid, seq, digest in part}
        trail = session.scalars(select(AuditRow).where(AuditRow.case_id.in_(list(expected)))
                                .order_by(AuditRow.case_id, AuditRow.seq))
        seen: set[str] = set()
        for case_id, entries in groupby(trail, key=lambda r: r.case_id):
            entries = list(entries)
            seen.add(case_id)
            broken = verify_chain(entries)
            if broken is not None:
                yield TrailProblem(case_id, broken,
                                   "the hash does not match the entry and the one before")
            elif expected[case_id] != (entries[-1].seq, entries[-1].hash):
                yield TrailProblem(case_id, None, f"the case points at entry "
                                                  f"{expected[case_id][0]}, the trail ends at "
                                                  f"{entries[-1].seq}")
        for case_id, (seq, _digest) in expected.items():
            if case_id not in seen and seq:
                yield TrailProblem(case_id, None,
                                   f"the case points at entry {seq}, the trail is empty")
