"""The JSON API end to end on the fake servers: what each model is sent, stored and returned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from app.config import ModelsFile, Settings
from app.main import create_app
from playground_tools.fake_vllm import FakeServer

JSON = dict[str, Any]
SAMPLING_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "seed",
    "stop",
    "repetition_penalty",
)


@asynccontextmanager
async def app_client(settings: Settings, models: ModelsFile) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app built from these settings and models, lifespan run."""
    async with LifespanManager(create_app(settings, models)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def compare(client: httpx.AsyncClient, **body: Any) -> JSON:
    response = await client.post("/api/v1/comparisons", json=body)
    assert response.status_code == 201, response.text
    data: JSON = response.json()
    return data


async def follow_up(client: httpx.AsyncClient, conversation_id: str, **body: Any) -> JSON:
    response = await client.post(f"/api/v1/comparisons/{conversation_id}/turns", json=body)
    assert response.status_code == 201, response.text
    data: JSON = response.json()
    return data


def last_body(server: FakeServer) -> JSON:
    body: JSON = server.requests[-1]["body"]
    return body


def full_answer(server: FakeServer, streamed_body: JSON) -> JSON:
    """What the fake answers to the same request in one piece (its own account of the output)."""
    body = {k: v for k, v in streamed_body.items() if k != "stream_options"}
    path = server.requests[-1]["path"]
    response = httpx.post(server.root_url + path, json={**body, "stream": False}, timeout=5)
    response.raise_for_status()
    data: JSON = response.json()
    return data


def short(*servers: FakeServer, words: int = 6) -> None:
    for server in servers:
        server.config.answer_words = words


# ---------------------------------------------------------------- first turn


async def test_default_models_are_first_base_and_first_chat(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    data = await compare(client, prompt="The capital of France is")
    assert (data["model_a"], data["kind_a"]) == ("base", "base")
    assert (data["model_b"], data["kind_b"]) == ("chat", "chat")
    turn = data["turns"][0]
    assert turn["a"]["endpoint"] == base_server.base_url + "/completions"
    assert turn["b"]["endpoint"] == chat_server.base_url + "/chat/completions"
    assert [r["path"] for r in base_server.requests] == ["/v1/completions"]
    assert [r["path"] for r in chat_server.requests] == ["/v1/chat/completions"]
    assert data["url"] == f"/c/{data['id']}"
    assert data["title"] == "The capital of France is"


async def test_explicit_models_are_used_in_the_given_order(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    data = await compare(client, prompt="Hello", models=["chat", "base"])
    assert (data["model_a"], data["model_b"]) == ("chat", "base")
    turn = data["turns"][0]
    assert turn["a"]["model_kind"] == "chat" and turn["a"]["prompt_format"] == "chat"
    assert turn["b"]["model_kind"] == "base" and turn["b"]["prompt_format"] == "raw"
    assert turn["a"]["side"] == "a" and turn["b"]["side"] == "b"
    assert len(base_server.requests) == 1 and len(chat_server.requests) == 1


async def test_same_model_twice_runs_it_on_both_sides(
    client: httpx.AsyncClient, chat_server: FakeServer
) -> None:
    short(chat_server)
    data = await compare(client, prompt="Hi", models=["chat", "chat"], params={"seed": 5})
    turn = data["turns"][0]
    assert len(chat_server.requests) == 2
    assert turn["a"]["status"] == turn["b"]["status"] == "done"
    assert turn["a"]["text"] == turn["b"]["text"]


async def test_raw_base_gets_the_plain_text_and_chat_gets_messages(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    prompt = "def fibonacci(n):\n    "
    data = await compare(client, prompt=prompt)
    base_body, chat_body = last_body(base_server), last_body(chat_server)
    assert base_body["prompt"] == prompt
    assert "messages" not in base_body
    assert base_body["model"] == "tiny-base" and base_body["stream"] is True
    assert chat_body["messages"] == [{"role": "user", "content": prompt}]
    assert "prompt" not in chat_body
    assert chat_body["model"] == "tiny-chat"
    turn = data["turns"][0]
    assert turn["prompt"] == prompt
    assert turn["a"]["prompt_text"] == prompt and turn["a"]["messages"] is None
    assert turn["b"]["messages"] == chat_body["messages"] and turn["b"]["prompt_text"] is None


async def test_system_prompt_goes_first_in_messages_and_into_the_base_text_unwrapped(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    system, prompt = "You write like a 19th-century novelist.", "It was a dark night"
    data = await compare(client, prompt=prompt, system=system)
    assert data["system"] == system
    assert last_body(chat_server)["messages"] == [
        {"role": "system", "content": system},
        {"role": "user", "content": prompt},
    ]
    sent = last_body(base_server)["prompt"]
    assert sent.startswith(system) and sent.endswith(prompt)
    for marker in ("User:", "Assistant:", "<|", "[INST]", "system"):
        assert marker not in sent
    assert "messages" not in last_body(base_server)
    assert data["turns"][0]["a"]["prompt_text"] == sent


async def test_blank_system_prompt_is_not_sent(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    data = await compare(client, prompt="Hello", system="   ")
    assert data["system"] is None
    assert last_body(base_server)["prompt"] == "Hello"
    assert [m["role"] for m in last_body(chat_server)["messages"]] == ["user"]


async def test_transcript_format_writes_user_assistant_lines_and_adds_a_user_stop(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    prompt = "What is the capital of France?"
    data = await compare(client, prompt=prompt, base_format="transcript", params={"stop": ["###"]})
    assert data["base_format"] == "transcript"
    base_body, chat_body = last_body(base_server), last_body(chat_server)
    assert f"User: {prompt}\nAssistant:" in base_body["prompt"]
    assert base_body["prompt"].endswith("Assistant:")
    assert "messages" not in base_body
    assert base_body["stop"] == ["###", "\nUser:"]
    # The chat model gets the user's stops only: its template already ends the turn.
    assert chat_body["stop"] == ["###"]
    assert chat_body["messages"] == [{"role": "user", "content": prompt}]
    turn = data["turns"][0]
    assert turn["a"]["prompt_format"] == "transcript"
    assert turn["a"]["prompt_text"] == base_body["prompt"]
    assert turn["a"]["params"]["stop"] == ["###", "\nUser:"]


async def test_urial_format_sends_the_examples_and_records_logprobs_on_both_sides(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    prompt = "What is the capital of France?"
    data = await compare(client, prompt=prompt, base_format="urial")
    base_body, chat_body = last_body(base_server), last_body(chat_server)
    assert base_body["prompt"].endswith(f"# User\n{prompt}\n\n# Assistant\n")
    assert base_body["prompt"].count("# Assistant\n") > 1  # the shipped examples come first
    assert base_body["stop"] == ["\n# User"]
    # The token view's data is asked of both endpoints in their own dialect.
    assert base_body["logprobs"] == 5 and base_body["return_token_ids"] is True
    assert chat_body["logprobs"] is True and chat_body["top_logprobs"] == 5
    assert data["turns"][0]["a"]["prompt_format"] == "urial"


async def test_same_sampling_params_are_sent_to_both_servers_and_stored(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    params = {
        "temperature": 0.3,
        "top_p": 0.8,
        "top_k": 20,
        "max_tokens": 9,
        "seed": 1234,
        "stop": ["\n\n\n", "END"],
        "repetition_penalty": 1.1,
    }
    data = await compare(client, prompt="Once", params=params)
    for server in (base_server, chat_server):
        body = last_body(server)
        assert {field: body[field] for field in SAMPLING_FIELDS} == params
        assert body["stream_options"] == {"include_usage": True}
    turn = data["turns"][0]
    assert turn["params"] == params
    for side in ("a", "b"):
        assert turn[side]["params"] == params
        assert turn[side]["seed"] == params["seed"]


async def test_top_k_zero_is_sent_as_disabled(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    await compare(client, prompt="Once", params={"top_k": 0})
    assert last_body(base_server)["top_k"] == last_body(chat_server)["top_k"] == -1


async def test_seed_is_chosen_when_absent_and_stored_and_returned(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    data = await compare(client, prompt="Once upon a time")
    turn = data["turns"][0]
    seed = turn["params"]["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**31
    assert turn["a"]["seed"] == turn["b"]["seed"] == seed
    assert last_body(base_server)["seed"] == last_body(chat_server)["seed"] == seed
    stored = (await client.get(f"/api/v1/comparisons/{data['id']}")).json()
    assert stored["turns"][0]["params"]["seed"] == seed
    other = await compare(client, prompt="Once upon a time")
    assert other["turns"][0]["params"]["seed"] != seed


async def test_same_seed_gives_identical_text_and_another_seed_differs(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server, words=12)
    body = {"prompt": "The river", "params": {"seed": 42, "temperature": 0.9}}
    first = (await compare(client, **body))["turns"][0]
    second = (await compare(client, **body))["turns"][0]
    assert first["a"]["text"] and first["b"]["text"]
    assert (first["a"]["text"], first["b"]["text"]) == (second["a"]["text"], second["b"]["text"])
    body["params"] = {"seed": 43, "temperature": 0.9}
    third = (await compare(client, **body))["turns"][0]
    assert (third["a"]["text"], third["b"]["text"]) != (first["a"]["text"], first["b"]["text"])


async def test_answers_usage_finish_reason_and_timings_are_stored(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    # The base model runs into max_tokens; the chat model stops on its own.
    base_server.config.answer_words = 30
    chat_server.config.answer_words = 3
    data = await compare(client, prompt="Tell me a story", params={"max_tokens": 8, "seed": 3})
    turn = data["turns"][0]
    for side, server, kind in (("a", base_server, "text"), ("b", chat_server, "message")):
        generation = turn[side]
        full = full_answer(server, last_body(server))
        choice = full["choices"][0]
        expected_text = choice["text"] if kind == "text" else choice["message"]["content"]
        assert generation["status"] == "done"
        assert generation["error"] is None
        assert generation["text"] == expected_text
        assert generation["finish_reason"] == choice["finish_reason"]
        assert generation["prompt_tokens"] == full["usage"]["prompt_tokens"]
        assert generation["completion_tokens"] == full["usage"]["completion_tokens"]
        assert 0 <= generation["ttft_ms"] <= generation["total_ms"]
        assert generation["finished_at"] is not None
    assert turn["a"]["finish_reason"] == "length"
    assert turn["b"]["finish_reason"] == "stop"


async def test_model_revision_and_served_model_are_recorded(
    client: httpx.AsyncClient, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    turn = (await compare(client, prompt="Hi"))["turns"][0]
    base, chat = models.get("base"), models.get("chat")
    assert base is not None and chat is not None
    assert turn["a"]["model_revision"] == base.revision is not None
    assert turn["a"]["served_model"] == base.model
    assert turn["b"]["model_revision"] == chat.revision
    assert turn["b"]["served_model"] == chat.model
    assert (turn["a"]["model_name"], turn["b"]["model_name"]) == ("base", "chat")


# ---------------------------------------------------------------- follow-ups


async def test_follow_up_chat_gets_history_with_its_own_earlier_answer(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    system = "Be brief."
    first = await compare(client, prompt="Name a river.", system=system)
    answer_b = first["turns"][0]["b"]["text"]
    answer_a = first["turns"][0]["a"]["text"]
    assert answer_a != answer_b
    data = await follow_up(client, first["id"], prompt="And a mountain?")
    assert last_body(chat_server)["messages"] == [
        {"role": "system", "content": system},
        {"role": "user", "content": "Name a river."},
        {"role": "assistant", "content": answer_b},
        {"role": "user", "content": "And a mountain?"},
    ]
    assert len(data["turns"]) == 2
    second = data["turns"][1]
    assert second["number"] == 2 and second["prompt"] == "And a mountain?"
    assert second["b"]["messages"] == last_body(chat_server)["messages"]
    assert second["a"]["status"] == second["b"]["status"] == "done"


async def test_follow_up_raw_base_continues_its_own_document(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    first = await compare(client, prompt="Chapter one. The town")
    answer_a = first["turns"][0]["a"]["text"]
    answer_b = first["turns"][0]["b"]["text"]
    data = await follow_up(client, first["id"], prompt="Chapter two. The river")
    sent = last_body(base_server)["prompt"]
    # Its own earlier continuation follows the earlier prompt directly, then the new prompt.
    assert sent.startswith("Chapter one. The town" + answer_a)
    assert sent.endswith("Chapter two. The river")
    assert answer_b not in sent
    assert "User:" not in sent and "Assistant:" not in sent
    assert "messages" not in last_body(base_server)
    assert data["turns"][1]["a"]["prompt_text"] == sent


async def test_follow_up_transcript_base_has_user_and_its_own_assistant_lines(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    first = await compare(client, prompt="Name a river.", base_format="transcript")
    answer_a = first["turns"][0]["a"]["text"]
    answer_b = first["turns"][0]["b"]["text"]
    await follow_up(client, first["id"], prompt="And a mountain?")
    sent = last_body(base_server)["prompt"]
    assert sent.endswith(
        f"User: Name a river.\nAssistant: {answer_a.strip()}\nUser: And a mountain?\nAssistant:"
    )
    assert answer_b.strip() not in sent
    assert "\nUser:" in last_body(base_server)["stop"]


async def test_follow_up_uses_its_own_params_and_keeps_the_models(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    first = await compare(client, prompt="A", models=["chat", "base"], params={"seed": 1})
    data = await follow_up(client, first["id"], prompt="B", params={"seed": 2, "max_tokens": 5})
    assert (data["model_a"], data["model_b"]) == ("chat", "base")
    assert data["turns"][0]["params"]["seed"] == 1
    assert data["turns"][1]["params"]["seed"] == 2
    for server in (base_server, chat_server):
        assert [r["body"]["seed"] for r in server.requests] == [1, 2]
        assert last_body(server)["max_tokens"] == 5


async def test_follow_up_on_unknown_conversation_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/comparisons/nope/turns", json={"prompt": "hi"})
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


# ---------------------------------------------------------------- reading


async def test_get_comparison_returns_it_as_stored(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    first = await compare(client, prompt="One", system="sys")
    created = await follow_up(client, first["id"], prompt="Two")
    response = await client.get(f"/api/v1/comparisons/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert [t["number"] for t in created["turns"]] == [1, 2]
    assert [t["prompt"] for t in created["turns"]] == ["One", "Two"]


async def test_get_unknown_comparison_is_404_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/comparisons/0123456789abcdef")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert "0123456789abcdef" in response.json()["detail"]


# ---------------------------------------------------------------- votes


async def vote(client: httpx.AsyncClient, conversation_id: str, **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/comparisons/{conversation_id}/votes", json=body)


async def test_vote_is_stored_against_the_exact_answers(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    data = await compare(client, prompt="Hi")
    turn = data["turns"][0]
    response = await vote(
        client, data["id"], winner="a", rater="alice", score_a=5, score_b=2, comment=" good "
    )
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["turn"] == 1 and stored["rater"] == "alice" and stored["winner"] == "a"
    assert (stored["score_a"], stored["score_b"]) == (5, 2)
    assert stored["comment"] == "good"
    assert stored["generation_a_id"] == turn["a"]["id"]
    assert stored["generation_b_id"] == turn["b"]["id"]
    votes = (await client.get(f"/api/v1/comparisons/{data['id']}")).json()["turns"][0]["votes"]
    assert votes == [stored]


async def test_same_rater_voting_again_overwrites(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    data = await compare(client, prompt="Hi")
    first = (await vote(client, data["id"], winner="a", rater="alice", score_a=4)).json()
    response = await vote(client, data["id"], winner="tie", rater="alice")
    assert response.status_code == 201
    votes = (await client.get(f"/api/v1/comparisons/{data['id']}")).json()["turns"][0]["votes"]
    assert len(votes) == 1
    assert votes[0]["id"] == first["id"]
    assert votes[0]["winner"] == "tie" and votes[0]["score_a"] is None


async def test_different_raters_give_two_votes(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    data = await compare(client, prompt="Hi")
    assert (await vote(client, data["id"], winner="a", rater="alice")).status_code == 201
    assert (await vote(client, data["id"], winner="both_bad", rater="bob")).status_code == 201
    votes = (await client.get(f"/api/v1/comparisons/{data['id']}")).json()["turns"][0]["votes"]
    assert sorted((v["rater"], v["winner"]) for v in votes) == [
        ("alice", "a"),
        ("bob", "both_bad"),
    ]


async def test_vote_on_a_closed_turn_is_409_and_the_latest_turn_is_the_default(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    data = await compare(client, prompt="One")
    await follow_up(client, data["id"], prompt="Two")
    closed = await vote(client, data["id"], winner="a", rater="alice", turn=1)
    assert closed.status_code == 409
    assert "closed" in closed.json()["detail"]
    latest = await vote(client, data["id"], winner="b", rater="alice")
    assert latest.status_code == 201 and latest.json()["turn"] == 2
    stored = (await client.get(f"/api/v1/comparisons/{data['id']}")).json()
    assert stored["turns"][0]["votes"] == []
    assert len(stored["turns"][1]["votes"]) == 1


async def test_vote_on_unknown_conversation_is_404(client: httpx.AsyncClient) -> None:
    response = await vote(client, "missing", winner="a", rater="alice")
    assert response.status_code == 404
    assert "missing" in response.json()["detail"]


async def test_vote_on_unknown_turn_number_is_404(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    data = await compare(client, prompt="Hi")
    response = await vote(client, data["id"], winner="a", rater="alice", turn=7)
    assert response.status_code == 404
    assert "7" in response.json()["detail"]


async def test_invalid_winner_is_422_naming_the_field(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    data = await compare(client, prompt="Hi")
    response = await vote(client, data["id"], winner="c", rater="alice")
    assert response.status_code == 422
    assert "winner" in response.json()["detail"]


async def test_score_outside_1_to_5_is_422(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    data = await compare(client, prompt="Hi")
    for field, score in (("score_a", 0), ("score_b", 6), ("score_a", -1)):
        response = await vote(client, data["id"], winner="a", rater="alice", **{field: score})
        assert response.status_code == 422, (field, score)
        assert field in response.json()["detail"]
    stored = (await client.get(f"/api/v1/comparisons/{data['id']}")).json()
    assert stored["turns"][0]["votes"] == []


async def test_blank_rater_is_422(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    short(base_server, chat_server)
    data = await compare(client, prompt="Hi")
    response = await vote(client, data["id"], winner="a", rater="   ")
    assert response.status_code == 422
    assert "rater" in response.json()["detail"]


# ---------------------------------------------------------------- OpenAPI


async def test_openapi_documents_the_api_paths(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    expected = {
        "/api/v1/models": {"get"},
        "/api/v1/comparisons": {"post"},
        "/api/v1/comparisons/{conversation_id}": {"get"},
        "/api/v1/comparisons/{conversation_id}/turns": {"post"},
        "/api/v1/comparisons/{conversation_id}/votes": {"post"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), path
    create = paths["/api/v1/comparisons"]["post"]
    assert "201" in create["responses"]
    assert create["requestBody"]["content"]["application/json"]
    # The browser pages are not part of the API description.
    assert not any(p.startswith("/c/") or p.startswith("/turns/") for p in paths)
