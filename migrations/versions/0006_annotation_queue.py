"""annotation queue: rating_tasks, assignments, conversations.run_item_id

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 14:00:00

A run opened as a rating task shows each item to raters as an ordinary conversation (so the
exports and the leaderboard read queue judgements unchanged): conversations.run_item_id links
it to its run item, and the run's answers also belong to that conversation's turn, so a
generation may now have both owners (the check becomes "at least one").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rating_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("overlap", sa.Integer(), nullable=False),
        sa.Column("guidelines", sa.Text(), nullable=False),
        sa.Column("reveal_names", sa.Boolean(), nullable=False),
        sa.Column("blind", sa.Boolean(), nullable=False),
        sa.Column("random_positions", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_rating_tasks_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rating_tasks")),
        sa.UniqueConstraint("run_id", name=op.f("uq_rating_tasks_run_id")),
    )
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("run_item_id", sa.Integer(), nullable=False),
        sa.Column("rater", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_item_id"],
            ["run_items.id"],
            name=op.f("fk_assignments_run_item_id_run_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["rating_tasks.id"],
            name=op.f("fk_assignments_task_id_rating_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
        sa.UniqueConstraint("task_id", "run_item_id", "rater", name=op.f("uq_assignments_task_id")),
    )
    op.create_index(op.f("ix_assignments_run_item_id"), "assignments", ["run_item_id"])
    op.create_index(op.f("ix_assignments_task_id"), "assignments", ["task_id"])
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_item_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_conversations_run_item_id_run_items"),
            "run_items",
            ["run_item_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_conversations_run_item_id"), ["run_item_id"]
        )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_generations_one_owner"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_generations_has_owner"), "turn_id IS NOT NULL OR run_item_id IS NOT NULL"
        )


def downgrade() -> None:
    # The rating conversations go (with their judgements); the run answers they showed stay
    # with their runs, owned by their run item alone again.
    rated = "SELECT id FROM conversations WHERE run_item_id IS NOT NULL"
    turns = f"SELECT id FROM turns WHERE conversation_id IN ({rated})"
    judgements = f"SELECT id FROM judgements WHERE turn_id IN ({turns})"
    op.execute(f"DELETE FROM judgement_entries WHERE judgement_id IN ({judgements})")
    op.execute(f"DELETE FROM judgements WHERE turn_id IN ({turns})")
    # Any answer with both owners is a run's answer: it keeps only its run item.
    op.execute(
        "UPDATE generations SET turn_id = NULL"
        " WHERE run_item_id IS NOT NULL AND turn_id IS NOT NULL"
    )
    op.execute(f"DELETE FROM generations WHERE turn_id IN ({turns})")
    op.execute(f"DELETE FROM turns WHERE conversation_id IN ({rated})")
    op.execute(f"DELETE FROM participants WHERE conversation_id IN ({rated})")
    op.execute("DELETE FROM conversations WHERE run_item_id IS NOT NULL")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_generations_has_owner"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_generations_one_owner"), "(turn_id IS NULL) <> (run_item_id IS NULL)"
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_conversations_run_item_id"), type_="unique")
        batch_op.drop_constraint(
            batch_op.f("fk_conversations_run_item_id_run_items"), type_="foreignkey"
        )
        batch_op.drop_column("run_item_id")
    op.drop_index(op.f("ix_assignments_task_id"), table_name="assignments")
    op.drop_index(op.f("ix_assignments_run_item_id"), table_name="assignments")
    op.drop_table("assignments")
    op.drop_table("rating_tasks")
