"""Graphviz rendering of a Diagram: swimlanes per competence level, shapes per node type.

The only module that talks to Graphviz: it writes DOT and runs the real ``dot`` binary (as a
subprocess with a time limit, so a huge SOP cannot hang the CLI).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from engine.errors import CareflowError
from engine.render.model import Diagram, DiagramEdge, DiagramNode

__all__ = ["FORMATS", "NODE_STYLES", "RenderError", "layout_json", "render", "to_dot"]

FORMATS = ("svg", "png", "pdf", "dot")

#: per node type: (shape, fill colour, extra attributes, legend text)
NODE_STYLES: dict[str, tuple[str, str, dict[str, str], str]] = {
    "start": ("circle", "#c8e6c9", {"width": "0.5", "fixedsize": "false"}, "start"),
    "end": ("box", "#cfd8dc", {"style": "rounded,filled,bold", "penwidth": "3"}, "end (outcome)"),
    "action": ("box", "#bbdefb", {"style": "rounded,filled"}, "automated action"),
    "set": ("box", "#e3f2fd", {"style": "rounded,filled,dashed"}, "set case data"),
    "human_task": ("box", "#fff59d", {"style": "rounded,filled,bold", "penwidth": "2"},
                   "human task"),
    "decision": ("diamond", "#ffe0b2", {}, "decision (first match)"),
    "parallel": ("diamond", "#e0e0e0", {"label_prefix": "+ "}, "parallel split"),
    "join": ("diamond", "#e0e0e0", {"label_prefix": "+ "}, "join (synchronise)"),
    "wait": ("hexagon", "#e1bee7", {}, "wait for event"),
    "loop": ("invhouse", "#b2ebf2", {}, "bounded loop"),
    "escalate": ("cds", "#ffccbc", {}, "escalate to deeper level"),
    "hand_back": ("larrow", "#c5e1a5", {}, "hand back (with knowledge)"),
    "sla_start": ("octagon", "#f8bbd0", {}, "SLA clock start"),
    "sla_pause": ("octagon", "#fce4ec", {"style": "filled,dashed"}, "SLA clock pause"),
    "sla_resume": ("octagon", "#f8bbd0", {"style": "filled,dashed"}, "SLA clock resume"),
    "sla_stop": ("doubleoctagon", "#f8bbd0", {}, "SLA clock stop"),
    "sla_check": ("diamond", "#f48fb1", {}, "SLA checkpoint"),
    "call": ("box", "#eeeeee", {"style": "filled,bold", "peripheries": "2"}, "sub-SOP call"),
    "handlers": ("note", "#fafafa", {}, "case-wide event handlers"),
}
_EDGE_STYLES: dict[str, dict[str, str]] = {
    "error": {"color": "#c62828", "style": "dashed", "fontcolor": "#c62828"},
    "timeout": {"color": "#ef6c00", "style": "dashed", "fontcolor": "#ef6c00"},
    "handler": {"color": "#6a1b9a", "style": "dotted", "fontcolor": "#6a1b9a"},
    "otherwise": {"color": "#616161", "style": "bold"},
    "loop_body": {"color": "#00838f"},
    "sla_breached": {"color": "#c62828", "fontcolor": "#c62828"},
    "sla_warning": {"color": "#ef6c00", "fontcolor": "#ef6c00"},
}
_LANE_FILL = ("#f5f5f5", "#f1f8e9", "#fffde7", "#fff3e0", "#fce4ec", "#ede7f6")
_HIGHLIGHT = {"added": "#2e7d32", "changed": "#ef6c00", "removed": "#c62828"}


class RenderError(CareflowError):
    """A diagram could not be rendered (unknown format, Graphviz missing or failing)."""


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _attrs(values: dict[str, str]) -> str:
    return ", ".join(f'{k}="{_esc(v)}"' for k, v in values.items())


def _node_line(node: DiagramNode, compact: bool) -> str:
    shape, fill, extra, _ = NODE_STYLES.get(node.kind, ("box", "#ffffff", {}, node.kind))
    extra = dict(extra)
    prefix = extra.pop("label_prefix", "")
    label = prefix + node.label
    if node.caption and not compact:
        label += f"\n({node.caption})"
    if node.stats:
        label += "\n" + " · ".join(f"{k} {v}" for k, v in node.stats.items())
    attrs = {"shape": shape, "fillcolor": fill, "style": extra.pop("style", "filled"),
             "label": label, "tooltip": f"{node.kind}: {node.id}", **extra}
    if node.kind == "start":  # a small circle; the title goes beside it
        attrs["label"] = "start"
        if node.label != "start":
            attrs["xlabel"] = node.label
    if node.highlight:
        attrs.update(color=_HIGHLIGHT[node.highlight], penwidth="4")
        if node.highlight == "removed":
            attrs["style"] = attrs["style"] + ",dashed"
    return f'    "{_esc(node.id)}" [{_attrs(attrs)}];'


def _edge_line(edge: DiagramEdge) -> str:
    attrs = dict(_EDGE_STYLES.get(edge.kind, {}))
    label = edge.label if len(edge.label) <= 48 else edge.label[:45] + "..."
    if edge.stats:
        label = (label + "\n" if label else "") + " · ".join(f"{k} {v}" for k, v in edge.stats.items())
        count = edge.stats.get("n")
        if count and count.isdigit():
            attrs["penwidth"] = str(min(8.0, 1.0 + int(count) ** 0.5 / 3))
    if label:
        attrs["label"] = label
    if edge.highlight:
        attrs.update(color=_HIGHLIGHT[edge.highlight], penwidth="3")
    return f'  "{_esc(edge.source)}" -> "{_esc(edge.target)}" [{_attrs(attrs)}];'


def _legend(kinds: Iterable[str]) -> list[str]:
    lines = ['  subgraph cluster_legend {', '    label="Legend"; fontsize=11; style="rounded";',
             '    color="#9e9e9e";']
    previous = None
    for kind in kinds:
        shape, fill, extra, text = NODE_STYLES.get(kind, ("box", "#ffffff", {}, kind))
        style = extra.get("style", "filled")
        name = f"__legend_{kind}"
        lines.append(f'    "{name}" [shape="{shape}", style="{style}", fillcolor="{fill}", '
                     f'label="{_esc(text)}", fontsize=9];')
        if previous:
            lines.append(f'    "{previous}" -> "{name}" [style=invis];')
        previous = name
    lines.append("  }")
    return lines


def to_dot(diagram: Diagram) -> str:
    """The DOT source: left-to-right flow, one cluster (swimlane) per competence level."""
    compact = len(diagram.nodes) > 300
    head = [
        f'digraph "{_esc(diagram.sop_id)}" {{',
        '  graph [rankdir=LR, newrank=true, compound=true, fontname="Helvetica", fontsize=12,'
        ' nodesep=0.35, ranksep=0.5, labelloc=b, labeljust=l'
        + (", nslimit=2, mclimit=0.5, searchsize=20" if compact else "") + "];",
        '  node [fontname="Helvetica", fontsize=10, margin="0.12,0.06"];',
        '  edge [fontname="Helvetica", fontsize=8, color="#455a64", arrowsize=0.7];',
        f'  label="{_esc(_footer(diagram))}";',
    ]
    body: list[str] = []
    for i, lane in enumerate(diagram.lanes):
        body.append(f'  subgraph "cluster_lane_{_esc(lane.id)}" {{')
        body.append(f'    label="{_esc(lane.label)}"; style="filled"; color="#bdbdbd"; '
                    f'fillcolor="{_LANE_FILL[i % len(_LANE_FILL)]}"; fontsize=12; labeljust=l;')
        body += [_node_line(n, compact) for n in diagram.lane_nodes(lane.id)]
        body.append("  }")
    body += [_edge_line(e) for e in diagram.edges]
    kinds = list(dict.fromkeys(n.kind for n in diagram.nodes))
    return "\n".join(head + body + _legend(kinds) + ["}"]) + "\n"


def _footer(d: Diagram) -> str:
    parts = [f"SOP {d.sop_id}: {d.title}", f"version {d.version}",
             f"sha256 {d.content_hash[:16]}"]
    if d.owner:
        parts.append(f"owner {d.owner}")
    if d.note:
        parts.append(d.note)
    return "  |  ".join(parts)


def render(diagram: Diagram, out: Path, fmt: str | None = None, *, timeout_s: float = 120.0
           ) -> Path:
    """Write the diagram to ``out`` as svg, png, pdf or dot (format from the suffix by default).

    Raises:
        RenderError: unknown format, the Graphviz ``dot`` binary is missing, or it failed.
    """
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise RenderError(f"{out}: unknown diagram format {fmt!r}; use one of {', '.join(FORMATS)}")
    source = to_dot(diagram)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dot":
        out.write_text(source, encoding="utf-8")
        return out
    dot = shutil.which("dot")
    if dot is None:
        raise RenderError("the Graphviz 'dot' binary is not installed "
                          "(Debian: apt-get install graphviz; scripts/bootstrap.sh does it as root)")
    try:
        proc = subprocess.run([dot, f"-T{fmt}"], input=source.encode("utf-8"),
                              capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"Graphviz did not render {out} within {timeout_s:.0f} s") from exc
    if proc.returncode != 0:
        raise RenderError(f"Graphviz failed to render {out}: "
                          f"{proc.stderr.decode('utf-8', 'replace').strip()[:500]}")
    out.write_bytes(proc.stdout)
    return out


def layout_json(diagram: Diagram, *, timeout_s: float = 120.0) -> dict[str, object]:
    """Graphviz's layout (``dot -Tjson``): positions in points, for BPMN diagram interchange."""
    import json

    dot = shutil.which("dot")
    if dot is None:
        raise RenderError("the Graphviz 'dot' binary is not installed")
    proc = subprocess.run([dot, "-Tjson"], input=to_dot(diagram).encode("utf-8"),
                          capture_output=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise RenderError(f"Graphviz layout failed: {proc.stderr.decode('utf-8', 'replace')[:500]}")
    return json.loads(proc.stdout)
