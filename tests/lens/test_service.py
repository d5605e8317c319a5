"""LensService on the fake servers: which context, which tokens, which base model, and when not."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.comparisons.models import Slot as Side
from app.errors import Conflict
from app.generation.records import Generation, GenerationStatus
from app.generation.urial import load_urial_format
from app.lens.errors import LensError
from app.lens.models import TokenShiftAnalysis
from app.lens.service import LensService
from playground_tools.fake_vllm import FakeServer

JSON = dict[str, Any]


@asynccontextmanager
async def lens(app: FastAPI) -> AsyncIterator[LensService]:
    """A service on its own session, committed on success like a request's."""
    state = app.state.playground
    async with state.sessions() as session:
        yield LensService(session, state.models, state.http, state.runner, state.settings)
        await session.commit()


async def compare(client: httpx.AsyncClient, **body: Any) -> JSON:
    body.setdefault("params", {"temperature": 0})
    response = await client.post("/api/v1/comparisons", json=body)
    assert response.status_code == 201, response.text
    conversation: JSON = response.json()
    return conversation


async def change(app: FastAPI, generation_id: int, edit: Callable[[Generation], None]) -> None:
    """Edit a stored generation directly (to set up states the API cannot reach)."""
    async with app.state.playground.sessions() as session, session.begin():
        generation = await session.get(Generation, generation_id)
        assert generation is not None
        edit(generation)


async def test_the_context_is_the_chat_sides_own_conversation_in_the_base_format(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer, chat_server: FakeServer
) -> None:
    base_server.config.answer_words = chat_server.config.answer_words = 4
    first = await compare(client, prompt="Name a river.", base_format="transcript", system="Hi.")
    cid = first["id"]
    followed = await client.post(f"/api/v1/comparisons/{cid}/turns", json={"prompt": "Why?"})
    assert followed.status_code == 201
    turns = followed.json()["turns"]
    async with lens(app) as service:
        analysis = await service.analyse(turns[1]["b"]["id"])
        context = analysis.context_text
    # The chat model's own earlier answer is in its context; the base column's is not.
    assert turns[0]["b"]["text"] in context and turns[0]["a"]["text"] not in context
    assert context.index("Name a river.") < context.index("Why?")
    assert context.startswith("Hi.") and context.endswith("Assistant:")
    assert analysis.base_format == "transcript"
    # The same context the base column was given for that turn (its own history aside).
    assert turns[1]["a"]["prompt_text"].endswith("User: Why?\nAssistant:")


async def test_urial_context_starts_with_the_shipped_preamble(
    client: httpx.AsyncClient, app: FastAPI, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 4
    conversation = await compare(client, prompt="Name a river.", base_format="urial")
    async with lens(app) as service:
        analysis = await service.analyse(conversation["turns"][0]["b"]["id"])
    preamble = load_urial_format().preamble
    assert analysis.context_text.startswith(preamble.strip()[:40])
    assert "Name a river." in analysis.context_text


async def test_answer_without_ids_is_tokenized_by_the_chat_model(
    client: httpx.AsyncClient, app: FastAPI, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 6
    chat = (await compare(client, prompt="Name a river."))["turns"][0]["b"]
    async with lens(app) as service:
        with_ids = await service.analyse(chat["id"])
        ranks = [t["rank"] for t in with_ids.analysis["tokens"]]
        ids = [t["token_id"] for t in with_ids.analysis["tokens"]]

    def without_ids(generation: Generation) -> None:
        generation.tokens = [t | {"token_id": None} for t in generation.tokens or []]

    await change(app, chat["id"], without_ids)
    async with lens(app) as service:
        again = await service.analyse(chat["id"])
    # The chat tokenizer gives the answer's text the ids it was generated as (the fake's
    # answers re-tokenise exactly), so the base model ranks the same tokens.
    assert [t["token_id"] for t in again.analysis["tokens"]] == ids
    assert [t["rank"] for t in again.analysis["tokens"]] == ranks
    # Without ids the chat logprobs cannot be lined up with the re-tokenised answer.
    assert all(t["chat_logprob"] is None for t in again.analysis["tokens"])


async def test_the_base_model_defaults_to_the_conversations_then_the_first_configured(
    client: httpx.AsyncClient, app: FastAPI, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 3
    # Chat against chat: no base model in the conversation, so the first configured one.
    both_chat = await compare(client, prompt="Hello.", models=["chat", "chat"])
    async with lens(app) as service:
        analysis = await service.analyse(both_chat["turns"][0]["a"]["id"])
    assert analysis.base_model == "base"


async def test_unfinished_and_empty_answers_are_refused(
    client: httpx.AsyncClient, app: FastAPI, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 3
    chat = (await compare(client, prompt="Hello."))["turns"][0]["b"]

    def running(generation: Generation) -> None:
        generation.status = GenerationStatus.RUNNING

    await change(app, chat["id"], running)
    async with lens(app) as service:
        with pytest.raises(Conflict, match="wait until the answer is complete"):
            await service.analyse(chat["id"])
        with pytest.raises(Conflict, match="wait until the answer is complete"):
            await service.continue_prefix(chat["id"], 1)

    def empty(generation: Generation) -> None:
        generation.status, generation.text, generation.tokens = GenerationStatus.DONE, "", []

    await change(app, chat["id"], empty)
    async with lens(app) as service:
        with pytest.raises(LensError, match="empty"):
            await service.analyse(chat["id"])
        generation = await service.generation(chat["id"])
        with pytest.raises(LensError, match="no token logprobs"):
            service.token_view(generation)
    async with app.state.playground.sessions() as session:
        assert await session.get(TokenShiftAnalysis, 1) is None


async def test_a_zero_token_prefix_continues_from_the_context_alone(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 4
    base_server.config.answer_words = 3
    turn = (await compare(client, prompt="Hello there."))["turns"][0]
    async with lens(app) as service:
        started = await service.continue_prefix(turn["b"]["id"], k=0)
        continuation_id = started.id
        assert started.status == GenerationStatus.PENDING
    await app.state.playground.runner.wait_finished([continuation_id])
    async with lens(app) as service:
        continuation = await service.generation(continuation_id)
        assert continuation.prompt_text == turn["a"]["prompt_text"] == "Hello there."
        assert (continuation.slot, continuation.prefix_tokens) == ("p", 0)
        assert continuation.status == GenerationStatus.DONE and continuation.text
        # The answer it continues lists it; its turn's columns are unchanged.
        chat = await service.target(turn["b"]["id"])
        assert [g.id for g in chat.turn.continuations_of(chat.generation.id)] == [continuation_id]
        current = chat.turn.current(Side.A), chat.turn.current(Side.B)
        assert [g.id for g in current if g is not None] == [turn["a"]["id"], turn["b"]["id"]]
