"""Dataflow checks over the graph: SLA clocks started before use, level moves in the right way.

Both are classic iterative dataflow analyses on the node graph, run to a fixpoint with a
worklist (each node is revisited only when a predecessor's result changes, so the cost is
close to linear for SOP-shaped graphs).

- ``E-SLA-NOT-STARTED`` (must-analysis): a clock is *started* at a node when every path from
  ``start`` (and from every case-wide handler target) to it passes an ``sla_start`` of that
  clock. ``sla_pause``, ``sla_resume``, ``sla_stop`` and ``sla_check`` of a clock that is not
  started on every path are errors. A ``join`` of a full parallel split (no ``when`` on the
  branches) unites its branches: all of them have run when it fires.
- ``E-LEVEL-DIRECTION`` (may-analysis): the competence level a case may be at is set by
  ``human_task.level``, ``escalate.to`` and ``hand_back.to`` (and ``start.level``). An
  ``escalate`` must move to a deeper rank than every level the case may be at, a
  ``hand_back`` to a shallower one. Ranks come from the library's levels, or the default
  ladder e=0, L1=1, L2=2, L3/specialist=3 when none is loaded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping

import networkx as nx

from engine.errors import SopError
from engine.sop.checks_base import CheckContext, error, library_levels
from engine.sop.model import NodeSpec, NodeType

__all__ = ["DEFAULT_RANKS", "iter_flow_errors", "must_fixpoint"]

#: ranks used when no organisation levels are loaded
DEFAULT_RANKS: Mapping[str, int] = {"e": 0, "L1": 1, "L2": 2, "L3": 3, "specialist": 3}

_USES_CLOCK = (NodeType.SLA_PAUSE, NodeType.SLA_RESUME, NodeType.SLA_STOP, NodeType.SLA_CHECK)


def _clock_of(node: NodeSpec) -> str | None:
    return node.clock or node.metric


def _worklist_order(ctx: CheckContext) -> list[str]:
    """Reachable nodes in BFS order from the roots (a good first visiting order)."""
    seen: dict[str, None] = dict.fromkeys(ctx.roots)
    queue = deque(ctx.roots)
    while queue:
        nid = queue.popleft()
        for succ in ctx.succ[nid]:
            if succ not in seen:
                seen[succ] = None
                queue.append(succ)
    return list(seen)


def _full_split_joins(ctx: CheckContext) -> frozenset[str]:
    """Joins of parallels whose branches are all unconditional (every branch runs)."""
    return frozenset(
        p.join
        for p in ctx.of_type(NodeType.PARALLEL)
        if p.join and all(b.when is None for b in p.branches)
    )


def must_fixpoint(
    ctx: CheckContext, everything: int, seed: int, gen: Callable[[str, str], int]
) -> dict[str, int]:
    """Must-analysis over bit sets: what holds on **every** path into each reachable node.

    ``IN[root] = seed``; ``IN[n] = AND over predecessors p of (IN[p] | gen(p, n))`` (an OR at
    the join of a full parallel split, whose branches all run). Starts optimistic
    (``everything``) and only ever removes bits, so it terminates; the worklist revisits a
    node only when a predecessor changed.
    """
    roots = set(ctx.roots)
    unite = _full_split_joins(ctx)
    order = _worklist_order(ctx)
    in_ = {nid: (seed if nid in roots else everything) for nid in order}
    queue, queued = deque(order), set(order)
    visited: set[str] = set()
    pred, succ = ctx.pred, ctx.succ
    while queue:
        nid = queue.popleft()
        queued.discard(nid)
        if nid not in roots:
            values = [in_[p] | gen(p, nid) for p in pred[nid] if p in in_]
            value = 0 if nid in unite else everything
            for v in values:
                value = value | v if nid in unite else value & v
            if nid in visited and value == in_[nid]:
                continue
            in_[nid] = value
        elif nid in visited:
            continue
        visited.add(nid)
        for after in succ[nid]:
            if after in in_ and after not in queued:
                queue.append(after)
                queued.add(after)
    return in_


def _started_clocks(ctx: CheckContext, clocks: list[str]) -> dict[str, int]:
    """IN set (bitmask over ``clocks``) of every reachable node: clocks started on all paths."""
    bit = {name: 1 << i for i, name in enumerate(clocks)}
    gen = {
        n.id: bit[_clock_of(n) or ""]
        for n in ctx.of_type(NodeType.SLA_START)
        if (_clock_of(n) or "") in bit
    }
    return must_fixpoint(ctx, (1 << len(clocks)) - 1, 0, lambda p, _: gen.get(p, 0))


def _path_without(ctx: CheckContext, target: str, avoid: set[str]) -> list[str] | None:
    """A path from a root to ``target`` that avoids the nodes in ``avoid``."""
    allowed = ctx.graph.subgraph(n for n in ctx.reachable if n not in avoid or n == target)
    for root in ctx.roots:
        if root in allowed and nx.has_path(allowed, root, target):
            return list(nx.shortest_path(allowed, root, target))
    return None


def iter_sla_not_started(ctx: CheckContext) -> Iterator[SopError]:
    users = [n for n in ctx.of_type(*_USES_CLOCK) if n.id in ctx.reachable and _clock_of(n)]
    if not users:
        return
    clocks = sorted({_clock_of(n) or "" for n in ctx.of_type(*_USES_CLOCK, NodeType.SLA_START)})
    bit = {name: 1 << i for i, name in enumerate(clocks)}
    started = _started_clocks(ctx, clocks)
    for node in users:
        clock = _clock_of(node) or ""
        if started.get(node.id, 0) & bit[clock]:
            continue
        starters = {
            n.id for n in ctx.of_type(NodeType.SLA_START) if _clock_of(n) == clock
        }
        path = _path_without(ctx, node.id, starters)
        route = f" (path: {' -> '.join(path)})" if path else ""
        never = "" if starters else "; no sla_start of it exists"
        yield error(
            "E-SLA-NOT-STARTED",
            f"{node.type.value} {node.id!r} uses clock {clock!r}, which is not started on "
            f"every path to it{route}{never}",
            node.span,
            f"$.nodes.{node.id}.clock",
            f"put an sla_start with clock: {clock} on every path before {node.id!r}",
        )


def _level_sets(ctx: CheckContext) -> dict[str, frozenset[str]]:
    """Levels the case may be at when it enters each reachable node (may-analysis)."""

    def after(node: NodeSpec, before: frozenset[str]) -> frozenset[str]:
        if node.type in (NodeType.ESCALATE, NodeType.HAND_BACK) and node.to:
            return frozenset({node.to})
        if node.type is NodeType.HUMAN_TASK and node.level:
            return frozenset({node.level})
        return before

    start_levels = {
        n.id: frozenset({n.level}) if n.level else frozenset()
        for n in ctx.of_type(NodeType.START)
    }
    return _may_fixpoint(ctx, after, start_levels)


def _may_fixpoint(
    ctx: CheckContext,
    after: Callable[[NodeSpec, frozenset[str]], frozenset[str]],
    seeds: Mapping[str, frozenset[str]],
) -> dict[str, frozenset[str]]:
    order = _worklist_order(ctx)
    in_: dict[str, frozenset[str]] = {nid: seeds.get(nid, frozenset()) for nid in order}
    out: dict[str, frozenset[str]] = {}
    queue, queued = deque(order), set(order)
    while queue:
        nid = queue.popleft()
        queued.discard(nid)
        new_out = after(ctx.node(nid), in_[nid])
        if out.get(nid) == new_out:
            continue
        out[nid] = new_out
        for succ in ctx.succ[nid]:
            if succ in in_ and not new_out <= in_[succ]:
                in_[succ] = in_[succ] | new_out
                if succ not in queued:
                    queue.append(succ)
                    queued.add(succ)
    return in_


def iter_level_direction(ctx: CheckContext) -> Iterator[SopError]:
    ranks = library_levels(ctx.library) or DEFAULT_RANKS
    movers = [
        n
        for n in ctx.of_type(NodeType.ESCALATE, NodeType.HAND_BACK)
        if n.id in ctx.reachable and n.to in ranks
    ]
    if not movers:
        return
    levels = _level_sets(ctx)
    for node in movers:
        before = frozenset({node.level}) if node.level else levels.get(node.id, frozenset())
        target = ranks[node.to or ""]
        if node.type is NodeType.ESCALATE:
            wrong = sorted(lv for lv in before if lv in ranks and ranks[lv] >= target)
            want = "deeper"
        else:
            wrong = sorted(lv for lv in before if lv in ranks and ranks[lv] <= target)
            want = "shallower"
        if wrong:
            yield error(
                "E-LEVEL-DIRECTION",
                f"{node.type.value} {node.id!r} goes to {node.to!r} from "
                f"{', '.join(map(repr, wrong))}, but it must go to a {want} level",
                node.span,
                f"$.nodes.{node.id}.to",
                "escalate moves to a deeper level (L1 -> L2), hand_back to a shallower one",
            )


def iter_flow_errors(ctx: CheckContext) -> Iterator[SopError]:
    """Every dataflow error of one SOP."""
    yield from iter_sla_not_started(ctx)
    yield from iter_level_direction(ctx)
