"""Migration 0006: rating tasks and assignments, conversations.run_item_id, and a generation
that may belong to both its run item and a rated conversation's turn; downgrade undoes it."""

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


def _run_item(connection: sa.Connection) -> int:
    tables = Base.metadata.tables
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
        {"prompt_set_id": set_id, "models": ["m", "n"], "params": {}, "base_format": "raw",
         "blind": False, "status": "done", "created_at": utcnow()},
    ).scalar_one()  # fmt: skip
    return int(
        connection.execute(
            tables["run_items"].insert().returning(tables["run_items"].c.id),
            {"run_id": run_id, "prompt_item_id": item_id, "position": 0},
        ).scalar_one()
    )


def test_upgrade_and_downgrade_0006(database_url: str, engine: sa.Engine) -> None:  # noqa: F811
    alembic(database_url, "upgrade", "0005")
    tables = Base.metadata.tables
    generations = tables["generations"]
    with engine.begin() as connection:
        plain_turn = insert_voted_turn(connection)
        run_item_id = _run_item(connection)
        answer = connection.execute(
            generations.insert().returning(generations.c.id), _generation(run_item_id=run_item_id)
        ).scalar_one()
    alembic(database_url, "upgrade", "head")
    assert current_revision(engine) == head_revision() and differences(engine) == []
    now = utcnow()
    with engine.begin() as connection:
        # The item's rating conversation: its turn now also owns the run's answer.
        connection.execute(
            tables["conversations"].insert(),
            {"id": "r" * 32, "created_at": now, "updated_at": now, "title": "t",
             "base_format": "raw", "blind": True, "run_item_id": run_item_id},
        )  # fmt: skip
        turn = connection.execute(
            tables["turns"].insert().returning(tables["turns"].c.id),
            {"conversation_id": "r" * 32, "number": 1, "prompt": "p", "params": {},
             "created_at": now},
        ).scalar_one()  # fmt: skip
        connection.execute(
            generations.update().where(generations.c.id == answer).values(turn_id=turn)
        )
        judgement = connection.execute(
            tables["judgements"].insert().returning(tables["judgements"].c.id),
            {"turn_id": turn, "rater": "r", "all_bad": False, "blind": True,
             "created_at": now, "updated_at": now},
        ).scalar_one()  # fmt: skip
        connection.execute(
            tables["judgement_entries"].insert(),
            {"judgement_id": judgement, "slot": "a", "generation_id": answer, "position": 0,
             "rank": 1},
        )  # fmt: skip
        task = connection.execute(
            tables["rating_tasks"].insert().returning(tables["rating_tasks"].c.id),
            {"run_id": 1, "overlap": 2, "guidelines": "", "reveal_names": False, "blind": True,
             "random_positions": True, "created_at": now, "updated_at": now},
        ).scalar_one()  # fmt: skip
        connection.execute(
            tables["assignments"].insert(),
            {"task_id": task, "run_item_id": run_item_id, "rater": "r", "state": "done",
             "assigned_at": now, "expires_at": now},
        )  # fmt: skip
    # A generation still needs an owner; an item has one rating conversation; a rater gets
    # an item once.
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(generations.insert(), _generation())
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            tables["conversations"].insert(),
            {"id": "s" * 32, "created_at": now, "updated_at": now, "title": "t",
             "base_format": "raw", "blind": True, "run_item_id": run_item_id},
        )  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            tables["assignments"].insert(),
            {"task_id": task, "run_item_id": run_item_id, "rater": "r", "state": "open",
             "assigned_at": now, "expires_at": now},
        )  # fmt: skip

    alembic(database_url, "downgrade", "0005")
    inspector = sa.inspect(engine)
    assert not {"rating_tasks", "assignments"} & set(inspector.get_table_names())
    assert "run_item_id" not in {c["name"] for c in inspector.get_columns("conversations")}
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, turn_id, run_item_id FROM generations"))
        owners = {row.id: (row.turn_id, row.run_item_id) for row in rows}
        assert owners[answer] == (None, run_item_id)
        assert sum(1 for t, _ in owners.values() if t == plain_turn) == 2
        conversations = connection.execute(sa.text("SELECT id FROM conversations")).scalars()
        assert list(conversations) == ["c" * 32]
        raters = connection.execute(sa.text("SELECT rater FROM judgements")).scalars()
        assert list(raters) == ["alice"]
    alembic(database_url, "upgrade", "head")
    assert differences(engine) == []
