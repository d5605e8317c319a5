"""Votes at the same moment: the same rater twice on one turn, many raters at once.

Before votes became a retried upsert, about half of such pairs failed with 500 (unique
constraint, "database is locked") on SQLite.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from playground_tools.fake_vllm import FakeServer
from tests.comparisons.test_api import compare, short

PAIRS = 40


async def _vote(client: httpx.AsyncClient, conversation_id: str, **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/comparisons/{conversation_id}/votes", json=body)


async def test_same_rater_same_turn_at_once_both_succeed_and_one_stays(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    conversations = [(await compare(client, prompt=f"Prompt {i}"))["id"] for i in range(4)]
    calls = []
    for i in range(PAIRS):
        conversation = conversations[i % len(conversations)]
        rater = f"rater-{i}"
        calls += [
            _vote(client, conversation, rater=rater, winner="a", score_a=1),
            _vote(client, conversation, rater=rater, winner="b", score_a=5, comment="later"),
        ]
    answers = await asyncio.gather(*calls)
    assert [a.status_code for a in answers] == [201] * len(calls), [
        a.text for a in answers if a.status_code != 201
    ][:3]
    stored: dict[str, dict[str, Any]] = {}
    for conversation in conversations:
        detail = (await client.get(f"/api/v1/comparisons/{conversation}")).json()
        for vote in detail["turns"][0]["votes"]:
            assert vote["rater"] not in stored, "two judgements for one rater and turn"
            stored[vote["rater"]] = vote
    assert len(stored) == PAIRS
    for answer in answers:
        sent = answer.json()
        final = stored[sent["rater"]]
        # One judgement per rater and turn: every answer names the same row...
        assert sent["id"] == final["id"]
    for final in stored.values():
        # ...and the stored one is whole: one request's winner, score and comment together.
        assert (final["winner"], final["score_a"], final["comment"]) in (
            ("a", 1, None),
            ("b", 5, "later"),
        )
        assert sorted(final["generation_ids"]) == ["a", "b"]


async def test_a_later_vote_replaces_the_earlier_one(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    conversation = (await compare(client, prompt="Hello"))["id"]
    first = await _vote(client, conversation, rater="r", winner="a")
    second = await _vote(client, conversation, rater="r", winner="b", comment="changed")
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"]
    votes = (await client.get(f"/api/v1/comparisons/{conversation}")).json()["turns"][0]["votes"]
    assert [(v["winner"], v["comment"]) for v in votes] == [("b", "changed")]
