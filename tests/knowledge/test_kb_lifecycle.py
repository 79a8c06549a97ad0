"""Article lifecycle on a real SQLite file: versions, who did what, index follows the status."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from engine.errors import KnowledgeError
from engine.knowledge import repo
from engine.knowledge.model import ArticleSpec, ArticleStatus
from engine.knowledge.search import search
from engine.store.db import sessions

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

SPEC = ArticleSpec(id="loyalty-points.en", translation_of="loyalty-points",
                   title="Collect and redeem loyalty points",
                   body="You earn one loyalty point per euro. Redeem points at checkout.",
                   category="general", language="en", keywords=("bonus points",))


def ids(engine: Engine, query: str) -> list[str]:
    with sessions(engine)() as s:
        return [h.article_id for h in search(s, query, language="en").hits]


def test_draft_review_publish_retire_with_history(kb_engine: Engine) -> None:
    S = sessions(kb_engine)
    with S() as s, s.begin():
        repo.create_draft(s, SPEC, actor="anna", at=T0, submit=False)
    assert ids(kb_engine, "redeem loyalty points") == []  # drafts are not searchable
    with S() as s, s.begin():
        repo.transition(s, SPEC.id, "review", actor="anna", at=T0 + timedelta(minutes=1))
        repo.transition(s, SPEC.id, "published", actor="bert", at=T0 + timedelta(minutes=2),
                        note="checked with marketing")
    assert ids(kb_engine, "redeem loyalty points") == [SPEC.id]
    with S() as s, s.begin():
        repo.transition(s, SPEC.id, "retired", actor="carl", at=T0 + timedelta(days=1))
    assert ids(kb_engine, "redeem loyalty points") == []
    with S() as s:
        events = [(e.from_status, e.to_status, e.actor) for e in repo.events_of(s, SPEC.id)]
        row = repo.get_article(s, SPEC.id)
    assert events == [(None, "draft", "anna"), ("draft", "review", "anna"),
                      ("review", "published", "bert"), ("published", "retired", "carl")]
    assert row.status == "retired" and row.published_at is not None


def test_publishing_a_draft_directly_is_refused_with_a_hint(kb_engine: Engine) -> None:
    with sessions(kb_engine)() as s, s.begin():
        repo.create_draft(s, SPEC, actor="anna", at=T0, submit=False)
        with pytest.raises(KnowledgeError) as info:
            repo.transition(s, SPEC.id, ArticleStatus.PUBLISHED, actor="bert", at=T0)
    assert "cannot move from draft to published" in str(info.value)
    assert info.value.hint == f"submit it for review first: careflow kb review {SPEC.id}"


def test_unknown_article_and_missing_actor(kb_engine: Engine) -> None:
    with sessions(kb_engine)() as s, s.begin():
        repo.create_draft(s, SPEC, actor="anna", at=T0)
        with pytest.raises(KnowledgeError, match="no such article"):
            repo.get_article(s, "loyalty-pionts.en")
        with pytest.raises(KnowledgeError, match="an actor is required"):
            repo.transition(s, SPEC.id, "published", actor=" ", at=T0)


def test_reimport_makes_a_new_version_and_keeps_the_status(kb_engine: Engine) -> None:
    S = sessions(kb_engine)
    published = replace(SPEC, status=ArticleStatus.PUBLISHED)
    with S() as s, s.begin():
        first = repo.import_specs(s, [published], actor="import", at=T0)
        again = repo.import_specs(s, [published], actor="import", at=T0)
    assert (first.created, again.unchanged) == ([SPEC.id], [SPEC.id])
    with S() as s, s.begin():
        repo.transition(s, SPEC.id, "retired", actor="carl", at=T0 + timedelta(hours=1))
    changed = replace(published, body=published.body + " Points expire after two years.")
    with S() as s, s.begin():
        report = repo.import_specs(s, [changed], actor="import", at=T0 + timedelta(hours=2))
    with S() as s:
        row = repo.get_article(s, SPEC.id)
        versions = [v.version for v in repo.versions_of(s, SPEC.id)]
    assert report.updated == [SPEC.id]
    assert row.version == 2 and versions == [1, 2]
    assert row.status == "retired"  # re-importing never re-publishes
    assert "expire" in row.body


def test_search_sees_a_new_version_of_a_published_article(kb_engine: Engine) -> None:
    S = sessions(kb_engine)
    published = replace(SPEC, status=ArticleStatus.PUBLISHED)
    with S() as s, s.begin():
        repo.import_specs(s, [published], actor="import", at=T0)
    assert ids(kb_engine, "do points expire") == [SPEC.id]
    with S() as s, s.begin():
        repo.import_specs(s, [replace(published, body="Gift vouchers never expire.",
                                      title="Gift vouchers", keywords=())],
                          actor="import", at=T0 + timedelta(hours=1))
    assert ids(kb_engine, "loyalty points") == []
    assert ids(kb_engine, "gift vouchers") == [SPEC.id]
    with kb_engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM kb_search")).scalar()
    assert rows == 1


def test_drafts_obey_the_file_rules(kb_engine: Engine) -> None:
    with sessions(kb_engine)() as s, s.begin():
        with pytest.raises(KnowledgeError, match="larger than 256 KiB"):
            repo.create_draft(s, replace(SPEC, body="x" * 5_000_000), actor="a", at=T0)
        with pytest.raises(KnowledgeError, match="invalid article id"):
            repo.create_draft(s, replace(SPEC, id="Bad Id!"), actor="a", at=T0)
        with pytest.raises(KnowledgeError, match="unsupported language"):
            repo.create_draft(s, replace(SPEC, language="fr"), actor="a", at=T0)
        with pytest.raises(KnowledgeError, match="body is empty"):
            repo.create_draft(s, replace(SPEC, body="  "), actor="a", at=T0)


def test_reindex_rebuilds_the_whole_index(starter_engine: Engine) -> None:
    with sessions(starter_engine)() as s, s.begin():
        s.execute(text("DELETE FROM kb_search"))
    assert ids(starter_engine, "forgot password") == []
    with sessions(starter_engine)() as s, s.begin():
        assert repo.reindex_all(s) == 57
    assert ids(starter_engine, "forgot password")[0] == "password-reset.en"
    with starter_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM kb_search")).scalar() == 57
