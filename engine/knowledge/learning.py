"""The learning loop: knowledge outcomes of resolutions, knowledge gaps and shift-left.

- ``record_outcome``: when level 2 or a specialist resolves and hands back, the task
  records what knowledge came of it: ``linked`` (an existing article), ``drafted`` (a new
  article, which goes to review) or ``none`` (with a reason). L1 and e-level completions
  may record ``linked`` too ("solved with article X").
- ``compute_gaps``: case categories that keep arriving without a good article: e-level
  attempts that were not confident, resolutions with knowledge outcome ``none``, and
  deep resolutions without a linked article, against the published articles per category.
- ``compute_shift_left``: per category, the share of this period's cases resolved at a
  lower level than the previous period's median level, plus both periods' level mix.

The two ``compute_*`` functions are pure (lists in, report rows out);
``iter_case_resolutions`` reads resolved cases from the case store.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session

from engine.errors import KnowledgeError
from engine.knowledge.model import ArticleStatus, OutcomeKind
from engine.store.models_knowledge import ArticleRow, ElevelAttemptRow, KnowledgeOutcomeRow

__all__ = [
    "LEVEL_RANK",
    "CaseResolution",
    "Gap",
    "case_category",
    "ShiftLeft",
    "compute_gaps",
    "compute_shift_left",
    "iter_case_resolutions",
    "published_per_category",
    "record_outcome",
    "sop_category",
    "sync_task_outcomes",
]

#: competence levels, shallow to deep (the organisation's levels.yaml uses these ids)
LEVEL_RANK: Mapping[str, int] = {"e": 0, "e-level": 0, "elevel": 0, "L1": 1, "L2": 2,
                                 "specialist": 3, "L3": 3}


def level_rank(level: str | None) -> int:
    return LEVEL_RANK.get(level or "L1", 1)


def record_outcome(session: Session, *, case_id: str, task_id: str, kind: OutcomeKind | str,
                   actor: str, at: datetime, article_id: str | None = None,
                   reason: str | None = None, level: str | None = None,
                   category: str | None = None) -> KnowledgeOutcomeRow:
    """Record (or replace) the knowledge outcome of one task completion.

    Raises:
        KnowledgeError: unknown kind, ``linked``/``drafted`` without an existing article,
            or ``none`` without a reason.
    """
    try:
        outcome = OutcomeKind(kind)
    except ValueError:
        raise KnowledgeError(f"unknown knowledge outcome {kind!r}",
                             hint="one of linked, drafted, none") from None
    if outcome in (OutcomeKind.LINKED, OutcomeKind.DRAFTED):
        if not article_id or session.get(ArticleRow, article_id) is None:
            raise KnowledgeError(f"knowledge outcome {outcome.value!r} names no existing article",
                                 article_id=article_id,
                                 hint="give the article id (careflow kb list)")
    elif not (reason and reason.strip()):
        raise KnowledgeError("knowledge outcome 'none' needs a reason",
                             hint="say why no article helps, e.g. 'one-off data fix'")
    row = session.scalars(select(KnowledgeOutcomeRow).where(
        KnowledgeOutcomeRow.case_id == case_id, KnowledgeOutcomeRow.task_id == task_id)).first()
    if row is None:
        row = KnowledgeOutcomeRow(case_id=case_id, task_id=task_id)
        session.add(row)
    row.kind, row.article_id, row.reason = outcome.value, article_id, reason
    row.level, row.category, row.actor, row.at = level, category, actor, at
    session.flush()
    return row


def sync_task_outcomes(session: Session) -> int:
    """Copy knowledge outcomes recorded on task completions (``human_tasks.knowledge``,
    e.g. ``careflow task complete --knowledge-article X``) into ``kb_knowledge_outcomes``.

    Idempotent (one row per case and task); outcomes naming an unknown article are kept
    with the article id but not validated. Returns the number of rows added.
    """
    tables = set(inspect(session.connection()).get_table_names())
    if "human_tasks" not in tables:
        return 0
    seen = {(r[0], r[1]) for r in session.execute(
        select(KnowledgeOutcomeRow.case_id, KnowledgeOutcomeRow.task_id)).all()}
    cats = _sop_categories(session) if "sop_versions" in tables else {}
    rows = session.execute(text(
        "SELECT t.id, t.case_id, t.level, t.knowledge, t.completed_by, t.completed_at, "
        "c.sop_hash, c.sop_id, s.state FROM human_tasks t JOIN cases c ON c.id = t.case_id "
        "LEFT JOIN case_states s ON s.case_id = c.id "
        "WHERE t.status = 'completed' AND t.knowledge IS NOT NULL")).all()
    added = 0
    for task_id, case_id, level, knowledge, actor, at, sop_hash, sop_id, state in rows:
        data = _json_value(knowledge)
        if (case_id, task_id) in seen or not isinstance(data, dict):
            continue
        kind, when = data.get("kind"), _as_datetime(at)
        if kind not in ("linked", "drafted", "none") or when is None:
            continue
        session.add(KnowledgeOutcomeRow(
            case_id=case_id, task_id=task_id, kind=kind, article_id=data.get("article"),
            reason=data.get("reason"), level=level,
            category=_category(state, cats.get(sop_hash), sop_id), actor=actor or "agent",
            at=when))
        added += 1
    session.flush()
    return added


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        import json

        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


@dataclass(frozen=True, slots=True)
class CaseResolution:
    """A resolved case: its category, the level that resolved it, and when."""

    case_id: str
    category: str
    level: str | None
    resolved_at: datetime


@dataclass(frozen=True, slots=True)
class Gap:
    """A category that lacks a good article, with the evidence."""

    category: str
    signals: int  # not-confident attempts + 'none' outcomes + deep resolutions without article
    low_confidence: int
    no_article_outcomes: int
    deep_unlinked: int
    published_articles: int
    examples: tuple[str, ...]


def compute_gaps(*, attempts: Iterable[tuple[str | None, str, str | None, str]],
                 outcomes: Iterable[tuple[str | None, str, str | None]],
                 resolutions: Iterable[CaseResolution], linked_cases: set[str],
                 published: Mapping[str, int], min_signals: int = 2) -> list[Gap]:
    """Rank categories by how often the knowledge base failed them.

    Args:
        attempts: (category, outcome, reason, query) of e-level attempts.
        outcomes: (category, kind, reason) of knowledge outcomes.
        resolutions: resolved cases; deep ones (L2 and deeper) without a linked article count.
        linked_cases: case ids whose resolution linked or drafted an article.
        published: published articles per category.
        min_signals: leave out categories with fewer signals.
    """
    low: Counter[str] = Counter()
    none: Counter[str] = Counter()
    deep: Counter[str] = Counter()
    examples: dict[str, list[str]] = defaultdict(list)
    for category, outcome, reason, query in attempts:
        if outcome == "escalated" and reason == "low_confidence":
            cat = category or "uncategorised"
            low[cat] += 1
            if len(examples[cat]) < 3:
                examples[cat].append(query[:120])
    for category, kind, _reason in outcomes:
        if kind == OutcomeKind.NONE:
            none[category or "uncategorised"] += 1
    for res in resolutions:
        if level_rank(res.level) >= 2 and res.case_id not in linked_cases:
            deep[res.category] += 1
    gaps = []
    for cat in set(low) | set(none) | set(deep):
        signals = low[cat] + none[cat] + deep[cat]
        if signals >= min_signals:
            gaps.append(Gap(cat, signals, low[cat], none[cat], deep[cat], published.get(cat, 0),
                            tuple(examples.get(cat, ()))))
    gaps.sort(key=lambda g: (-g.signals / (1 + g.published_articles), g.category))
    return gaps


@dataclass(frozen=True, slots=True)
class ShiftLeft:
    """Shift-left of one category between two periods."""

    category: str
    cases_previous: int
    cases_current: int
    median_level_previous: str | None
    mean_rank_previous: float | None
    mean_rank_current: float | None
    shift_left_share: float | None  # current cases resolved below the previous median level
    by_level_current: Mapping[str, int]


def _name_of_rank(rank: int) -> str:
    return {0: "e", 1: "L1", 2: "L2", 3: "specialist"}.get(rank, str(rank))


def compute_shift_left(previous: Sequence[CaseResolution],
                       current: Sequence[CaseResolution]) -> list[ShiftLeft]:
    """Per category: did this period resolve at lower levels than the previous one?"""
    prev_by: dict[str, list[int]] = defaultdict(list)
    cur_by: dict[str, list[CaseResolution]] = defaultdict(list)
    for r in previous:
        prev_by[r.category].append(level_rank(r.level))
    for r in current:
        cur_by[r.category].append(r)
    rows = []
    for cat in sorted(set(prev_by) | set(cur_by)):
        prev = prev_by.get(cat, [])
        cur = cur_by.get(cat, [])
        cur_ranks = [level_rank(r.level) for r in cur]
        median = statistics.median_low(prev) if prev else None
        share = (sum(1 for x in cur_ranks if x < median) / len(cur_ranks)
                 if median is not None and cur_ranks else None)
        rows.append(ShiftLeft(
            category=cat, cases_previous=len(prev), cases_current=len(cur),
            median_level_previous=_name_of_rank(median) if median is not None else None,
            mean_rank_previous=round(statistics.fmean(prev), 3) if prev else None,
            mean_rank_current=round(statistics.fmean(cur_ranks), 3) if cur_ranks else None,
            shift_left_share=round(share, 4) if share is not None else None,
            by_level_current=dict(Counter(_name_of_rank(x) for x in cur_ranks)),
        ))
    return rows


def _category_of_source(source: str | None) -> str | None:
    from engine.sop.loader import load_yaml_text  # only when the case store is read

    try:
        data = load_yaml_text(source or "", "<sop_versions>").data
    except Exception:  # noqa: BLE001 - a stored JSON spec or odd text: no category
        return None
    if isinstance(data, dict) and isinstance(data.get("category"), str):
        return str(data["category"])
    return None


def sop_category(session: Session, sop_hash: str) -> str | None:
    """The ``category`` of a stored SOP version (None when unknown)."""
    source = session.execute(text("SELECT source FROM sop_versions WHERE hash = :h"),
                             {"h": sop_hash}).scalar()
    return _category_of_source(source)


def case_state_row(session: Session, case_id: str) -> Any:
    """(state as the driver returns it, SOP hash, SOP id) of a case in the case store; None
    when there is no such case (a case not started yet has no state: None)."""
    return session.execute(text("SELECT s.state, c.sop_hash, c.sop_id FROM cases c LEFT JOIN "
                                "case_states s ON s.case_id = c.id WHERE c.id = :id"),
                           {"id": case_id}).first()


def case_category(session: Session, case_id: str | None) -> str | None:
    """The category of a case in the case store (case data, else its SOP); None if unknown."""
    if not case_id or "cases" not in set(inspect(session.connection()).get_table_names()):
        return None
    row = case_state_row(session, case_id)
    if row is None:
        return None
    return _category(row[0], sop_category(session, row[1]), row[2])


def _sop_categories(session: Session) -> dict[str, str]:
    """SOP version hash -> the SOP's ``category`` (read from the stored YAML)."""
    out: dict[str, str] = {}
    for sop_hash, source in session.execute(text("SELECT hash, source FROM sop_versions")).all():
        category = _category_of_source(source)
        if category:
            out[sop_hash] = category
    return out


