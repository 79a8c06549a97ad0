"""Benchmark of the SOP semantic checks (engine.sop.checks): prints figures, asserts nothing.

Two 2,000-node SOPs: A1's generated chain (``engine.sop.generate.generate_sop``) and a
cycle-heavy one built here (every block holds a bounded L1/L2 ping-pong loop, a parallel
split with its join, a paused-and-resumed SLA clock and a reminder wait), which exercises
the SCC, must-analysis and join paths of the checks. Target: validate + compile + check
a 2,000-node SOP in under 1 s in total; the checks' share is printed separately.

Run: ``.venv/bin/python benchmarks/bench_sop_checks.py``
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from engine.sop.checks import iter_semantic_errors
from engine.sop.checks_refs import known_action_names
from engine.sop.compiler import compile_spec
from engine.sop.generate import generate_sop
from engine.sop.model import SopSpec
from engine.sop.pipeline import load_text

_BLOCK = 14  # nodes per block of the cyclic SOP


def _block(i: int, nxt: str) -> str:
    p = f"b{i}_"
    return f"""
  {p}clock: {{type: sla_start, clock: c{i}, metric: resolution_total, next: {p}rounds}}
  {p}rounds: {{type: loop, max: 3, body: {p}l1, exit: {p}split}}
  {p}l1:
    type: human_task
    level: L1
    outcomes: {{solved: {{next: {p}split}}, escalate: {{next: {p}up}}}}
    timeout: {{after: 4h, next: {p}up}}
  {p}up: {{type: escalate, to: L2, next: {p}l2}}
  {p}l2:
    type: human_task
    level: L2
    outcomes: {{back: {{next: {p}down}}}}
    timeout: {{after: 1d, next: {p}down}}
  {p}down: {{type: hand_back, to: L1, next: {p}rounds}}
  {p}split:
    type: parallel
    branches: [{{next: {p}a}}, {{when: 'tier == "gold"', next: {p}b}}]
    join: {p}joined
  {p}a: {{type: set, set: {{note: '"a"'}}, next: {p}joined}}
  {p}b: {{type: action, action: send_message, inputs: {{template: t}}, next: {p}joined}}
  {p}joined: {{type: join, next: {p}pause}}
  {p}pause: {{type: sla_pause, clock: c{i}, next: {p}await}}
  {p}await:
    type: wait
    on: [{{event: customer_replied, next: {p}resume}}]
    timeout: {{after: 2d, next: {p}resume}}
  {p}resume: {{type: sla_resume, clock: c{i}, next: {p}stop}}
  {p}stop: {{type: sla_stop, clock: c{i}, next: {nxt}}}
"""


def cyclic_sop(n: int = 2000) -> str:
    blocks = max(1, n // _BLOCK)
    body = "".join(
        _block(i, f"b{i + 1}_clock" if i + 1 < blocks else "done") for i in range(blocks)
    )
    return f"""kind: sop
id: cyclic
version: "1.0.0"
title: Cycle-heavy benchmark SOP
data:
  tier: {{type: string, input: true}}
  note: {{type: string, default: ""}}
nodes:
  start: {{type: start, level: L1, next: b0_clock}}
{body}
  done: {{type: end}}
"""


def _best(fn: Callable[[], object], runs: int = 5) -> tuple[float, float, float]:
    """(best wall, median wall, best CPU) seconds: CPU time is less distorted by a busy box."""
    times, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(times), statistics.median(times), min(cpu)


def main() -> None:
    t0 = time.perf_counter()
    known_action_names()
    print(f"action registry first load (once per process): {time.perf_counter() - t0:.3f} s")
    for name, text in (("generated chain", generate_sop(2000)), ("cycle-heavy", cyclic_sop())):
        t0 = time.perf_counter()
        spec = load_text(text, f"{name}.yaml")
        t_load = time.perf_counter() - t0
        assert isinstance(spec, SopSpec)
        t0 = time.perf_counter()
        compiled = compile_spec(spec)
        t_compile = time.perf_counter() - t0
        errors = list(iter_semantic_errors(compiled))
        best, median, cpu = _best(lambda c=compiled: list(iter_semantic_errors(c)))
        print(
            f"{name:16s} nodes={len(spec.nodes):5d} load+schema+build={t_load:.3f} s "
            f"compile={t_compile:.3f} s checks best={best * 1000:.1f} ms "
            f"median={median * 1000:.1f} ms cpu={cpu * 1000:.1f} ms errors={len(errors)}"
        )


if __name__ == "__main__":
    main()
