"""Reference and per-node checks: levels, policies, calendars, actions, sub-SOPs, tasks, decisions.

Checks that need the organisation (levels, policies, calendars, other SOPs) run only when a
library holding that collection is given; checking a lone file never guesses.

- ``E-LEVEL-UNKNOWN``, ``E-SLA-UNKNOWN-POLICY``, ``E-CALENDAR-UNKNOWN``: a reference to a
  level / SLA policy / business calendar the library does not define (did-you-mean hint).
- ``E-ACTION-UNKNOWN``: an action name not in ``engine.actions.registry.known_actions()``.
- ``E-CALL-UNKNOWN``: ``call.sop`` not in the library; ``E-CALL-CYCLE``: SOPs calling each
  other (or themselves) in a cycle.
- ``E-HUMAN-TASK``: a human task without outcomes or without a level.
- ``W-HUMAN-TIMEOUT`` (warning): a human task or wait without a timeout.
- ``E-CORRELATE``: a wait's ``correlate`` outside case | thread | customer.
- ``E-DECISION-NO-OTHERWISE``: a decision without ``otherwise`` that is not provably
  exhaustive (see :func:`exhaustive_field`).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

import networkx as nx

from engine.errors import SopError
from engine.sop.checks_base import (
    CheckContext,
    did_you_mean,
    error,
    library_ids,
    warning,
)
from engine.sop.model import NodeSpec, NodeType, SopSpec

__all__ = ["exhaustive_field", "iter_reference_errors", "known_action_names"]

CORRELATIONS = frozenset({"case", "thread", "customer"})

_EQUALS = re.compile(
    r"""^\s*(?:
        (?P<f1>[A-Za-z_]\w*)\s*==\s*(?P<q1>["'])(?P<v1>[^"'\\]*)(?P=q1)
      | (?P<q2>["'])(?P<v2>[^"'\\]*)(?P=q2)\s*==\s*(?P<f2>[A-Za-z_]\w*)
    )\s*$""",
    re.VERBOSE,
)


def known_action_names() -> frozenset[str] | None:
    """Names in the action registry, or None while the registry module does not exist."""
    try:
        registry = importlib.import_module("engine.actions.registry")
    except ImportError:
        return None
    known = getattr(registry, "known_actions", None)
    if known is None:
        return None
    try:
        return frozenset(known())
    except Exception:  # noqa: BLE001 -- a broken plugin must not break validation; the
        return None  # registry reports it itself when actions are loaded to run



def _enum_coverage(spec: SopSpec, node: NodeSpec) -> tuple[str, frozenset[str]] | None:
    """(field, enum values no branch covers) when every branch is ``field == "literal"``
    on one enum field; None when the branches do not have that shape."""
    field_name: str | None = None
    seen: set[str] = set()
    for branch in node.branches:
        match = _EQUALS.match(branch.when.source) if branch.when is not None else None
        if match is None:
            return None
        name = match.group("f1") or match.group("f2")
        if field_name not in (None, name):
            return None
        field_name = name
        seen.add(match.group("v1") if match.group("f1") else match.group("v2"))
    declared = spec.data.get(field_name or "")
    if field_name is None or declared is None or not declared.enum:
        return None
    return field_name, frozenset(str(v) for v in declared.enum) - seen


def exhaustive_field(spec: SopSpec, node: NodeSpec) -> str | None:
    """The enum field a decision provably covers, or None.

    The rule (documented in docs/sop-reference.md): every branch condition is exactly
    ``field == "literal"`` (either side, single or double quotes), all on the same declared
    field of type string with an ``enum``, and the literals together cover every enum value.
    """
    coverage = _enum_coverage(spec, node)
    if coverage is None or coverage[1]:
        return None
    return coverage[0]


def iter_decisions(ctx: CheckContext) -> Iterator[SopError]:
    for node in ctx.of_type(NodeType.DECISION):
        if node.otherwise is not None or exhaustive_field(ctx.spec, node):
            continue
        coverage = _enum_coverage(ctx.spec, node)
        why = (
            f"its branches on {coverage[0]!r} miss "
            f"{', '.join(repr(v) for v in sorted(coverage[1]))}"
            if coverage
            else "its branches are not provably exhaustive"
        )
        yield error(
            "E-DECISION-NO-OTHERWISE",
            f"decision {node.id!r} has no 'otherwise' and {why}: a case matching no branch "
            "would get stuck",
            node.span,
            f"$.nodes.{node.id}.otherwise",
            "add 'otherwise: <node>', or make every branch `field == \"value\"` on one enum "
            "field covering all its values",
        )


def _level_refs(node: NodeSpec) -> Iterator[tuple[str, str]]:
    if node.level:
        yield node.level, "level"
    if node.type in (NodeType.ESCALATE, NodeType.HAND_BACK) and node.to:
        yield node.to, "to"


def iter_unknown_levels(ctx: CheckContext) -> Iterator[SopError]:
    levels = library_ids(ctx.library, "levels")
    if levels is None:
        return
    for node in ctx.spec.nodes.values():
        for value, field in _level_refs(node):
            if value not in levels:
                yield error(
                    "E-LEVEL-UNKNOWN",
                    f"{node.type.value} {node.id!r}: unknown competence level {value!r}",
                    node.span,
                    f"$.nodes.{node.id}.{field}",
                    did_you_mean(value, levels) or f"known levels: {', '.join(sorted(levels))}",
                )


def iter_unknown_org_refs(ctx: CheckContext) -> Iterator[SopError]:
    policies = library_ids(ctx.library, "policies")
    calendars = library_ids(ctx.library, "calendars")
    for node in ctx.spec.nodes.values():
        if policies is not None and node.policy and node.policy not in policies:
            yield error(
                "E-SLA-UNKNOWN-POLICY",
                f"{node.type.value} {node.id!r}: unknown SLA policy {node.policy!r}",
                node.span,
                f"$.nodes.{node.id}.policy",
                did_you_mean(node.policy, policies)
                or f"known policies: {', '.join(sorted(policies))}",
            )
        calendar = node.timeout.calendar if node.timeout else None
        if calendars is not None and calendar and calendar not in calendars:
            assert node.timeout is not None
            yield error(
                "E-CALENDAR-UNKNOWN",
                f"{node.id!r}: timeout uses unknown business calendar {calendar!r}",
                node.timeout.span,
                f"$.nodes.{node.id}.timeout.calendar",
                did_you_mean(calendar, calendars)
                or f"known calendars: {', '.join(sorted(calendars))}",
            )


def iter_unknown_actions(ctx: CheckContext) -> Iterator[SopError]:
    known = known_action_names()
    if known is None:
        return
    for node in ctx.of_type(NodeType.ACTION):
        if node.action and node.action not in known:
            yield error(
                "E-ACTION-UNKNOWN",
                f"action node {node.id!r}: no action named {node.action!r} is registered",
                node.span,
                f"$.nodes.{node.id}.action",
                did_you_mean(node.action, known)
                or f"registered actions: {', '.join(sorted(known))}",
            )


def _sop_specs(library: Any) -> Mapping[str, SopSpec]:
    sops = getattr(library, "sops", None) or {}
    items = sops.items() if isinstance(sops, Mapping) else ((s.id, s) for s in sops)
    return {str(k): getattr(v, "spec", v) for k, v in items}


def _call_graph(ctx: CheckContext) -> nx.DiGraph:
    graph = nx.DiGraph()
    specs = dict(_sop_specs(ctx.library))
    specs[ctx.spec.id] = ctx.spec
    for sop_id, spec in specs.items():
        graph.add_node(sop_id)
        for node in spec.nodes.values():
            if node.type is NodeType.CALL and node.sop:
                graph.add_edge(sop_id, node.sop)
    return graph


def iter_calls(ctx: CheckContext) -> Iterator[SopError]:
    calls = [n for n in ctx.of_type(NodeType.CALL) if n.sop]
    if not calls:
        return
    known = library_ids(ctx.library, "sops")
    if getattr(ctx.library, "complete", True) is False:
        known = None  # only some files were loaded: other SOPs may exist elsewhere
    graph = _call_graph(ctx)
    for node in calls:
        target = node.sop or ""
        if known is not None and target not in known and target != ctx.spec.id:
            yield error(
                "E-CALL-UNKNOWN",
                f"call {node.id!r}: no SOP {target!r} in the library",
                node.span,
                f"$.nodes.{node.id}.sop",
                did_you_mean(target, known) or "add the SOP to the library, or fix the id",
            )
            continue
        if target == ctx.spec.id or nx.has_path(graph, target, ctx.spec.id):
            back = [target] if target == ctx.spec.id else nx.shortest_path(
                graph, target, ctx.spec.id
            )
            cycle = " -> ".join([ctx.spec.id, *back])
            yield error(
                "E-CALL-CYCLE",
                f"call {node.id!r} starts SOP {target!r}, which leads back to "
                f"{ctx.spec.id!r}: {cycle}",
                node.span,
                f"$.nodes.{node.id}.sop",
                "sub-SOPs must not call their callers; move the shared steps into a third SOP",
            )


def iter_human_tasks(ctx: CheckContext) -> Iterator[SopError]:
    for node in ctx.of_type(NodeType.HUMAN_TASK):
        missing = [what for what, ok in (("outcomes", node.outcomes), ("level", node.level))
                   if not ok]
        if missing:
            yield error(
                "E-HUMAN-TASK",
                f"human task {node.id!r} has no {' and no '.join(missing)}",
                node.span,
                f"$.nodes.{node.id}",
                "a human task needs 'level' (whose queue) and at least one outcome",
            )


def iter_timeouts(ctx: CheckContext) -> Iterator[SopError]:
    for node in ctx.of_type(NodeType.HUMAN_TASK, NodeType.WAIT):
        if node.timeout is None:
            yield warning(
                "W-HUMAN-TIMEOUT",
                f"{node.type.value} {node.id!r} has no timeout: a case could wait here forever",
                node.span,
                f"$.nodes.{node.id}.timeout",
                "add 'timeout: {after: ..., next: ...}' leading to an escalation or reminder",
            )


def iter_correlation(ctx: CheckContext) -> Iterator[SopError]:
    for node in ctx.of_type(NodeType.WAIT):
        if node.correlate not in CORRELATIONS:
            yield error(
                "E-CORRELATE",
                f"wait {node.id!r}: correlate must be case, thread or customer, "
                f"not {node.correlate!r}",
                node.span,
                f"$.nodes.{node.id}.correlate",
                did_you_mean(node.correlate, CORRELATIONS) or "use case, thread or customer",
            )


def iter_reference_errors(ctx: CheckContext) -> Iterator[SopError]:
    """Every reference and per-node error of one SOP."""
    yield from iter_decisions(ctx)
    yield from iter_unknown_levels(ctx)
    yield from iter_unknown_org_refs(ctx)
    yield from iter_unknown_actions(ctx)
    yield from iter_calls(ctx)
    yield from iter_human_tasks(ctx)
    yield from iter_timeouts(ctx)
    yield from iter_correlation(ctx)
