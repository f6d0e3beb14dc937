"""replies: the kind of each failure, and the flag a suggestion carries to review

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 03:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chunk_codings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(length=120), nullable=True))
    with op.batch_alter_table("suggestions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("flag", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("suggestions", schema=None) as batch_op:
        batch_op.drop_column("flag")
    with op.batch_alter_table("chunk_codings", schema=None) as batch_op:
        batch_op.drop_column("reason")
