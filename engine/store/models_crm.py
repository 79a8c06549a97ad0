"""The CRM's tables: customers, organisations, typed identifiers, merges, suggestions, timeline.

Identity is a graph: a customer has many typed identifiers (e-mail, E.164 phone, social
handle, customer number), each with its source, verification level and timestamps.
Merging never deletes: the merged customer gets ``merged_into`` and its identifiers,
interactions, cases and organisation links move to the survivor; the ``customer_merges``
row records exactly what moved, so ``unmerge`` moves exactly that back.

``interactions`` is the one timeline: every inbound and outbound contact on every channel,
with the case it belongs to (if any) and the correlation rule that tied it there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base
from engine.store.models import UtcDateTime

__all__ = [
    "CustomerOrganisationRow",
    "CustomerRow",
    "IdentifierRow",
    "InteractionRow",
    "MergeRow",
    "MergeSuggestionRow",
    "OrganisationRow",
]


class CustomerRow(Base):
    """A person the organisation serves; ``merged_into`` set when merged into another."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(300), default="")
    tier: Mapped[str] = mapped_column(String(40), default="standard")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | merged
    merged_into: Mapped[str | None] = mapped_column(String(40), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrganisationRow(Base):
    """A company or household customers belong to (many-to-many)."""

    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CustomerOrganisationRow(Base):
    """Membership: a consultant may serve several organisations."""

    __tablename__ = "customer_organisations"
    __table_args__ = (UniqueConstraint("customer_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), index=True)
    role: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IdentifierRow(Base):
    """A typed, normalised identifier of a customer with its provenance."""

    __tablename__ = "customer_identifiers"
    __table_args__ = (
        UniqueConstraint("customer_id", "kind", "value"),
        Index("ix_customer_identifiers_lookup", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # email | phone | handle | customer_number
    value: Mapped[str] = mapped_column(String(320))
    verification: Mapped[str] = mapped_column(String(16), default="unverified")
    source: Mapped[str] = mapped_column(String(80))  # channel or actor that supplied it
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    verified_by: Mapped[str | None] = mapped_column(String(120))


class MergeRow(Base):
    """One merge of ``merged_id`` into ``survivor_id`` and exactly what moved (for unmerge)."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    survivor_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    merged_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text)
    moved: Mapped[Any] = mapped_column(
        JSON
    )  # {identifiers: [...], interactions: [...], cases: [...], organisations: [...]}
    merged_at: Mapped[datetime] = mapped_column(UtcDateTime)
    undone_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    undone_by: Mapped[str | None] = mapped_column(String(120))
    undo_reason: Mapped[str | None] = mapped_column(Text)


class MergeSuggestionRow(Base):
    """A probable duplicate found on an unverified identifier or name: a human decides."""

    __tablename__ = "customer_merge_suggestions"
    __table_args__ = (UniqueConstraint("customer_a", "customer_b", "basis"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_a: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    customer_b: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    basis: Mapped[str] = mapped_column(String(400))  # e.g. "email=alice@example.org (unverified)"
    score: Mapped[float] = mapped_column(default=0.5)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | merged | dismissed
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(120))


class InteractionRow(Base):
    """One contact on the customer's timeline, inbound or outbound, on any channel."""

    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_customer_time", "customer_id", "occurred_at"),
        Index("ix_interactions_message_id", "message_id"),
        Index("ix_interactions_channel_external", "channel", "external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    case_id: Mapped[str | None] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(40))
    direction: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(24), default="message")
    external_id: Mapped[str | None] = mapped_column(String(500))
    message_id: Mapped[str | None] = mapped_column(String(1000))
    subject: Mapped[str] = mapped_column(String(2000), default="")
    excerpt: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    rule: Mapped[str | None] = mapped_column(
        String(40)
    )  # correlation rule / "started" / "recorded"
    public: Mapped[bool] = mapped_column(Boolean, default=True)  # shown on the customer status page
    inbox_id: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[Any] = mapped_column(JSON, default=dict)
