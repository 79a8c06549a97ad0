"""Which SOP an uncorrelated inbound contact starts: the library's routing rules, in order.

A rule matches when its ``channels`` list is empty or holds the event's channel, and its
CEL ``when`` (if any) is true over ``channel, subject, body, intent, sender, language``
(strings) and ``event`` (the whole channel event as a map). The first match wins; without
a match the routing document's ``fallback`` SOP is started; without routing nothing is
started (the contact is only recorded on the customer's timeline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.base import ChannelEvent, event_to_dict
from engine.errors import ExpressionError
from engine.sop.expressions import ExpressionEnv, Program
from engine.sop.model import RoutingDoc

__all__ = ["ROUTING_FIELDS", "RouteDecision", "route", "routing_variables"]

ROUTING_FIELDS = ("channel", "subject", "body", "intent", "sender", "language")

_PROGRAMS: dict[tuple[int, int], Program] = {}
_ENV: list[ExpressionEnv] = []


@dataclass(frozen=True, slots=True)
class RouteDecision:
    sop: str
    rule: str  # "routing[2]" | "fallback"
    priority: str | None = None
    skipped: tuple[str, ...] = ()  # rules whose condition failed to evaluate, with why


def _env() -> ExpressionEnv:
    if not _ENV:
        _ENV.append(ExpressionEnv((name, "string", None) for name in ROUTING_FIELDS))
    return _ENV[0]


def routing_variables(event: ChannelEvent) -> dict[str, Any]:
    """What a routing condition can read."""
    customer = event.customer
    sender = customer.get("email") or customer.get("phone") or customer.get("handle") or ""
    return {
        "channel": event.channel,
        "subject": event.subject,
        "body": event.body,
        "intent": str(event.metadata.get("intent", "")),
        "sender": sender,
        "language": str(event.metadata.get("language", "")),
        "event": event_to_dict(event),
    }


def _program(routing: RoutingDoc, index: int, source: str) -> Program:
    key = (id(routing), index)
    program = _PROGRAMS.get(key)
    if program is None or program.source != source:
        program = _env().compile(source, expect_bool=True)
        _PROGRAMS[key] = program
    return program


def route(routing: RoutingDoc | None, event: ChannelEvent) -> RouteDecision | None:
    """The SOP to start for ``event``, or None (no routing, no match, no fallback)."""
    if routing is None:
        return None
    variables: dict[str, Any] | None = None
    skipped: list[str] = []
    for index, rule in enumerate(routing.rules):
        if rule.channels and event.channel not in rule.channels:
            continue
        if rule.when is not None:
            if variables is None:
                variables = routing_variables(event)
            try:
                if not _program(routing, index, rule.when.source).test(variables):
                    continue
            except ExpressionError as exc:
                skipped.append(f"routing[{index}]: {exc}")
                continue
        return RouteDecision(rule.sop, f"routing[{index}]", rule.priority, tuple(skipped))
    if routing.fallback:
        return RouteDecision(routing.fallback, "fallback", None, tuple(skipped))
    return None
