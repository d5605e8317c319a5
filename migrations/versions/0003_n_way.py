"""n-way comparisons: participants, blind mode, judgements with ranked entries (votes moved in)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 23:00:00

Every two-model conversation gets participants a (position 0) and b (position 1) from its
model_a/kind_a and model_b/kind_b; generations' `side` becomes `slot`; every vote becomes a
judgement with the same id and one entry per answer: winner a gives ranks a=1, b=2; b the
reverse; tie ranks both 1; both_bad sets all_bad with no ranks. Scores move to the entries.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("slot", sa.String(length=1), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=64), nullable=False),
        sa.Column("model_kind", sa.String(length=10), nullable=False),
        sa.CheckConstraint("slot IN ('a', 'b', 'c', 'd')", name=op.f("ck_participants_slot_valid")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_participants_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participants")),
        sa.UniqueConstraint(
            "conversation_id", "slot", name=op.f("uq_participants_conversation_id")
        ),
    )
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_participants_conversation_id"), ["conversation_id"], unique=False
        )
    for slot, position in (("a", 0), ("b", 1)):
        op.execute(
            "INSERT INTO participants (conversation_id, slot, position, model_name, model_kind) "
            f"SELECT id, '{slot}', {position}, model_{slot}, kind_{slot} FROM conversations "
            "ORDER BY created_at, id"
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("blind", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        for column in ("model_a", "kind_a", "model_b", "kind_b"):
            batch_op.drop_column(column)

    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.alter_column("side", new_column_name="slot", existing_type=sa.String(length=1))

    op.create_table(
        "judgements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("rater", sa.String(length=64), nullable=False),
        sa.Column("all_bad", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("blind", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["turn_id"], ["turns.id"], name=op.f("fk_judgements_turn_id_turns"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judgements")),
        sa.UniqueConstraint("turn_id", "rater", name=op.f("uq_judgements_turn_id")),
    )
    with op.batch_alter_table("judgements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_judgements_turn_id"), ["turn_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_judgements_updated_at"), ["updated_at"], unique=False)
    op.create_table(
        "judgement_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("judgement_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.String(length=1), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "rank IS NULL OR rank >= 1", name=op.f("ck_judgement_entries_rank_positive")
        ),
        sa.CheckConstraint(
            "score IS NULL OR (score BETWEEN 1 AND 5)",
            name=op.f("ck_judgement_entries_score_range"),
        ),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_judgement_entries_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["judgement_id"],
            ["judgements.id"],
            name=op.f("fk_judgement_entries_judgement_id_judgements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judgement_entries")),
        sa.UniqueConstraint("judgement_id", "slot", name=op.f("uq_judgement_entries_judgement_id")),
    )
    with op.batch_alter_table("judgement_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_judgement_entries_judgement_id"), ["judgement_id"], unique=False
        )
    op.execute(
        "INSERT INTO judgements (id, turn_id, rater, all_bad, comment, blind, created_at, "
        "updated_at) SELECT id, turn_id, rater, winner = 'both_bad', comment, false, "
        "created_at, updated_at FROM votes ORDER BY id"
    )
    for slot, position, best in (("a", 0, "'a'"), ("b", 1, "'b'")):
        op.execute(
            "INSERT INTO judgement_entries (judgement_id, slot, generation_id, position, rank, "
            f"score) SELECT id, '{slot}', generation_{slot}_id, {position}, "
            f"CASE WHEN winner = 'both_bad' THEN NULL WHEN winner IN ({best}, 'tie') THEN 1 "
            f"ELSE 2 END, score_{slot} FROM votes ORDER BY id"
        )
    if op.get_bind().dialect.name == "postgresql":
        # Ids were copied: the sequence must continue after them.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('judgements', 'id'), "
            "COALESCE((SELECT MAX(id) FROM judgements), 0) + 1, false)"
        )
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_votes_updated_at"))
        batch_op.drop_index(batch_op.f("ix_votes_turn_id"))
    op.drop_table("votes")


def downgrade() -> None:
    """Back to two models: conversations with more participants, and their turns, are lost."""
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("generation_a_id", sa.Integer(), nullable=False),
        sa.Column("generation_b_id", sa.Integer(), nullable=False),
        sa.Column("rater", sa.String(length=64), nullable=False),
        sa.Column("winner", sa.String(length=10), nullable=False),
        sa.Column("score_a", sa.Integer(), nullable=True),
        sa.Column("score_b", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "winner IN ('a', 'b', 'tie', 'both_bad')", name=op.f("ck_votes_winner_valid")
        ),
        sa.CheckConstraint(
            "score_a IS NULL OR (score_a BETWEEN 1 AND 5)", name=op.f("ck_votes_score_a_range")
        ),
        sa.CheckConstraint(
            "score_b IS NULL OR (score_b BETWEEN 1 AND 5)", name=op.f("ck_votes_score_b_range")
        ),
        sa.ForeignKeyConstraint(
            ["generation_a_id"],
            ["generations.id"],
            name=op.f("fk_votes_generation_a_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["generation_b_id"],
            ["generations.id"],
            name=op.f("fk_votes_generation_b_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["turn_id"], ["turns.id"], name=op.f("fk_votes_turn_id_turns"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_votes")),
        sa.UniqueConstraint("turn_id", "rater", name=op.f("uq_votes_turn_id")),
    )
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_votes_turn_id"), ["turn_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_votes_updated_at"), ["updated_at"], unique=False)
    # Conversations of more than two models cannot go back; their rows go, children first
    # (SQLite migrations run with foreign keys off, so nothing cascades there).
    wide = "SELECT conversation_id FROM participants WHERE slot IN ('c', 'd')"
    turns = f"SELECT id FROM turns WHERE conversation_id IN ({wide})"
    generations = f"SELECT id FROM generations WHERE turn_id IN ({turns})"
    judgements = f"SELECT id FROM judgements WHERE turn_id IN ({turns})"
    for statement in (
        f"DELETE FROM token_shift_analyses WHERE generation_id IN ({generations})",
        f"DELETE FROM judgement_entries WHERE judgement_id IN ({judgements})",
        f"DELETE FROM judgements WHERE turn_id IN ({turns})",
        f"DELETE FROM generations WHERE turn_id IN ({turns})",
        f"DELETE FROM turns WHERE conversation_id IN ({wide})",
        f"DELETE FROM conversations WHERE id IN ({wide})",
    ):
        op.execute(statement)
    op.execute(
        "INSERT INTO votes (id, turn_id, generation_a_id, generation_b_id, rater, winner, "
        "score_a, score_b, comment, created_at, updated_at) "
        "SELECT j.id, j.turn_id, ea.generation_id, eb.generation_id, j.rater, "
        "CASE WHEN j.all_bad THEN 'both_bad' WHEN ea.rank = eb.rank THEN 'tie' "
        "WHEN ea.rank < eb.rank THEN 'a' ELSE 'b' END, ea.score, eb.score, j.comment, "
        "j.created_at, j.updated_at FROM judgements j "
        "JOIN judgement_entries ea ON ea.judgement_id = j.id AND ea.slot = 'a' "
        "JOIN judgement_entries eb ON eb.judgement_id = j.id AND eb.slot = 'b' ORDER BY j.id"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('votes', 'id'), "
            "COALESCE((SELECT MAX(id) FROM votes), 0) + 1, false)"
        )
    with op.batch_alter_table("judgement_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_judgement_entries_judgement_id"))
    op.drop_table("judgement_entries")
    with op.batch_alter_table("judgements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_judgements_updated_at"))
        batch_op.drop_index(batch_op.f("ix_judgements_turn_id"))
    op.drop_table("judgements")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.alter_column("slot", new_column_name="side", existing_type=sa.String(length=1))
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        for column, size in (("model_a", 64), ("kind_a", 10), ("model_b", 64), ("kind_b", 10)):
            batch_op.add_column(
                sa.Column(column, sa.String(length=size), server_default="", nullable=False)
            )
    for slot in ("a", "b"):
        op.execute(
            f"UPDATE conversations SET model_{slot} = (SELECT model_name FROM participants p "
            f"WHERE p.conversation_id = conversations.id AND p.slot = '{slot}'), "
            f"kind_{slot} = (SELECT model_kind FROM participants p "
            f"WHERE p.conversation_id = conversations.id AND p.slot = '{slot}')"
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("blind")
        for column in ("model_a", "kind_a", "model_b", "kind_b"):
            batch_op.alter_column(column, server_default=None)
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_participants_conversation_id"))
    op.drop_table("participants")
