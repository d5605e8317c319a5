"""The token-lens JSON API on the fake servers: exact ranks and ratios, and every refusal."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.config import ModelsFile
from app.generation.records import Generation
from app.lens.models import TokenShiftAnalysis
from playground_tools.fake_vllm import FakeServer
from tests.lens.helpers import lens_models, tokens_of

JSON = dict[str, Any]
PROMPT = "Tell me about the river and the old town."


def word(token: str) -> str:
    """The fake's documented word of a token: no surrounding blanks, no trailing punctuation."""
    return token.strip().rstrip(".,:;!?")


def expected_rank(token: str, ranks: dict[str, int]) -> int:
    """The fake base model's documented rank of a scored token."""
    return ranks.get(word(token), 1)


@pytest.fixture
def models(base_server: FakeServer, chat_server: FakeServer) -> ModelsFile:
    """Base and chat on the fakes, and a base and a chat model whose servers are down."""
    return lens_models(base_server, chat_server)


async def compare(client: httpx.AsyncClient, **body: Any) -> JSON:
    """A finished comparison (base in A, chat in B, greedy) through the JSON API."""
    body.setdefault("prompt", PROMPT)
    body.setdefault("params", {"temperature": 0})
    response = await client.post("/api/v1/comparisons", json=body)
    assert response.status_code == 201, response.text
    conversation: JSON = response.json()
    return conversation


