"""Draft an article from a case: the customer's question plus the resolution, sent to review.

This is the learning loop's capture step: level 2 or a specialist resolved something the
knowledge base could not answer; the draft (status ``review``) keeps the question in the
customer's words (so future similar questions find it) and the resolution notes of the
case's completed tasks. Once a reviewer publishes it, level 1 sees it as a suggestion and
the e-level can answer with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from engine.errors import KnowledgeError
from engine.knowledge import learning, repo
from engine.knowledge.model import LANGUAGES, ArticleSpec, Audience, OutcomeKind
from engine.knowledge.text import detect_language
from engine.store.models_knowledge import ArticleRow

__all__ = ["CaseFacts", "draft_from_case", "read_case_facts", "slugify"]

#: case-data fields that hold the customer's question, in order of preference
QUESTION_FIELDS = ("question", "subject", "request_text", "body", "description", "message")
#: task form fields that hold how it was resolved
RESOLUTION_FIELDS = ("resolution", "answer", "fix_note", "note", "solution", "fix_outcome")


def slugify(title: str) -> str:
    """``"Error E-310 after update!"`` -> ``error-e-310-after-update``.

    >>> slugify("Fehler E-310 nach dem Update: was tun?")
    'fehler-e-310-nach-dem-update-was-tun'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", title.casefold()).strip("-")
    return slug[:80].rstrip("-") or "article"


class CaseFacts:
    """What the case store knows about a case for drafting."""

    def __init__(self, case_id: str, data: Mapping[str, Any], category: str | None,
                 resolutions: list[tuple[str, str | None, Mapping[str, Any]]]) -> None:
        self.case_id = case_id
        self.data = data
        self.category = category
        self.resolutions = resolutions  # (task id, level, fields) of completed tasks

    @property
    def question(self) -> str:
        parts = [str(self.data[f]) for f in QUESTION_FIELDS
                 if isinstance(self.data.get(f), str) and self.data[f].strip()]
        return "\n\n".join(dict.fromkeys(parts))

    @property
    def resolution(self) -> str:
        notes = []
        for _task, _level, fields in self.resolutions:
            notes += [str(fields[f]) for f in RESOLUTION_FIELDS
                      if isinstance(fields.get(f), str) and fields[f].strip()]
        return "\n\n".join(dict.fromkeys(notes))

    def level_of(self, task_id: str) -> str | None:
        return next((lv for t, lv, _ in self.resolutions if t == task_id), None)


def _task_level(session: Session, task_id: str) -> str | None:
    tables = set(inspect(session.connection()).get_table_names())
    if "human_tasks" not in tables:
        return None
    level = session.execute(text("SELECT level FROM human_tasks WHERE id = :id"),
                            {"id": task_id}).scalar()
    return str(level) if level is not None else None


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def read_case_facts(session: Session, case_id: str) -> CaseFacts:
    """Case data, category and completed tasks from the case store.

    Raises:
        KnowledgeError: the case store does not exist or has no such case.
    """
    tables = set(inspect(session.connection()).get_table_names())
    if "cases" not in tables:
        raise KnowledgeError(f"no case store in this database: cannot read case {case_id!r}")
    row = learning.case_state_row(session, case_id)
    if row is None:
        raise KnowledgeError(f"no such case {case_id!r}", hint="see 'careflow case list'")
    state = _json(row[0]) or {}
    data = state.get("data") if isinstance(state, dict) else None
    data = data if isinstance(data, dict) else {}
    category = data.get("category") if isinstance(data.get("category"), str) else None
    if category is None:
        category = learning.sop_category(session, row[1]) or row[2]
    tasks = session.execute(text(
        "SELECT id, level, fields FROM human_tasks WHERE case_id = :id AND status = 'completed' "
        "ORDER BY completed_at"), {"id": case_id}).all() if "human_tasks" in tables else []
    resolutions = [(t[0], t[1], _json(t[2]) or {}) for t in tasks]
    return CaseFacts(case_id, data, category, resolutions)


def draft_from_case(session: Session, case_id: str, *, title: str, actor: str, at: datetime,
                    body: str | None = None, task_id: str | None = None,
                    article_id: str | None = None, language: str | None = None,
                    category: str | None = None, keywords: tuple[str, ...] = ()) -> ArticleRow:
    """Create a draft from the case and submit it for review.

    With ``task_id`` the draft is also recorded as that task's knowledge outcome
    (``drafted``), so the learning loop can count it.

    Raises:
        KnowledgeError: unknown case, empty title/body, unsupported language, id taken.
    """
    facts = read_case_facts(session, case_id)
    if not title.strip():
        raise KnowledgeError("a draft needs a title", hint="pass --title")
    question = facts.question
    lang = language or detect_language(f"{title}\n{question}").language
    if lang not in LANGUAGES:
        raise KnowledgeError(f"unsupported language {lang!r}", hint=f"one of {', '.join(LANGUAGES)}")
    text_body = body or _default_body(lang, question, facts.resolution)
    if not text_body.strip():
        raise KnowledgeError(f"case {case_id} has no question or resolution text to draft from",
                             hint="pass --body")
    base = article_id or f"{slugify(title)}.{lang}"
    final_id, n = base, 2
    while session.get(ArticleRow, final_id) is not None and article_id is None:
        final_id, n = f"{base.removesuffix('.' + lang)}-{n}.{lang}", n + 1
    spec = ArticleSpec(id=final_id, translation_of=final_id.removesuffix(f".{lang}"),
                       title=title.strip(), body=text_body, category=category or
                       facts.category or "general", language=lang, keywords=keywords,
                       audience=Audience.PUBLIC)
    row = repo.create_draft(session, spec, actor=actor, at=at, source_case_id=case_id)
    if task_id:
        learning.record_outcome(session, case_id=case_id, task_id=task_id,
                                kind=OutcomeKind.DRAFTED, actor=actor, at=at, article_id=row.id,
                                level=facts.level_of(task_id) or _task_level(session, task_id),
                                category=spec.category)
    return row


_HEADINGS = {"en": ("Question", "Answer"), "nl": ("Vraag", "Antwoord"),
             "de": ("Frage", "Antwort")}


def _default_body(language: str, question: str, resolution: str) -> str:
    if not resolution:
        return ""
    q, a = _HEADINGS[language]
    parts = [f"**{q}:** {question}"] if question else []
    parts.append(f"**{a}:** {resolution}")
    return "\n\n".join(parts)
