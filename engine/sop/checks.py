"""Semantic checks of a compiled SOP: the guarantees JSON Schema cannot give.

The compiler pipeline calls :func:`iter_semantic_errors` after the schema check and the
build into model values. It yields every problem it finds (never raises the first one) as a
``CompileError`` with a stable code, the span of the offending node or field, a JSON path
and a fix hint. Warnings (codes starting with ``W-``) carry ``severity="warning"`` and do
not fail validation.

The checks live in four small modules, one concern each:

- :mod:`engine.sop.checks_graph` -- reachability, dead ends, livelocks, paths without an
  end, level ping-pong, parallel/join pairing, loop bounds;
- :mod:`engine.sop.checks_flow` -- SLA clocks started before use, escalation direction;
- :mod:`engine.sop.checks_refs` -- levels, policies, calendars, actions, sub-SOPs, human
  tasks, timeouts, correlation, exhaustive decisions;
- :mod:`engine.sop.checks_data` -- case fields read but never written, written but undeclared.

Every code is documented, with its fix, in docs/sop-reference.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from engine.errors import SopError
from engine.sop.checks_base import CheckContext, build_context
from engine.sop.checks_data import iter_data_errors
from engine.sop.checks_flow import iter_flow_errors
from engine.sop.checks_graph import iter_graph_errors
from engine.sop.checks_refs import iter_reference_errors

__all__ = ["CODES", "CheckContext", "build_context", "iter_semantic_errors"]

#: every code these checks emit (W- codes are warnings)
CODES = frozenset({
    "E-GRAPH-UNREACHABLE",
    "E-GRAPH-DEADEND",
    "E-GRAPH-NO-END",
    "E-GRAPH-LIVELOCK",
    "E-LEVEL-PINGPONG",
    "E-LEVEL-UNKNOWN",
    "E-LEVEL-DIRECTION",
    "E-DECISION-NO-OTHERWISE",
    "E-SLA-NOT-STARTED",
    "E-SLA-UNKNOWN-POLICY",
    "E-CALENDAR-UNKNOWN",
    "E-ACTION-UNKNOWN",
    "E-DATA-NEVER-WRITTEN",
    "E-DATA-UNDECLARED",
    "W-DATA-MAYBE-UNSET",
    "E-JOIN-MISMATCH",
    "E-LOOP-BOUND",
    "E-HUMAN-TASK",
    "W-HUMAN-TIMEOUT",
    "E-CALL-UNKNOWN",
    "E-CALL-CYCLE",
    "E-CORRELATE",
})


def iter_semantic_errors(compiled: Any, library: Any = None) -> Iterator[SopError]:
    """Yield every semantic error and warning of one compiled SOP.

    Args:
        compiled: a ``CompiledSop`` (``.spec`` and ``.graph``); a bare ``SopSpec`` works too
            (the graph is then built from the spec).
        library: a ``Library`` (``.sops``, ``.levels``, ``.calendars``, ``.policies``) to
            resolve references against, or None to check the SOP on its own (reference
            checks that need the organisation are then skipped).

    Yields:
        ``CompileError`` values, in check order; callers sort them by position.
    """
    ctx = build_context(compiled, library)
    yield from iter_graph_errors(ctx)
    yield from iter_flow_errors(ctx)
    yield from iter_reference_errors(ctx)
    yield from iter_data_errors(ctx)
