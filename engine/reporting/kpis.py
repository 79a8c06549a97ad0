"""The KPIs, each a pure function of the case views; formulas are in docs/reporting.md.

Every figure keeps the case ids behind it (``cases``: the population it is computed over;
``hits``: the cases counted in the numerator), so each number drills down to its case list.
Percentiles are nearest-rank (p90 = the ceil(0.9 n)-th smallest value); the median is the
middle value (mean of the two middle values for even n).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.reporting.context import ReportContext
from engine.reporting.derive import CaseView

__all__ = ["KPIS", "AGE_BUCKETS", "Figure", "Kpi", "percentile", "ratio"]

#: backlog age buckets: (label, upper bound in wall seconds)
AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("<4h", 4 * 3600), ("4-24h", 86400), ("1-3d", 3 * 86400), ("3-7d", 7 * 86400),
    (">7d", math.inf))


@dataclass(frozen=True, slots=True)
class Figure:
    """One number with its unit (``%``, ``s`` or ``n``) and the cases behind it."""

    value: float | None
    unit: str
    cases: tuple[str, ...] = ()
    hits: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.cases)


@dataclass(frozen=True, slots=True)
class Kpi:
    """A KPI: id, title, the formula in words, and the function computing its figures."""

    id: str
    title: str
    formula: str
    compute: Callable[[Sequence[CaseView], ReportContext], Mapping[str, Figure]]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile.

    >>> percentile([4, 1, 3, 2, 5, 6, 7, 8, 9, 10], 0.9)
    9
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ratio(hits: Iterable[CaseView], population: Iterable[CaseView]) -> Figure:
    """``100 * |hits| / |population|`` (None for an empty population)."""
    pop = tuple([v.id for v in population])
    hit = tuple([v.id for v in hits])
    return Figure(100.0 * len(hit) / len(pop) if pop else None, "%", pop, hit)


def _times(pairs: Sequence[tuple[str, float, float]]) -> dict[str, Figure]:
    ids = tuple(p[0] for p in pairs)
    bus = [p[1] for p in pairs]
    wall = [p[2] for p in pairs]
    return {
        "median_business": Figure(statistics.median(bus) if bus else None, "s", ids),
        "p90_business": Figure(percentile(bus, 0.9), "s", ids),
        "median_wall": Figure(statistics.median(wall) if wall else None, "s", ids),
        "p90_wall": Figure(percentile(wall, 0.9), "s", ids),
    }


def sla_compliance(views: Sequence[CaseView], ctx: ReportContext) -> dict[str, Figure]:
    metrics: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for v in views:
        for c in v.clocks:
            done, met, breached = metrics.setdefault(c.metric, ([], [], []))
            if c.breached:
                breached.append(v.id)
            if c.completed:
                done.append(v.id)
                if not c.breached:
                    met.append(v.id)
    out = {}
    for metric, (done, met, breached) in sorted(metrics.items()):
        out[metric] = Figure(100.0 * len(met) / len(done) if done else None, "%", tuple(done), tuple(met))
        out[f"{metric}_breaches"] = Figure(float(len(breached)), "n", tuple(breached), tuple(breached))
    return out


def _clock_times(metric: str) -> Callable[[Sequence[CaseView], ReportContext], dict[str, Figure]]:
    def compute(views: Sequence[CaseView], ctx: ReportContext) -> dict[str, Figure]:
        return _times([(v.id, c.business, c.wall) for v in views for c in v.clocks
                       if c.metric == metric and c.wall is not None and c.business is not None])
    return compute


def resolution_time(views: Sequence[CaseView], ctx: ReportContext) -> dict[str, Figure]:
    return _times([(v.id, v.resolution_business, v.resolution_wall) for v in views
                   if v.resolution_wall is not None and v.resolution_business is not None])


def fcr(views: Sequence[CaseView], ctx: ReportContext) -> dict[str, Figure]:
    resolved = [v for v in views if v.resolved]
    first_contact = [v for v in resolved
                     if v.human_tasks_done <= 1 and not v.escalations and not v.f.reopened]
    first_level = [v for v in resolved if v.deepest_rank == 1]
    human = [v for v in resolved if v.deepest_rank >= 1]
    return {"first_contact": ratio(first_contact, resolved), "first_level": ratio(first_level, human)}


def _lvl(ctx: ReportContext, rank: int) -> str:
    return next((k for k, r in ctx.level_rank.items() if r == rank), "")


def escalation(views: Sequence[CaseView], ctx: ReportContext) -> dict[str, Figure]:
    out: dict[str, Figure] = {}
    deepest = max(ctx.level_rank.values())
    for level, rank in sorted(ctx.level_rank.items(), key=lambda kv: kv[1]):
        if rank == deepest:
            continue  # nothing deeper to escalate to
        at = [v for v in views if level in v.visited]
        out[f"rate_{level}"] = ratio((v for v in at if level in v.escalated_from), at)
    escalated = [v for v in views if v.escalations]
    out["hand_back"] = ratio((v for v in escalated if v.hand_backs), escalated)
    out["ping_pong"] = ratio((v for v in escalated if v.ping_pong), escalated)
    return out


def elevel(views: Sequence[CaseView], ctx: ReportContext) -> dict[str, Figure]:
    e = _lvl(ctx, 0)
    started = [v for v in views if v.start_level == e]
    contained = [v for v in started if v.resolved and v.deepest_rank <= 0]
    attempted = [v for v in views if v.f.elevel is not None]
    return {
        "containment": ratio(contained, started),
        "deflection_confirmed": ratio((v for v in attempted if v.f.elevel == "confirmed"), attempted),
        "deflection_potential": ratio((v for v in attempted if v.f.elevel == "potential"), attempted),
    }


def reopen(views: Sequence[CaseView], ctx: ReportContext) -> dict[str, Figure]:
    resolved = [v for v in views if v.resolved]
    return {"rate": ratio((v for v in resolved if v.f.reopened), resolved)}


def backlog(views: Sequence[CaseView], ctx: ReportContext) -> dict[str, Figure]:
    buckets: dict[str, list[str]] = {label: [] for label, _ in AGE_BUCKETS}
    open_ids = []
    for v in views:
        if not v.is_open or v.f.created_at > ctx.now:
            continue
        open_ids.append(v.id)
        age = (ctx.now - v.f.created_at).total_seconds()
        label = next(lb for lb, bound in AGE_BUCKETS if age < bound)
        buckets[label].append(v.id)
    out = {"open": Figure(float(len(open_ids)), "n", tuple(open_ids), tuple(open_ids))}
    for label, ids in buckets.items():
        out[f"age {label}"] = Figure(float(len(ids)), "n", tuple(ids), tuple(ids))
    inflow = tuple([v.id for v in views])
    outflow = tuple([v.id for v in views if v.f.ended_at is not None and v.f.ended_at <= ctx.now])
    out["inflow"] = Figure(float(len(inflow)), "n", inflow, inflow)
    out["outflow"] = Figure(float(len(outflow)), "n", outflow, outflow)
    return out


def incidents(views: Sequence[CaseView], ctx: ReportContext) -> dict[str, Figure]:
    hit = [v for v in views if v.f.incidents]
    total = sum(v.f.incidents for v in hit)
    return {"case_rate": ratio(hit, views),
            "count": Figure(float(total), "n", tuple([v.id for v in hit]), tuple([v.id for v in hit]))}


KPIS: tuple[Kpi, ...] = (
    Kpi("sla_compliance", "SLA compliance per metric",
        "clocks completed without breach / clocks completed (per metric); breaches = clocks with the breached flag",
        sla_compliance),
    Kpi("first_response", "First response time",
        "completed first_response clocks: business = clock business_elapsed, wall = completed_at - started_at; median, p90",
        _clock_times("first_response")),
    Kpi("next_reply", "Next reply time", "as first_response, for completed next_reply clocks",
        _clock_times("next_reply")),
    Kpi("resolution", "Resolution time",
        "resolved cases: wall = ended_at - created_at, business = calendar.between(created_at, ended_at); median, p90",
        resolution_time),
    Kpi("fcr", "First-contact and first-level resolution",
        "first_contact = resolved with <= 1 completed human task, no escalation, not reopened / resolved; "
        "first_level = resolved cases whose deepest level is L1 / resolved cases that reached a human level (L1 or deeper)",
        fcr),
    Kpi("escalation", "Escalation, hand-back, ping-pong",
        "rate_X = cases escalated from level X / cases that were at X; hand_back = escalated cases handed back / "
        "escalated cases; ping_pong = escalated cases whose level went up, down and up again / escalated cases",
        escalation),
    Kpi("elevel", "e-level containment and deflection",
        "containment = cases starting at e-level resolved without a human level / cases starting at e-level; "
        "deflection_confirmed|potential = cases whose last e-level attempt is confirmed|potential / cases with an attempt",
        elevel),
    Kpi("reopen", "Reopen rate",
        "resolved cases worked again after resolution or followed by a new case of the same customer and SOP "
        "within the reopen window / resolved cases", reopen),
    Kpi("backlog", "Backlog by age, inflow and outflow",
        "open = cases not ended at the as-of time, by wall age bucket; inflow = cases created; outflow = cases ended",
        backlog),
    Kpi("incidents", "Incidents", "case_rate = cases with an incident / cases; count = incidents", incidents),
)
