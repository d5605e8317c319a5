"""Run Alembic migrations from code (on start and from the CLI)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

ROOT = Path(__file__).resolve().parent.parent
# The advisory lock that serialises migrations on PostgreSQL (any constant the app owns).
MIGRATION_LOCK = 0x706C6179  # "play"


def alembic_config() -> Config:
    """Alembic config pointing at the repository's migrations folder."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return config


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the database behind an engine to the latest schema."""

    def _upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    await run_migration(engine, _upgrade)


async def run_migration(engine: AsyncEngine, migrate: Callable[[Connection], None]) -> None:
    """Run a migration in one transaction; on SQLite with foreign keys off meanwhile.

    SQLite cannot alter most of a table in place, so Alembic copies it to a new table and
    drops the old one: with foreign keys on, that drop would delete every row that refers to
    the table (ON DELETE CASCADE). The keys are checked once the migration has committed.
    """
    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            await _pragma(connection, "PRAGMA foreign_keys=OFF")
        try:
            if connection.dialect.name == "postgresql":
                # Replicas and workers start together: one migrates, the others wait here and
                # then find the schema at head (two at once would both create the tables).
                await connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            await connection.run_sync(migrate)
            await connection.commit()
        finally:
            if sqlite:
                await connection.rollback()
                await _pragma(connection, "PRAGMA foreign_keys=ON")
        if sqlite:
            broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).fetchall()
            if broken:
                raise RuntimeError(f"the migration left rows that refer to nothing: {broken[:5]}")


async def _pragma(connection: AsyncConnection, pragma: str) -> None:
    """Run a PRAGMA outside any transaction (foreign_keys is a no-op inside one)."""
    await connection.execution_options(isolation_level="AUTOCOMMIT")
    await connection.exec_driver_sql(pragma)
    await connection.commit()
    await connection.execution_options(isolation_level="SERIALIZABLE")
