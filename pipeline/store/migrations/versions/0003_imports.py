"""imports: projects brought in from other QDA tools, and the human codes they carried

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 02:32:45.301758
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=500), nullable=True),
        sa.Column("project_name", sa.String(length=500), nullable=True),
        sa.Column("codebook_version", sa.String(length=16), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "human_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("import_id", sa.String(length=36), nullable=False),
        sa.Column("transcript_id", sa.String(length=16), nullable=False),
        sa.Column("coder", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=200), nullable=False),
        sa.Column("codebook_version", sa.String(length=16), nullable=True),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("original_start", sa.Integer(), nullable=False),
        sa.Column("original_end", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("coded_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["import_id"], ["imports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["transcript_id"], ["transcripts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("transcript_id", "coder", "code", "start", "end", name="uq_human_code"),
    )
    with op.batch_alter_table("human_codes", schema=None) as batch_op:
        batch_op.create_index("ix_human_codes_transcript", ["transcript_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("human_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_human_codes_transcript")

    op.drop_table("human_codes")
    op.drop_table("imports")
