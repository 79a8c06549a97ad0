"""Property: on any graph the semantic checks finish, never raise, and only yield
CompileErrors that carry a code, a span and a JSON path (random SOPs built from the model)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import CompileError, SourceSpan
from engine.sop.checks import CODES, iter_semantic_errors
from engine.sop.model import (
    BranchSpec,
    EventHandlerSpec,
    NodeSpec,
    NodeType,
    OutcomeSpec,
    SopSpec,
    frozen_map,
)

_TYPES = [
    NodeType.SET, NodeType.DECISION, NodeType.PARALLEL, NodeType.JOIN, NodeType.HUMAN_TASK,
    NodeType.ESCALATE, NodeType.HAND_BACK, NodeType.WAIT, NodeType.LOOP, NodeType.SLA_START,
    NodeType.SLA_PAUSE, NodeType.SLA_STOP, NodeType.SLA_CHECK, NodeType.CALL, NodeType.END,
]
_LEVELS = ["e", "L1", "L2", "specialist", None]


def _span(i: int) -> SourceSpan:
    return SourceSpan("fuzz.yaml", i + 1, 3)


@st.composite
def sops(draw: st.DrawFn) -> SopSpec:
    size = draw(st.integers(min_value=1, max_value=14))
    ids = [f"n{i}" for i in range(size)]
    targets = st.sampled_from(ids)
    nodes = {"start": NodeSpec("start", NodeType.START, _span(0), next=draw(targets))}
    for i, nid in enumerate(ids, start=1):
        kind = draw(st.sampled_from(_TYPES))
        level = draw(st.sampled_from(_LEVELS))
        nxt = draw(targets)
        other = draw(targets)
        span = _span(i)
        common: dict[str, object] = {"level": level}
        if kind is NodeType.END:
            node = NodeSpec(nid, kind, span, **common)
        elif kind in (NodeType.DECISION, NodeType.PARALLEL):
            node = NodeSpec(nid, kind, span, branches=(BranchSpec(nxt, span),),
                            otherwise=other if draw(st.booleans()) else None,
                            join=other if kind is NodeType.PARALLEL else None, **common)
        elif kind is NodeType.HUMAN_TASK:
            outcomes = (OutcomeSpec("done", nxt, span),) if draw(st.booleans()) else ()
            node = NodeSpec(nid, kind, span, outcomes=outcomes, **common)
        elif kind is NodeType.LOOP:
            node = NodeSpec(nid, kind, span, max=draw(st.integers(0, 3)), body=nxt, exit=other,
                            counter="count" if draw(st.booleans()) else None, **common)
        elif kind is NodeType.SLA_CHECK:
            node = NodeSpec(nid, kind, span, clock=draw(st.sampled_from("ab")), ok=nxt,
                            breached=other, **common)
        elif kind in (NodeType.SLA_START, NodeType.SLA_PAUSE, NodeType.SLA_STOP):
            node = NodeSpec(nid, kind, span, clock=draw(st.sampled_from("ab")), next=nxt,
                            **common)
        elif kind in (NodeType.ESCALATE, NodeType.HAND_BACK):
            node = NodeSpec(nid, kind, span, to=draw(st.sampled_from(_LEVELS[:4])), next=nxt,
                            **common)
        elif kind is NodeType.CALL:
            node = NodeSpec(nid, kind, span, sop=draw(st.sampled_from(["fuzz", "other"])),
                            next=nxt, **common)
        else:
            node = NodeSpec(nid, kind, span, next=nxt if draw(st.booleans()) else None, **common)
        nodes[nid] = node
    handlers = ()
    if draw(st.booleans()):
        handlers = (EventHandlerSpec("withdrawn", _span(99), interrupt=True, next=draw(targets)),)
    return SopSpec("fuzz", "1.0.0", "Fuzz", _span(0), frozen_map(nodes), on_event=handlers)


@settings(max_examples=150, deadline=None)
@given(sops())
def test_checks_never_raise_and_always_say_where(spec: SopSpec) -> None:
    for err in iter_semantic_errors(spec):
        assert isinstance(err, CompileError)
        assert err.code in CODES
        assert err.span is not None
        assert err.json_path.startswith("$.")
        assert err.severity in ("error", "warning")
