"""Retrieval evaluation: recall@k and MRR of the search over a labelled question set.

The set is YAML (``tests/knowledge/eval_questions.yaml``)::

    questions:
      - {lang: en, q: "I forgot my password", answers: [password-reset.en]}

A question counts for recall@k when any of its answering articles is among the top k;
its reciprocal rank is 1/rank of the first answering article (0 when none is in the top 10).
Questions are searched without telling the search their language, so detection is tested too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from engine.errors import KnowledgeError
from engine.knowledge.search import StatsCache, search

__all__ = ["EvalQuestion", "Metrics", "ThresholdRow", "evaluate", "load_eval_set", "load_off_topic",
           "threshold_table"]


@dataclass(frozen=True, slots=True)
class EvalQuestion:
    language: str
    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Metrics:
    """Figures for one slice of the set (a language, or all)."""

    questions: int
    recall_at_1: float
    recall_at_3: float
    mrr: float
    misses: tuple[tuple[str, tuple[str, ...]], ...]  # (question, top-3 ids) not found in top 3


def load_eval_set(path: str | Path) -> list[EvalQuestion]:
    """Read the labelled questions (safe YAML loader, the same caps as SOPs).

    Raises:
        KnowledgeError: the file does not have the expected shape.
    """
    from engine.sop.loader import load_yaml_file

    data = load_yaml_file(path).data
    items = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise KnowledgeError(f"{path}: expected a mapping with a 'questions' list")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(EvalQuestion(str(item["lang"]), str(item["q"]),
                                    tuple(str(a) for a in item["answers"])))
        except (KeyError, TypeError) as exc:
            raise KnowledgeError(f"{path}: question {i} needs lang, q and answers") from exc
    return out


def load_off_topic(path: str | Path) -> list[str]:
    """The ``off_topic`` questions (nothing in the starter base answers them)."""
    from engine.sop.loader import load_yaml_file

    data = load_yaml_file(path).data
    items = data.get("off_topic", []) if isinstance(data, dict) else []
    return [str(i["q"]) for i in items if isinstance(i, dict) and "q" in i]


@dataclass(frozen=True, slots=True)
class ThresholdRow:
    """What the e-level would do at one confidence threshold."""

    threshold: float
    answered_correctly: float  # share of labelled questions answered with a right article
    answered_wrongly: int  # labelled questions answered with a wrong article
    off_topic_answered: int  # off-topic questions answered at all


def threshold_table(session: Session, questions: Sequence[EvalQuestion],
                    off_topic: Sequence[str],
                    thresholds: Sequence[float] = (0.4, 0.5, 0.55, 0.6, 0.7)) -> list[ThresholdRow]:
    """E-level behaviour per threshold (public articles only, as the e-level searches)."""
    cache = StatsCache()
    scored: list[tuple[bool, float]] = []
    for q in questions:
        top = search(session, q.question, public_only=True, limit=3, cache=cache).top
        scored.append((top is not None and top.article_id in q.answers,
                       top.confidence if top else 0.0))
    off = []
    for text in off_topic:
        top = search(session, text, public_only=True, limit=3, cache=cache).top
        off.append(top.confidence if top else 0.0)
    n = max(len(questions), 1)
    return [ThresholdRow(th, round(sum(1 for ok, c in scored if ok and c >= th) / n, 4),
                         sum(1 for ok, c in scored if not ok and c >= th),
                         sum(1 for c in off if c >= th)) for th in thresholds]


def _slice(ranks: Sequence[tuple[EvalQuestion, int | None, tuple[str, ...]]]) -> Metrics:
    n = len(ranks)
    if n == 0:
        return Metrics(0, 0.0, 0.0, 0.0, ())
    r1 = sum(1 for _, r, _ in ranks if r is not None and r <= 1) / n
    r3 = sum(1 for _, r, _ in ranks if r is not None and r <= 3) / n
    mrr = sum(1 / r for _, r, _ in ranks if r is not None) / n
    misses = tuple((q.question, top) for q, r, top in ranks if r is None or r > 3)
    return Metrics(n, round(r1, 4), round(r3, 4), round(mrr, 4), misses)


def evaluate(session: Session, questions: Sequence[EvalQuestion], *,
             public_only: bool = False) -> dict[str, Metrics]:
    """Search every question; metrics per language and for ``all``."""
    cache = StatsCache()
    ranks: dict[str, list[tuple[EvalQuestion, int | None, tuple[str, ...]]]] = defaultdict(list)
    for q in questions:
        hits = search(session, q.question, public_only=public_only, limit=10, cache=cache).hits
        ids = [h.article_id for h in hits]
        rank = next((i + 1 for i, a in enumerate(ids) if a in q.answers), None)
        entry = (q, rank, tuple(ids[:3]))
        ranks[q.language].append(entry)
        ranks["all"].append(entry)
    return {lang: _slice(rows) for lang, rows in sorted(ranks.items())}
