"""Graph-shape checks: reachability, dead ends, paths without an end, livelocks, ping-pong.

Each check is a generator over one :class:`CheckContext`; networkx does the graph work and
everything is linear in nodes + edges (SCCs, one reverse BFS), except the join and loop
checks, which cost one BFS per parallel node.

Rules (docs/sop-reference.md, "Error codes"):

- ``E-GRAPH-UNREACHABLE``: not reachable from ``start`` or a case-wide handler target.
- ``E-GRAPH-DEADEND``: a node other than ``end`` that declares no successor at all.
- ``E-GRAPH-LIVELOCK``: a cycle of automated nodes only (no ``wait``, ``human_task``,
  ``call`` or bounding ``loop`` on it): the engine would spin without ever waiting.
- ``E-GRAPH-NO-END``: a closed region (a cycle whose every exit leads back into it) from
  which no ``end`` can be reached; reported once per region, not per node.
- ``E-LEVEL-PINGPONG``: an ``escalate`` and a ``hand_back`` on one cycle that no ``loop``
  node bounds: the case could bounce between levels forever.
- ``E-JOIN-MISMATCH`` and ``E-LOOP-BOUND``: see the functions.
"""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx

from engine.errors import SopError
from engine.sop.checks_base import CheckContext, cyclic_parts, error
from engine.sop.model import NodeType

__all__ = ["iter_graph_errors"]

#: nodes at which a case waits for the outside world or which bound a cycle
_BREAKS_CYCLE = frozenset(
    {NodeType.HUMAN_TASK, NodeType.WAIT, NodeType.CALL, NodeType.LOOP, NodeType.END}
)


def _path(node_id: str) -> str:
    return f"$.nodes.{node_id}"


def _first(ctx: CheckContext, ids: set[str] | frozenset[str]) -> str:
    """The node of ``ids`` that comes first in the file (stable error position)."""
    return min(ids, key=lambda nid: (ctx.node(nid).span.line, ctx.node(nid).span.column, nid))


def _cycle_text(graph: nx.DiGraph, start: str) -> str:
    """``a -> b -> a`` for one cycle through ``start`` in ``graph``."""
    try:
        edges = nx.find_cycle(graph, source=start)
    except nx.NetworkXNoCycle:
        return start
    names = [u for u, _ in edges] + [edges[-1][1]]
    return " -> ".join(names)


def _is_cyclic(graph: nx.DiGraph, component: set[str]) -> bool:
    if len(component) > 1:
        return True
    (only,) = component
    return graph.has_edge(only, only)


def iter_unreachable(ctx: CheckContext) -> Iterator[SopError]:
    for node in ctx.spec.nodes.values():
        if node.id not in ctx.reachable:
            yield error(
                "E-GRAPH-UNREACHABLE",
                f"node {node.id!r} cannot be reached from 'start' or any on_event handler",
                node.span,
                _path(node.id),
                "connect it from another node's next/branch/outcome, or delete it",
            )


def iter_deadends(ctx: CheckContext) -> Iterator[SopError]:
    for node in ctx.spec.nodes.values():
        if node.type is NodeType.END or node.successors():
            continue
        if node.type is NodeType.HUMAN_TASK:
            continue  # reported as E-HUMAN-TASK (no outcomes): one problem, one error
        yield error(
            "E-GRAPH-DEADEND",
            f"{node.type.value} node {node.id!r} has no successor: cases would stop here "
            "without ending",
            node.span,
            _path(node.id),
            "add 'next' (or the node type's routing fields), or make it an 'end' node",
        )


def _automated_cycles(ctx: CheckContext) -> list[set[str]]:
    def spins(nid: str) -> bool:
        return nid in ctx.reachable and ctx.node(nid).type not in _BREAKS_CYCLE

    return [part for component in ctx.cycles for part in cyclic_parts(ctx, component, spins)]


def iter_livelocks(ctx: CheckContext) -> Iterator[SopError]:
    for component in _automated_cycles(ctx):
        first = _first(ctx, component)
        cycle = _cycle_text(ctx.graph.subgraph(component), first)
        yield error(
            "E-GRAPH-LIVELOCK",
            f"cycle {cycle} consists only of automated nodes: it would repeat without "
            "waiting and without a bound",
            ctx.node(first).span,
            _path(first),
            "put a 'loop' node (with max) on the cycle, or a wait/human_task with a timeout",
        )


def _can_finish(ctx: CheckContext) -> set[str]:
    """Nodes from which some end node is reachable (one reverse BFS from all ends)."""
    seen = {n.id for n in ctx.of_type(NodeType.END)}
    frontier = list(seen)
    pred = ctx.pred
    while frontier:
        nid = frontier.pop()
        for before in pred[nid]:
            if before not in seen:
                seen.add(before)
                frontier.append(before)
    return seen


