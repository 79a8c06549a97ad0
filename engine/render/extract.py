"""Turn a CompiledSop (and the organisation's levels) into a Diagram."""

from __future__ import annotations

from typing import Any

from engine.render.model import NEUTRAL_LANE, Diagram, DiagramEdge, DiagramNode, Lane
from engine.sop.model import LevelsDoc, NodeSpec, NodeType

__all__ = ["caption_of", "diagram_of", "label_of"]

_DEFAULT_LEVELS = (("e", "e-level (self-service)", 0), ("L1", "Level 1", 1),
                   ("L2", "Level 2", 2), ("specialist", "Specialists", 3))


def label_of(node: NodeSpec) -> str:
    """The box text: the author's title, else a readable form of the node id."""
    if node.title:
        return node.title
    if node.type is NodeType.END:
        return f"end: {node.outcome or node.id}"
    return node.id.replace("_", " ")


def caption_of(node: NodeSpec) -> str:
    """A second line saying what kind of step it is, in the auditor's words."""
    t = node.type
    if t is NodeType.ACTION:
        return f"automated: {node.action}"
    if t is NodeType.HUMAN_TASK:
        who = node.role or "agent"
        due = f", within {node.timeout.after.text}" if node.timeout else ""
        return f"{node.level}: {who}{due}"
    if t in (NodeType.SLA_START, NodeType.SLA_PAUSE, NodeType.SLA_RESUME, NodeType.SLA_STOP):
        return f"SLA clock {node.clock}: {t.value.removeprefix('sla_')}"
    if t is NodeType.SLA_CHECK:
        return f"SLA check {node.clock}"
    if t is NodeType.ESCALATE:
        return f"escalate to {node.to}"
    if t is NodeType.HAND_BACK:
        return f"hand back to {node.to}" + (" + knowledge" if node.knowledge != "none" else "")
    if t is NodeType.WAIT:
        events = ", ".join(w.event for w in node.on)
        return f"wait for {events}" + (f" (max {node.timeout.after.text})" if node.timeout else "")
    if t is NodeType.LOOP:
        return f"at most {node.max} times"
    if t is NodeType.CALL:
        return f"sub-SOP {node.sop}"
    if t is NodeType.END:
        return f"{node.status}" + (" (ends the case)" if node.terminate else "")
    return ""


def _lane_of(node: NodeSpec, lanes: dict[str, Lane]) -> str:
    level = node.level
    if node.type in (NodeType.ESCALATE, NodeType.HAND_BACK) and node.to:
        level = node.to
    return level if level in lanes else NEUTRAL_LANE


def _lanes(levels: LevelsDoc | None) -> dict[str, Lane]:
    found = ([(lv.id, lv.name, lv.rank) for lv in levels.levels] if levels
             else list(_DEFAULT_LEVELS))
    out = {NEUTRAL_LANE: Lane(NEUTRAL_LANE, "Process flow", -1)}
    for lid, name, rank in sorted(found, key=lambda x: x[2]):
        out[lid] = Lane(lid, name, rank)
    return out


def diagram_of(compiled: Any, levels: LevelsDoc | None = None) -> Diagram:
    """The diagram of a compiled SOP; lanes are the organisation's competence levels."""
    spec = compiled.spec
    lanes = _lanes(levels)
    nodes = tuple(DiagramNode(id=n.id, kind=n.type.value, label=label_of(n), lane=_lane_of(n, lanes),
                              caption=caption_of(n)) for n in spec.nodes.values())
    edges = []
    for src, dst, data in compiled.graph.edges(data=True):
        if src not in spec.nodes or dst not in spec.nodes:
            continue
        labels = [lb for lb in data.get("labels", [data.get("label", "")]) if lb]
        edges.append(DiagramEdge(src, dst, data.get("kind", "next"), " / ".join(labels)))
    for h in spec.on_event:
        if h.next:
            edges.append(DiagramEdge(_HANDLER, h.next, "handler",
                                     f"on {h.event}" + (" (interrupts)" if h.interrupt else "")))
    if spec.on_event:
        nodes += (DiagramNode(_HANDLER, "handlers", "any time", NEUTRAL_LANE,
                              caption=", ".join(h.event for h in spec.on_event)),)
    used = {n.lane for n in nodes}
    return Diagram(sop_id=spec.id, title=spec.title, version=str(spec.version),
                   content_hash=compiled.hash, owner=spec.owner,
                   lanes=tuple(lane for lane in sorted(lanes.values(), key=lambda x: x.rank)
                               if lane.id in used), nodes=nodes, edges=tuple(edges))


_HANDLER = "__handlers__"
