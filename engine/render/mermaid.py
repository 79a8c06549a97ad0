"""Mermaid flowchart export of a Diagram, for pasting into Markdown documentation."""

from __future__ import annotations

import re

from engine.render.model import Diagram, DiagramNode

__all__ = ["to_mermaid"]

_SHAPES = {
    "start": ("((", "))"), "end": ("([", "])"), "decision": ("{", "}"), "sla_check": ("{", "}"),
    "parallel": ("{", "}"), "join": ("{", "}"), "wait": ("{{", "}}"), "loop": ("[/", "\\]"),
    "escalate": (">", "]"), "hand_back": (">", "]"), "call": ("[[", "]]"), "handlers": (">", "]"),
    "sla_start": ("[(", ")]"), "sla_pause": ("[(", ")]"), "sla_resume": ("[(", ")]"),
    "sla_stop": ("[(", ")]"),
}


def _id(node_id: str) -> str:
    return "n_" + re.sub(r"\W", "_", node_id)


def _text(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", "<br/>")


def _node(n: DiagramNode) -> str:
    left, right = _SHAPES.get(n.kind, ("(", ")"))
    label = n.label + (f"<br/><small>{n.caption}</small>" if n.caption else "")
    return f'    {_id(n.id)}{left}"{_text(label)}"{right}'


def to_mermaid(d: Diagram) -> str:
    """A ``flowchart LR`` with one subgraph per competence level."""
    lines = ["flowchart LR", f"  %% SOP {d.sop_id} version {d.version} sha256 {d.content_hash[:16]}"]
    for lane in d.lanes:
        lines.append(f'  subgraph {_id("lane_" + lane.id)}["{_text(lane.label)}"]')
        lines += [_node(n) for n in d.lane_nodes(lane.id)]
        lines.append("  end")
    for e in d.edges:
        arrow = "-.->" if e.kind in ("error", "timeout", "handler") else "-->"
        label = f'|"{_text(e.label[:60])}"|' if e.label else ""
        lines.append(f"  {_id(e.source)} {arrow}{label} {_id(e.target)}")
    for kind, colour in (("human_task", "#fff59d"), ("action", "#bbdefb"), ("end", "#cfd8dc"),
                         ("sla_start", "#f8bbd0"), ("sla_stop", "#f8bbd0"), ("sla_check", "#f48fb1")):
        members = [_id(n.id) for n in d.nodes if n.kind == kind]
        if members:
            lines.append(f"  classDef {kind} fill:{colour}")
            lines.append(f"  class {','.join(members)} {kind}")
    return "\n".join(lines) + "\n"
