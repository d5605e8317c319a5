"""prompt sets and batch runs: sets, items, runs, run items; generations owned by a run item

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 23:30:00

A generation now belongs to exactly one owner: a comparison's turn (turn_id, as before) or a
run item (run_item_id, new). turn_id becomes nullable and a check keeps exactly one set; every
existing row has a turn, so every row passes it and is kept.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prompt_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_sets")),
        sa.UniqueConstraint("name", name=op.f("uq_prompt_sets_name")),
    )
    op.create_table(
        "prompt_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prompt_set_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["prompt_set_id"],
            ["prompt_sets.id"],
            name=op.f("fk_prompt_items_prompt_set_id_prompt_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_items")),
        sa.UniqueConstraint("prompt_set_id", "key", name=op.f("uq_prompt_items_prompt_set_id")),
    )
    op.create_index(
        op.f("ix_prompt_items_prompt_set_id"), "prompt_items", ["prompt_set_id"], unique=False
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prompt_set_id", sa.Integer(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("base_format", sa.String(length=20), nullable=False),
        sa.Column("blind", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["prompt_set_id"],
            ["prompt_sets.id"],
            name=op.f("fk_runs_prompt_set_id_prompt_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_prompt_set_id"), "runs", ["prompt_set_id"], unique=False)
    op.create_table(
        "run_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("prompt_item_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["prompt_item_id"],
            ["prompt_items.id"],
            name=op.f("fk_run_items_prompt_item_id_prompt_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_items_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_items")),
        sa.UniqueConstraint("run_id", "prompt_item_id", name=op.f("uq_run_items_run_id")),
    )
    op.create_index(op.f("ix_run_items_run_id"), "run_items", ["run_id"], unique=False)
    op.create_index(
        op.f("ix_run_items_prompt_item_id"), "run_items", ["prompt_item_id"], unique=False
    )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.alter_column("turn_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("run_item_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_generations_run_item_id_run_items"),
            "run_items",
            ["run_item_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(
            batch_op.f("ix_generations_run_item_id"), ["run_item_id"], unique=False
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_generations_one_owner"), "(turn_id IS NULL) <> (run_item_id IS NULL)"
        )


def downgrade() -> None:
    # Run answers have no turn: they go with their runs.
    op.execute("DELETE FROM generations WHERE run_item_id IS NOT NULL")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_generations_one_owner"), type_="check")
        batch_op.drop_index(batch_op.f("ix_generations_run_item_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_generations_run_item_id_run_items"), type_="foreignkey"
        )
        batch_op.drop_column("run_item_id")
        batch_op.alter_column("turn_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index(op.f("ix_run_items_prompt_item_id"), table_name="run_items")
    op.drop_index(op.f("ix_run_items_run_id"), table_name="run_items")
    op.drop_table("run_items")
    op.drop_index(op.f("ix_runs_prompt_set_id"), table_name="runs")
    op.drop_table("runs")
    op.drop_index(op.f("ix_prompt_items_prompt_set_id"), table_name="prompt_items")
    op.drop_table("prompt_items")
    op.drop_table("prompt_sets")
