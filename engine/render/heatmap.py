"""What really happened, on the diagram: counts and median times per node and edge, SLA
breaches per checkpoint, escalation rates -- read from the case store's audit trail."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.render.model import Diagram

__all__ = ["NodeStats", "collect", "overlay"]


class NodeStats:
    """Per-SOP observations: node visits, dwell times, edge transitions, breaches."""

    def __init__(self) -> None:
        self.visits: Counter[str] = Counter()
        self.dwell: dict[str, list[float]] = defaultdict(list)
        self.edges: Counter[tuple[str, str]] = Counter()
        self.breaches: Counter[str] = Counter()
        self.escalations: Counter[str] = Counter()
        self.cases = 0


def _fmt_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f}s"
    if s < 5400:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def collect(engine: Any, sop_id: str, *, since: datetime | None = None,
            until: datetime | None = None) -> NodeStats:
    """Walk the audit trail of every case of ``sop_id`` (optionally in a period).

    A node is "visited" when an audit row names it; the dwell time of a node is the time
    from its first row to the next row of another node in the same case; an edge is two
    consecutive nodes of a case.
    """
    from engine.store.models import AuditRow, CaseRow

    stats = NodeStats()
    stmt = (select(AuditRow.case_id, AuditRow.node, AuditRow.kind, AuditRow.at, AuditRow.detail)
            .join(CaseRow, CaseRow.id == AuditRow.case_id).where(CaseRow.sop_id == sop_id)
            .order_by(AuditRow.case_id, AuditRow.seq, AuditRow.id))
    if since is not None:
        stmt = stmt.where(CaseRow.created_at >= since)
    if until is not None:
        stmt = stmt.where(CaseRow.created_at < until)
    with Session(engine) as session:
        rows = session.execute(stmt).all()
    current: str | None = None
    prev_node: str | None = None
    entered: datetime | None = None
    for case_id, node, kind, at, detail in rows:
        if case_id != current:
            current, prev_node, entered = case_id, None, None
            stats.cases += 1
        if kind == "sla_check" and isinstance(detail, dict) and detail.get("status") == "breached":
            stats.breaches[node or "?"] += 1
        if kind == "escalated":
            stats.escalations[node or "?"] += 1
        if not node or node == prev_node:
            continue
        stats.visits[node] += 1
        if prev_node is not None:
            stats.edges[(prev_node, node)] += 1
            if entered is not None:
                stats.dwell[prev_node].append((at - entered).total_seconds())
        prev_node, entered = node, at
    return stats


def overlay(diagram: Diagram, stats: NodeStats) -> Diagram:
    """The same diagram with counts, medians, breaches and escalation rates on it."""
    nodes = []
    for n in diagram.nodes:
        s: dict[str, str] = {}
        if stats.visits.get(n.id):
            s["n"] = str(stats.visits[n.id])
            if stats.dwell.get(n.id):
                s["median"] = _fmt_seconds(statistics.median(stats.dwell[n.id]))
        if stats.breaches.get(n.id):
            s["breached"] = str(stats.breaches[n.id])
        if stats.escalations.get(n.id) and stats.cases:
            s["escalated"] = f"{100 * stats.escalations[n.id] / stats.cases:.0f}%"
        nodes.append(replace(n, stats=s))
    edges = [replace(e, stats={"n": str(stats.edges[(e.source, e.target)])})
             if stats.edges.get((e.source, e.target)) else e for e in diagram.edges]
    note = f"heat map: {stats.cases} case(s) from the case store"
    return replace(diagram, nodes=tuple(nodes), edges=tuple(edges), note=note)
