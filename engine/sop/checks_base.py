"""Shared context of the semantic checks: the SOP, its graph restricted to real nodes, roots.

Every check module (``checks_graph``, ``checks_flow``, ``checks_refs``, ``checks_data``)
receives one ``CheckContext`` built once per SOP by :func:`build_context`, so the
reachability set and adjacency are computed once (all checks stay near-linear).

The context deliberately ignores graph nodes that are not SOP nodes (a compiler may add
pseudo nodes, e.g. for case-wide handlers) and edges to unknown node ids (those are
reported by the reference check of the compiler, not here: one problem, one error).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from engine.errors import CompileError, SourceSpan
from engine.sop.model import NodeSpec, NodeType, SopSpec

__all__ = [
    "CheckContext",
    "build_context",
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
    """

    spec: SopSpec
    graph: nx.DiGraph
    roots: tuple[str, ...]
    reachable: frozenset[str]
    library: Any

    def node(self, node_id: str) -> NodeSpec:
        return self.spec.nodes[node_id]

    def of_type(self, *types: NodeType) -> Iterable[NodeSpec]:
        return (n for n in self.spec.nodes.values() if n.type in types)


def _graph_of(compiled: Any, spec: SopSpec) -> nx.DiGraph:
    """The compiled graph restricted to SOP nodes, or one built from the spec."""
    known = spec.nodes
    graph = nx.DiGraph()
    graph.add_nodes_from(known)
    source = getattr(compiled, "graph", None)
    if isinstance(source, nx.DiGraph) and source.number_of_nodes():
        graph.add_edges_from(
            (u, v) for u, v in source.edges() if u in known and v in known
        )
        # a compiler that leaves out an edge kind must not make nodes look dead
        missing = [
            (n.id, target)
            for n in known.values()
            for target, _ in n.successors()
            if target in known and not graph.has_edge(n.id, target)
        ]
        graph.add_edges_from(missing)
    else:
        graph.add_edges_from(
            (n.id, target)
            for n in known.values()
            for target, _ in n.successors()
            if target in known
        )
    return graph


def build_context(compiled: Any, library: Any = None) -> CheckContext:
    """Build the shared context from a compiled SOP (``.spec`` and ``.graph``) or a bare spec."""
    spec: SopSpec = compiled.spec if hasattr(compiled, "spec") else compiled
    graph = _graph_of(compiled, spec)
    roots: list[str] = [n.id for n in spec.nodes.values() if n.type is NodeType.START]
    roots += [h.next for h in spec.on_event if h.next and h.next in spec.nodes]
    reachable: set[str] = set()
    for root in dict.fromkeys(roots):
        if root not in reachable:
            reachable.add(root)
            reachable |= nx.descendants(graph, root)
    return CheckContext(spec, graph, tuple(dict.fromkeys(roots)), frozenset(reachable), library)


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