def iter_no_end(ctx: CheckContext) -> Iterator[SopError]:
    """Report each closed region (bottom SCC of the nodes that cannot finish) once."""
    finishing = _can_finish(ctx)
    stuck = [nid for nid in ctx.reachable if nid not in finishing]
    if not stuck:
        return
    sub = ctx.graph.subgraph(stuck)
    spinning = {frozenset(c) for c in _automated_cycles(ctx)}
    condensed = nx.condensation(sub)
    for scc_id in condensed.nodes:
        if condensed.out_degree(scc_id):
            continue
        component = set(condensed.nodes[scc_id]["members"])
        if not _is_cyclic(sub, component):
            continue  # a node without successors: E-GRAPH-DEADEND or an unknown reference
        if frozenset(component) in spinning:
            continue  # already E-GRAPH-LIVELOCK
        first = _first(ctx, component)
        names = ", ".join(sorted(component))
        yield error(
            "E-GRAPH-NO-END",
            f"no end node can be reached from {names}: every path out of "
            f"{_cycle_text(sub.subgraph(component), first)} leads back into it",
            ctx.node(first).span,
            _path(first),
            "give the region an exit to an 'end' node (e.g. a timeout or an outcome)",
        )


def iter_pingpong(ctx: CheckContext) -> Iterator[SopError]:
    def unbounded(nid: str) -> bool:
        return nid in ctx.reachable and ctx.node(nid).type is not NodeType.LOOP

    for whole in ctx.cycles:
        kinds = {ctx.node(n).type for n in whole}
        if NodeType.ESCALATE not in kinds or NodeType.HAND_BACK not in kinds:
            continue
        for component in cyclic_parts(ctx, whole, unbounded):
            escalates = {n for n in component if ctx.node(n).type is NodeType.ESCALATE}
            hand_backs = {n for n in component if ctx.node(n).type is NodeType.HAND_BACK}
            if not escalates or not hand_backs:
                continue
            sub = ctx.graph.subgraph(component)
            esc, back = _first(ctx, escalates), _first(ctx, hand_backs)
            there = nx.shortest_path(sub, esc, back)
            again = nx.shortest_path(sub, back, esc)
            cycle = " -> ".join(there + again[1:])
            yield error(
                "E-LEVEL-PINGPONG",
                f"the case can bounce between levels without bound: {cycle}",
                ctx.node(esc).span,
                _path(esc),
                "route the repetition through a 'loop' node with max, or end after the "
                "hand-back",
            )


def iter_join_errors(ctx: CheckContext) -> Iterator[SopError]:
    """A parallel's ``join`` must be a join node reachable from every branch; every join
    must belong to a parallel."""
    referenced: set[str] = set()
    for node in ctx.of_type(NodeType.PARALLEL):
        if node.join is None:
            continue
        referenced.add(node.join)
        target = ctx.spec.nodes.get(node.join)
        if target is None:
            continue  # unknown reference: reported by the compiler
        if target.type is not NodeType.JOIN:
            yield error(
                "E-JOIN-MISMATCH",
                f"parallel {node.id!r} names {node.join!r} as its join, but that is a "
                f"{target.type.value} node",
                node.span,
                f"{_path(node.id)}.join",
                "point 'join' at a node of type join",
            )
            continue
        for branch in node.branches:
            if branch.next not in ctx.spec.nodes:
                continue
            if branch.next != node.join and not nx.has_path(ctx.graph, branch.next, node.join):
                yield error(
                    "E-JOIN-MISMATCH",
                    f"branch to {branch.next!r} of parallel {node.id!r} never reaches its "
                    f"join {node.join!r}",
                    branch.span,
                    f"{_path(node.id)}.branches",
                    "lead every branch to the join, or drop 'join' so the branches end on their own",
                )
    for join in ctx.of_type(NodeType.JOIN):
        if join.id not in referenced:
            yield error(
                "E-JOIN-MISMATCH",
                f"join {join.id!r} is not the join of any parallel node",
                join.span,
                _path(join.id),
                "set 'join' on the parallel node it synchronises, or use a plain node",
            )


def iter_loop_errors(ctx: CheckContext) -> Iterator[SopError]:
    """A loop needs ``max`` >= 1 and a body that leads back to the loop node."""
    for loop in ctx.of_type(NodeType.LOOP):
        if loop.max is None or loop.max < 1:
            yield error(
                "E-LOOP-BOUND",
                f"loop {loop.id!r} has max {loop.max!r}: it must allow at least 1 round",
                loop.span,
                f"{_path(loop.id)}.max",
                "set max to the number of rounds, e.g. max: 3",
            )
        if loop.body and loop.body in ctx.spec.nodes and not nx.has_path(
            ctx.graph, loop.body, loop.id
        ):
            yield error(
                "E-LOOP-BOUND",
                f"the body {loop.body!r} of loop {loop.id!r} never leads back to the loop",
                loop.span,
                f"{_path(loop.id)}.body",
                f"end the body with 'next: {loop.id}' so the loop can count the rounds",
            )


def iter_graph_errors(ctx: CheckContext) -> Iterator[SopError]:
    """Every graph-shape error of one SOP."""
    yield from iter_unreachable(ctx)
    yield from iter_deadends(ctx)
    yield from iter_livelocks(ctx)
    yield from iter_no_end(ctx)
    yield from iter_pingpong(ctx)
    yield from iter_join_errors(ctx)
    yield from iter_loop_errors(ctx)
