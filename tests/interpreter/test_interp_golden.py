"""Golden event logs (R9): replaying committed logs with today's compiler and interpreter
gives the same states and commands as when they were recorded.

The fixture holds 50 cases of the reference mix (events and instants) and a digest of the
final state and of all commands of each case. A behaviour change of the SOP without a
version bump, or of the engine, fails here. If the change is intended, regenerate with
``CAREFLOW_REGEN_GOLDEN=1 pytest tests/interpreter/test_interp_golden.py``. The SOP's
content hash is left out of the digests, so a change in how the compiler hashes does not
count as a behaviour change; a change of the organisation documents (calendars, SLA
policies) skips the test with a request to regenerate.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from interp_helpers import REPO, run_reference_case

from engine.interpreter import StepContext, initial_state, step
from engine.interpreter.codec import (
    command_to_json,
    event_from_json,
    event_to_json,
    state_to_json,
)
from engine.interpreter.types import CaseState, Command
from engine.sop import CompiledSop

GOLDEN = Path(__file__).parent / "golden" / "password_reset.json"
CASES = 50


def _org_digest() -> str:
    """Digest of the organisation documents the logs were recorded with (the agents
    document is left out: who may act is checked by the runtime, not the interpreter)."""
    h = hashlib.sha256()
    for path in sorted((REPO / "sop_definitions" / "org").glob("*.yaml")):
        if re.search(r"^kind:\s*agents\b", path.read_text(), re.M):
            continue
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _digest(state: CaseState, commands: list[Command]) -> tuple[str, str]:
    doc = state_to_json(state)
    doc.pop("sop_hash")
    cmds = [command_to_json(c) for c in commands]
    for c in cmds:
        if c["type"] == "Audit" and c["kind"] == "case_started":
            c["detail"].pop("hash", None)

    def sha(value: Any) -> str:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    return sha(doc), sha(cmds)


def _record(compiled: CompiledSop, ctx: StepContext) -> dict[str, Any]:
    cases = []
    for i in range(CASES):
        d = run_reference_case(compiled, ctx, i)
        state_sha, commands_sha = _digest(d.state, d.commands)
        cases.append({
            "case_id": d.case_id,
            "events": [{"event": event_to_json(e), "now": now.isoformat()} for e, now in d.events],
            "state_sha": state_sha, "commands_sha": commands_sha,
        })
    return {"sop": compiled.id, "sop_version": compiled.version, "org": _org_digest(),
            "cases": cases}


def test_golden_logs_replay_identically(password_reset: CompiledSop,
                                        org_ctx: StepContext) -> None:
    if os.environ.get("CAREFLOW_REGEN_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(_record(password_reset, org_ctx), indent=1) + "\n")
    if not GOLDEN.exists():
        pytest.fail(f"{GOLDEN} is missing: record it with CAREFLOW_REGEN_GOLDEN=1")
    golden = json.loads(GOLDEN.read_text())
    if golden["sop_version"] != password_reset.version:
        pytest.skip(f"golden logs are for {golden['sop_version']}; record new ones for "
                    f"{password_reset.version} (CAREFLOW_REGEN_GOLDEN=1)")
    if golden["org"] != _org_digest():
        pytest.skip("the organisation documents (calendars, SLA policies, levels) changed since "
                    "the golden logs were recorded: regenerate them (CAREFLOW_REGEN_GOLDEN=1)")
    assert len(golden["cases"]) == CASES
    for case in golden["cases"]:
        state = initial_state(password_reset, case["case_id"])
        commands: list[Command] = []
        for item in case["events"]:
            state, out = step(password_reset, state, event_from_json(item["event"]),
                              datetime.fromisoformat(item["now"]), org_ctx)
            commands.extend(out)
        assert _digest(state, commands) == (case["state_sha"], case["commands_sha"]), (
            f"{case['case_id']}: replay differs from the golden log: the SOP changed without "
            "a version bump, or the engine's behaviour changed (regenerate with "
            "CAREFLOW_REGEN_GOLDEN=1 if intended)")
