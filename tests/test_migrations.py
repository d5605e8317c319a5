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
from sqlalchemy.exc import IntegrityError

from app.annotation import models as annotation_models  # noqa: F401
from app.comparisons import models  # noqa: F401  (registers the tables on Base.metadata)
from app.config import to_async_url
from app.db import Base, create_engine, utcnow
from app.forgetting import models as forgetting_models  # noqa: F401
from app.identity import models as accounts_models  # noqa: F401
from app.lens import models as lens_models  # noqa: F401
from app.migrate import alembic_config, upgrade_to_head
from app.runs import models as runs_models  # noqa: F401
from tests.conftest import postgres_admin, postgres_server_url

APP_TABLES = {
    "conversations", "participants", "turns", "generations", "judgements", "judgement_entries",
    "token_shift_analyses", "prompt_sets", "prompt_items", "runs", "run_items", "app_instances",
    "answer_scores",
    "rating_tasks", "assignments",
    "accounts", "invites", "api_tokens",
    "run_shift_jobs", "run_shift_failures",
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


# ---------------------------------------------------------------- tests


def test_upgrade_from_empty_creates_every_table_with_the_model_columns(
    database_url: str, engine: sa.Engine
) -> None:
    assert not set(sa.inspect(engine).get_table_names()) & APP_TABLES
    alembic(database_url, "upgrade", "head")

    assert current_revision(engine) == head_revision()
    described = schema(engine)
    assert set(described) == APP_TABLES
    for table in Base.metadata.sorted_tables:
        columns = described[table.name]["columns"]
        assert set(columns) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            assert columns[column.name][1] == column.nullable, f"{table.name}.{column.name}"
    # What a judgement must keep so it stays meaningful after a regeneration.
    judgement_needs = {"rater", "all_bad", "comment", "blind", "updated_at"}
    assert judgement_needs <= set(described["judgements"]["columns"])
    entry_needs = {"slot", "generation_id", "position", "rank", "score"}
    assert entry_needs <= set(described["judgement_entries"]["columns"])
    # What a generation must keep to be reproducible.
    generation_needs = {"prompt_text", "messages", "params", "seed", "served_model",
                        "model_revision", "finish_reason", "completion_tokens"}  # fmt: skip
    assert generation_needs <= set(described["generations"]["columns"])
    assert ("turn_id", "rater") in described["judgements"]["unique"]
    assert ("judgement_id", "slot") in described["judgement_entries"]["unique"]
    assert ("conversation_id", "slot") in described["participants"]["unique"]
    assert ("conversation_id", "number") in described["turns"]["unique"]
    assert (("conversation_id",), "conversations", "CASCADE") in described["turns"]["foreign_keys"]
    assert (("turn_id",), "turns", "CASCADE") in described["generations"]["foreign_keys"]


def test_migrated_schema_enforces_judgement_rules_and_cascades(
    database_url: str, engine: sa.Engine
) -> None:
    alembic(database_url, "upgrade", "head")
    tables = Base.metadata.tables
    with engine.begin() as connection:
        turn_id = insert_voted_turn(connection)
        generation_ids = [
            row.id
            for row in connection.execute(
                sa.text("SELECT id FROM generations WHERE turn_id = :t ORDER BY id"), {"t": turn_id}
            )
        ]
    # A second judgement by the same rater of the same turn.
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(tables["judgements"].insert(), judgement_row(turn_id, "alice"))
    with engine.begin() as connection:
        bob = connection.execute(
            tables["judgements"].insert().returning(tables["judgements"].c.id),
            judgement_row(turn_id, "bob"),
        ).scalar_one()
    for bad in (
        entry_row(bob, "a", generation_ids[0], score=6),
        entry_row(bob, "a", generation_ids[0], score=0),
        entry_row(bob, "a", generation_ids[0], rank=0),
        [entry_row(bob, "a", generation_ids[0]), entry_row(bob, "a", generation_ids[1])],
    ):
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(tables["judgement_entries"].insert(), bad)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            tables["participants"].insert(),
            {"conversation_id": "c" * 32, "slot": "e", "position": 2, "model_name": "m",
             "model_kind": "base"},
        )  # fmt: skip
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM conversations"))
        left = {
            table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("participants", "turns", "generations", "judgements",
                          "judgement_entries")
        }  # fmt: skip
    assert set(left.values()) == {0}


def test_upgrading_twice_changes_nothing_and_keeps_data(
    database_url: str, engine: sa.Engine
) -> None:
    alembic(database_url, "upgrade", "head")
    with engine.begin() as connection:
        insert_voted_turn(connection)
    before = schema(engine)
    alembic(database_url, "upgrade", "head")
    assert schema(engine) == before
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM judgements")).scalar_one() == 1
        count = connection.execute(sa.text("SELECT count(*) FROM judgement_entries"))
        assert count.scalar_one() == 2
        versions = connection.execute(sa.text("SELECT count(*) FROM alembic_version"))
        assert versions.scalar_one() == 1


def test_models_and_migrations_agree(database_url: str, engine: sa.Engine) -> None:
    alembic(database_url, "upgrade", "head")
    assert differences(engine) == []


def test_downgrade_to_base_then_upgrade_again(database_url: str, engine: sa.Engine) -> None:
    alembic(database_url, "upgrade", "head")
    first = schema(engine)
    alembic(database_url, "downgrade", "base")
    assert not set(sa.inspect(engine).get_table_names()) & APP_TABLES
    assert current_revision(engine) is None
    alembic(database_url, "upgrade", "head")
    assert schema(engine) == first
    assert differences(engine) == []


async def test_app_startup_upgrade_migrates_and_is_idempotent(
    database_url: str, engine: sa.Engine
) -> None:
    app_engine = create_engine(to_async_url(database_url))
    try:
        await upgrade_to_head(app_engine)
        first = schema(engine)
        await upgrade_to_head(app_engine)
    finally:
        await app_engine.dispose()
    assert set(first) == APP_TABLES
    assert schema(engine) == first
    assert current_revision(engine) == head_revision()


def test_downgrade_below_n_way_drops_wider_conversations_whole(
    database_url: str, engine: sa.Engine
) -> None:
    alembic(database_url, "upgrade", "0003")
    with engine.begin() as connection:
        insert_voted_turn(connection, conversation_id="a" * 32)
        wide = "b" * 32
        turn_id = insert_voted_turn(connection, conversation_id=wide)
        connection.execute(
            sa.text(
                "INSERT INTO participants (conversation_id, slot, position, model_name, "
                "model_kind) VALUES (:c, 'c', 2, 'chat', 'chat')"
            ),
            {"c": wide},
        )
        assert turn_id
    alembic(database_url, "downgrade", "0002")
    with engine.connect() as connection:
        counts = {
            table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("conversations", "turns", "generations", "votes")
        }
    # The two-model conversation and its vote are back as they were; the wider one is gone.
    assert counts == {"conversations": 1, "turns": 1, "generations": 2, "votes": 1}
    alembic(database_url, "upgrade", "head")
    with engine.begin() as connection:
        insert_voted_turn(connection, conversation_id="d" * 32)
