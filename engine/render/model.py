"""The diagram model: what a picture of an SOP shows, independent of any renderer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.sop.model import frozen_map

__all__ = ["Diagram", "DiagramEdge", "DiagramNode", "Lane", "NEUTRAL_LANE"]

#: the lane of nodes without a competence level (start, decisions, joins, SLA bookkeeping)
NEUTRAL_LANE = "_flow"


@dataclass(frozen=True, slots=True)
class Lane:
    """A swimlane: one competence level (or the neutral flow lane)."""

    id: str
    label: str
    rank: int


@dataclass(frozen=True, slots=True)
class DiagramNode:
    """One box of the diagram. ``kind`` is the SOP node type; ``caption`` the text under it."""

    id: str
    kind: str
    label: str
    lane: str
    caption: str = ""
    highlight: str | None = None  # added | changed | removed (diff), or None
    stats: Mapping[str, str] = field(default_factory=frozen_map)  # heat-map overlay


@dataclass(frozen=True, slots=True)
class DiagramEdge:
    source: str
    target: str
    kind: str  # next | branch | otherwise | outcome | event | timeout | error | loop_body | ...
    label: str = ""
    highlight: str | None = None
    stats: Mapping[str, str] = field(default_factory=frozen_map)


@dataclass(frozen=True, slots=True)
class Diagram:
    """Everything a renderer needs: lanes in order, nodes, edges and the footer facts."""

    sop_id: str
    title: str
    version: str
    content_hash: str
    lanes: tuple[Lane, ...]
    nodes: tuple[DiagramNode, ...]
    edges: tuple[DiagramEdge, ...]
    owner: str = ""
    note: str = ""  # e.g. "heat map: 1,204 cases, 2026-11-01 .. 2026-11-30"

    def lane_nodes(self, lane: str) -> tuple[DiagramNode, ...]:
        return tuple(n for n in self.nodes if n.lane == lane)
