"""Knowledge actions for SOPs: ``kb_answer``, ``kb_outcome``, ``kb_suggest`` and ``kb_lookup``.

Registered through the ``careflow.actions`` entry-point group
(``knowledge = "engine.knowledge.actions:ACTIONS"``). Each is a callable
``(inputs, ctx) -> result``; ``ctx`` carries ``case_id``, ``node``, ``idempotency_key``,
``now`` and ``ports``. The database is reached only through ``ctx.ports["knowledge"]`` (an
engine.knowledge.port.KnowledgePort); without it an action fails for good
(``ActionFailed(retryable=False)``) with a message naming the missing port.

E-level pattern in an SOP (see docs/knowledge.md)::

    answer:  {type: action, action: kb_answer, inputs: {query: ..., threshold: 0.6}}
    decide:  result.confident ? send the reply and wait : escalate with result.suggestions
    wait:    customer reply -> kb_outcome {reply: ...}; timeout -> kb_outcome {outcome: potential}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from engine.errors import ActionFailed, KnowledgeError
from engine.knowledge.elevel import DEFAULT_THRESHOLD, classify_feedback
from engine.knowledge.port import KnowledgePort, customer_language

__all__ = ["ACTIONS", "kb_answer", "kb_lookup", "kb_outcome", "kb_suggest"]


def _ctx(ctx: Any) -> dict[str, Any]:
    return {"case_id": getattr(ctx, "case_id", None), "node_id": getattr(ctx, "node", None),
            "attempt": getattr(ctx, "attempt", None)}


def _port(ctx: Any) -> KnowledgePort:
    ports = getattr(ctx, "ports", None) or {}
    port = ports.get("knowledge") if isinstance(ports, Mapping) else None
    if port is None:
        raise ActionFailed(
            "no knowledge port: the runtime must pass ports['knowledge'] = "
            "engine.knowledge.port.KnowledgePort(session_factory)", retryable=False, **_ctx(ctx))
    return port  # type: ignore[no-any-return]


def _query(inputs: Mapping[str, Any], ctx: Any, action: str) -> str:
    parts = [inputs.get(k) for k in ("query", "text", "subject", "body")]
    bad = [p for p in parts if p is not None and not isinstance(p, str)]
    if bad:
        raise ActionFailed(f"{action}: inputs query/text/subject/body must be strings, got "
                           f"{type(bad[0]).__name__}", retryable=False, **_ctx(ctx))
    return "\n".join(p for p in parts if p)


def _threshold(inputs: Mapping[str, Any], ctx: Any) -> float:
    value = inputs.get("threshold", DEFAULT_THRESHOLD)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ActionFailed(f"kb_answer threshold must be a number between 0 and 1, got {value!r}",
                           retryable=False, **_ctx(ctx))
    return float(value)


def _opt_str(inputs: Mapping[str, Any], key: str) -> str | None:
    value = inputs.get(key)
    return value if isinstance(value, str) and value else None


def _guard(ctx: Any, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except KnowledgeError as exc:
        raise ActionFailed(str(exc), retryable=False, **_ctx(ctx)) from exc
    except SQLAlchemyError as exc:
        raise ActionFailed(f"knowledge base unavailable: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:200]}", retryable=True,
                           **_ctx(ctx)) from exc


def kb_answer(inputs: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
    """Answer a concern at the e-level when the match is confident; record the attempt.

    Inputs: ``query`` (or ``subject``/``body``/``text``), ``category``?, ``language``?,
    ``threshold``? (default engine.knowledge.elevel.DEFAULT_THRESHOLD).

    Returns: ``{confident, score, threshold, article_id, title, answer_text, reply_text,
    language, suggestions, truncated}``.
    """
    port = _port(ctx)
    query, threshold = _query(inputs, ctx, "kb_answer"), _threshold(inputs, ctx)
    key = getattr(ctx, "idempotency_key", None) or f"{getattr(ctx, 'case_id', '')}:kb_answer"
    answer = _guard(ctx, lambda: port.answer(
        query, at=ctx.now, idempotency_key=key, category=_opt_str(inputs, "category"),
        language=_opt_str(inputs, "language"), threshold=threshold,
        case_id=getattr(ctx, "case_id", None), node=getattr(ctx, "node", None)))
    return answer.as_result()  # type: ignore[no-any-return]


def kb_suggest(inputs: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
    """Suggested articles for a case (agent assist; internal articles included).

    Inputs: ``subject``/``body``/``query``, ``category``?, ``limit``? (1..10, default 3),
    ``public_only``? (default false).

    Returns: ``{suggestions: [ids], hits: [{article_id, title, language, confidence}]}``.
    """
    port = _port(ctx)
    limit = inputs.get("limit", 3)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10:
        raise ActionFailed(f"kb_suggest limit must be an integer 1..10, got {limit!r}",
                           retryable=False, **_ctx(ctx))
    subject = _query(inputs, ctx, "kb_suggest")
    hits = _guard(ctx, lambda: port.suggest_for_case(
        subject, "", _opt_str(inputs, "category"), limit=limit,
        public_only=bool(inputs.get("public_only", False))))
    return {"suggestions": [h.article_id for h in hits],
            "hits": [{"article_id": h.article_id, "title": h.title, "language": h.language,
                      "confidence": h.confidence} for h in hits]}


def kb_lookup(inputs: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
    """Look up public articles without recording an e-level attempt (replaces the built-in).

    Inputs: ``query``, ``language``?, ``category``?, ``limit``? (1..10, default 3).

    Returns: ``{found, articles: [{article_id, title, language, confidence}], confidence,
    article_id, title, answer, language, suggestions}``: ``answer`` is the top article's
    plain text in the query's language, ``confidence`` its confidence in [0, 1].
    """
    port = _port(ctx)
    limit = inputs.get("limit", 3)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10:
        raise ActionFailed(f"kb_lookup limit must be an integer 1..10, got {limit!r}",
                           retryable=False, **_ctx(ctx))
    query = _query(inputs, ctx, "kb_lookup")

    def run() -> dict[str, Any]:
        language = customer_language(query, _opt_str(inputs, "language"))
        result = port.search(query, language=language,
                             category=_opt_str(inputs, "category"), public_only=True,
                             limit=limit)
        articles = [{"article_id": h.article_id, "title": h.title, "language": h.language,
                     "confidence": h.confidence} for h in result.hits]
        out: dict[str, Any] = {"found": bool(articles), "articles": articles,
                               "suggestions": [a["article_id"] for a in articles],
                               "confidence": 0.0, "language": result.query.language}
        if result.top is not None:
            title, text, lang = port.article_text(result.top.article_id)
            out.update(confidence=result.top.confidence, article_id=result.top.article_id,
                       title=title, answer=f"{title}\n\n{text}", language=lang)
        return out

    return _guard(ctx, run)  # type: ignore[no-any-return]


_OUTCOME_OF_REPLY = {"yes": "confirmed", "no": "escalated", "unclear": "escalated"}


def kb_outcome(inputs: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
    """Decide the case's pending e-level attempt.

    Inputs: either ``outcome`` (confirmed | potential | escalated) or ``reply`` (the
    customer's answer, classified yes / no / unclear in en, nl, de).

    Returns: ``{outcome, solved, feedback}`` (``solved`` is True only when confirmed).
    """
    port = _port(ctx)
    reply, outcome = inputs.get("reply"), inputs.get("outcome")
    feedback = None
    if outcome is None:
        if not isinstance(reply, str):
            raise ActionFailed("kb_outcome needs 'outcome' or a text 'reply'", retryable=False,
                               **_ctx(ctx))
        feedback = classify_feedback(reply)
        outcome = _OUTCOME_OF_REPLY[feedback]
    if outcome not in ("confirmed", "potential", "escalated"):
        raise ActionFailed(f"kb_outcome outcome must be confirmed, potential or escalated, got "
                           f"{outcome!r}", retryable=False, **_ctx(ctx))
    case_id = getattr(ctx, "case_id", None)
    if not case_id:
        raise ActionFailed("kb_outcome needs the case id in its context", retryable=False)
    reason = None if feedback is None else f"customer replied ({feedback})"
    _guard(ctx, lambda: port.record_attempt_outcome(case_id, outcome, at=ctx.now, reason=reason))
    return {"outcome": outcome, "solved": outcome == "confirmed", "feedback": feedback}


ACTIONS: Mapping[str, Callable[[Mapping[str, Any], Any], Any]] = {
    "kb_answer": kb_answer,
    "kb_suggest": kb_suggest,
    "kb_lookup": kb_lookup,
    "kb_outcome": kb_outcome,
}
