"""Policy selection by explicit order and CEL, target precedence, what counts as a response."""

from __future__ import annotations

import pytest
from sla_helpers import metric, policy

from engine.errors import CalendarError, ExpressionError
from engine.sla.policy import (
    matched_condition,
    qualifies_as_response,
    select_policy,
    target_seconds,
)
from engine.sop.expressions import ExpressionEnv

FR = metric(
    "first_response", "8h", by_priority={"critical": "1h", "high": "2h"}, by_tier={"gold": "30m"}
)
POLICIES = (
    policy("default", 100, {"first_response": FR, "resolution_total": metric("resolution_total")}),
    policy("gold", 10, {"first_response": FR}, when='case.tier == "gold"'),
    policy(
        "phone_vip",
        20,
        {"first_response": FR},
        when='case.channel == "phone" && case.priority in ["high", "critical"]',
    ),
)


def test_first_match_by_order_not_by_position() -> None:
    assert select_policy(POLICIES, "first_response", {"tier": "gold"}).id == "gold"  # type: ignore[union-attr]
    chosen = select_policy(POLICIES, "first_response", {"channel": "phone", "priority": "high"})
    assert chosen is not None
    assert chosen.id == "phone_vip"
    chosen = select_policy(POLICIES, "first_response", {"channel": "email", "priority": "high"})
    assert chosen is not None
    assert chosen.id == "default"


def test_policy_without_the_metric_is_skipped() -> None:
    chosen = select_policy(POLICIES, "resolution_total", {"tier": "gold"})
    assert chosen is not None
    assert chosen.id == "default"
    assert select_policy(POLICIES, "ola", {"tier": "gold"}) is None


def test_equal_orders_are_broken_by_id_not_file_order() -> None:
    a = policy("b_policy", 5, {"first_response": FR})
    b = policy("a_policy", 5, {"first_response": FR})
    assert select_policy((a, b), "first_response", {}).id == "a_policy"  # type: ignore[union-attr]
    assert select_policy((b, a), "first_response", {}).id == "a_policy"  # type: ignore[union-attr]


def test_matched_condition_is_recorded_text() -> None:
    assert matched_condition(POLICIES[1]) == 'case.tier == "gold"'
    assert matched_condition(POLICIES[0]) == "(default)"


def test_bad_condition_names_the_policy() -> None:
    broken = policy("broken", 1, {"first_response": FR}, when="case.tier ==")
    with pytest.raises(ExpressionError, match="in SLA policy 'broken'"):
        select_policy((broken,), "first_response", {})


def test_explicit_env_is_used() -> None:
    env = ExpressionEnv()
    chosen = select_policy(POLICIES, "first_response", {"tier": "gold"}, env)
    assert chosen is not None
    assert chosen.id == "gold"


@pytest.mark.parametrize(
    ("priority", "tier", "seconds"),
    [
        ("critical", "gold", 30 * 60),  # tier beats priority
        ("critical", "standard", 3600),  # priority beats default
        ("low", "standard", 8 * 3600),  # default
        (None, None, 8 * 3600),
    ],
)
def test_target_precedence(priority: str | None, tier: str | None, seconds: int) -> None:
    assert target_seconds(FR, priority, tier) == (seconds, "business_hours")


def test_target_errors() -> None:
    with pytest.raises(CalendarError, match="has no target for priority 'low'"):
        target_seconds(metric(target=None, by_priority={"high": "1h"}), "low", None)
    with pytest.raises(CalendarError, match="unknown unit 'fortnights'"):
        target_seconds(metric(unit="fortnights"), None, None)
    with pytest.raises(CalendarError, match="must be whole days"):
        target_seconds(metric(target="36h", unit="business_days"), None, None)
    assert target_seconds(metric(target="2d", unit="business_days"), None, None) == (
        172_800,
        "business_days",
    )


# ---- catalogue 9: what counts as a first response ------------------------------------------


@pytest.mark.parametrize(
    ("kind", "automatic", "public", "counts"),
    [
        ("human_reply", False, True, True),  # human public reply
        ("internal_note", False, False, False),  # internal note
        ("human_reply", False, False, False),  # a reply the customer cannot see
        ("auto_ack", True, True, False),  # automatic acknowledgement
        ("bot_reply", True, True, False),  # e-level bot
        ("human_reply", True, True, False),  # an automatic message dressed as a reply
        ("phone_call", False, True, True),  # logged outbound call
        ("phone_call", False, False, True),  # ... even when its log is not public
    ],
)
def test_default_response_rules(kind: str, automatic: bool, public: bool, counts: bool) -> None:
    assert qualifies_as_response(metric(), kind, automatic=automatic, public=public) is counts


def test_policy_may_let_the_e_level_count() -> None:
    lenient = metric(counts_as_response=("human_reply", "bot_reply", "internal_note"))
    assert qualifies_as_response(lenient, "bot_reply", automatic=True, public=True)
    assert not qualifies_as_response(lenient, "auto_ack", automatic=True, public=True)
    assert qualifies_as_response(lenient, "internal_note", automatic=False, public=False)
    anything_automatic = metric(counts_as_response=("human_reply", "automatic"))
    assert qualifies_as_response(anything_automatic, "human_reply", automatic=True, public=True)
