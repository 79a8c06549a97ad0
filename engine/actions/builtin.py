"""The built-in actions: classification, reset link, messages, field setting, knowledge lookup.

Each is ``fn(inputs, ctx) -> result`` (see engine.actions.registry), deterministic and
without I/O of its own; ``kb_lookup`` reaches the knowledge base only through the port
``ctx.ports["knowledge"]``. ``classify_request``, ``send_reset_link`` and ``set_fields``
use no port and are marked ``pure_action``: the interpreter runs them inside the step.

- ``classify_request`` inputs ``text`` (str), ``tier`` (str, optional); returns
  ``{intent, category, priority}``. Category by keywords: billing, complaint, warranty,
  access, general. Intent: ``self_service_reset`` when the text contains "forgot" or
  "reset link" (the reference rule of the peers' common.py), else ``access_problem`` for
  access and general requests, else ``billing_question``, ``complaint``,
  ``warranty_claim``. Priority: ``high`` for tier gold or an urgent text, else ``normal``.
- ``send_reset_link`` inputs ``to``; returns ``{sent: true, link_id: "L-<case>", to}``.
- ``send_message`` inputs ``channel``, ``template``, ``subject``, ``body``, ``to``; returns
  them. The interpreter never runs it: an ``action: send_message`` node becomes a
  SendMessage command (an outbox row), so messages are sent at least once with a key.
- ``set_fields`` returns its inputs (use ``set: {x: result.x}``).
- ``kb_lookup`` inputs ``query``, ``limit`` (default 3); returns ``{found, articles}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Protocol

from engine.actions.registry import ActionContext, pure_action

__all__ = [
    "ACTIONS",
    "KnowledgePort",
    "classify_request",
    "classify_text",
    "kb_lookup",
    "send_message",
    "send_reset_link",
    "set_fields",
]

#: category -> keywords (lower case); the first category with a hit wins, in this order
CATEGORY_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("access", ("password", "forgot", "reset link", "locked out", "log in", "login",
                "sign in", "access", "account locked", "two-factor", "2fa")),
    ("billing", ("invoice", "bill", "charge", "refund", "payment", "paid", "price")),
    ("complaint", ("complain", "complaint", "unacceptable", "disappointed", "angry", "rude",
                   "terrible")),
    ("warranty", ("warranty", "broken", "defect", "repair", "faulty", "replacement")),
)
_INTENTS = {"access": "access_problem", "general": "access_problem",
            "billing": "billing_question", "complaint": "complaint",
            "warranty": "warranty_claim"}
_URGENT = ("urgent", "asap", "immediately", "emergency")


def classify_text(text: str, tier: str | None = None) -> dict[str, str]:
    """The classification rule.

    >>> classify_text("I forgot my password, please send me a reset link", "gold")
    {'intent': 'self_service_reset', 'category': 'access', 'priority': 'high'}
    >>> classify_text("My invoice shows a double charge")["category"]
    'billing'
    """
    t = text.lower()
    category = next((c for c, words in CATEGORY_KEYWORDS if any(w in t for w in words)),
                    "general")
    if "forgot" in t or "reset link" in t:
        intent = "self_service_reset"
    else:
        intent = _INTENTS[category]
    priority = "high" if tier == "gold" or any(w in t for w in _URGENT) else "normal"
    return {"intent": intent, "category": category, "priority": priority}


@pure_action
def classify_request(inputs: Mapping[str, Any], ctx: ActionContext) -> dict[str, str]:
    tier = inputs.get("tier")
    return classify_text(str(inputs.get("text") or ""), str(tier) if tier is not None else None)


@pure_action
def send_reset_link(inputs: Mapping[str, Any], ctx: ActionContext) -> dict[str, Any]:
    return {"sent": True, "link_id": f"L-{ctx.case_id}", "to": inputs.get("to")}


def send_message(inputs: Mapping[str, Any], ctx: ActionContext) -> dict[str, Any]:
    return {k: inputs.get(k) for k in ("channel", "template", "subject", "body", "to")}


@pure_action
def set_fields(inputs: Mapping[str, Any], ctx: ActionContext) -> dict[str, Any]:
    return dict(inputs)


class KnowledgePort(Protocol):
    """What ``kb_lookup`` needs from a knowledge base."""

    def search(self, query: str, limit: int = 3) -> Sequence[Mapping[str, Any]]: ...


def kb_lookup(inputs: Mapping[str, Any], ctx: ActionContext) -> dict[str, Any]:
    port = ctx.ports.get("knowledge")
    if port is None:
        return {"found": False, "articles": []}
    hits = port.search(str(inputs.get("query") or ""), limit=int(inputs.get("limit", 3)))
    articles = [dict(h) for h in hits]
    return {"found": bool(articles), "articles": articles}


ACTIONS: Mapping[str, Callable[[Mapping[str, Any], ActionContext], Any]] = MappingProxyType({
    "classify_request": classify_request,
    "send_reset_link": send_reset_link,
    "send_message": send_message,
    "set_fields": set_fields,
    "kb_lookup": kb_lookup,
})
