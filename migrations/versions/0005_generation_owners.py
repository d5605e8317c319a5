"""generation owners: app_instances with heartbeats, generations.owner

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 23:30:00

A generation left unfinished is interrupted only when the process that runs it has stopped
beating (app.generation.liveness); before, every process start marked every unfinished
generation interrupted, also those another replica was still running. Existing rows get no
owner: unfinished ones are swept as before once they are older than the stale interval.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_instances",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_instances")),
    )
    op.create_index(
        op.f("ix_app_instances_heartbeat_at"), "app_instances", ["heartbeat_at"], unique=False
    )
    # A nullable column: a plain ADD COLUMN on both databases (no SQLite table rebuild).
    op.add_column("generations", sa.Column("owner", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("owner")
    op.drop_index(op.f("ix_app_instances_heartbeat_at"), table_name="app_instances")
    op.drop_table("app_instances")
