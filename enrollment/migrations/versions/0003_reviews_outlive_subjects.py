"""Resolved review cases outlive the subject they were about.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

A 'merge' or 'reject' erases the new subject; the supervisor's decision (who, when, why,
against which candidates) must stay readable. ``reviews.subject_id`` becomes nullable with
ON DELETE SET NULL, and ``reviews.subject_ref`` keeps the new subject's reference while the
subject exists (erasure clears it, like it clears the candidates' references).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch mode: SQLite cannot alter a foreign key in place, so the table is copied.
    with op.batch_alter_table(
        "reviews", recreate="auto", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.add_column(sa.Column("subject_ref", sa.String(length=64), nullable=True))
        batch.alter_column(
            "subject_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        )
        batch.drop_constraint(op.f("fk_reviews_subject_id_subjects"), type_="foreignkey")
        batch.create_foreign_key(
            op.f("fk_reviews_subject_id_subjects"),
            "subjects",
            ["subject_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.execute(
        "UPDATE reviews SET subject_ref = "
        "(SELECT subjects.subject_ref FROM subjects WHERE subjects.id = reviews.subject_id)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM reviews WHERE subject_id IS NULL")
    with op.batch_alter_table(
        "reviews", recreate="auto", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_constraint(op.f("fk_reviews_subject_id_subjects"), type_="foreignkey")
        batch.create_foreign_key(
            op.f("fk_reviews_subject_id_subjects"),
            "subjects",
            ["subject_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.alter_column(
            "subject_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        )
        batch.drop_column("subject_ref")
