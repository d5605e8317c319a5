"""Alembic migrations: a fresh upgrade, idempotence, agreement with the models, downgrade."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import sql
from sqlalchemy.engine import make_url

from app.comparisons import models  # noqa: F401  (registers the tables on Base.metadata)
from app.config import to_async_url
from app.db import Base, utcnow
from app.lens import models as lens_models  # noqa: F401
from app.migrate import alembic_config
from tests.conftest import postgres_admin, postgres_server_url

APP_TABLES = {
    "conversations", "participants", "turns", "generations", "judgements", "judgement_entries",
    "token_shift_analyses", "app_instances",
}  # fmt: skip


def _backends() -> list[Any]:
    """SQLite always; PostgreSQL too when TEST_POSTGRES_URL names a server."""
    backends = [pytest.param("sqlite", id="sqlite")]
    if postgres_server_url() is not None:
        backends.append(pytest.param("postgresql", id="postgresql"))
    return backends


def sync_engine(url: str) -> sa.Engine:
    """A synchronous engine on the same database (psycopg 3 works both ways)."""
    engine = sa.create_engine(to_async_url(url) if url.startswith("postgres") else url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _foreign_keys(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

    return engine


@pytest.fixture(params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new database on the PostgreSQL test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    server = postgres_server_url()
    assert server is not None
    name = f"test_migrations_{uuid.uuid4().hex[:12]}"
    with postgres_admin(server) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with postgres_admin(server) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """A synchronous engine for inspecting the database."""
    engine = sync_engine(database_url)
    yield engine
    engine.dispose()


def alembic(database_url: str, action: str, revision: str) -> None:
    """Run an Alembic command (upgrade/downgrade) the way `alembic` or the CLI would."""
    config = alembic_config()
    config.attributes["database_url"] = database_url
    getattr(command, action)(config, revision)


def head_revision() -> str:
    """The newest revision in the migrations folder."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision stamped in the database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema(engine: sa.Engine) -> dict[str, Any]:
    """Everything about the app's tables that a migration decides."""
    inspector = sa.inspect(engine)
    described: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) & APP_TABLES):
        described[table] = {
            "columns": {
                c["name"]: (str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            },
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
            "foreign_keys": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    (fk.get("options") or {}).get("ondelete"),
                )
                for fk in inspector.get_foreign_keys(table)
            ),
        }
    return described


def differences(engine: sa.Engine) -> list[Any]:
    """What Alembic autogenerate would change to make the database match the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "render_as_batch": engine.dialect.name == "sqlite"},
        )
        found: list[Any] = compare_metadata(context, Base.metadata)
        return found


def insert_voted_turn(connection: sa.Connection, conversation_id: str = "c" * 32) -> int:
    """One conversation of two models with one turn, two answers and a judgement; returns the
    turn id."""
    now = utcnow()
    tables = Base.metadata.tables
    connection.execute(
        tables["conversations"].insert(),
        {"id": conversation_id, "created_at": now, "updated_at": now, "title": "t",
         "base_format": "raw", "blind": False},
    )  # fmt: skip
    for position, (slot, kind) in enumerate((("a", "base"), ("b", "chat"))):
        connection.execute(
            tables["participants"].insert(),
            {"conversation_id": conversation_id, "slot": slot, "position": position,
             "model_name": kind, "model_kind": kind},
        )  # fmt: skip
    turn_id = connection.execute(
        tables["turns"].insert().returning(tables["turns"].c.id),
        {"conversation_id": conversation_id, "number": 1, "prompt": "p", "params": {},
         "created_at": now},
    ).scalar_one()  # fmt: skip
    generation_ids = [
        connection.execute(
            tables["generations"].insert().returning(tables["generations"].c.id),
            {
                "turn_id": turn_id, "slot": slot, "is_current": True, "model_name": "m",
                "model_kind": "base", "served_model": "m", "endpoint": "http://x/v1/completions",
                "prompt_format": "raw", "params": {}, "status": "done", "text": "answer",
                "created_at": now,
            },
        ).scalar_one()
        for slot in ("a", "b")
    ]  # fmt: skip
    judgement_id = connection.execute(
        tables["judgements"].insert().returning(tables["judgements"].c.id),
        judgement_row(turn_id, "alice"),
    ).scalar_one()
    connection.execute(
        tables["judgement_entries"].insert(),
        [
            entry_row(judgement_id, slot, gid)
            for slot, gid in zip("ab", generation_ids, strict=True)
        ],
    )
    return int(turn_id)


def judgement_row(turn_id: int, rater: str) -> dict[str, Any]:
    """A valid judgements row."""
    return {"turn_id": turn_id, "rater": rater, "all_bad": False, "blind": False,
            "created_at": utcnow(), "updated_at": utcnow()}  # fmt: skip


def entry_row(judgement_id: int, slot: str, generation_id: int, **changes: Any) -> dict[str, Any]:
    """A valid judgement_entries row, with some fields changed."""
    row = {"judgement_id": judgement_id, "slot": slot, "generation_id": generation_id,
           "position": "ab".index(slot), "rank": 1, "score": 3}  # fmt: skip
    return row | changes
