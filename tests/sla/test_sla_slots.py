"""The generated slot constructors give the very objects the dataclasses give."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from engine.sla.clock import Rung, SlaClock, evolve, make_clock
from engine.slots import slot_functions
from engine.sla.timers import PlannedTimer

T = datetime(2026, 1, 5, 9, tzinfo=UTC)
CLOCK = SlaClock("fr", "first_response", "p", 1, "(default)", "office", "business_hours", 3600,
                 3600, "running", T, T, T, T, warn_at=(2700,), warn_rules=("percent:75",),
                 ladder=(Rung(0, "L2"),))


def test_make_clock_equals_the_dataclass_constructor() -> None:
    values = [getattr(CLOCK, f.name) for f in dataclasses.fields(SlaClock)]
    assert make_clock(*values) == CLOCK
    assert make_clock(**{f.name: getattr(CLOCK, f.name) for f in dataclasses.fields(SlaClock)
                         if f.default is dataclasses.MISSING}) == SlaClock(
        *values[:14])  # the other fields take their defaults
    with pytest.raises(TypeError):
        make_clock(name="x")


@pytest.mark.parametrize("changes", [{}, {"state": "paused", "due_at": None},
                                     {"warnings_fired": ("fr:1:warning:0",), "breaches": 2}])
def test_evolve_equals_dataclasses_replace(changes: dict[str, object]) -> None:
    assert evolve(CLOCK, **changes) == dataclasses.replace(CLOCK, **changes)
    with pytest.raises(TypeError):
        evolve(CLOCK, colour="red")


def test_slot_functions_of_any_slots_dataclass() -> None:
    make, change = slot_functions(PlannedTimer)
    planned = make("sla_breach", T, "fr:1:breach", {"clock": "fr"})
    assert planned == PlannedTimer("sla_breach", T, "fr:1:breach", {"clock": "fr"})
    assert change(planned, key="k") == dataclasses.replace(planned, key="k")
    with pytest.raises(dataclasses.FrozenInstanceError):
        planned.key = "x"  # type: ignore[misc]
