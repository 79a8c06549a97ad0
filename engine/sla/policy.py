"""Which SLA policy applies to a case, which target it sets, and what counts as a response.

Policy selection (sla-semantics.md 3.3): policies are tried in explicit ``order``
(ascending; equal orders are broken by id so the choice never depends on file order);
the first whose ``when`` is true for the case facts and that defines the metric wins. A
policy without ``when`` matches every case (the fallback, e.g. ``order: 100``).

Conditions are CEL over one name, ``case``, a map with ``priority``, ``tier``,
``channel``, ``category`` and ``sop`` (``case.tier == "gold"``). Missing facts are ``""``.

Target precedence (``target_seconds``): a target for the case's **tier** beats a target for
its **priority**, which beats the metric's default ``target``. A gold customer's first
response is as fast as the gold contract says, whatever the priority.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from engine.errors import CalendarError, ExpressionError

if TYPE_CHECKING:
    from engine.sop.expressions import ExpressionEnv, Program
    from engine.sop.model import MetricSpec, SlaPolicyDoc

__all__ = [
    "FACT_NAMES",
    "UNITS",
    "matched_condition",
    "qualifies_as_response",
    "select_policy",
    "target_seconds",
]

FACT_NAMES = ("priority", "tier", "channel", "category", "sop")
UNITS = ("business_hours", "business_days", "wall")
#: interaction kinds that an automatic sender may produce; they count only when listed
AUTOMATIC_KINDS = frozenset({"auto_ack", "bot_reply", "e_level", "automatic"})


@lru_cache(maxsize=1)
def _default_env() -> ExpressionEnv:
    from engine.sop.expressions import ExpressionEnv

    return ExpressionEnv()


@lru_cache(maxsize=1024)
def _compile(env: ExpressionEnv, source: str) -> Program:
    return env.compile(source, expect_bool=True)


def case_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The ``case`` map a policy condition sees: every fact name present (``""`` if unknown)."""
    out = {name: ("" if facts.get(name) is None else facts[name]) for name in FACT_NAMES}
    out.update({k: v for k, v in facts.items() if k not in out and v is not None})
    return out


def select_policy(
    policies: Sequence[SlaPolicyDoc],
    metric: str,
    facts: Mapping[str, Any],
    env: ExpressionEnv | None = None,
) -> SlaPolicyDoc | None:
    """The first policy, by ``order``, that defines ``metric`` and whose ``when`` matches.

    Args:
        policies: the organisation's SLA policies (any order).
        metric: e.g. ``first_response``.
        facts: ``priority``, ``tier``, ``channel``, ``category``, ``sop`` of the case.
        env: the CEL environment (default: one with no case fields, just ``case``).

    Returns:
        The winning policy, or None when none applies.

    Raises:
        ExpressionError: a condition does not compile or cannot be evaluated; the message
            names the policy.
    """
    env = env or _default_env()
    variables = {"case": case_facts(facts)}
    for policy in sorted(policies, key=lambda p: (p.order, p.id)):
        if metric not in policy.metrics:
            continue
        if policy.when is None:
            return policy
        try:
            if _compile(env, policy.when.source).test(variables):
                return policy
        except ExpressionError as exc:
            raise ExpressionError(
                exc.expression, f"in SLA policy {policy.id!r}: {exc.detail}", column=exc.column
            ) from exc
    return None


def matched_condition(policy: SlaPolicyDoc) -> str:
    """The condition text recorded on a clock: the policy's ``when``, or ``"(default)"``."""
    return policy.when.source if policy.when is not None else "(default)"


def target_seconds(
    metric_spec: MetricSpec, priority: str | None, tier: str | None
) -> tuple[int, str]:
    """The target of ``metric_spec`` for a case: (seconds, unit).

    Tier target beats priority target beats the default ``target``. For the unit
    ``business_days`` the seconds are whole days x 86,400 (the calendar counts days).

    Raises:
        CalendarError: no target applies, the unit is unknown, or a business-days target
            is not a whole number of days.
    """
    if metric_spec.unit not in UNITS:
        raise CalendarError(
            f"metric {metric_spec.metric!r}: unknown unit {metric_spec.unit!r}; "
            f"use {', '.join(UNITS)}"
        )
    chosen = None
    if tier is not None and tier in metric_spec.by_tier:
        chosen = metric_spec.by_tier[tier]
    elif priority is not None and priority in metric_spec.by_priority:
        chosen = metric_spec.by_priority[priority]
    else:
        chosen = metric_spec.target
    if chosen is None:
        raise CalendarError(
            f"metric {metric_spec.metric!r} has no target for priority {priority!r}, tier "
            f"{tier!r} (give a default 'target', or 'by_priority' / 'by_tier' entries)"
        )
    seconds = int(chosen.seconds)
    if seconds <= 0:
        raise CalendarError(
            f"metric {metric_spec.metric!r}: target {chosen.text!r} must be positive"
        )
    if metric_spec.unit == "business_days" and seconds % 86_400:
        raise CalendarError(
            f"metric {metric_spec.metric!r}: a business_days target must be whole days, "
            f"not {chosen.text!r}"
        )
    return seconds, metric_spec.unit


def qualifies_as_response(
    metric_spec: MetricSpec, interaction_kind: str, automatic: bool, public: bool
) -> bool:
    """Whether an outbound interaction satisfies a response metric (first_response, next_reply...).

    Rules (sla-semantics.md 3.2): the interaction's kind must be listed in the metric's
    ``counts_as_response`` (default ``human_reply``, ``phone_call``). An automatic message
    (acknowledgement, e-level bot) counts only if its kind is listed explicitly as one of
    ``auto_ack``/``bot_reply``/``e_level``, or ``automatic`` is listed. A message the
    customer cannot see (internal note) counts only if ``internal_note`` is listed; a
    logged phone call reached the customer, so it counts whether or not its log is public.

    >>> from engine.sop.model import MetricSpec
    >>> from engine.errors import SourceSpan
    >>> m = MetricSpec("first_response", SourceSpan("x", 1, 1))
    >>> qualifies_as_response(m, "human_reply", automatic=False, public=True)
    True
    >>> qualifies_as_response(m, "auto_ack", automatic=True, public=True)
    False
    """
    allowed = set(metric_spec.counts_as_response)
    if interaction_kind not in allowed:
        return False
    if automatic and interaction_kind not in AUTOMATIC_KINDS and "automatic" not in allowed:
        return False
    return public or interaction_kind in ("phone_call", "internal_note")
