"""The public API of engine.sla: everything promised is exported, and nothing private leaks."""

from __future__ import annotations

import inspect

import engine.sla
from engine.sla import calendar, clock, codec, duration, policy, timers

PROMISED = {
    "parse_duration": ["text", "allow_zero"],
    "format_duration": ["seconds"],
    "select_policy": ["policies", "metric", "facts", "env"],
    "target_seconds": ["metric_spec", "priority", "tier"],
    "qualifies_as_response": ["metric_spec", "interaction_kind", "automatic", "public"],
    "start_clock": [
        "name",
        "metric",
        "policy",
        "metric_spec",
        "calendar",
        "now",
        "priority",
        "tier",
    ],
    "pause": ["clock", "cal", "now"],
    "resume": ["clock", "cal", "now"],
    "stop": ["clock", "cal", "now"],
    "cancel": ["clock", "now", "reason"],
    "rearm": ["clock", "cal", "now"],
    "reprioritize": ["clock", "policy", "metric_spec", "cal", "now", "priority", "tier"],
    "status": ["clock", "cal", "now"],
    "remaining": ["clock", "cal", "now"],
    "due_timers": ["clock", "metric_spec", "cal"],
    "on_timer": ["clock", "kind", "key", "cal", "now"],
    "reopen": ["clock", "metric_spec", "cal", "now", "closed_at", "reopen_window"],
    "to_json": ["clock"],
    "from_json": ["data"],
}


def test_all_is_complete_and_importable() -> None:
    for name in engine.sla.__all__:
        assert hasattr(engine.sla, name), name
    for module in (calendar, clock, codec, duration, policy, timers):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_signatures_are_as_promised() -> None:
    for name, params in PROMISED.items():
        fn = getattr(engine.sla, name)
        assert list(inspect.signature(fn).parameters) == params, name
    cal = engine.sla.BusinessCalendar
    assert list(inspect.signature(cal.add).parameters) == ["self", "start", "seconds"]
    assert list(inspect.signature(cal.add_days).parameters) == [
        "self",
        "start",
        "days",
        "end_of_day",
    ]
    assert list(inspect.signature(cal.between).parameters) == ["self", "start", "end"]
    assert list(inspect.signature(cal.from_spec).parameters) == ["spec", "base_dir"]


def test_clock_module_reexports_timers_and_codec() -> None:
    assert clock.on_timer is timers.on_timer
    assert clock.to_json is codec.to_json
    assert clock.PlannedTimer is timers.PlannedTimer
