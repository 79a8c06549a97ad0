"""OCEL 2.0 (JSON) writer: events related to the objects they touch -- case, customer, task.

Object types: ``case`` (sop, channel, priority, tier, status), ``customer`` (tier) and
``task`` (node, level, status, assignee). Each node visit is an event of type = node id with
the ``resource`` attribute, related to its case (qualifier ``case``), the case's customer
(``customer``) and, for human-task nodes, the task (``task``). Cases relate to their customer
and tasks to their case.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.reporting.eventlog import Trace

__all__ = ["to_ocel", "write_ocel"]

_EPOCH = "1970-01-01T00:00:00+00:00"


def _attrs(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": k, "time": _EPOCH, "value": "" if v is None else str(v)} for k, v in values.items()]


def to_ocel(traces: Iterable[Trace], tasks: dict[str, dict[str, Any]],
            customer_tiers: dict[str, str]) -> dict[str, Any]:
    """The OCEL 2.0 document for ``traces``; ``tasks`` = task id -> row fields."""
    objects: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    customers: set[str] = set()
    activities: set[str] = set()
    for t in traces:
        rel = [{"objectId": t.customer_id, "qualifier": "customer"}] if t.customer_id else []
        objects.append({"id": t.case_id, "type": "case", "relationships": rel,
                        "attributes": _attrs({"sop": t.sop, "channel": t.channel, "priority": t.priority,
                                              "tier": t.tier, "status": t.status})})
        if t.customer_id:
            customers.add(t.customer_id)
        for i, e in enumerate(t.events):
            activities.add(e.node)
            erel = [{"objectId": t.case_id, "qualifier": "case"}] + rel
            if e.task_id and e.task_id in tasks:
                erel.append({"objectId": e.task_id, "qualifier": "task"})
            events.append({"id": f"{t.case_id}:{i}", "type": e.node, "time": e.at.isoformat(),
                           "attributes": [{"name": "resource", "value": e.resource}], "relationships": erel})
    for cid in sorted(customers):
        objects.append({"id": cid, "type": "customer", "relationships": [],
                        "attributes": _attrs({"tier": customer_tiers.get(cid, "")})})
    for tid, row in tasks.items():
        objects.append({"id": tid, "type": "task",
                        "relationships": [{"objectId": row["case_id"], "qualifier": "case"}],
                        "attributes": _attrs({k: row[k] for k in ("node", "level", "status", "assignee")})})
    string = "string"
    return {
        "objectTypes": [
            {"name": "case", "attributes": [{"name": n, "type": string}
                                            for n in ("sop", "channel", "priority", "tier", "status")]},
            {"name": "customer", "attributes": [{"name": "tier", "type": string}]},
            {"name": "task", "attributes": [{"name": n, "type": string}
                                            for n in ("node", "level", "status", "assignee")]},
        ],
        "eventTypes": [{"name": a, "attributes": [{"name": "resource", "type": string}]}
                       for a in sorted(activities)],
        "objects": objects,
        "events": events,
    }


def write_ocel(engine: Any, traces: Iterable[Trace], out: Path) -> int:
    """Write the OCEL 2.0 JSON of ``traces`` (tasks and customers read from ``engine``)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from engine.store.models import HumanTaskRow
    from engine.store.models_crm import CustomerRow

    traces = list(traces)
    wanted = {t.case_id for t in traces}
    with Session(engine) as session:
        tasks = {r.id: {"case_id": r.case_id, "node": r.node, "level": r.level, "status": r.status,
                        "assignee": r.assignee}
                 for r in session.execute(select(HumanTaskRow.id, HumanTaskRow.case_id, HumanTaskRow.node,
                                                 HumanTaskRow.level, HumanTaskRow.status,
                                                 HumanTaskRow.assignee)) if r.case_id in wanted}
        tiers = {cid: tier for cid, tier in session.execute(select(CustomerRow.id, CustomerRow.tier))}
    doc = to_ocel(traces, tasks, tiers)
    out.write_text(json.dumps(doc), encoding="utf-8")
    return len(doc["events"])
