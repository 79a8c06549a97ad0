"""The audit log's hash chain: each record's hash covers the previous one, per case.

The log is stored as records (``audit_records``): one per step, holding the entries that
step produced, in order (engine.store.models.AuditRecordRow); ``audit_log`` shows them
entry by entry. ``hash = sha256(prev_hash || canonical JSON of the record)`` where the
record is ``{"case", "first_seq", "seq", "at", "sop", "entries": [{"actor", "kind", "node",
"detail"}, ...]}``; the first record of a case has ``prev_hash = ""``. Rewriting, reordering
or deleting an entry breaks its record's hash and every later one, which ``verify_chain``
detects; ``check_trails`` also catches records cut off the end.

Canonical JSON: the value in the JSON data model (tuples and sets as arrays, mappings as
objects, instants as ISO-8601 text, anything else as its ``str``), object keys sorted by
code point, no whitespace, UTF-8 text without ``\\u`` escapes except for control
characters, integers in decimal, floats in their shortest round-trip form (orjson's).
It is idempotent: the canonical JSON of the parsed canonical JSON is the same text, so a
verifier that reads ``entries`` back from the database recomputes every hash exactly.

Older trails: records of ``form`` 0 hold one entry each, converted from the per-entry log
of before 2026-12, whose hash covers ``entry_fields`` of that entry (chains written before
2026-11 used Python's ``json.dumps(sort_keys=True, ensure_ascii=True)``; both are accepted).
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

__all__ = ["TrailProblem", "canonical_json", "chain_hash", "chain_record", "check_trails",
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


def chain_record(prev_hash: str, case_id: str, first_seq: int, seq: int, at_iso: str,
                 sop_hash: str, entries: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(canonical JSON of ``entries``, hash of the record) with one serialization of the
    entries: their text is written once and spliced into the record's canonical bytes."""
    text = canonical_bytes(entries)
    record = canonical_bytes({"at": at_iso, "case": case_id, "entries": orjson.Fragment(text),
                              "first_seq": first_seq, "seq": seq, "sop": sop_hash})
    return text.decode(), hashlib.sha256(prev_hash.encode() + record).hexdigest()


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


def _record_checks(row: Any, prev: str) -> bool:
    """Whether the record ``row`` (AuditRecordRow attributes) hashes to ``row.hash`` on ``prev``."""
    at = row.at if type(row.at) is str else row.at.isoformat()
    if row.form == 0:  # one entry, hashed as the per-entry log did
        (one,) = row.entries
        entry = entry_fields(row.case_id, row.seq, at, one["actor"], one["kind"], one["node"],
                             row.sop_hash, one["detail"])
        # the legacy text only when the current form does not match (most rows are current)
        return row.hash == chain_hash(prev, entry) or row.hash == _legacy_hash(prev, entry)
    entries = list(row.entries)
    if len(entries) != row.seq - row.first_seq + 1:
        return False
    return chain_record(prev, row.case_id, row.first_seq, row.seq, at, row.sop_hash,
                        entries)[1] == row.hash


def verify_chain(rows: Iterable[Any]) -> int | None:
    """The ``seq`` of the first entry of the first record (ordered by seq) whose hash does
    not check, else None. ``rows`` are objects with the AuditRecordRow attributes."""
    prev, last = "", 0
    for row in rows:
        try:
            ok = (row.prev_hash == prev and row.first_seq == last + 1
                  and _record_checks(row, prev))
        except (TypeError, ValueError, KeyError):  # entries that are not a list of entries
            ok = False
        if not ok:
            return int(row.first_seq)
        prev, last = row.hash, row.seq
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

    Per case: every record's hash chains onto the one before and the entries are numbered
    without a gap (``verify_chain``), and the last record is the one the case row points at
    (``cases.audit_seq`` / ``audit_hash``), so records deleted from the end are caught too.
    """
    from sqlalchemy import select

    from engine.store.models import AuditRecordRow, CaseRow

    heads = select(CaseRow.id, CaseRow.audit_seq, CaseRow.audit_hash).order_by(CaseRow.id)
    if case_ids is not None:
        heads = heads.where(CaseRow.id.in_(list(case_ids)))
    rows = session.execute(heads.execution_options(yield_per=chunk))
    for part in rows.partitions(chunk):
        expected = {cid: (seq, digest) for cid, seq, digest in part}
        trail = session.scalars(select(AuditRecordRow)
                                .where(AuditRecordRow.case_id.in_(list(expected)))
                                .order_by(AuditRecordRow.case_id, AuditRecordRow.seq))
        seen: set[str] = set()
        for case_id, entries in groupby(trail, key=lambda r: r.case_id):
            entries = list(entries)
            seen.add(case_id)
            broken = verify_chain(entries)
            if broken is not None:
                last = next(r.seq for r in entries if r.first_seq == broken)
                what = f"entries {broken}-{last}" if last != broken else f"entry {broken}"
                yield TrailProblem(case_id, broken, f"the hash does not match {what} and the "
                                                    f"record before")
            elif expected[case_id] != (entries[-1].seq, entries[-1].hash):
                yield TrailProblem(case_id, None, f"the case points at entry "
                                                  f"{expected[case_id][0]}, the trail ends at "
                                                  f"{entries[-1].seq}")
        for case_id, (seq, _digest) in expected.items():
            if case_id not in seen and seq:
                yield TrailProblem(case_id, None,
                                   f"the case points at entry {seq}, the trail is empty")
