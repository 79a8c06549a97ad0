"""Large SOPs stay readable: an overview of sections plus one page per section.

Graphviz's layout cost grows much faster than linearly with the number of nodes; past
``PAGE_SIZE`` nodes a single picture is neither fast nor readable. The flow is cut into
sections of consecutive steps (breadth-first from the start); the overview shows each
section as one box with what it contains and how sections connect, and each page shows one
section in full, with its lanes, and stubs naming the sections its edges lead to.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import replace

from engine.render.model import NEUTRAL_LANE, Diagram, DiagramEdge, DiagramNode

__all__ = ["PAGE_SIZE", "paginate"]

PAGE_SIZE = 150


def _order(d: Diagram) -> list[str]:
    succ: dict[str, list[str]] = {}
    for e in d.edges:
        succ.setdefault(e.source, []).append(e.target)
    starts = [n.id for n in d.nodes if n.kind == "start"] or [d.nodes[0].id]
    seen: dict[str, None] = {}
    queue = deque(starts)
    while queue:
        nid = queue.popleft()
        if nid in seen:
            continue
        seen[nid] = None
        queue.extend(succ.get(nid, ()))
    return list(seen) + [n.id for n in d.nodes if n.id not in seen]


def paginate(d: Diagram, size: int = PAGE_SIZE) -> tuple[Diagram, list[Diagram]]:
    """(overview, pages); ``d`` itself is the only page when it is small."""
    if len(d.nodes) <= size:
        return d, [d]
    order = _order(d)
    section = {nid: i // size for i, nid in enumerate(order)}
    count = max(section.values()) + 1
    by_id = {n.id: n for n in d.nodes}
    pages: list[Diagram] = []
    for k in range(count):
        members = [by_id[n] for n in order if section[n] == k]
        stubs: dict[str, DiagramNode] = {}
        edges: list[DiagramEdge] = []
        for e in d.edges:
            s_in, t_in = section.get(e.source) == k, section.get(e.target) == k
            if s_in and t_in:
                edges.append(e)
            elif s_in or t_in:
                other = section[e.target] if s_in else section[e.source]
                stub = f"__section_{other}"
                stubs.setdefault(stub, DiagramNode(stub, "call", f"section {other + 1}",
                                                   NEUTRAL_LANE, caption="continues there"))
                edges.append(replace(e, target=stub) if s_in else replace(e, source=stub))
        nodes = tuple(members) + tuple(stubs.values())
        lanes = tuple(lane for lane in d.lanes if any(n.lane == lane.id for n in nodes))
        pages.append(replace(d, nodes=nodes, edges=tuple(edges), lanes=lanes,
                             note=f"section {k + 1} of {count}"))
    overview_nodes = []
    for k, page in enumerate(pages):
        kinds = Counter(n.kind for n in page.nodes if not n.id.startswith("__section_"))
        first = next(n for n in page.nodes)
        summary = ", ".join(f"{v} {kind}" for kind, v in kinds.most_common(4))
        overview_nodes.append(DiagramNode(f"section_{k}", "call", f"section {k + 1}: from "
                                          f"'{first.label}'", NEUTRAL_LANE,
                                          caption=f"{sum(kinds.values())} steps: {summary}"))
    links: Counter[tuple[int, int]] = Counter(
        (section[e.source], section[e.target]) for e in d.edges
        if section.get(e.source) != section.get(e.target))
    overview_edges = tuple(DiagramEdge(f"section_{a}", f"section_{b}", "next", f"{n} link(s)")
                           for (a, b), n in sorted(links.items()))
    lanes = tuple(lane for lane in d.lanes if lane.id == NEUTRAL_LANE)
    overview = replace(d, nodes=tuple(overview_nodes), edges=overview_edges, lanes=lanes,
                       note=f"overview: {len(d.nodes)} steps in {count} sections "
                            f"(render with --pages for each section)")
    return overview, pages
