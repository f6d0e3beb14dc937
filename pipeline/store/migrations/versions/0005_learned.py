"""learned: the coder trained on the team's own codes, and the embeddings it caches

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 01:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "embeddings",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("text_sha256", sa.String(length=64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("model", "text_sha256"),
    )
    op.create_table(
        "learned_models",
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("codebook_version", sa.String(length=16), nullable=False),
        sa.Column("trained_at", sa.DateTime(), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("learned_models", schema=None) as batch_op:
        batch_op.create_index("ix_learned_models_codebook", ["codebook_version", "trained_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("learned_models", schema=None) as batch_op:
        batch_op.drop_index("ix_learned_models_codebook")
    op.drop_table("learned_models")
    op.drop_table("embeddings")