async def analyse(client: httpx.AsyncClient, generation_id: int, **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/generations/{generation_id}/token-shift", json=body)


async def stored_analyses(app: FastAPI) -> list[tuple[int, int, float]]:
    """(id, generation id, shifted ratio) of every stored analysis."""
    async with app.state.playground.sessions() as session:
        rows = await session.execute(
            select(
                TokenShiftAnalysis.id,
                TokenShiftAnalysis.generation_id,
                TokenShiftAnalysis.shifted_ratio,
            ).order_by(TokenShiftAnalysis.id)
        )
        return [(row[0], row[1], row[2]) for row in rows]


async def generation_count(app: FastAPI) -> int:
    async with app.state.playground.sessions() as session:
        return int(await session.scalar(select(func.count(Generation.id))) or 0)


# ---------------------------------------------------------------- token view


async def test_token_view_of_both_columns(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    base_server.config.answer_words = chat_server.config.answer_words = 8
    conversation = await compare(client)
    turn = conversation["turns"][0]
    for side in ("a", "b"):
        generation = turn[side]
        tokens = await tokens_of(client, generation["id"])
        assert "".join(t["token"] for t in tokens) == generation["text"]
        # The chat answer's final <|end|> is counted by the server but is not part of the text.
        dropped = 1 if generation["finish_reason"] == "stop" else 0
        assert len(tokens) == generation["completion_tokens"] - dropped
        for position, token in enumerate(tokens):
            assert token["position"] == position
            assert isinstance(token["token_id"], int)
            assert token["probability"] == pytest.approx(math.exp(token["logprob"]))
            top = token["top"]
            assert len(top) == 5
            assert [a["logprob"] for a in top] == sorted((a["logprob"] for a in top), reverse=True)
            assert all(a["probability"] == pytest.approx(math.exp(a["logprob"])) for a in top)
            # Greedy: the chosen token is the model's first choice.
            assert top[0]["token"] == token["token"]
        detail = (await client.get(f"/api/v1/generations/{generation['id']}")).json()
        assert detail["tokens"] == tokens
        assert detail["token_shift"] is None and detail["continuations"] == []
        assert (detail["turn"], detail["conversation_id"]) == (1, conversation["id"])
        assert {k: detail[k] for k in generation} == generation


async def test_a_generation_without_logprobs_has_no_token_view(
    client: httpx.AsyncClient, app: FastAPI, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 4
    chat = (await compare(client))["turns"][0]["b"]
    async with app.state.playground.sessions() as session, session.begin():
        stored = await session.get(Generation, chat["id"])
        assert stored is not None
        stored.tokens = None
    response = await client.get(f"/api/v1/generations/{chat['id']}/tokens")
    assert response.status_code == 422
    assert "no token logprobs" in response.json()["detail"]
    assert (await client.get(f"/api/v1/generations/{chat['id']}")).json()["tokens"] is None


async def test_unknown_generation_is_404_everywhere(client: httpx.AsyncClient) -> None:
    for path in ("", "/tokens", "/token-shift", "/rendered-prompt"):
        response = await client.get(f"/api/v1/generations/999{path}")
        assert response.status_code == 404, path
        assert "no generation 999" in response.json()["detail"]
    for path in ("/token-shift", "/prefix-continuations"):
        response = await client.post(f"/api/v1/generations/999{path}", json={})
        assert response.status_code == 404, path


# ---------------------------------------------------------------- token shift


async def test_token_shift_gives_the_exact_ranks_and_ratios(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 16
    conversation = await compare(client)
    chat = conversation["turns"][0]["b"]
    tokens = await tokens_of(client, chat["id"])
    words = [word(t["token"]) for t in tokens]
    shifted_word = words[-1]
    marginal_word = next(w for w in words[3:] if w != shifted_word)
    # The fake base ranks these words 7th and 2nd wherever they appear, the chat opener as its
    # defaults say ("Sure" 6th, or "Here" 4th, "an" 2nd, "answer" 3rd), everything else 1st.
    ranks = base_server.config.prompt_ranks | {shifted_word: 7, marginal_word: 2}
    base_server.config.prompt_ranks = ranks
    base_server.requests.clear()

    response = await analyse(client, chat["id"])
    assert response.status_code == 201, response.text
    analysis = response.json()

    expected = [expected_rank(t["token"], ranks) for t in tokens]
    total = len(tokens)
    shifted = sum(rank > 3 for rank in expected)
    marginal = sum(rank in (2, 3) for rank in expected)
    assert shifted >= 2 and marginal >= 1  # the opener and the chosen words
    assert [t["rank"] for t in analysis["tokens"]] == expected
    assert analysis["counts"] == {
        "unshifted": total - shifted - marginal,
        "marginal": marginal,
        "shifted": shifted,
    }
    assert analysis["total_tokens"] == total
    assert analysis["shifted_ratio"] == shifted / total
    assert analysis["marginal_ratio"] == marginal / total
    assert analysis["unshifted_ratio"] == (total - shifted - marginal) / total
    for scored, chosen in zip(analysis["tokens"], tokens, strict=True):
        assert (scored["token"], scored["token_id"]) == (chosen["token"], chosen["token_id"])
        assert scored["chat_logprob"] == chosen["logprob"]
        assert scored["shift"] == (
            "unshifted" if scored["rank"] == 1 else "marginal" if scored["rank"] <= 3 else "shifted"
        )
        # What the base model would have said instead: its own first choice.
        assert (scored["base_top_token"] == scored["token"]) is (scored["rank"] == 1)
        assert scored["base_top_logprob"] >= scored["logprob"]
    assert analysis["shifted"] == [t for t in analysis["tokens"] if t["shift"] == "shifted"]
    assert all(t["base_top_token"] != t["token"] for t in analysis["shifted"])
    assert (analysis["base_model"], analysis["base_served_model"]) == ("base", "tiny-base")
    assert (analysis["base_format"], analysis["context_text"]) == ("raw", PROMPT)
    assert analysis["top_k"] == 5 and analysis["generation_id"] == chat["id"]
    # Two probes compare the vocabularies, one tokenizes the context, ONE request scores.
    assert analysis["requests"] == 4 and analysis["elapsed_ms"] > 0
    scoring = [r for r in base_server.requests if r["path"] == "/v1/completions"]
    assert len(scoring) == 1
    assert scoring[0]["body"]["prompt"][-total:] == [t["token_id"] for t in tokens]
    assert scoring[0]["body"]["prompt_logprobs"] == 5 and scoring[0]["body"]["max_tokens"] == 1

    # Stored: read back as it was returned, and its ratio shows in the conversation.
    assert (await client.get(f"/api/v1/generations/{chat['id']}/token-shift")).json() == analysis
    detail = (await client.get(f"/api/v1/generations/{chat['id']}")).json()
    assert detail["token_shift"] == analysis and detail["shifted_ratio"] == shifted / total
    listed = (await client.get(f"/api/v1/comparisons/{conversation['id']}")).json()
    assert listed["turns"][0]["b"]["shifted_ratio"] == shifted / total
    assert listed["turns"][0]["a"]["shifted_ratio"] is None
    assert await stored_analyses(app) == [(1, chat["id"], shifted / total)]


async def test_reanalysis_replaces_the_stored_analysis(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 10
    chat = (await compare(client))["turns"][0]["b"]
    first = await analyse(client, chat["id"])
    assert first.status_code == 201
    tokens = await tokens_of(client, chat["id"])
    base_server.config.prompt_ranks = {word(t["token"]): 9 for t in tokens}
    second = await analyse(client, chat["id"], top_k=3, base_model="base")
    assert second.status_code == 201, second.text
    assert second.json()["top_k"] == 3
    assert second.json()["shifted_ratio"] == 1.0 != first.json()["shifted_ratio"]
    [(_, generation_id, ratio)] = await stored_analyses(app)
    assert (generation_id, ratio) == (chat["id"], 1.0)
    assert (await client.get(f"/api/v1/generations/{chat['id']}/token-shift")).json() == (
        second.json()
    )


async def test_no_analysis_yet_is_404(client: httpx.AsyncClient, chat_server: FakeServer) -> None:
    chat_server.config.answer_words = 3
    chat = (await compare(client))["turns"][0]["b"]
    response = await client.get(f"/api/v1/generations/{chat['id']}/token-shift")
    assert response.status_code == 404
    assert "no token-shift analysis" in response.json()["detail"]


async def failures(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer, conversation: JSON
) -> list[tuple[str, int, str]]:
    """Try every way an analysis must fail; (what, status, message) of each answer."""
    turn = conversation["turns"][0]
    base_id, chat_id = turn["a"]["id"], turn["b"]["id"]
    seen = []

    async def attempt(what: str, generation_id: int, **body: Any) -> None:
        response = await analyse(client, generation_id, **body)
        seen.append((what, response.status_code, response.json()["detail"]))

    await attempt("base generation", base_id)
    chat_server.config.vocab_id = "another-tokenizer"
    await attempt("different tokenizers", chat_id)
    chat_server.reset()
    base_server.config.max_model_len = len(turn["b"]["text"].split()) + 2
    await attempt("too long", chat_id)
    base_server.reset()
    await attempt("base down", chat_id, base_model="gone")
    base_server.config.fail_status = 503
    await attempt("base failing", chat_id)
    base_server.reset()
    await attempt("unknown generation", 999_999)
    await attempt("unknown base model", chat_id, base_model="nope")
    await attempt("chat as the base model", chat_id, base_model="chat")
    await attempt("bad top_k", chat_id, top_k=0)
    return seen


EXPECTED_FAILURES = [
    ("base generation", 422, "base is a base model"),
    ("different tokenizers", 409, "use different tokenizers"),
    ("too long", 422, "takes at most"),
    ("base down", 502, "cannot connect to gone"),
    ("base failing", 502, "HTTP 503"),
    ("unknown generation", 404, "no generation 999999"),
    ("unknown base model", 422, "unknown model 'nope'"),
    ("chat as the base model", 422, "chat is not a base model"),
    ("bad top_k", 422, "top_k"),
]


async def test_every_failure_is_clear_and_stores_nothing(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 8
    conversation = await compare(client)
    seen = await failures(client, base_server, chat_server, conversation)
    assert [(what, status) for what, status, _ in seen] == [
        (what, status) for what, status, _ in EXPECTED_FAILURES
    ]
    for (what, _, message), (_, _, expected) in zip(seen, EXPECTED_FAILURES, strict=True):
        assert expected in message, (what, message)
    assert await stored_analyses(app) == []
    listed = (await client.get(f"/api/v1/comparisons/{conversation['id']}")).json()
    assert listed["turns"][0]["b"]["shifted_ratio"] is None


async def test_failures_leave_an_earlier_analysis_untouched(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 8
    conversation = await compare(client)
    chat_id = conversation["turns"][0]["b"]["id"]
    earlier = await analyse(client, chat_id)
    assert earlier.status_code == 201
    before = await stored_analyses(app)
    # A failed re-analysis would have changed the ranks: make it rank everything low.
    seen = await failures(client, base_server, chat_server, conversation)
    assert [status for _, status, _ in seen] == [status for _, status, _ in EXPECTED_FAILURES]
    assert await stored_analyses(app) == before
    stored = await client.get(f"/api/v1/generations/{chat_id}/token-shift")
    assert stored.json() == earlier.json()


async def test_the_body_must_be_json(client: httpx.AsyncClient, chat_server: FakeServer) -> None:
    chat_server.config.answer_words = 3
    chat = (await compare(client))["turns"][0]["b"]
    for path in ("token-shift", "prefix-continuations"):
        response = await client.post(
            f"/api/v1/generations/{chat['id']}/{path}", data={"top_k": "3"}
        )
        assert response.status_code == 415
        response = await client.post(
            f"/api/v1/generations/{chat['id']}/{path}", json={"surprise": 1}
        )
        assert response.status_code == 422
        assert "surprise" in response.json()["detail"]


# ---------------------------------------------------------------- prefix continuation


async def test_prefix_continuation_is_a_side_p_generation_on_context_plus_prefix(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 10
    base_server.config.answer_words = 5
    conversation = await compare(client, base_format="transcript")
    turn = conversation["turns"][0]
    chat = turn["b"]
    tokens = await tokens_of(client, chat["id"])
    base_server.requests.clear()

    response = await client.post(
        f"/api/v1/generations/{chat['id']}/prefix-continuations", json={"k": 3}
    )
    assert response.status_code == 201, response.text
    continuation = response.json()
    prefix = "".join(t["token"] for t in tokens[:3])
    context = turn["a"]["prompt_text"]  # the base column got the same transcript context
    assert context.startswith("User: ") and PROMPT in context
    assert continuation["prompt_text"] == context + prefix
    assert continuation["side"] == "p" and continuation["status"] == "done"
    assert (continuation["prefix_of_id"], continuation["prefix_tokens"]) == (chat["id"], 3)
    assert (continuation["model_name"], continuation["model_kind"]) == ("base", "base")
    assert continuation["text"] and continuation["tokens"]
    assert continuation["conversation_id"] == conversation["id"]
    # Sent as ids: the context's own ids, then exactly the chat answer's first three tokens.
    [sent] = [r["body"] for r in base_server.requests if r["path"] == "/v1/completions"]
    assert sent["prompt"][-3:] == [t["token_id"] for t in tokens[:3]]
    assert "\nUser:" in sent["stop"]
    assert continuation["prompt_tokens"] == len(sent["prompt"])

    # Listed with the answer it continues and with the turn; the columns are unchanged.
    detail = (await client.get(f"/api/v1/generations/{chat['id']}")).json()
    assert [g["id"] for g in detail["continuations"]] == [continuation["id"]]
    listed = (await client.get(f"/api/v1/comparisons/{conversation['id']}")).json()
    [listed_turn] = listed["turns"]
    assert [g["id"] for g in listed_turn["continuations"]] == [continuation["id"]]
    assert (listed_turn["a"]["id"], listed_turn["b"]["id"]) == (turn["a"]["id"], chat["id"])
    # The A/B logic ignores it: voting and following up work as before.
    vote = await client.post(
        f"/api/v1/comparisons/{conversation['id']}/votes", json={"winner": "a", "rater": "r"}
    )
    assert vote.status_code == 201, vote.text
    assert (vote.json()["generation_a_id"], vote.json()["generation_b_id"]) == (
        turn["a"]["id"],
        chat["id"],
    )
    follow = await client.post(
        f"/api/v1/comparisons/{conversation['id']}/turns", json={"prompt": "And then?"}
    )
    assert follow.status_code == 201, follow.text
    second = follow.json()["turns"][1]
    assert second["continuations"] == []
    assert {second["a"]["side"], second["b"]["side"]} == {"a", "b"}
    # A continuation is a base model's text: it cannot itself be analysed.
    refused = await analyse(client, continuation["id"])
    assert refused.status_code == 422


async def test_prefix_continuation_refusals_store_nothing(
    client: httpx.AsyncClient, app: FastAPI, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 4
    turn = (await compare(client))["turns"][0]
    before = await generation_count(app)
    cases = [
        (turn["b"]["id"], {"k": 99}, 422, "at most the answer's"),
        (turn["a"]["id"], {"k": 1}, 422, "base model"),
        (turn["b"]["id"], {"k": 1, "base_model": "gone"}, 502, "cannot connect to gone"),
        (turn["b"]["id"], {"k": -1}, 422, "k"),
    ]
    for generation_id, body, status, message in cases:
        response = await client.post(
            f"/api/v1/generations/{generation_id}/prefix-continuations", json=body
        )
        assert response.status_code == status, (body, response.text)
        assert message in response.json()["detail"]
    assert await generation_count(app) == before


# ---------------------------------------------------------------- rendered prompts


async def test_rendered_prompts_and_their_token_counts(
    client: httpx.AsyncClient, chat_server: FakeServer, base_server: FakeServer
) -> None:
    chat_server.config.answer_words = base_server.config.answer_words = 3
    turn = (await compare(client, system="Be brief."))["turns"][0]
    chat = (await client.get(f"/api/v1/generations/{turn['b']['id']}/rendered-prompt")).json()
    # The fake's documented chat template.
    assert chat == {
        "generation_id": turn["b"]["id"],
        "kind": "chat",
        "text": f"<|system|>\nBe brief.<|end|>\n<|user|>\n{PROMPT}<|end|>\n<|assistant|>\n",
        "token_count": turn["b"]["prompt_tokens"],
    }
    base = (await client.get(f"/api/v1/generations/{turn['a']['id']}/rendered-prompt")).json()
    assert base["kind"] == "base" and base["text"] == turn["a"]["prompt_text"]
    assert base["token_count"] == turn["a"]["prompt_tokens"]
    # Asked of the tokenizer once, then stored.
    chat_server.requests.clear()
    again = await client.get(f"/api/v1/generations/{turn['b']['id']}/rendered-prompt")
    assert again.json() == chat and chat_server.requests == []


async def test_rendered_prompt_when_the_server_is_down(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    turn = (await compare(client, models=["base", "down"]))["turns"][0]
    assert turn["b"]["status"] == "error"
    response = await client.get(f"/api/v1/generations/{turn['b']['id']}/rendered-prompt")
    assert response.status_code == 502
    assert "cannot connect to down" in response.json()["detail"]
    async with app.state.playground.sessions() as session:
        stored = await session.get(Generation, turn["b"]["id"])
        assert stored is not None and stored.rendered_prompt is None


async def test_the_lens_endpoints_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    expected = {
        "/api/v1/generations/{generation_id}": {"get"},
        "/api/v1/generations/{generation_id}/tokens": {"get"},
        "/api/v1/generations/{generation_id}/token-shift": {"get", "post"},
        "/api/v1/generations/{generation_id}/prefix-continuations": {"post"},
        "/api/v1/generations/{generation_id}/rendered-prompt": {"get"},
        "/api/v1/exports/token-shift.jsonl": {"get"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
    post = paths["/api/v1/generations/{generation_id}/token-shift"]["post"]
    assert post["tags"] == ["token lens"]
    assert {"201", "404", "409", "422", "502"} <= set(post["responses"])
    assert "shifted_ratio" in document["components"]["schemas"]["GenerationOut"]["properties"]
