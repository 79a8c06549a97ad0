"""Merging two customers and undoing it, with a full audit trail.

``merge(a, b)`` keeps ``a`` (the survivor) and moves ``b``'s identifiers, interactions,
cases and organisation links to it; ``b`` is kept as a ``merged`` customer pointing at
``a`` (nothing is deleted). The ``customer_merges`` row records the id of every row that
moved, so ``unmerge`` moves exactly those back -- the anchors' pain (Zammad #531, FreeScout
#2188, Chatwoot #2811) is merges that lose data and cannot be undone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.crm.customers import CrmError, active_id
from engine.store.models_crm import (
    CustomerOrganisationRow,
    CustomerRow,
    IdentifierRow,
    InteractionRow,
    MergeRow,
    MergeSuggestionRow,
)

__all__ = ["dismiss_suggestion", "merge", "unmerge"]


def _cases_table() -> Any:
    from engine.store.models import CaseRow

    return CaseRow.__table__


def _move_identifiers(session: Session, survivor: str, merged: str) -> list[int]:
    mine = {
        (r.kind, r.value)
        for r in session.scalars(select(IdentifierRow).where(IdentifierRow.customer_id == survivor))
    }
    moved = []
    for row in session.scalars(select(IdentifierRow).where(IdentifierRow.customer_id == merged)):
        if (row.kind, row.value) in mine:
            continue  # the survivor has it already; the merged row stays (and still resolves)
        row.customer_id = survivor
        moved.append(row.id)
    return moved


def _move_orgs(session: Session, survivor: str, merged: str) -> list[int]:
    mine = set(
        session.scalars(
            select(CustomerOrganisationRow.organisation_id).where(
                CustomerOrganisationRow.customer_id == survivor
            )
        )
    )
    moved = []
    for row in session.scalars(
        select(CustomerOrganisationRow).where(CustomerOrganisationRow.customer_id == merged)
    ):
        if row.organisation_id not in mine:
            row.customer_id = survivor
            moved.append(row.id)
    return moved


def merge(
    session: Session, survivor_id: str, merged_id: str, *, actor: str, reason: str, now: datetime
) -> int:
    """Merge ``merged_id`` into ``survivor_id``; returns the merge id (for unmerge).

    Raises:
        CrmError: unknown customer, the same customer twice, or ``merged_id`` already merged.
    """
    if not reason.strip():
        raise CrmError("a merge needs a reason", customer_id=merged_id)
    survivor = session.get(CustomerRow, survivor_id)
    merged = session.get(CustomerRow, merged_id)
    if survivor is None or merged is None:
        raise CrmError(
            "no such customer", customer_id=survivor_id if survivor is None else merged_id
        )
    if merged.status == "merged":
        raise CrmError(f"already merged into {merged.merged_into}", customer_id=merged_id)
    if survivor.status == "merged":
        raise CrmError(
            f"survivor was merged into {active_id(session, survivor_id)}; merge into that one",
            customer_id=survivor_id,
        )
    if survivor_id == merged_id:
        raise CrmError("cannot merge a customer with itself", customer_id=merged_id)
    identifiers = _move_identifiers(session, survivor_id, merged_id)
    interactions = list(
        session.scalars(select(InteractionRow.id).where(InteractionRow.customer_id == merged_id))
    )
    if interactions:
        session.execute(
            update(InteractionRow)
            .where(InteractionRow.id.in_(interactions))
            .values(customer_id=survivor_id)
        )
    cases_t = _cases_table()
    cases: list[str] = list(
        session.execute(select(cases_t.c.id).where(cases_t.c.customer_id == merged_id)).scalars()
    )
    if cases:
        session.execute(
            update(cases_t).where(cases_t.c.id.in_(cases)).values(customer_id=survivor_id)
        )
    orgs = _move_orgs(session, survivor_id, merged_id)
    merged.status, merged.merged_into, merged.updated_at = "merged", survivor_id, now
    survivor.updated_at = now
    if not survivor.display_name and merged.display_name:
        survivor.display_name = merged.display_name
    row = MergeRow(
        survivor_id=survivor_id,
        merged_id=merged_id,
        actor=actor,
        reason=reason,
        moved={
            "identifiers": identifiers,
            "interactions": interactions,
            "cases": cases,
            "organisations": orgs,
        },
        merged_at=now,
    )
    session.add(row)
    for s in session.scalars(
        select(MergeSuggestionRow).where(
            MergeSuggestionRow.status == "open",
            MergeSuggestionRow.customer_a.in_([survivor_id, merged_id]),
            MergeSuggestionRow.customer_b.in_([survivor_id, merged_id]),
        )
    ):
        s.status, s.decided_at, s.decided_by = "merged", now, actor
    session.flush()
    return row.id


def unmerge(
    session: Session, merge_id: int, *, actor: str, now: datetime, reason: str = ""
) -> MergeRow:
    """Undo merge ``merge_id``: what moved moves back, the merged customer is active again.

    Raises:
        CrmError: no such merge, or it was already undone.
    """
    row = session.get(MergeRow, merge_id)
    if row is None:
        raise CrmError(f"no merge with id {merge_id}")
    if row.undone_at is not None:
        raise CrmError(
            f"merge {merge_id} was already undone at {row.undone_at.isoformat()} "
            f"by {row.undone_by}",
            customer_id=row.merged_id,
        )
    moved = row.moved or {}
    back = row.merged_id
    if moved.get("identifiers"):
        session.execute(
            update(IdentifierRow)
            .where(IdentifierRow.id.in_(moved["identifiers"]))
            .values(customer_id=back)
        )
    if moved.get("interactions"):
        session.execute(
            update(InteractionRow)
            .where(InteractionRow.id.in_(moved["interactions"]))
            .values(customer_id=back)
        )
    if moved.get("cases"):
        cases_t = _cases_table()
        session.execute(
            update(cases_t).where(cases_t.c.id.in_(moved["cases"])).values(customer_id=back)
        )
    if moved.get("organisations"):
        session.execute(
            update(CustomerOrganisationRow)
            .where(CustomerOrganisationRow.id.in_(moved["organisations"]))
            .values(customer_id=back)
        )
    merged = session.get(CustomerRow, back)
    assert merged is not None  # FK
    merged.status, merged.merged_into, merged.updated_at = "active", None, now
    row.undone_at, row.undone_by, row.undo_reason = now, actor, reason or None
    session.flush()
    return row


def dismiss_suggestion(session: Session, suggestion_id: int, *, actor: str, now: datetime) -> None:
    """Mark a merge suggestion as not the same person."""
    row = session.get(MergeSuggestionRow, suggestion_id)
    if row is None:
        raise CrmError(f"no merge suggestion with id {suggestion_id}")
    row.status, row.decided_at, row.decided_by = "dismissed", now, actor
    session.flush()
