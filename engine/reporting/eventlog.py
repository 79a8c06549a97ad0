"""The case event log for process mining: one trace per case, one event per node visit.

The node sequence of a case comes from its audit trail: the interpreter writes a ``path``
row with the nodes each step walked through; other rows that name a node (task completed,
signal, decision ...) give the event its resource (the agent who completed the task) and the
audit kind. Older trails without ``path`` rows fall back to every row that names a node.
Consecutive repeats of the same node are one visit. Writers: engine.reporting.xes (XES
1849-2016), engine.reporting.ocel (OCEL 2.0 JSON) and ``to_csv`` here.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["CSV_HEADER", "NodeEvent", "Trace", "iter_traces", "write_csv"]

CSV_HEADER = ("case_id", "activity", "timestamp", "resource", "kind", "sop", "sop_version",
              "channel", "priority", "tier", "customer_id", "task_id")


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """A visit of a node: when, by whom (the resource), the audit kind, the human task if any."""

    node: str
    at: datetime
    resource: str
    kind: str
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    """One case and its node visits in order."""

    case_id: str
    sop: str
    sop_version: str
    channel: str
    priority: str
    tier: str
    customer_id: str | None
    status: str
    events: tuple[NodeEvent, ...]


def _events(rows: list[tuple[Any, ...]]) -> tuple[NodeEvent, ...]:
    use_path = any(kind == "path" for kind, *_ in rows)
    events: list[dict[str, Any]] = []
    last: dict[str, int] = {}
    tasks: dict[str, str] = {}

    def visit(node: str, at: datetime, actor: str, kind: str) -> None:
        if events and events[-1]["node"] == node:
            return
        last[node] = len(events)
        events.append({"node": node, "at": at, "resource": actor, "kind": kind,
                       "task_id": tasks.get(node)})

    for kind, node, actor, at, detail in rows:
        if kind == "task_created" and node and isinstance(detail, dict) and detail.get("task"):
            tasks[node] = str(detail["task"])
            if node in last and events[last[node]]["task_id"] is None:
                events[last[node]]["task_id"] = tasks[node]
        if kind == "path":
            for n in (detail or {}).get("nodes", ()):
                visit(str(n), at, actor, "path")
        elif node:
            if not use_path:
                visit(node, at, actor, kind)
            elif node in last:
                e = events[last[node]]
                e["kind"] = kind if e["kind"] == "path" else e["kind"]
                if actor != "system" and kind in ("task_completed", "signal", "case_started"):
                    e["resource"] = actor
    return tuple(NodeEvent(**e) for e in events)


def iter_traces(engine: Any, *, sop_id: str | None = None) -> Iterator[Trace]:
    """Stream the traces of every case (of ``sop_id``), in case id order, one query per table."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from engine.store.models import AuditRow, CaseRow

    cases = select(CaseRow.id, CaseRow.sop_id, CaseRow.sop_version, CaseRow.channel, CaseRow.priority,
                   CaseRow.tier, CaseRow.customer_id, CaseRow.status).order_by(CaseRow.id)
    audit = (select(AuditRow.case_id, AuditRow.kind, AuditRow.node, AuditRow.actor, AuditRow.at,
                    AuditRow.detail)
             .where((AuditRow.node.is_not(None)) | (AuditRow.kind == "path"))
             .order_by(AuditRow.case_id, AuditRow.seq))
    if sop_id is not None:
        cases = cases.where(CaseRow.sop_id == sop_id)
        audit = audit.join(CaseRow, CaseRow.id == AuditRow.case_id).where(CaseRow.sop_id == sop_id)
    with Session(engine) as session:
        meta = {r[0]: r for r in session.execute(cases)}
        current: str | None = None
        rows: list[tuple[Any, ...]] = []

        def flush() -> Trace | None:
            if current is None or current not in meta:
                return None
            cid, sop, version, channel, prio, tier, cust, status = meta[current]
            return Trace(cid, sop, version, channel or "-", prio, tier, cust, status, _events(rows))

        for cid, kind, node, actor, at, detail in session.execute(audit).yield_per(5000):
            if cid != current:
                trace = flush()
                if trace is not None:
                    yield trace
                current, rows = cid, []
            rows.append((kind, node, actor, at, detail))
        trace = flush()
        if trace is not None:
            yield trace


def write_csv(traces: Iterator[Trace], out: Path) -> int:
    """Write the flat event CSV (CSV_HEADER; ISO 8601 UTC timestamps); returns the event count."""
    n = 0
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for t in traces:
            for e in t.events:
                writer.writerow((t.case_id, e.node, e.at.isoformat(), e.resource, e.kind, t.sop,
                                 t.sop_version, t.channel, t.priority, t.tier, t.customer_id or "",
                                 e.task_id or ""))
                n += 1
    return n
