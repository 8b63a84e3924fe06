"""The template change log: replicas keep their in-memory index in step with it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Every transaction that adds or removes a template (enrollment, a review's merge, erasure)
appends rows here, numbered from ``template_change_head`` under its row lock, so the log
commits in ``seq`` order with no gaps (see ``enrollment/changes.py``). Templates stored before
this revision are not in the log; a replica reconciles its index with the templates table at
start, so it holds them all the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "template_changes",
        sa.Column("seq", ID, autoincrement=False, nullable=False),
        sa.Column("operation", sa.String(length=8), nullable=False),
        sa.Column("template_id", ID, nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "operation IN ('add', 'remove')", name=op.f("ck_template_changes_operation")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_template_changes")),
    )
    head = op.create_table(
        "template_change_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", ID, nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_template_change_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_change_head")),
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": 0}])


def downgrade() -> None:
    op.drop_table("template_change_head")
    op.drop_table("template_changes")
