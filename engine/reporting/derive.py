"""Per-case derived values (deepest level, escalations, resolution times), computed once per report.

KPIs are cut six ways; deriving everything a KPI filters on once keeps each KPI pass a tight
comprehension over plain attributes, so a 100,000-case report takes seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.reporting.businesstime import BusinessTimeIndex
from engine.reporting.context import ReportContext
from engine.reporting.facts import CaseFacts, ClockFact

__all__ = ["CaseView", "ClockView", "derive", "derive_all"]


@dataclass(frozen=True, slots=True)
class ClockView:
    """A clock reduced to what the KPIs read; ``business``/``wall`` only when completed."""

    metric: str
    completed: bool
    breached: bool
    business: float | None
    wall: float | None
    breached_at: datetime | None


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case's facts plus what the KPIs derive from them."""

    f: CaseFacts
    id: str
    resolved: bool
    is_open: bool
    start_level: str
    deepest: str
    deepest_rank: int
    visited: frozenset[str]
    escalated_from: frozenset[str]
    escalations: int
    hand_backs: int
    ping_pong: bool
    human_tasks_done: int
    resolution_wall: float | None
    resolution_business: float | None
    period: str
    clocks: tuple[ClockView, ...]


def _direction_changes(ranks: Sequence[int]) -> int:
    changes, last = 0, 0
    for a, b in zip(ranks, ranks[1:], strict=False):
        step = (b > a) - (b < a)
        if step and last and step != last:
            changes += 1
        if step:
            last = step
    return changes


def _clock(c: ClockFact) -> ClockView:
    if c.state == "completed" and c.started_at is not None and c.completed_at is not None:
        wall: float | None = (c.completed_at - c.started_at).total_seconds()
        business = c.business_elapsed if c.business_elapsed is not None else wall
    else:
        wall = business = None
    return ClockView(c.metric, c.state == "completed", c.breached, business, wall, c.breached_at)


def derive(f: CaseFacts, ctx: ReportContext, business: BusinessTimeIndex | None = None) -> CaseView:
    """Derive one case (``ping_pong`` = its level went up, down and up again)."""
    rank = ctx.level_rank
    if f.moves:
        start = f.moves[0].source or f.level
        path = [start] + [m.target or start for m in f.moves]
        visited = set(path)
        escalated_from = frozenset(m.source or "?" for m in f.moves if m.kind == "escalated")
        escalations = sum(1 for m in f.moves if m.kind == "escalated")
        hand_backs = len(f.moves) - escalations
        ping_pong = _direction_changes([rank.get(lv, -1) for lv in path]) >= 2
    else:
        start, visited, escalated_from, escalations, hand_backs, ping_pong = f.level, set(), frozenset(), 0, 0, False
    visited.add(f.level)
    done = 0
    for t in f.tasks:
        if t.status != "linked":
            visited.add(t.level)
        if t.status == "completed":
            done += 1
    visited.discard("-")
    deepest = max(visited, key=lambda lv: rank.get(lv, -1)) if visited else f.level
    resolved = f.resolved
    wall = bus = None
    if resolved and f.ended_at is not None:
        wall = (f.ended_at - f.created_at).total_seconds()
        if business is not None:
            bus = business.between(f.created_at, f.ended_at)
        else:
            bus = float(ctx.calendar.between(f.created_at, f.ended_at)) if ctx.calendar else wall
    return CaseView(
        f=f, id=f.id, resolved=resolved, is_open=f.is_open, start_level=start, deepest=deepest,
        deepest_rank=rank.get(deepest, -1), visited=frozenset(visited), escalated_from=escalated_from,
        escalations=escalations, hand_backs=hand_backs, ping_pong=ping_pong, human_tasks_done=done,
        resolution_wall=wall, resolution_business=bus, period=ctx.period_of(f.created_at),
        clocks=tuple(_clock(c) for c in f.clocks))


def derive_all(facts: Sequence[CaseFacts], ctx: ReportContext) -> list[CaseView]:
    """Derive every case; business times through one BusinessTimeIndex over the facts' span."""
    index = None
    ended = [f.ended_at for f in facts if f.ended_at is not None]
    if ctx.calendar is not None and ended:
        lo = min(f.created_at for f in facts)
        index = BusinessTimeIndex(ctx.calendar, lo, max(ended))
    return [derive(f, ctx, index) for f in facts]
