"""Shared context of the semantic checks: the SOP, its graph restricted to real nodes, roots.

Every check module (``checks_graph``, ``checks_flow``, ``checks_refs``, ``checks_data``)
receives one ``CheckContext`` built once per SOP by :func:`build_context`, so the
reachability set and adjacency are computed once (all checks stay near-linear).

The context's graph is built from the spec's declared successors (the same edges as the
compiled graph, minus the compiler's virtual handler node) and leaves out edges to unknown
node ids: those are reported by the compiler's reference check, not here (one problem,
one error).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from engine.errors import CompileError, SourceSpan
from engine.sop.model import NodeSpec, NodeType, SopSpec

__all__ = [
    "CheckContext",
    "build_context",
    "cyclic_parts",
    "did_you_mean",
    "error",
    "library_ids",
    "warning",
]


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What every check needs, computed once.

    Attributes:
        spec: the SOP as written.
        graph: a directed graph over the SOP's node ids only (networkx).
        roots: where cases enter the graph: the start node and every handler target.
        reachable: node ids reachable from ``roots``.
        library: the library the SOP is checked against, or None.
        cycles: the strongly connected components that contain a cycle and a reachable node.
        succ, pred: plain adjacency of ``graph`` (the dataflow loops read it thousands of
            times; plain tuples are several times faster than networkx views).
    """

    spec: SopSpec
    graph: nx.DiGraph
    roots: tuple[str, ...]
    reachable: frozenset[str]
    library: Any
    cycles: tuple[frozenset[str], ...] = ()
    succ: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    pred: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def node(self, node_id: str) -> NodeSpec:
        return self.spec.nodes[node_id]

    def of_type(self, *types: NodeType) -> Iterable[NodeSpec]:
        return (n for n in self.spec.nodes.values() if n.type in types)


def _graph_of(spec: SopSpec) -> nx.DiGraph:
    """The SOP's node graph (same edges as the compiled graph, without virtual nodes)."""
    known = spec.nodes
    graph = nx.DiGraph()
    graph.add_nodes_from(known)
    graph.add_edges_from(
        (n.id, target) for n in known.values() for target, _ in n.successors() if target in known
    )
    return graph


def _cyclic_components(graph: nx.DiGraph, reachable: frozenset[str]) -> tuple[frozenset[str], ...]:
    found = []
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (only,) = component
            if not graph.has_edge(only, only):
                continue
        if component & reachable:
            found.append(frozenset(component))
    return tuple(found)


def cyclic_parts(ctx: CheckContext, component: frozenset[str], keep: Callable[[str], bool]
                 ) -> list[set[str]]:
    """The cyclic SCCs of ``component`` restricted to nodes for which ``keep`` holds.

    Every cycle of a subgraph lies inside one SCC of the whole graph, so checks that look
    for cycles among some node kinds only need to search the (usually few, small) cyclic
    components, on a small materialised graph (fast, unlike a filtered view).
    """
    nodes = [n for n in component if keep(n)]
    if not nodes:
        return []
    members = set(nodes)
    small = nx.DiGraph()
    small.add_nodes_from(nodes)
    small.add_edges_from((u, v) for u in nodes for v in ctx.graph.succ[u] if v in members)
    return [
        c for c in nx.strongly_connected_components(small)
        if len(c) > 1 or small.has_edge(next(iter(c)), next(iter(c)))
    ]


def build_context(compiled: Any, library: Any = None) -> CheckContext:
    """Build the shared context from a compiled SOP (``.spec`` and ``.graph``) or a bare spec."""
    spec: SopSpec = compiled.spec if hasattr(compiled, "spec") else compiled
    graph = _graph_of(spec)
    roots: list[str] = [n.id for n in spec.nodes.values() if n.type is NodeType.START]
    roots += [h.next for h in spec.on_event if h.next and h.next in spec.nodes]
    reachable: set[str] = set()
    for root in dict.fromkeys(roots):
        if root not in reachable:
            reachable.add(root)
            reachable |= nx.descendants(graph, root)
    done = frozenset(reachable)
    succ = {n: tuple(graph.succ[n]) for n in graph}
    pred = {n: tuple(graph.pred[n]) for n in graph}
    return CheckContext(
        spec, graph, tuple(dict.fromkeys(roots)), done, library,
        _cyclic_components(graph, done), succ, pred,
    )


def error(
    code: str,
    message: str,
    span: SourceSpan | None,
    json_path: str,
    hint: str | None = None,
) -> CompileError:
    """A semantic error (fails validation)."""
    return CompileError(code, message, span=span, json_path=json_path, hint=hint)


def warning(
    code: str,
    message: str,
    span: SourceSpan | None,
    json_path: str,
    hint: str | None = None,
) -> CompileError:
    """A semantic warning (reported, never fails validation)."""
    return CompileError(
        code, message, span=span, json_path=json_path, hint=hint, severity="warning"
    )


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest candidate, or None."""
    ordered = sorted(candidates)
    by_lower = {c.lower(): c for c in ordered}
    if word.lower() in by_lower and by_lower[word.lower()] != word:
        return f"did you mean {by_lower[word.lower()]!r}?"
    close = difflib.get_close_matches(word, ordered, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def library_ids(library: Any, attribute: str) -> frozenset[str] | None:
    """The ids a library holds under ``attribute``; None when there is no such collection.

    Accepts a mapping keyed by id, an iterable of objects with ``.id``, or a document with a
    ``levels`` tuple (``LevelsDoc``). An empty collection counts as "not loaded" (None), so
    checking one SOP without organisation documents does not flag every reference.
    """
    if library is None:
        return None
    value = getattr(library, attribute, None)
    if value is None:
        return None
    if hasattr(value, "levels") and not isinstance(value, Mapping):
        value = value.levels
    if isinstance(value, Mapping):
        ids = frozenset(str(k) for k in value)
    else:
        ids = frozenset(str(getattr(v, "id", v)) for v in value)
    return ids or None


def library_levels(library: Any) -> Mapping[str, int] | None:
    """Level id -> rank from the library's levels, or None."""
    if library is None:
        return None
    value = getattr(library, "levels", None)
    if value is None:
        return None
    if hasattr(value, "levels") and not isinstance(value, Mapping):
        value = value.levels
    items = value.values() if isinstance(value, Mapping) else value
    ranks = {str(v.id): int(v.rank) for v in items if hasattr(v, "rank")}
    return ranks or None
