"""Interpreter micro-benchmark: time per step() and per reference case, pure (no store).

Prints figures; asserts nothing. Run: ``.venv/bin/python benchmarks/bench_interpreter.py``.
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from engine.actions import load_actions
from engine.interpreter import StepContext, new_case, step
from engine.interpreter.codec import state_from_json, state_to_json
from engine.interpreter.types import CaseStarted, CaseState, RunAction, Signal, TaskCompleted
from engine.sop import compile_file, compile_text

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)

SIMPLE = """
kind: sop
id: simple
version: "1.0.0"
title: simple
data:
  n: {type: integer, input: true}
nodes:
  start: {type: start, next: w}
  w:
    type: wait
    on: [{event: ping, set: {n: n + 1}, next: w}, {event: stop, next: e}]
    timeout: {after: 1h, next: e}
  e: {type: end}
"""


def bench_simple(n: int = 20_000) -> tuple[float, float]:
    """(median, mean) microseconds per step of a wait node that applies one CEL set."""
    compiled = compile_text(SIMPLE)
    ctx = StepContext()
    state, _ = new_case(compiled, "B", CaseStarted(data={"n": 0}), NOW, ctx)
    ping = Signal("ping")
    times = []
    clock = time.perf_counter
    for _ in range(n):
        t0 = clock()
        state, _ = step(compiled, state, ping, NOW, ctx)
        times.append(clock() - t0)
    times.sort()
    return times[n // 2] * 1e6, sum(times) / n * 1e6


def _org_ctx() -> StepContext:
    """Calendars, SLA policies and levels of the bundled organisation (sop_definitions/org)."""
    from engine.runtime.sops import SopProvider

    return SopProvider(ROOT / "sop_definitions").context


def bench_reference(n: int, ctx: StepContext, *, persist: bool,
                    seen: list[CaseState] | None = None) -> tuple[float, int]:
    """n cases of the reference mix; returns (cases per second, events applied).

    ``seen`` collects the states that go through the JSON round trip (with ``persist``)."""
    compiled = compile_file(ROOT / "sop_definitions" / "password_reset.yaml")
    registry = load_actions()
    events = 0
    t0 = time.perf_counter()
    for i in range(n):
        path = i % 10
        text = ("I forgot my password, please send me a reset link" if path < 6
                else "I am locked out and no longer have access to my recovery e-mail")
        state, out = new_case(compiled, f"C{i:07d}", CaseStarted(data={
            "request_text": text, "customer_tier": "gold" if i % 7 == 0 else "standard",
            "email": f"user{i}@example.com"}), NOW, ctx)
        events += 1
        script = []
        if path < 6:
            script.append(Signal("customer_confirmed", {"confirmed": True, "channel": "email"}))
        while True:
            for run in out:  # the first RunAction of the step, if any
                if type(run) is RunAction:
                    break
            else:
                run = None
            if run is not None:
                event = registry.execute(run, case_id=state.case_id, now=NOW)
            elif script:
                event = script.pop(0)
            elif state.tasks:
                task = next(iter(state.tasks.values()))
                if task.node == "verify_identity":
                    outcome = "escalate" if path == 9 else "verified"
                    event = TaskCompleted(task.task_id, outcome, {"verify_outcome": outcome})
                else:
                    event = TaskCompleted(task.task_id, "fixed", {"fix_outcome": "fixed"},
                                          knowledge={"kind": "linked", "article": "KB-1"})
            else:
                break
            if persist:
                if seen is not None:
                    seen.append(state)
                state = state_from_json(state_to_json(state))
            state, out = step(compiled, state, event, NOW, ctx)
            events += 1
        assert state.status == "resolved", (i, state.status)
    elapsed = time.perf_counter() - t0
    return n / elapsed, events


def bench_codec(ctx: StepContext, n: int = 1_000) -> tuple[float, float, int]:
    """(encode us, decode us, states) per case state, over the states the reference mix
    passes through between its events (what a store decodes and encodes per step)."""
    import json
    import timeit

    seen: list[CaseState] = []
    bench_reference(n, ctx, persist=True, seen=seen)
    docs = [json.loads(json.dumps(state_to_json(s))) for s in seen]
    decoded = [state_from_json(d) for d in docs]
    encode = min(timeit.repeat(lambda: [state_to_json(s) for s in decoded], number=1, repeat=5))
    decode = min(timeit.repeat(lambda: [state_from_json(d) for d in docs], number=1, repeat=5))
    return encode / len(docs) * 1e6, decode / len(docs) * 1e6, len(docs)


def calibration() -> tuple[float, float]:
    """(CEL eval of ``n + 1`` in us, ``sum(range(100))`` in us): how loaded the machine is.

    On an idle 2-core machine of the DESIGN figures the CEL eval takes about 4 us."""
    import timeit

    from engine.sop.expressions import ExpressionEnv

    program = ExpressionEnv([("n", "integer", None)]).compile("n + 1")
    cel = min(timeit.repeat(lambda: program.evaluate_cel({"n": 1}), number=2_000,
                            repeat=5)) / 2_000
    py = min(timeit.repeat(lambda: sum(range(100)), number=2_000, repeat=5)) / 2_000
    return cel * 1e6, py * 1e6


def main() -> None:
    cel, py = calibration()
    print(f"calibration: CEL eval {cel:.1f} us, sum(range(100)) {py:.2f} us")
    median, mean = bench_simple()
    print(f"step() on a wait node with one CEL set: median {median:.1f} us, "
          f"mean {mean:.1f} us per step")
    ctx = _org_ctx()
    bench_reference(200, ctx, persist=False)  # warm up caches (calendars, programs)
    for persist in (False, True):
        rate, events = bench_reference(2_000, ctx, persist=persist)
        label = "with JSON round trip per event" if persist else "in memory"
        print(f"reference mix, {label}: {rate:,.0f} cases/s ({events} events for 2,000 cases, "
              f"{1e6 / (rate * events / 2_000):.0f} us/event)")
    encode, decode, count = bench_codec(ctx)
    print(f"state codec over the reference mix's {count:,} states: state_to_json {encode:.1f} us, "
          f"state_from_json {decode:.1f} us per state")
    compiled = compile_file(ROOT / "sop_definitions" / "password_reset.yaml")
    tracemalloc.start()
    states = []
    for i in range(1_000):
        s, _ = new_case(compiled, f"M{i}", CaseStarted(data={
            "request_text": "locked out", "customer_tier": "standard", "email": "x@y"}), NOW, ctx)
        states.append(s)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"memory per open case (waiting on the classify action): {size / 1_000 / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
