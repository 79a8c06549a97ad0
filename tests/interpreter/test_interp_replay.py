"""Determinism: replaying the recorded events from an empty state gives the same state and
the same commands, also through the JSON codec after every event (as a store would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from interp_helpers import REPO, Driver, run_reference_case

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


REPLAYER = """
import json, sys
sys.path.insert(0, {tests!r})
from interp_helpers import load_org_context
from engine.interpreter import initial_state, step
from engine.interpreter.codec import command_to_json, event_from_json, state_to_json
from engine.sop import compile_file
from datetime import datetime
log = json.load(open({log!r}))
compiled = compile_file({sop!r})
ctx = load_org_context()
state = initial_state(compiled, log["case_id"])
commands = []
for item in log["events"]:
    state, out = step(compiled, state, event_from_json(item["event"]),
                      datetime.fromisoformat(item["now"]), ctx)
    commands += [command_to_json(c) for c in out]
print(json.dumps({{"state": state_to_json(state), "commands": commands}}, sort_keys=True))
"""


def test_replay_in_another_process_with_another_hash_seed(password_reset: CompiledSop,
                                                          org_ctx: StepContext,
                                                          tmp_path: Path) -> None:
    from engine.interpreter.codec import command_to_json

    d = run_reference_case(password_reset, org_ctx, 9)
    log = tmp_path / "events.json"
    log.write_text(json.dumps({"case_id": d.case_id, "events": [
        {"event": event_to_json(e), "now": now.isoformat()} for e, now in d.events]}))
    script = REPLAYER.format(tests=str(Path(__file__).parent), log=str(log),
                             sop=password_reset.spec.source or str(
                                 REPO / "sop_definitions" / "password_reset.yaml"))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, check=True, cwd=REPO, timeout=120)
    theirs = json.loads(out.stdout)
    ours = json.loads(json.dumps({"state": state_to_json(d.state),
                                  "commands": [command_to_json(c) for c in d.commands]},
                                 sort_keys=True))
    assert theirs == ours
