"""review: reviewers, their sessions and runs, blind double-coding assignments, decided suggestions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 01:29:53.602284
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviewers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "reviewer_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["reviewer_id"], ["reviewers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reviewer_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviewer_sessions_reviewer_id"), ["reviewer_id"], unique=False)

    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sample", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("chunk_id", sa.String(length=16), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("assigned_by", sa.String(length=200), nullable=False),
        sa.Column("assigned_at", sa.DateTime(), nullable=False),
        sa.Column("codes", sa.JSON(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("coded_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["chunk_id"], ["chunks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reviewer_id"], ["reviewers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sample", "chunk_id", "reviewer_id", name="uq_assignment"),
    )
    op.create_table(
        "reviewer_runs",
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["reviewer_id"], ["reviewers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("reviewer_id", "run_id"),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rejection_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("codebook_version", sa.String(length=16), nullable=True))
        batch_op.create_index("ix_decisions_chunk", ["chunk_id"], unique=False)
        batch_op.create_index("ix_decisions_suggestion", ["suggestion_id"], unique=False)
        batch_op.create_foreign_key("fk_decisions_rejection", "rejections", ["rejection_id"], ["id"])

    with op.batch_alter_table("rejections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))

    with op.batch_alter_table("suggestions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("decided_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("decided_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("suggestions", schema=None) as batch_op:
        batch_op.drop_column("decided_by")
        batch_op.drop_column("decided_at")

    with op.batch_alter_table("rejections", schema=None) as batch_op:
        batch_op.drop_column("version")

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_decisions_rejection", type_="foreignkey")
        batch_op.drop_index("ix_decisions_suggestion")
        batch_op.drop_index("ix_decisions_chunk")
        batch_op.drop_column("codebook_version")
        batch_op.drop_column("rejection_id")

    op.drop_table("reviewer_runs")
    op.drop_table("assignments")
    with op.batch_alter_table("reviewer_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviewer_sessions_reviewer_id"))

    op.drop_table("reviewer_sessions")
    op.drop_table("reviewers")
