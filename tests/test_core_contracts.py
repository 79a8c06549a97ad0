"""Executable spec of the shared core: error formatting, the simulated clock, CEL programs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.clock import SimulatedClock
from engine.errors import ExpressionError, SopError, SopErrors, SourceSpan
from engine.sop.expressions import ExpressionEnv


def test_sop_error_prints_in_compiler_format() -> None:
    err = SopError("E-REF-UNKNOWN", "unknown node 'aprove'",
                   span=SourceSpan("intake.yaml", 14, 7), json_path="$.nodes.triage.next",
                   hint="did you mean 'approve'?")
    assert str(err) == "intake.yaml:14:7: E-REF-UNKNOWN: unknown node 'aprove' (did you mean 'approve'?)"
    assert err.as_dict()["line"] == 14


def test_sop_errors_sorted_by_position() -> None:
    a = SopError("B", "b", span=SourceSpan("f.yaml", 9, 1))
    b = SopError("A", "a", span=SourceSpan("f.yaml", 2, 5))
    assert [e.code for e in SopErrors([a, b])] == ["A", "B"]


def test_simulated_clock_never_goes_back() -> None:
    clock = SimulatedClock(datetime(2026, 3, 1, tzinfo=UTC))
    clock.advance(timedelta(days=1))
    assert clock.now() == datetime(2026, 3, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance(timedelta(seconds=-1))


def test_cel_condition_is_type_checked_against_case_data() -> None:
    env = ExpressionEnv([("intent", "string", None), ("attempts", "integer", None)])
    program = env.compile('intent == "reset" && attempts < 3', expect_bool=True)
    assert program.test({"intent": "reset", "attempts": 1})
    assert program.reads == {"intent", "attempts"}
    with pytest.raises(ExpressionError, match="no matching overload") as info:
        env.compile("attempts == 'three'")
    assert info.value.column == 10


def test_cel_iteration_budget_stops_runaway_expressions() -> None:
    env = ExpressionEnv()
    nested = "[" + ",".join(["1"] * 30) + "]"
    source = f"{nested}.all(a, {nested}.all(b, {nested}.all(c, {nested}.all(d, true))))"
    with pytest.raises(ExpressionError, match="budget"):
        env.compile(source).evaluate({})


def test_fast_path_commands_live_in_the_modules_the_index_names() -> None:
    """`careflow validate` & co. register one module only; that module must define them."""
    import typer.main

    from engine.cli import FAST_PATH, build_app

    for command, module in FAST_PATH.items():
        names = {c.name or c.callback.__name__ for c in build_app([command]).registered_commands}
        groups = {g.name for g in build_app([command]).registered_groups}
        assert command in names | groups, f"{command} is not defined by engine.cli.{module}"
    full = typer.main.get_command(build_app())
    assert set(FAST_PATH) <= set(full.commands)  # type: ignore[attr-defined]
