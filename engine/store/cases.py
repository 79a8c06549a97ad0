"""Starting cases and queueing their inputs: SOP versions, new cases, pending events.

Everything that should move a case is inserted here as a *pending* ``case_events`` row and
the case is flagged ``runnable``; a worker applies it later, exactly once (see
engine.store.models). Callers (CLI, connectors, the timer sweep) open the session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.orm import Session

from engine.errors import RunError, StoreError
from engine.store.bulk import bulk_for, json_read, rows_in
from engine.store.models import CaseEventRow, CaseRow, EventStatus, SopVersionRow

__all__ = [
    "NewCase",
    "PendingInput",
    "case_rows",
    "load_case",
    "new_case_id",
    "post_event",
    "post_events",
    "wake_cases",
    "register_sop_version",
    "start_case",
    "start_cases",
]

CASES = CaseRow.__table__
EVENTS = CaseEventRow.__table__


def new_case_id() -> str:
    """A fresh case id (random; the interpreter derives every other id from it)."""
    return "C" + uuid.uuid4().hex[:15].upper()


def register_sop_version(session: Session, compiled: Any, *, now: datetime) -> SopVersionRow:
    """Record ``compiled`` (``.id``, ``.version``, ``.hash``, ``.spec``) if not yet known.

    Versions are immutable: the same hash is stored once; a different text under an
    existing hash cannot happen (the hash is of the content).
    """
    row = session.get(SopVersionRow, compiled.hash)
    if row is not None:
        return row
    spec = getattr(compiled, "spec", None)
    path = getattr(spec, "source", "") or None
    source = getattr(compiled, "source_text", None)
    if source is None and path:
        try:
            with open(path, encoding="utf-8") as fh:
                source = fh.read()
        except OSError:
            source = None
    row = SopVersionRow(hash=compiled.hash, sop_id=compiled.id, version=str(compiled.version),
                        source=source or "", source_path=path, created_at=now)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True, slots=True)
class NewCase:
    """What a new case starts with (becomes the case row and its pending CaseStarted)."""

    sop_id: str
    sop_hash: str
    sop_version: str
    event_json: Any  # codec JSON of the CaseStarted event
    case_id: str | None = None
    priority: str | None = None
    tier: str | None = None
    channel: str | None = None
    customer_id: str | None = None
    actor: str = "system"
    parent_case_id: str | None = None
    parent_call_id: str | None = None


def case_rows(cases: Sequence[NewCase], now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The (case rows, pending event rows) that start ``cases``; ids filled in."""
    rows, events = [], []
    for c in cases:
        cid = c.case_id or new_case_id()
        rows.append({
            "id": cid, "sop_id": c.sop_id, "sop_hash": c.sop_hash, "sop_version": c.sop_version,
            "status": "open", "level": None, "priority": c.priority or "normal",
            "tier": c.tier or "standard", "channel": c.channel, "customer_id": c.customer_id,
            "seq": 0, "version": 1, "runnable": True, "next_run_at": now,
            "parent_case_id": c.parent_case_id, "parent_call_id": c.parent_call_id,
            "audit_seq": 0, "audit_hash": "", "created_at": now, "updated_at": now,
        })
        events.append({"case_id": cid, "seq": None, "kind": "CaseStarted", "event": c.event_json,
                       "status": str(EventStatus.PENDING), "actor": c.actor, "recorded_at": now})
    return rows, events


_CASE_COLUMNS = ("id", "sop_id", "sop_hash", "sop_version", "status", "level", "priority", "tier",
                 "channel", "customer_id", "seq", "version", "runnable", "next_run_at",
                 "parent_case_id", "parent_call_id", "audit_seq", "audit_hash", "created_at",
                 "updated_at")
_EVENT_COLUMNS = ("case_id", "seq", "kind", "event", "status", "actor", "recorded_at")


def start_cases(session: Session, cases: Sequence[NewCase], *, now: datetime) -> list[str]:
    """Insert many new cases (bulk) with their pending CaseStarted; returns their ids."""
    rows, events = case_rows(cases, now)
    if rows:
        conn = session.connection()
        dialect = conn.dialect.name
        bulk_for(CASES, _CASE_COLUMNS, dialect).insert(
            conn, [tuple(r[c] for c in _CASE_COLUMNS) for r in rows])
        bulk_for(EVENTS, _EVENT_COLUMNS, dialect).insert(
            conn, [tuple(e[c] for c in _EVENT_COLUMNS) for e in events])
    return [r["id"] for r in rows]


