"""Helpers of the SLA tests: calendars, policies and metric specs built in code (no YAML)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from engine.errors import SourceSpan
from engine.sla.calendar import BusinessCalendar
from engine.sla.duration import parse_duration
from engine.sop.model import (
    Duration,
    EscalationStepSpec,
    Expr,
    MetricSpec,
    SlaPolicyDoc,
    WarningSpec,
    frozen_map,
)

SPAN = SourceSpan("test.yaml", 1, 1)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
AMS = ZoneInfo("Europe/Amsterdam")


def local(*args: int, tz: ZoneInfo = AMS) -> datetime:
    """An aware datetime in ``tz`` (Amsterdam by default)."""
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


def dur(text: str) -> Duration:
    return Duration(text, parse_duration(text, allow_zero=True), SPAN)


def metric(
    name: str = "first_response",
    target: str | None = "4h",
    *,
    unit: str = "business_hours",
    by_priority: Mapping[str, str] | None = None,
    by_tier: Mapping[str, str] | None = None,
    warnings: tuple[tuple[float | None, int | None], ...] = ((75, None), (None, 15)),
    ladder: tuple[tuple[str, str | None, str | None], ...] = (
        ("0h", "L2", None),
        ("2h", None, "supervisor"),
        ("4h", None, "head_of_department"),
    ),
    on_reopen: str = "resume",
    pause_if_breached: bool = True,
    counts_as_response: tuple[str, ...] = ("human_reply", "phone_call"),
) -> MetricSpec:
    """A MetricSpec as the YAML loader would build it."""
    return MetricSpec(
        metric=name,
        span=SPAN,
        target=dur(target) if target else None,
        by_priority=frozen_map({k: dur(v) for k, v in (by_priority or {}).items()}),
        by_tier=frozen_map({k: dur(v) for k, v in (by_tier or {}).items()}),
        unit=unit,
        warnings=tuple(WarningSpec(SPAN, percent=p, minutes_before=m) for p, m in warnings),
        escalation=tuple(
            EscalationStepSpec(dur(a), SPAN, to_level=lvl, notify=n) for a, lvl, n in ladder
        ),
        on_reopen=on_reopen,
        pause_if_breached=pause_if_breached,
        counts_as_response=counts_as_response,
    )


def policy(
    pid: str,
    order: int,
    metrics: Mapping[str, MetricSpec],
    when: str | None = None,
    calendar: str = "office_nl",
) -> SlaPolicyDoc:
    return SlaPolicyDoc(
        id=pid,
        order=order,
        calendar=calendar,
        span=SPAN,
        metrics=frozen_map(metrics),
        when=Expr(when, SPAN) if when else None,
    )


def office(**extra: object) -> BusinessCalendar:
    """Mon-Fri 08:00-12:00 and 13:00-17:30 in Europe/Amsterdam (office_nl without holidays)."""
    return BusinessCalendar.create(
        "office_nl",
        "Europe/Amsterdam",
        week={d: [("08:00", "12:00"), ("13:00", "17:30")] for d in WEEKDAYS},
        **extra,  # type: ignore[arg-type]
    )
