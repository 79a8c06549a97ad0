"""The learning loop's rules: knowledge outcomes, gaps and shift-left (pure and on SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from engine.errors import KnowledgeError
from engine.knowledge.learning import (
    CaseResolution,
    compute_gaps,
    compute_shift_left,
    record_outcome,
)
from engine.store.db import sessions

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def res(case: str, category: str, level: str, days: int = 0) -> CaseResolution:
    return CaseResolution(case, category, level, T0 + timedelta(days=days))


def test_outcomes_are_validated_and_idempotent(starter_engine: Engine) -> None:
    with sessions(starter_engine)() as s, s.begin():
        with pytest.raises(KnowledgeError, match="needs a reason"):
            record_outcome(s, case_id="c", task_id="t", kind="none", actor="a", at=T0)
        with pytest.raises(KnowledgeError, match="names no existing article"):
            record_outcome(s, case_id="c", task_id="t", kind="linked", actor="a", at=T0,
                           article_id="nope.en")
        with pytest.raises(KnowledgeError, match="unknown knowledge outcome"):
            record_outcome(s, case_id="c", task_id="t", kind="maybe", actor="a", at=T0)
        record_outcome(s, case_id="c", task_id="t", kind="none", actor="a", at=T0,
                       reason="one-off data correction")
        row = record_outcome(s, case_id="c", task_id="t", kind="linked", actor="a", at=T0,
                             article_id="refund-status.en", level="L1", category="billing")
    assert (row.kind, row.article_id, row.reason) == ("linked", "refund-status.en", None)


def test_gaps_rank_categories_the_knowledge_base_failed() -> None:
    attempts = [("warranty", "escalated", "low_confidence", "my blender smokes")] * 3 + [
        ("billing", "escalated", "low_confidence", "crypto payment?"),
        ("billing", "confirmed", None, "invoice copy"),
        ("general", "escalated", "customer replied (no)", "opening hours")]
    outcomes = [("warranty", "none", "new model, no docs yet"), ("billing", "linked", None)]
    resolutions = [res("c1", "warranty", "L2"), res("c2", "warranty", "specialist"),
                   res("c3", "billing", "L2"), res("c4", "general", "L1")]
    gaps = compute_gaps(attempts=attempts, outcomes=outcomes, resolutions=resolutions,
                        linked_cases={"c3"}, published={"warranty": 2, "billing": 5},
                        min_signals=2)
    assert [g.category for g in gaps] == ["warranty"]
    g = gaps[0]
    assert (g.low_confidence, g.no_article_outcomes, g.deep_unlinked) == (3, 1, 2)
    assert g.examples == ("my blender smokes",) * 3


def test_shift_left_compares_with_the_previous_median_level() -> None:
    previous = [res("p1", "billing", "L2"), res("p2", "billing", "L2"),
                res("p3", "billing", "L1"), res("p4", "access", "L1")]
    current = [res("n1", "billing", "e", 90), res("n2", "billing", "L1", 91),
               res("n3", "billing", "L2", 92), res("n4", "access", "L1", 90),
               res("n5", "warranty", "L2", 90)]
    rows = {r.category: r for r in compute_shift_left(previous, current)}
    billing = rows["billing"]
    assert billing.median_level_previous == "L2"
    assert billing.shift_left_share == pytest.approx(2 / 3, abs=1e-4)
    assert billing.by_level_current == {"e": 1, "L1": 1, "L2": 1}
    assert billing.mean_rank_current < billing.mean_rank_previous
    assert rows["access"].shift_left_share == 0.0
    assert rows["warranty"].shift_left_share is None  # nothing to compare with
