"""Generate large, valid SOP YAML for benchmarks and tests (``generate_sop(n)``).

The generated SOP uses most node types in a repeating pattern of stages -- an action with
retry and an error route, a decision over an enum with an ``otherwise``, a human task with
outcomes, a form and a timeout, a wait with a timeout, an SLA start/stop pair, a ``set`` --
chained so every node is reachable and every path ends. It is deterministic: the same
``n`` always gives the same text.
"""

from __future__ import annotations

__all__ = ["generate_sop"]

_STAGE = 8  # nodes per stage


def _stage(i: int, nxt: str) -> list[str]:
    p = f"s{i}_"
    return [
        f"  {p}sla:",
        "    type: sla_start",
        f"    clock: c{i}",
        "    metric: first_response",
        f"    next: {p}act",
        f"  {p}act:",
        "    type: action",
        f"    title: Automated step {i}",
        "    level: e",
        "    action: classify_request",
        "    inputs:",
        "      text: ${ request_text }",
        f"      step: {i}",
        "    set:",
        "      intent: result.intent",
        "    retry: {max_attempts: 3, delay: 10s, backoff: 2.0, max_delay: 5m}",
        f"    on_error: {p}task",
        f"    next: {p}route",
        f"  {p}route:",
        "    type: decision",
        f"    title: Route {i}",
        "    branches:",
        f'      - when: intent == "a" && attempts < {i + 3}',
        "        label: simple",
        f"        next: {p}set",
        '      - when: intent == "b"',
        f"        next: {p}wait",
        f"    otherwise: {p}task",
        f"  {p}set:",
        "    type: set",
        "    set:",
        "      attempts: attempts + 1",
        f"    next: {p}stop",
        f"  {p}task:",
        "    type: human_task",
        f"    title: Human step {i}",
        "    level: L1",
        "    role: agent",
        "    outcomes:",
        f"      done: {{next: {p}stop}}",
        f"      wait: {{next: {p}wait, label: ask the customer}}",
        "    form:",
        "      note: {type: string, required: true}",
        f"    timeout: {{after: 4h, next: {p}stop}}",
        f"  {p}wait:",
        "    type: wait",
        "    on:",
        "      - event: customer_replied",
        "        set:",
        "          reply: event",
        f"        next: {p}stop",
        f"    timeout: {{after: P2D, next: {p}stop}}",
        f"  {p}stop:",
        "    type: sla_stop",
        f"    clock: c{i}",
        f"    next: {p}join",
        f"  {p}join:",
        "    type: set",
        "    set:",
        "      attempts: attempts",
        f"    next: {nxt}",
    ]


def generate_sop(n: int = 2000, sop_id: str = "generated") -> str:
    """YAML text of a valid SOP with about ``n`` nodes (a multiple of 8, plus start and end).

    >>> text = generate_sop(20)
    >>> text.startswith("kind: sop")
    True
    """
    stages = max(1, (n - 2) // _STAGE)
    lines = [
        "kind: sop",
        f"id: {sop_id}",
        'version: "1.0.0"',
        f"title: Generated SOP with {stages * _STAGE + 2} nodes",
        "data:",
        "  request_text: {type: string, input: true}",
        "  intent: {type: string, enum: [a, b, c]}",
        "  attempts: {type: integer, default: 0}",
        "  note: {type: string}",
        "  reply: {type: object}",
        "nodes:",
        "  start:",
        "    type: start",
        "    next: s0_sla",
    ]
    for i in range(stages):
        nxt = f"s{i + 1}_sla" if i + 1 < stages else "done"
        lines += _stage(i, nxt)
    lines += ["  done:", "    type: end", "    outcome: finished", ""]
    return "\n".join(lines)
