"""Property tests: any text is a safe query, any file text either loads or raises SopErrors."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from engine.errors import SopErrors
from engine.knowledge.files import parse_article
from engine.knowledge.search import StatsCache, search
from engine.store.db import sessions

CACHE = StatsCache()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=3000))
def test_any_text_is_a_safe_query(sqlite_starter_ro: Engine, text: str) -> None:
    with sessions(sqlite_starter_ro)() as s:
        result = search(s, text, limit=3, cache=CACHE)
    assert len(result.hits) <= 3
    assert all(0.0 <= h.confidence <= 1.0 for h in result.hits)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400).map(lambda body: "---\n" + body))
def test_any_article_text_loads_or_raises_sop_errors(text: str) -> None:
    try:
        spec = parse_article(text, "fuzz.md")
    except SopErrors as exc:
        assert len(exc) >= 1
    else:
        assert spec.id and spec.body
