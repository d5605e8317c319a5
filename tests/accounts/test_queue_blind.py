"""A blind queue item stays blind outside the queue: no playground vote, no names after."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from app.comparisons.models import Conversation, Turn
from app.generation.records import Generation
from app.identity.models import Role
from tests.accounts.conftest import Maker, state_of
from tests.annotation.helpers import judge, next_item, rated_run


async def _first_answer(app: FastAPI) -> int:
    """The id of the queue conversation's first answer (the queue itself does not tell)."""
    async with state_of(app).sessions() as session:
        generation_id = await session.scalar(
            select(Generation.id)
            .join(Turn, Turn.id == Generation.turn_id)
            .join(Conversation, Conversation.id == Turn.conversation_id)
            .where(Conversation.run_item_id.is_not(None))
            .order_by(Generation.id)
        )
        assert generation_id is not None
        return int(generation_id)


async def _queue_conversation(app: FastAPI) -> tuple[str, int]:
    async with state_of(app).sessions() as session:
        row = (
            await session.execute(
                select(Conversation.id, Turn.id)
                .join(Turn, Turn.conversation_id == Conversation.id)
                .where(Conversation.run_item_id.is_not(None))
            )
        ).one()
        return str(row[0]), int(row[1])


async def test_a_queue_item_is_not_judged_outside_the_queue(
    make_client: Maker, team_app: FastAPI
) -> None:
    admin = await make_client("ada", Role.ADMIN)
    bob = await make_client("bob")
    carol = await make_client("carol")
    run_id = await rated_run(admin, 1, blind=True, reveal_names_after_judging=False)
    item = await next_item(bob, run_id, "bob")
    assert item
    cid, turn_id = await _queue_conversation(team_app)
    # Carol was given nothing: a playground vote would judge it past the queue (and its
    # overlap), and would show her the names before she judges it in the queue.
    vote = await carol.post(f"/api/v1/comparisons/{cid}/votes", json={"winner": "a"})
    assert vote.status_code == 409, vote.text
    page_vote = await carol.post(f"/turns/{turn_id}/vote", data={"winner": "a"})
    assert page_vote.status_code == 409, page_vote.text
    assert item["answers"][0]["generation_id"] is None
    generation_id = await _first_answer(team_app)
    assert (await carol.get(f"/api/v1/generations/{generation_id}")).status_code == 409


async def test_names_stay_hidden_after_judging_when_the_task_hides_them(
    make_client: Maker, team_app: FastAPI
) -> None:
    admin = await make_client("ada", Role.ADMIN)
    bob = await make_client("bob")
    run_id = await rated_run(admin, 1, blind=True, reveal_names_after_judging=False)
    item = await next_item(bob, run_id, "bob")
    assert item
    judged = await judge(bob, run_id, item, "bob")
    assert judged["models"] is None
    cid, _ = await _queue_conversation(team_app)
    assert item["answers"][0]["generation_id"] is None
    generation_id = await _first_answer(team_app)
    assert (await bob.get(f"/api/v1/generations/{generation_id}")).status_code == 409
    assert (await bob.get(f"/generations/{generation_id}/tokens")).status_code == 409
    assert (await bob.get(f"/api/v1/comparisons/{cid}")).json()["revealed"] is False
    page = await bob.get(f"/c/{cid}")
    assert page.status_code == 200
    assert "Model 1" in page.text
