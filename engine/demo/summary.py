"""What the demo day produced, read back from the case database (not from the simulation).

The summary answers at a glance: how many contacts on which channel, how cases ended, the
deepest competence level each reached, SLA clocks met or breached, incidents and dead
letters -- the same numbers an operator gets from ``careflow case list`` and the report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

__all__ = ["DemoSummary", "summarise"]

LEVEL_ORDER = ("e", "L1", "L2", "specialist")


@dataclass(frozen=True, slots=True)
class DemoSummary:
    cases: int
    by_status: dict[str, int]
    by_outcome: dict[str, int]
    by_sop: dict[str, int]
    by_channel: dict[str, int]
    deepest_level: dict[str, int]
    sla: dict[str, dict[str, int]]  # clock name -> {met, breached, running, ...}
    incidents_open: int
    dead_letters: int
    outbox: dict[str, int]
    audit_rows: int
    sample_cases: dict[str, str] = field(default_factory=dict)  # what -> case id to look at


def _clock_states(state: Any) -> list[tuple[str, dict[str, Any]]]:
    clocks = (state or {}).get("clocks") or {}
    out = []
    for name, ref in clocks.items():
        data = ref.get("state", ref) if isinstance(ref, dict) else {}
        out.append((name, data if isinstance(data, dict) else {}))
    return out


def summarise(engine: Any) -> DemoSummary:
    from engine.store.models import (
        AuditRow,
        CaseRow,
        DeadLetterRow,
        HumanTaskRow,
        IncidentRow,
        OutboxRow,
    )

    with Session(engine) as session:
        rows = session.execute(select(CaseRow.id, CaseRow.status, CaseRow.outcome, CaseRow.sop_id,
                                      CaseRow.channel, CaseRow.state)
                               .where(CaseRow.parent_case_id.is_(None))).all()
        levels: dict[str, set[str]] = {}
        for case_id, level in session.execute(select(HumanTaskRow.case_id, HumanTaskRow.level)):
            levels.setdefault(case_id, set()).add(level)
        incidents = session.scalar(select(func.count()).select_from(IncidentRow)
                                   .where(IncidentRow.status == "open")) or 0
        dead = session.scalar(select(func.count()).select_from(DeadLetterRow)) or 0
        outbox = dict(session.execute(select(OutboxRow.status, func.count())
                                      .group_by(OutboxRow.status)).all())
        audit_rows = session.scalar(select(func.count()).select_from(AuditRow)) or 0

    by_status: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    by_sop: Counter[str] = Counter()
    by_channel: Counter[str] = Counter()
    deepest: Counter[str] = Counter()
    sla: dict[str, Counter[str]] = {}
    samples: dict[str, str] = {}
    for case_id, status, outcome, sop_id, channel, state in rows:
        by_status[status] += 1
        by_outcome[outcome or "(open)"] += 1
        by_sop[sop_id] += 1
        by_channel[channel or "?"] += 1
        seen = levels.get(case_id, set())
        deep = max(seen, key=lambda lv: LEVEL_ORDER.index(lv) if lv in LEVEL_ORDER else 9,
                   default="e")
        deepest[deep] += 1
        samples.setdefault(f"reached {deep}", case_id)
        for name, clock in _clock_states(state):
            bucket = sla.setdefault(name, Counter())
            breached = bool(clock.get("breached"))
            st = str(clock.get("state", "?"))
            if st == "completed":
                bucket["breached" if breached else "met"] += 1
            else:
                bucket[f"{st}{' (breached)' if breached else ''}"] += 1
            if breached:
                samples.setdefault("SLA breached", case_id)
    return DemoSummary(
        cases=len(rows), by_status=dict(by_status.most_common()),
        by_outcome=dict(by_outcome.most_common()), by_sop=dict(by_sop.most_common()),
        by_channel=dict(by_channel.most_common()), deepest_level={
            lv: deepest[lv] for lv in sorted(deepest, key=lambda x: LEVEL_ORDER.index(x)
                                             if x in LEVEL_ORDER else 9)},
        sla={k: dict(v.most_common()) for k, v in sorted(sla.items())},
        incidents_open=int(incidents), dead_letters=int(dead),
        outbox={str(k): int(v) for k, v in outbox.items()}, audit_rows=int(audit_rows),
        sample_cases=samples)
