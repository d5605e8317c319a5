"""Alembic environment: runs migrations on the app's async engine (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from app.annotation import models as annotation_models  # noqa: F401
from app.comparisons import models  # noqa: F401  (registers the tables)
from app.config import load_settings, to_async_url
from app.db import Base, create_engine
from app.forgetting import models as forgetting_models  # noqa: F401
from app.lens import models as lens_models  # noqa: F401
from app.migrate import run_migration
from app.runs import models as runs_models  # noqa: F401

target_metadata = Base.metadata


def _database_url() -> str:
    """The URL given by the caller (attributes), else the app's settings."""
    url = context.config.attributes.get("database_url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    return to_async_url(url) if url else load_settings().resolved_database_url()


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_database_url())
    try:
        await run_migration(engine, _run)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Run on a connection handed over by the app, or on a fresh engine."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    raise SystemExit(
        "Offline (SQL script) migrations are not supported; run `playground db upgrade`."
    )
run_migrations_online()
