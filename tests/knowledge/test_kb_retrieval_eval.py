"""The labelled evaluation set, and the retrieval quality on both databases (target recall@3 >= 0.9)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import Engine

from engine.knowledge.evaluate import evaluate, load_eval_set
from engine.knowledge.files import load_article_folder
from engine.store.db import sessions

HERE = Path(__file__).resolve().parent
EVAL = HERE / "eval_questions.yaml"
KB_DIR = HERE.parents[1] / "sop_definitions" / "knowledge"


def test_the_evaluation_set_is_large_labelled_and_consistent() -> None:
    questions = load_eval_set(EVAL)
    assert len(questions) >= 200
    per_lang = Counter(q.language for q in questions)
    assert set(per_lang) == {"en", "nl", "de"} and min(per_lang.values()) >= 60
    known = {s.id: s.language for s in load_article_folder(KB_DIR)}
    for q in questions:
        assert q.answers, q
        for answer in q.answers:
            assert known.get(answer) == q.language, (q.question, answer)
    assert len({q.question for q in questions}) == len(questions)  # no duplicates


def test_recall_at_3_and_mrr_on_each_backend(starter_ro: Engine) -> None:
    questions = load_eval_set(EVAL)
    with sessions(starter_ro)() as s:
        metrics = evaluate(s, questions)
    assert metrics["all"].questions == len(questions)
    for lang in ("en", "nl", "de", "all"):
        m = metrics[lang]
        assert m.recall_at_3 >= 0.9, (lang, m.recall_at_3, m.misses)
        assert m.mrr >= 0.85, (lang, m.mrr)
