"""Migration 0007 adds answer_scores (one per generation, gone with it) and removes it again."""

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
)


def _run_generation(connection: sa.Connection, name: str = "s") -> int:
    """A prompt set, a run, one item and one answer; the answer's id."""
    tables = Base.metadata.tables
    set_id = connection.execute(
        tables["prompt_sets"].insert().returning(tables["prompt_sets"].c.id),
        {"name": name, "created_at": utcnow()},
    ).scalar_one()
    item_id = connection.execute(
        tables["prompt_items"].insert().returning(tables["prompt_items"].c.id),
        {"prompt_set_id": set_id, "position": 0, "key": "k", "prompt": "p", "tags": [],
         "reference": {"type": "contains", "value": "x"}},
    ).scalar_one()  # fmt: skip
    run_id = connection.execute(
        tables["runs"].insert().returning(tables["runs"].c.id),
        {"prompt_set_id": set_id, "models": ["m", "n"], "params": {}, "base_format": "raw",
         "blind": False, "status": "done", "created_at": utcnow()},
    ).scalar_one()  # fmt: skip
    run_item_id = connection.execute(
        tables["run_items"].insert().returning(tables["run_items"].c.id),
        {"run_id": run_id, "prompt_item_id": item_id, "position": 0},
    ).scalar_one()
    generations = tables["generations"]
    return int(
        connection.execute(
            generations.insert().returning(generations.c.id),
            {"slot": "a", "is_current": True, "model_name": "m", "model_kind": "base",
             "served_model": "m", "endpoint": "e", "prompt_format": "raw", "params": {},
             "status": "done", "text": "x", "created_at": utcnow(), "run_item_id": run_item_id},
        ).scalar_one()
    )  # fmt: skip


def _score(generation_id: int) -> dict[str, object]:
    return {"generation_id": generation_id, "correct": True, "scorer_version": 1,
            "detail": "contains it", "scored_at": utcnow()}  # fmt: skip


def test_upgrade_down_and_up_again(database_url: str, engine: sa.Engine) -> None:  # noqa: F811
    alembic(database_url, "upgrade", "0005")
    with engine.begin() as connection:
        generation_id = _run_generation(connection)
    alembic(database_url, "upgrade", "head")
    assert current_revision(engine) == head_revision()
    assert differences(engine) == []
    scores = Base.metadata.tables["answer_scores"]
    with engine.begin() as connection:
        connection.execute(scores.insert(), _score(generation_id))
    # One score per generation.
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(scores.insert(), _score(generation_id))
    # A score goes with its generation.
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM generations"))
        assert connection.execute(sa.select(sa.func.count()).select_from(scores)).scalar() == 0
        generation_id = _run_generation(connection, "t")
        connection.execute(scores.insert(), _score(generation_id))
    alembic(database_url, "downgrade", "0005")
    assert "answer_scores" not in sa.inspect(engine).get_table_names()
    with engine.connect() as connection:
        kept = connection.execute(sa.text("SELECT text FROM generations")).scalars().all()
    assert kept == ["x"]
    alembic(database_url, "upgrade", "head")
    assert differences(engine) == []
