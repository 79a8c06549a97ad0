"""Per-case derived values (deepest level, escalations, resolution times), computed once per report.

KPIs are cut six ways; deriving these once keeps a 100,000-case report to one pass per cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.reporting.context import ReportContext
from engine.reporting.facts import CaseFacts

__all__ = ["CaseView", "derive_all"]


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case's facts plus what the KPIs derive from them."""

    f: CaseFacts
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


def _direction_changes(ranks: Sequence[int]) -> int:
    changes, last = 0, 0
    for a, b in zip(ranks, ranks[1:], strict=False):
        step = (b > a) - (b < a)
        if step and last and step != last:
            changes += 1
        if step:
            last = step
    return changes


def derive(f: CaseFacts, ctx: ReportContext) -> CaseView:
    """Derive one case (see the field names; ``ping_pong`` = up, down and up again)."""
    start = f.moves[0].source if f.moves and f.moves[0].source else f.level
    path = [start] + [m.target or start for m in f.moves]
    visited = set(path) | {t.level for t in f.tasks if t.status != "linked"} | {f.level}
    visited.discard("-")
    deepest = max(visited, key=ctx.rank) if visited else f.level
    escalated_from = frozenset(m.source or "?" for m in f.moves if m.kind == "escalated")
    escalations = sum(1 for m in f.moves if m.kind == "escalated")
    hand_backs = sum(1 for m in f.moves if m.kind == "handed_back")
    ranks = [ctx.rank(level) for level in path]
    wall = business = None
    if f.resolved and f.ended_at is not None:
        wall = (f.ended_at - f.created_at).total_seconds()
        business = float(ctx.calendar.between(f.created_at, f.ended_at)) if ctx.calendar else wall
    return CaseView(
        f=f, start_level=start, deepest=deepest, deepest_rank=ctx.rank(deepest),
        visited=frozenset(visited), escalated_from=escalated_from, escalations=escalations,
        hand_backs=hand_backs, ping_pong=_direction_changes(ranks) >= 2,
        human_tasks_done=sum(1 for t in f.tasks if t.status == "completed"),
        resolution_wall=wall, resolution_business=business, period=ctx.period_of(f.created_at))


def derive_all(facts: Sequence[CaseFacts], ctx: ReportContext) -> list[CaseView]:
    return [derive(f, ctx) for f in facts]
