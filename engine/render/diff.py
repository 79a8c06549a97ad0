"""Semantic diff of two SOP versions: what changed in meaning, not in formatting.

Nodes are aligned by id. Reordering keys, nodes or comments changes nothing; a changed
condition, target, level, SLA clock or timeout is reported, each as one ``Change``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from engine.sop.model import Expr, NodeSpec, SopSpec

__all__ = ["Change", "diff_sops"]

#: NodeSpec fields that do not change behaviour
_COSMETIC = {"span", "description"}


@dataclass(frozen=True, slots=True)
class Change:
    """One semantic change. ``kind``: node_added | node_removed | node_retyped | node_changed |
    edge_added | edge_removed | data_changed | handler_changed | meta_changed."""

    kind: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind:<15} {self.subject}: {self.detail}"


def _plain(value: Any) -> Any:
    """A span-free, order-insensitive form of a model value for comparison."""
    if isinstance(value, Expr):
        return " ".join(value.source.split())
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)
                if f.name not in _COSMETIC}
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in sorted(dict(value).items())}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value"), str):
        return value.value
    return value


def _edges(spec: SopSpec) -> set[tuple[str, str, str]]:
    return {(n.id, dst, label) for n in spec.nodes.values() for dst, label in n.successors()}


def _node_changes(old: NodeSpec, new: NodeSpec) -> Iterator[str]:
    a, b = _plain(old), _plain(new)
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            yield f"{key}: {a.get(key)!r} -> {b.get(key)!r}"


def diff_sops(old: SopSpec, new: SopSpec) -> list[Change]:
    """Every semantic change from ``old`` to ``new`` (empty when they mean the same)."""
    changes: list[Change] = []
    for key in ("title", "owner", "purpose", "category", "itil", "version"):
        if getattr(old, key) != getattr(new, key):
            changes.append(Change("meta_changed", key,
                                  f"{getattr(old, key)!r} -> {getattr(new, key)!r}"))
    for nid in sorted(set(new.nodes) - set(old.nodes)):
        changes.append(Change("node_added", nid, new.nodes[nid].type.value))
    for nid in sorted(set(old.nodes) - set(new.nodes)):
        changes.append(Change("node_removed", nid, old.nodes[nid].type.value))
    for nid in sorted(set(old.nodes) & set(new.nodes)):
        o, n = old.nodes[nid], new.nodes[nid]
        if o.type is not n.type:
            changes.append(Change("node_retyped", nid, f"{o.type.value} -> {n.type.value}"))
            continue
        changes += [Change("node_changed", nid, d) for d in _node_changes(o, n)]
    eo, en = _edges(old), _edges(new)
    changes += [Change("edge_added", f"{s} -> {t}", lbl or "next") for s, t, lbl in sorted(en - eo)]
    changes += [Change("edge_removed", f"{s} -> {t}", lbl or "next") for s, t, lbl in sorted(eo - en)]
    if _plain(old.data) != _plain(new.data):
        for name in sorted(set(old.data) | set(new.data)):
            a, b = _plain(old.data.get(name)), _plain(new.data.get(name))
            if a != b:
                changes.append(Change("data_changed", name, f"{a!r} -> {b!r}"))
    ho = sorted(map(repr, map(_plain, old.on_event)))
    hn = sorted(map(repr, map(_plain, new.on_event)))
    if ho != hn:
        changes.append(Change("handler_changed", "on_event",
                              f"{len(old.on_event)} -> {len(new.on_event)} handler(s) differ"))
    return changes


def highlight(changes: list[Change]) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """Node id -> added|changed, and the (source, target) edges added, for rendering."""
    nodes: dict[str, str] = {}
    edges: set[tuple[str, str]] = set()
    for c in changes:
        if c.kind == "node_added":
            nodes[c.subject] = "added"
        elif c.kind in ("node_changed", "node_retyped"):
            nodes.setdefault(c.subject, "changed")
        elif c.kind == "edge_added":
            src, dst = c.subject.split(" -> ")
            edges.add((src, dst))
    return nodes, edges
