"""Feedback to product management: what customers contact us about, and which knowledge helped.

Contact reasons are the case's category (case data ``category``, else ``topic``, else the
classified ``intent``, else the SOP id) and ``product``; "solved with article" links come
from resolved cases: e-level attempts the customer confirmed (level e), articles linked on
completed human tasks and knowledge outcomes (their level).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from engine.reporting.context import ReportContext
from engine.reporting.derive import CaseView

__all__ = ["product_feedback"]


def _group(views: Sequence[CaseView], key: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for v in views:
        out[key(v)].append(v.f.id)
    return dict(sorted(out.items(), key=lambda kv: (-len(kv[1]), kv[0])))


def product_feedback(views: Sequence[CaseView], ctx: ReportContext) -> dict[str, Any]:
    """``{by_category, by_product, by_channel: {value: [case ids]}, trend: {period: {category: [ids]}},
    articles: {article: {level: [case ids]}}}``."""
    trend: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    articles: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    e_level = next((k for k, r in ctx.level_rank.items() if r == 0), "e")
    for v in views:
        trend[v.period][v.f.category].append(v.f.id)
        if not v.f.resolved:
            continue
        seen: set[tuple[str, str]] = set()
        if v.f.elevel == "confirmed" and v.f.elevel_article:
            seen.add((v.f.elevel_article, e_level))
        for t in v.f.tasks:
            if t.article and t.status in ("completed", "linked"):
                seen.add((t.article, t.level))
        for article, level in seen:
            articles[article][level].append(v.f.id)
    return {
        "by_category": _group(views, lambda v: v.f.category),
        "by_product": _group(views, lambda v: v.f.product),
        "by_channel": _group(views, lambda v: v.f.channel),
        "trend": {p: dict(c) for p, c in sorted(trend.items())},
        "articles": {a: dict(lv) for a, lv in sorted(articles.items(),
                                                     key=lambda kv: -sum(map(len, kv[1].values())))},
    }