def start_case(session: Session, case: NewCase, *, now: datetime) -> str:
    """Insert one new case; the worker runs it from its start node."""
    if case.case_id is not None and session.get(CaseRow, case.case_id) is not None:
        raise StoreError(f"case {case.case_id} already exists")
    return start_cases(session, [case], now=now)[0]


def load_case(session: Session, case_id: str) -> CaseRow:
    """The case row ``case_id``.

    Raises:
        RunError: no such case.
    """
    row = session.get(CaseRow, case_id)
    if row is None:
        raise RunError("no such case", case_id=case_id)
    return row


_NOW = bindparam("now", type_=CASES.c.next_run_at.type)
_WAKE = (update(CASES).where(CASES.c.id.in_(bindparam("ids", expanding=True)))
         .values(runnable=True, next_run_at=case((CASES.c.lease_until > _NOW, CASES.c.lease_until),
                                                 else_=_NOW)))


class PendingInput(NamedTuple):
    """A pending input of a case (a ``case_events`` row not yet applied)."""

    id: int
    case_id: str
    kind: str
    event: Any  # its codec JSON
    actor: str | None


def post_events(
    session: Session, items: Iterable[tuple[str, str, Any, str | None]], *, now: datetime
) -> int:
    """Queue many ``(case_id, kind, event_json, actor)`` inputs and mark their cases runnable.

    The runnable flag is not case state, so this update deliberately leaves
    ``cases.version`` alone: a worker busy with the case still commits, and its commit
    re-derives ``runnable`` from the pending rows, so nothing queued here is missed.
    """
    pending = str(EventStatus.PENDING)
    events = [(cid, None, kind, ev, pending, actor, now) for cid, kind, ev, actor in items]
    if not events:
        return 0
    conn = session.connection()
    bulk_for(EVENTS, _EVENT_COLUMNS, conn.dialect.name).insert(conn, events)
    wake_cases(conn, {e[0] for e in events}, now)
    return len(events)


def wake_cases(conn: Any, case_ids: Iterable[str], now: datetime) -> None:
    """Flag ``case_ids`` runnable: due at ``now``, or, for a case a worker holds, when its
    lease ends (the holder's commit makes it due at once if an input is pending; if the
    holder dies, the case is due when the lease expires). A claim sets ``next_run_at`` to
    the lease's end, so a leased case is never inside the claim's range (runnable,
    ``next_run_at <= now``); this keeps it so."""
    ids = sorted(set(case_ids))
    for start in range(0, len(ids), 500):
        conn.execute(_WAKE, {"ids": ids[start:start + 500], "now": now})


def post_event(
    session: Session, case_id: str, kind: str, event_json: Any, *, now: datetime,
    actor: str | None = None, check: bool = True,
) -> int:
    """Queue one input for ``case_id``; returns the pending row id.

    ``check=False`` skips the existence check when the caller just read a row that
    references the case (the foreign key still guards the insert).

    Raises:
        RunError: no such case.
    """
    if check and session.execute(select(CASES.c.id).where(CASES.c.id == case_id)).first() is None:
        raise RunError("no such case", case_id=case_id)
    conn = session.connection()
    result = conn.execute(EVENTS.insert().values(
        case_id=case_id, seq=None, kind=kind, event=event_json, status=EventStatus.PENDING,
        actor=actor, recorded_at=now))
    wake_cases(conn, (case_id,), now)
    return int(result.inserted_primary_key[0])


def pending_events(session: Session, case_ids: Sequence[str]) -> Mapping[str, list[PendingInput]]:
    """The pending input rows of ``case_ids``, in arrival order, grouped by case (through
    the driver: a batch reads thousands; the JSON is parsed once, by orjson)."""
    out: dict[str, list[PendingInput]] = {cid: [] for cid in case_ids}
    for row in rows_in(session.connection(),
                       "SELECT id, case_id, kind, event, actor FROM case_events WHERE case_id IN "
                       f"({{ids}}) AND status = '{EventStatus.PENDING}' ORDER BY id", case_ids):
        out[row[1]].append(PendingInput(row[0], row[1], row[2], json_read(row[3]), row[4]))
    return out
