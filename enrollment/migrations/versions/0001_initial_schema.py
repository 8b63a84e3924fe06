"""Initial schema: subjects, identities, face samples, templates, reviews, meta.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Written out in full rather than importing ``enrollment.db``: a migration describes the schema
as it was at this revision, whatever the models become later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; SQLite's AUTOINCREMENT needs an INTEGER PRIMARY KEY.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
    )
    op.create_table(
        "subjects",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'pending_review', 'deleted')", name=op.f("ck_subjects_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subjects")),
        sa.UniqueConstraint("subject_ref", name=op.f("uq_subjects_subject_ref")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_subjects_status"), "subjects", ["status"])

    op.create_table(
        "subject_identities",
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("nationality", sa.String(length=3), nullable=True),
        sa.Column("document_number", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name=op.f("fk_subject_identities_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subject_id", name=op.f("pk_subject_identities")),
    )
    op.create_index(
        op.f("ix_subject_identities_nationality"), "subject_identities", ["nationality"]
    )

    op.create_table(
        "face_samples",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("capture_source", sa.String(length=16), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("chip_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("image_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("station", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "capture_source IN ('camera', 'scan', 'import')",
            name=op.f("ck_face_samples_capture_source"),
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name=op.f("fk_face_samples_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_samples")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_face_samples_image_sha256"), "face_samples", ["image_sha256"])
    op.create_index(op.f("ix_face_samples_subject_id"), "face_samples", ["subject_id"])

    op.create_table(
        "templates",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("sample_id", ID, nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("model_tag", sa.String(length=64), nullable=False),
        sa.Column("vector_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["face_samples.id"],
            name=op.f("fk_templates_sample_id_face_samples"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name=op.f("fk_templates_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_templates_model_tag_id", "templates", ["model_tag", "id"])
    op.create_index(op.f("ix_templates_sample_id"), "templates", ["sample_id"])
    op.create_index(op.f("ix_templates_subject_id"), "templates", ["subject_id"])

    op.create_table(
        "reviews",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "resolution IS NULL OR resolution IN ('confirm_distinct', 'merge', 'reject')",
            name=op.f("ck_reviews_resolution"),
        ),
        sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f("ck_reviews_status")),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name=op.f("fk_reviews_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_reviews_status"), "reviews", ["status"])
    op.create_index(op.f("ix_reviews_subject_id"), "reviews", ["subject_id"])


def downgrade() -> None:
    op.drop_table("reviews")
    op.drop_table("templates")
    op.drop_table("face_samples")
    op.drop_table("subject_identities")
    op.drop_table("subjects")
    op.drop_table("meta")
