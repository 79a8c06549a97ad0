"""Conformance of what cases did with what the SOP allows: disallowed paths, branch use, waits.

Replay rule (a token replay that tolerates parallel branches): a move to node ``b`` is allowed
when ``b`` is the first node and a start node, when ``b`` is the target of a case-wide event
handler, or when some node visited earlier in the same case has an SOP edge to ``b`` (with a
parallel split, the branches interleave, so "the previous node" alone is not enough). Every
other move is a *disallowed transition* (there should be none). Branch usage counts each edge
out of a node with several outgoing edges; *dead branches* are SOP edges never taken; *rare*
ones are taken by fewer than ``rare_share`` of the cases that left their source node. The wait
of a node is the time from its visit to the next visit in the same case. Cases pinned to
another version of the SOP than the compiled one are counted, not replayed.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.reporting.eventlog import Trace

__all__ = ["ConformanceResult", "Violation", "check_conformance"]


@dataclass(frozen=True, slots=True)
class Violation:
    """A move the SOP does not allow, with the cases that made it."""

    source: str | None
    target: str
    cases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConformanceResult:
    """The outcome of a conformance check of one SOP."""

    sop_id: str
    cases: int
    violations: tuple[Violation, ...]
    edge_use: dict[tuple[str, str], int]
    branch_use: dict[str, dict[str, int]]
    dead: tuple[tuple[str, str], ...]
    rare: tuple[tuple[str, str, int, int], ...]  # source, target, taken, left source
    waits: dict[str, tuple[float, float, int]]  # node -> (mean s, median s, n)
    other_versions: int = 0  # cases pinned to another SOP version: not replayed

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, Any]:
        return {
            "sop": self.sop_id, "cases": self.cases, "other_versions_skipped": self.other_versions,
            "disallowed": [{"from": v.source, "to": v.target, "cases": list(v.cases)} for v in self.violations],
            "branches": {src: dict(t) for src, t in self.branch_use.items()},
            "dead_branches": [{"from": a, "to": b} for a, b in self.dead],
            "rare_branches": [{"from": a, "to": b, "taken": n, "of": m} for a, b, n, m in self.rare],
            "waits": {k: {"mean_s": m, "median_s": md, "n": n} for k, (m, md, n) in self.waits.items()},
        }


def check_conformance(compiled: Any, traces: Iterable[Trace], *, rare_share: float = 0.05
                      ) -> ConformanceResult:
    """Replay ``traces`` against ``compiled.graph`` (see the module docstring for the rule)."""
    graph = compiled.graph
    spec_nodes = set(compiled.spec.nodes)
    starts = {n for n, d in graph.nodes(data=True) if d.get("type") == "start"}
    handler_targets = {h.next for h in compiled.spec.on_event if h.next}
    edges = [(a, b) for a, b in graph.edges() if a in spec_nodes and b in spec_nodes]
    preds: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        preds[b].add(a)
    bad: dict[tuple[str | None, str], list[str]] = defaultdict(list)
    used: Counter[tuple[str, str]] = Counter()
    waits: dict[str, list[float]] = defaultdict(list)
    n_cases = skipped = 0
    version = getattr(compiled, "version", None)
    for t in traces:
        if version is not None and t.sop_version != version:
            skipped += 1  # replaying it against another version's graph would invent violations
            continue
        n_cases += 1
        seen: set[str] = set()
        prev: str | None = None
        for i, e in enumerate(t.events):
            b = e.node
            if prev is None:
                ok = b in starts
            else:
                ok = b in handler_targets or bool(preds[b] & seen) or b == prev
            if not ok:
                bad[(prev, b)].append(t.case_id)
            elif prev is not None:
                src = prev if (prev, b) in graph.edges else next(
                    (p for p in reversed([x.node for x in t.events[:i]]) if p in preds[b]), None)
                if src is not None:
                    used[(src, b)] += 1
            if i + 1 < len(t.events):
                waits[b].append((t.events[i + 1].at - e.at).total_seconds())
            seen.add(b)
            prev = b
    out_deg: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        out_deg[a].append(b)
    branch_use = {a: {b: used.get((a, b), 0) for b in targets}
                  for a, targets in out_deg.items() if len(targets) > 1}
    rare = []
    for a, targets in branch_use.items():
        left = sum(targets.values())
        for b, n in targets.items():
            if 0 < n < rare_share * left:
                rare.append((a, b, n, left))
    return ConformanceResult(
        sop_id=compiled.id, cases=n_cases,
        violations=tuple(Violation(a, b, tuple(ids)) for (a, b), ids in
                         sorted(bad.items(), key=lambda kv: -len(kv[1]))),
        edge_use=dict(used), branch_use=branch_use,
        dead=tuple(sorted(e for e in edges if not used.get(e))),
        rare=tuple(rare),
        waits={k: (statistics.fmean(v), statistics.median(v), len(v))
               for k, v in sorted(waits.items(), key=lambda kv: -statistics.fmean(kv[1]))},
        other_versions=skipped)
