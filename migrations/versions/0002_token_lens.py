"""token lens: token views, rendered prompts, prefix continuations, token shift analyses

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 08:15:42.456164
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "token_shift_analyses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("base_model", sa.String(length=64), nullable=False),
        sa.Column("base_served_model", sa.String(length=256), nullable=False),
        sa.Column("base_format", sa.String(length=20), nullable=False),
        sa.Column("context_text", sa.Text(), nullable=False),
        sa.Column("total_tokens", sa.Integer(), nullable=False),
        sa.Column("shifted_ratio", sa.Float(), nullable=False),
        sa.Column("marginal_ratio", sa.Float(), nullable=False),
        sa.Column("analysis", sa.JSON(), nullable=False),
        sa.Column("elapsed_ms", sa.Float(), nullable=True),
        sa.Column("requests", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_token_shift_analyses_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_shift_analyses")),
        sa.UniqueConstraint("generation_id", name=op.f("uq_token_shift_analyses_generation_id")),
    )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tokens", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("rendered_prompt", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("rendered_prompt_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prefix_of_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prefix_tokens", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_generations_prefix_of_id"), ["prefix_of_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_generations_prefix_of_id_generations"),
            "generations",
            ["prefix_of_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_generations_prefix_of_id_generations"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_generations_prefix_of_id"))
        batch_op.drop_column("prefix_tokens")
        batch_op.drop_column("prefix_of_id")
        batch_op.drop_column("rendered_prompt_tokens")
        batch_op.drop_column("rendered_prompt")
        batch_op.drop_column("tokens")

    op.drop_table("token_shift_analyses")
