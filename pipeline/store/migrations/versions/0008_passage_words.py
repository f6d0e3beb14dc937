"""passage words and openings: blind coding knows a passage by its words, not its file

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 22:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

from pipeline.words import TranscriptWords

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "passage_words",
        sa.Column("chunk_id", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["chunk_id"], ["chunks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("chunk_id", "key"),
    )
    with op.batch_alter_table("passage_words", schema=None) as batch_op:
        batch_op.create_index("ix_passage_words_key", ["key"], unique=False)
    op.create_table(
        "openings",
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("chunk_id", sa.String(length=16), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["chunk_id"], ["chunks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reviewer_id"], ["reviewers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("reviewer_id", "chunk_id"),
    )
    _words_of_stored_passages()


def _words_of_stored_passages() -> None:
    """The passages stored before get their words, one transcript at a time (bounded memory)."""
    connection = op.get_bind()
    table = sa.table("passage_words", sa.column("chunk_id"), sa.column("key"), sa.column("start"), sa.column("end"))
    ids = list(connection.execute(sa.text("SELECT id FROM transcripts ORDER BY id")).scalars())
    for transcript_id in ids:
        text = connection.execute(
            sa.text("SELECT text FROM transcripts WHERE id = :id"), {"id": transcript_id}
        ).scalar_one()
        spans = connection.execute(
            sa.text('SELECT text_start, "end" FROM turns WHERE transcript_id = :id ORDER BY "index"'),
            {"id": transcript_id},
        ).all()
        words = TranscriptWords(text, [(start, end) for start, end in spans])
        rows = [
            {"chunk_id": chunk_id, "key": key, "start": start, "end": end}
            for chunk_id, chunk_start, chunk_end, first, last in connection.execute(
                sa.text('SELECT id, start, "end", first_turn, last_turn FROM chunks WHERE transcript_id = :id'),
                {"id": transcript_id},
            )
            for key, start, end in words.passage(chunk_start, chunk_end, first, last)
        ]
        if rows:
            connection.execute(sa.insert(table), rows)


def downgrade() -> None:
    op.drop_table("openings")
    with op.batch_alter_table("passage_words", schema=None) as batch_op:
        batch_op.drop_index("ix_passage_words_key")
    op.drop_table("passage_words")
