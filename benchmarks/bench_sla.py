"""Benchmark business-calendar arithmetic and SLA clock operations; prints its figures.

Run: ``.venv/bin/python benchmarks/bench_sla.py``. Figures:

- ``add`` / ``between`` over one year of business time, cold (fresh calendar, empty caches)
  and warm (caches filled by the cold call);
- per-call microseconds of ``add`` / ``between`` / ``next_open`` for typical targets
  (1 h, 4 h, 1 business day, 5 business days) from random starts in one year;
- per-call microseconds of ``start_clock``, ``due_timers``, ``on_timer`` and a JSON round trip.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from engine.errors import SourceSpan
from engine.sla.calendar import BusinessCalendar
from engine.sla.clock import start_clock
from engine.sla.codec import from_json, to_json
from engine.sla.duration import parse_duration
from engine.sla.timers import due_timers, on_timer
from engine.sop.model import (
    Duration,
    EscalationStepSpec,
    MetricSpec,
    SlaPolicyDoc,
    WarningSpec,
    frozen_map,
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
SPAN = SourceSpan("bench", 1, 1)
H = 3600


def calendars() -> dict[str, Callable[[], BusinessCalendar]]:
    return {
        "office_nl (lunch break, NL holidays)": lambda: BusinessCalendar.create(
            "office_nl",
            "Europe/Amsterdam",
            week={d: ["08:00-12:00", "13:00-17:30"] for d in WEEKDAYS},
            country="NL",
            recurring_holidays=["12-24", "12-31"],
        ),
        "night_desk (overnight shifts)": lambda: BusinessCalendar.create(
            "night", "Europe/Amsterdam", week={d: ["22:00-06:00"] for d in WEEKDAYS}
        ),
        "24x7 Europe/Berlin": lambda: BusinessCalendar.always("Europe/Berlin"),
    }


def timed(fn: Callable[[], object], repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def per_call_us(fn: Callable[[datetime], object], starts: list[datetime]) -> float:
    start = time.perf_counter()
    for s in starts:
        fn(s)
    return (time.perf_counter() - start) / len(starts) * 1e6


def year_figures() -> None:
    print("== one year of business time (one call) ==")
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    for name, make in calendars().items():
        year = make().between(start, start + timedelta(days=365))
        cal = make()
        cold_add = timed(lambda: cal.add(start, year))  # noqa: B023 - evaluated at once
        warm_add = timed(lambda: cal.add(start, year), 50)  # noqa: B023
        fresh = make()
        cold_between = timed(lambda: fresh.between(start, start + timedelta(days=365)))  # noqa: B023
        warm_between = timed(lambda: fresh.between(start, start + timedelta(days=365)), 50)  # noqa: B023
        print(
            f"{name:38s} {year / H:7.0f} business h   add cold {cold_add * 1e3:6.2f} ms  "
            f"warm {warm_add * 1e3:6.3f} ms   between cold {cold_between * 1e3:6.2f} ms  "
            f"warm {warm_between * 1e3:6.3f} ms"
        )
    make = calendars()["office_nl (lunch break, NL holidays)"]
    make().add(start, H)  # the holidays package's first import is not ours to measure
    cal = make()
    ten = timed(lambda: cal.add(start, 10 * 2000 * H))
    print(f"office_nl: 20,000 business hours (~10 years) cold add {ten * 1e3:.1f} ms")


def typical_figures() -> None:
    print("== per call, random starts in 2026, warm caches ==")
    rng = random.Random(7)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [base + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(20_000)]
    for name, make in calendars().items():
        cal = make()
        cal.between(base, base + timedelta(days=400))  # fill the day cache
        row = [f"{name:38s}"]
        for label, seconds in (
            ("1h", H),
            ("4h", 4 * H),
            ("8.5h", 8 * H + 1800),
            ("42.5h", 42 * H + 1800),
        ):
            row.append(f"add {label} {per_call_us(lambda s: cal.add(s, seconds), starts):5.1f} µs")  # noqa: B023
        row.append(f"add_days 5 {per_call_us(lambda s: cal.add_days(s, 5), starts):5.1f} µs")  # noqa: B023
        week = timedelta(days=7)
        row.append(f"between 1w {per_call_us(lambda s: cal.between(s, s + week), starts):5.1f} µs")  # noqa: B023
        row.append(f"next_open {per_call_us(cal.next_open, starts):5.1f} µs")
        print("  ".join(row))


def clock_figures() -> None:
    print("== SLA clock operations ==")
    cal = calendars()["office_nl (lunch break, NL holidays)"]()

    def dur(text: str) -> Duration:
        return Duration(text, parse_duration(text, allow_zero=True), SPAN)

    spec = MetricSpec(
        "first_response",
        SPAN,
        target=dur("4h"),
        warnings=(WarningSpec(SPAN, percent=75), WarningSpec(SPAN, minutes_before=15)),
        escalation=tuple(
            EscalationStepSpec(dur(a), SPAN, to_level=lvl, notify=n)
            for a, lvl, n in (
                ("0h", "L2", None),
                ("2h", None, "supervisor"),
                ("4h", None, "head_of_department"),
            )
        ),
    )
    policy = SlaPolicyDoc(
        "sla_default", 100, "office_nl", SPAN, frozen_map({"first_response": spec})
    )
    rng = random.Random(3)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [base + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(5_000)]
    clocks = [start_clock("fr", "first_response", policy, spec, cal, s) for s in starts]
    n = len(starts)
    t = timed(lambda: [start_clock("fr", "first_response", policy, spec, cal, s) for s in starts])
    print(f"start_clock        {t / n * 1e6:7.1f} µs")
    t = timed(lambda: [due_timers(c, spec, cal) for c in clocks])
    print(f"due_timers (6)     {t / n * 1e6:7.1f} µs")
    plans = [(c, due_timers(c, spec, cal)[2]) for c in clocks]
    t = timed(lambda: [on_timer(c, p.kind, p.key, cal, p.due_at) for c, p in plans])
    print(f"on_timer (breach)  {t / n * 1e6:7.1f} µs")
    t = timed(lambda: [from_json(to_json(c)) for c in clocks])
    print(f"JSON round trip    {t / n * 1e6:7.1f} µs")
    sizes = [len(str(to_json(c))) for c in clocks[:100]]
    print(f"clock JSON size    {statistics.mean(sizes):7.0f} chars")


if __name__ == "__main__":
    year_figures()
    typical_figures()
    clock_figures()
