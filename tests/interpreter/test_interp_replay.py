"""Determinism: replaying the recorded events from an empty state gives the same state and
the same commands, also through the JSON codec after every event (as a store would)."""

from __future__ import annotations

import json

import pytest
from conftest import Driver, run_reference_case

from engine.interpreter import StepContext, initial_state, step
from engine.interpreter.codec import event_from_json, event_to_json, state_from_json, state_to_json
from engine.sop import CompiledSop


def replay(compiled: CompiledSop, ctx: StepContext, d: Driver, *, through_json: bool) -> tuple:
    state = initial_state(compiled, d.case_id)
    commands = []
    for event, now in d.events:
        if through_json:
            event = event_from_json(json.loads(json.dumps(event_to_json(event))))
            state = state_from_json(json.loads(json.dumps(state_to_json(state))))
        state, out = step(compiled, state, event, now, ctx)
        commands.extend(out)
    return state, commands


@pytest.mark.parametrize("i", [0, 6, 9])
@pytest.mark.parametrize("through_json", [False, True])
def test_replay_reproduces_state_and_commands(password_reset: CompiledSop,
                                              org_ctx: StepContext, i: int,
                                              through_json: bool) -> None:
    d = run_reference_case(password_reset, org_ctx, i)
    state, commands = replay(password_reset, org_ctx, d, through_json=through_json)
    assert state == d.state
    assert commands == d.commands
    assert len(d.events) == d.state.seq
