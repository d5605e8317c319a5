"""Migration 0004 keeps every row, matches the models, and enforces one owner per generation."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.db import Base, utcnow
from tests.test_migrations import (  # noqa: F401  (fixtures)
    alembic,
    current_revision,
    database_url,
    differences,
    engine,
    head_revision,
    insert_voted_turn,
)


def _generation(**owner: int | None) -> dict[str, object]:
    return {
        "slot": "a", "is_current": True, "model_name": "m", "model_kind": "base",
        "served_model": "m", "endpoint": "e", "prompt_format": "raw", "params": {},
        "status": "done", "text": "x", "created_at": utcnow(), **owner,
    }  # fmt: skip


def test_upgrade_keeps_rows_and_checks_the_owner(database_url: str, engine: sa.Engine) -> None:  # noqa: F811
    alembic(database_url, "upgrade", "0003")
    with engine.begin() as connection:
        turn_id = insert_voted_turn(connection)
    # 0004's rule (exactly one owner) as it stood until 0006 let a rated run answer have both.
    alembic(database_url, "upgrade", "0005")
    tables = Base.metadata.tables
    generations = tables["generations"]
    with engine.connect() as connection:
        kept = connection.execute(sa.select(generations.c.turn_id, generations.c.text)).all()
        assert [tuple(row) for row in kept] == [(turn_id, "answer"), (turn_id, "answer")]
        entries = connection.execute(
            sa.select(sa.func.count()).select_from(tables["judgement_entries"])
        )
        assert entries.scalar_one() == 2
    with engine.begin() as connection:
        set_id = connection.execute(
            tables["prompt_sets"].insert().returning(tables["prompt_sets"].c.id),
            {"name": "s", "created_at": utcnow()},
        ).scalar_one()
        item_id = connection.execute(
            tables["prompt_items"].insert().returning(tables["prompt_items"].c.id),
            {"prompt_set_id": set_id, "position": 0, "key": "k", "prompt": "p", "tags": []},
        ).scalar_one()
        run_id = connection.execute(
            tables["runs"].insert().returning(tables["runs"].c.id),
            {"prompt_set_id": set_id, "models": ["m"], "params": {}, "base_format": "raw",
             "blind": False, "status": "done", "created_at": utcnow()},
        ).scalar_one()  # fmt: skip
        run_item_id = connection.execute(
            tables["run_items"].insert().returning(tables["run_items"].c.id),
            {"run_id": run_id, "prompt_item_id": item_id, "position": 0},
        ).scalar_one()
        connection.execute(generations.insert(), _generation(run_item_id=run_item_id))
    for owners in ({}, {"turn_id": turn_id, "run_item_id": run_item_id}):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(generations.insert(), _generation(**owners))
    alembic(database_url, "upgrade", "head")
    assert current_revision(engine) == head_revision()
    assert differences(engine) == []
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(generations.insert(), _generation())
    alembic(database_url, "downgrade", "0003")
    with engine.connect() as connection:
        left = connection.execute(sa.text("SELECT turn_id FROM generations")).scalars().all()
    assert left == [turn_id, turn_id]
