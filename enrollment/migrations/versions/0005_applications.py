"""Applications (passport, visa, stay permit) and their timeline.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

An application belongs to a subject and moves through the states of
``enrollment/application_states.py``; every transition is one ``application_events`` row. The
application outlives an erased subject (``subject_id`` becomes NULL), so a rejected duplicate
stays counted in the reports and visible to the applicant's status lookup.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATUSES = (
    "('submitted', 'biometrics_captured', 'verified', 'needs_review', 'approved', 'rejected')"
)


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("application_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", ID, nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("lookup_check", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"status IN {STATUSES}", name=op.f("ck_applications_status")),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name=op.f("fk_applications_subject_id_subjects"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applications")),
        sa.UniqueConstraint("number", name=op.f("uq_applications_number")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_applications_subject_id"), "applications", ["subject_id"])
    op.create_index(op.f("ix_applications_status"), "applications", ["status"])
    op.create_index(op.f("ix_applications_created_at"), "applications", ["created_at"])
    op.create_table(
        "application_events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("application_id", ID, nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.Column("key_id", ID, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint(
            f"from_status IS NULL OR from_status IN {STATUSES}",
            name=op.f("ck_application_events_from_status"),
        ),
        sa.CheckConstraint(
            f"to_status IN {STATUSES}", name=op.f("ck_application_events_to_status")
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_application_events_application_id_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application_events")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_application_events_application_id"), "application_events", ["application_id"]
    )
    op.create_index(op.f("ix_application_events_at"), "application_events", ["at"])


def downgrade() -> None:
    op.drop_table("application_events")
    op.drop_table("applications")
