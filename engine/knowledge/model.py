"""Knowledge values as frozen data: articles, their lifecycle, search hits and answers.

The lifecycle is a table (``TRANSITIONS``): draft -> review -> published -> retired, with
review -> draft (changes requested), published -> review (a new version is proposed) and
retired -> draft (revived). Who did what is recorded by engine.knowledge.repo.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from engine.errors import SourceSpan

__all__ = [
    "LANGUAGES",
    "TRANSITIONS",
    "Answer",
    "ArticleSpec",
    "ArticleStatus",
    "Audience",
    "AttemptOutcome",
    "OutcomeKind",
    "SearchHit",
]

#: supported article and query languages (ISO 639-1)
LANGUAGES = ("en", "nl", "de")


class ArticleStatus(StrEnum):
    DRAFT = "draft"
    REVIEW = "review"
    PUBLISHED = "published"
    RETIRED = "retired"


class Audience(StrEnum):
    PUBLIC = "public"  # may be sent to customers (e-level)
    INTERNAL = "internal"  # agents only (suggestions at L1 and deeper)


class AttemptOutcome(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    POTENTIAL = "potential"
    ESCALATED = "escalated"


class OutcomeKind(StrEnum):
    LINKED = "linked"
    DRAFTED = "drafted"
    NONE = "none"


S = ArticleStatus
TRANSITIONS: Mapping[ArticleStatus, frozenset[ArticleStatus]] = MappingProxyType(
    {
        S.DRAFT: frozenset({S.REVIEW, S.RETIRED}),
        S.REVIEW: frozenset({S.PUBLISHED, S.DRAFT, S.RETIRED}),
        S.PUBLISHED: frozenset({S.RETIRED, S.REVIEW}),
        S.RETIRED: frozenset({S.DRAFT}),
    }
)


@dataclass(frozen=True, slots=True)
class ArticleSpec:
    """An article as authored (a Markdown file with front matter, or a draft from a case).

    Attributes:
        id: stable id, e.g. ``password-reset.en``.
        translation_of: id shared by the translations of one article, e.g. ``password-reset``.
        title / body: the text; ``body`` is Markdown (rendered with raw HTML disabled).
        category: the case category it answers (``access``, ``billing``, ...).
        products: products it applies to (empty: all).
        keywords: extra search terms (synonyms, compounds, how customers phrase it).
        span: where the article was written (file, line 1) for error messages.
    """

    id: str
    translation_of: str
    title: str
    body: str
    category: str
    language: str
    products: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    audience: Audience = Audience.PUBLIC
    status: ArticleStatus = ArticleStatus.DRAFT
    span: SourceSpan | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One ranked search result.

    Attributes:
        score: the backend's raw rank (FTS5 ``-bm25``, PostgreSQL ``ts_rank``): comparable
            only within one search.
        confidence: in [0, 1], comparable across searches (engine.knowledge.confidence).
    """

    article_id: str
    translation_of: str
    title: str
    language: str
    category: str
    audience: str
    score: float
    confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class Answer:
    """What the e-level makes of one concern: confident or not, the best article, suggestions."""

    confident: bool
    score: float
    threshold: float
    language: str
    article_id: str | None = None
    title: str = ""
    answer_text: str = ""
    reply_text: str = ""
    suggestions: tuple[str, ...] = ()
    truncated: bool = False

    def as_result(self) -> dict[str, object]:
        """The action result an SOP sees (``result.confident``, ``result.article_id`` ...)."""
        return {
            "confident": self.confident,
            "score": round(self.score, 4),
            "threshold": self.threshold,
            "article_id": self.article_id,
            "title": self.title,
            "answer_text": self.answer_text,
            "reply_text": self.reply_text,
            "language": self.language,
            "suggestions": list(self.suggestions),
            "truncated": self.truncated,
        }
