"""run token shift: a run's bulk token-shift job and the answers it could not analyse

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-04 14:10:00

The analyses themselves stay ordinary token_shift_analyses rows (one per answer); these two
tables hold the job's state (to resume after a restart) and its failures (to list and retry).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_shift_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("base_model", sa.String(length=64), nullable=True),
        sa.Column("top_k", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_shift_jobs_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_shift_jobs")),
        sa.UniqueConstraint("run_id", name=op.f("uq_run_shift_jobs_run_id")),
    )
    op.create_table(
        "run_shift_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("base_model", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_run_shift_failures_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["run_shift_jobs.id"],
            name=op.f("fk_run_shift_failures_job_id_run_shift_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_shift_failures")),
        sa.UniqueConstraint("job_id", "generation_id", name=op.f("uq_run_shift_failures_job_id")),
    )
    with op.batch_alter_table("run_shift_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_shift_failures_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("run_shift_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_shift_failures_job_id"))
    op.drop_table("run_shift_failures")
    op.drop_table("run_shift_jobs")
