"""units: turn units and their parts, and the pages of documents

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 01:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit", sa.String(length=8), server_default="chunk", nullable=False))
        batch_op.add_column(sa.Column("part", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("parts", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("page_start", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("page_end", sa.Integer(), nullable=True))
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("page_start", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("page_end", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.drop_column("page_end")
        batch_op.drop_column("page_start")
    with op.batch_alter_table("chunks", schema=None) as batch_op:
        batch_op.drop_column("page_end")
        batch_op.drop_column("page_start")
        batch_op.drop_column("parts")
        batch_op.drop_column("part")
        batch_op.drop_column("unit")
