"""answer_scores: run answers scored against their items' references (the forgetting check)

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-04 14:00:00

One row per scored generation; a retried answer is a new generation with its own row. Rows of
an older scorer version are recomputed when a report is asked for.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "answer_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("scorer_version", sa.Integer(), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_answer_scores_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_answer_scores")),
        sa.UniqueConstraint("generation_id", name=op.f("uq_answer_scores_generation_id")),
    )


def downgrade() -> None:
    op.drop_table("answer_scores")