def iter_case_resolutions(session: Session, *, since: datetime | None = None,
                          until: datetime | None = None) -> Iterator[CaseResolution]:
    """Resolved cases from the case store (``cases``); nothing when it does not exist yet.

    The category is the case data's ``category`` when set, else the SOP's ``category``.
    The resolving level is the deepest level whose human task the case completed (a case
    handed back to L1 after L2 fixed it was resolved by L2), ``e`` when no person worked
    on it. Without a case store, e-level attempts the customer confirmed count as e-level
    resolutions.
    """
    tables = set(inspect(session.connection()).get_table_names())
    if "cases" in tables and "sop_versions" in tables:
        cats = _sop_categories(session)
        worked = _deepest_task_levels(session) if "human_tasks" in tables else {}
        rows = session.execute(text(
            "SELECT c.id, c.sop_hash, c.level, c.ended_at, s.state, c.sop_id FROM cases c "
            "LEFT JOIN case_states s ON s.case_id = c.id "
            "WHERE c.status IN ('resolved', 'closed') AND c.ended_at IS NOT NULL")).all()
        for case_id, sop_hash, _level, ended_at, state, sop_id in rows:
            at = _as_datetime(ended_at)
            if at is None or (since and at < since) or (until and at >= until):
                continue
            yield CaseResolution(case_id, _category(state, cats.get(sop_hash), sop_id),
                                 worked.get(case_id, "e"), at)
        return
    stmt = select(ElevelAttemptRow).where(ElevelAttemptRow.outcome == "confirmed")
    for row in session.scalars(stmt):
        at = row.outcome_at or row.at
        if (since and at < since) or (until and at >= until):
            continue
        yield CaseResolution(row.case_id or f"attempt-{row.id}", row.category or "uncategorised",
                             "e", at)


def _deepest_task_levels(session: Session) -> dict[str, str]:
    out: dict[str, str] = {}
    rows = session.execute(text(
        "SELECT case_id, level FROM human_tasks WHERE status = 'completed'")).all()
    for case_id, level in rows:
        if case_id not in out or level_rank(level) > level_rank(out[case_id]):
            out[case_id] = level
    return out


def _as_datetime(value: Any) -> datetime | None:
    from datetime import UTC

    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _category(state: Any, sop_category: str | None, sop_id: str) -> str:
    if isinstance(state, str):
        import json

        try:
            state = json.loads(state)
        except ValueError:
            state = None
    data = state.get("data") if isinstance(state, dict) else None
    if isinstance(data, dict) and isinstance(data.get("category"), str):
        return str(data["category"])
    return sop_category or sop_id


def published_per_category(session: Session) -> dict[str, int]:
    rows = session.execute(select(ArticleRow.category, func.count()).where(
        ArticleRow.status == ArticleStatus.PUBLISHED).group_by(ArticleRow.category)).all()
    return {c: int(n) for c, n in rows}
