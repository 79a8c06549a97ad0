"""Properties of SLA clocks: pauses excluded exactly; timers apply once whatever the delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sla_helpers import metric, office, policy

from engine.sla.clock import elapsed, pause, resume, start_clock, status
from engine.sla.codec import from_json, to_json
from engine.sla.timers import due_timers, on_timer

CAL = office(country="NL")
FR = metric("first_response", "4h", warnings=((50, None), (75, None), (None, 15)))
POLICY = policy("p", 100, {"first_response": FR})
BASE = datetime(2026, 1, 1, tzinfo=UTC)

instants = st.integers(min_value=0, max_value=60 * 86_400).map(
    lambda s: BASE + timedelta(seconds=s)
)
gaps = st.integers(min_value=0, max_value=5 * 86_400).map(lambda s: timedelta(seconds=s))


@settings(max_examples=100, deadline=None)
@given(instants, gaps, gaps, gaps)
def test_paused_time_is_excluded_exactly(
    start: datetime, before: timedelta, paused: timedelta, after: timedelta
) -> None:
    clock = start_clock("fr", "first_response", POLICY, FR, CAL, start)
    a = start + before
    b = a + paused
    now = b + after
    resumed = resume(pause(clock, CAL, a), CAL, b)
    assert elapsed(resumed, CAL, now) == CAL.between(start, now) - CAL.between(a, b)
    if CAL.between(start, a) < resumed.budget:  # paused before it was late: due moves
        assert resumed.due_at == CAL.add(start, resumed.budget + CAL.between(a, b))
    else:  # paused when already late: the first late instant stays where it was
        assert resumed.due_at == CAL.add(start, resumed.budget)
    assert from_json(to_json(resumed)) == resumed


@settings(max_examples=60, deadline=None)
@given(
    instants,
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3 * 86_400)), min_size=1, max_size=25),
)
def test_each_timer_applies_once_in_any_order_with_duplicates(
    start: datetime, deliveries: list[tuple[int, int]]
) -> None:
    clock = start_clock("fr", "first_response", POLICY, FR, CAL, start)
    plan = due_timers(clock, FR, CAL)
    fired: list[str] = []
    for index, delay in deliveries:
        timer = plan[index % len(plan)]
        now = timer.due_at + timedelta(seconds=delay)
        clock, effects = on_timer(clock, timer.kind, timer.key, CAL, now)
        fired += [f"{e.kind}:{e.detail['key']}:{e.detail.get('notify') or ''}" for e in effects]
    assert len(fired) == len(set(fired))
    assert sum(1 for f in fired if f.startswith("breach:")) <= 1
    assert clock.breaches <= 1
    if clock.breached:
        assert clock.breached_at == plan[[t.kind for t in plan].index("sla_breach")].due_at
        assert status(clock, CAL, clock.breached_at) == "breached"
