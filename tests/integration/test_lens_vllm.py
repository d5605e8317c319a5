"""The token lens against real vLLM (CPU build, tiny random-weight models): shape, consistency."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from app.config import ModelsFile
from app.lens.shift import Shift, token_shift
from tests.integration.conftest import RealServers

pytestmark = pytest.mark.vllm

PROMPT = "Once upon a time, in a small harbour town,"
JSON = dict[str, Any]


async def compare(client: httpx.AsyncClient, **params: Any) -> JSON:
    """Run a comparison (base in column A, chat in B) through the JSON API."""
    response = await client.post(
        "/api/v1/comparisons", json={"prompt": PROMPT, "params": params}, timeout=300
    )
    assert response.status_code == 201, response.text
    conversation: JSON = response.json()
    return conversation


async def tokens_of(client: httpx.AsyncClient, generation: JSON) -> list[JSON]:
    """The stored token view of a generation."""
    response = await client.get(f"/api/v1/generations/{generation['id']}/tokens")
    assert response.status_code == 200, response.text
    tokens: list[JSON] = response.json()
    return tokens


def assert_token_view(generation: JSON, tokens: list[JSON]) -> None:
    """Every generated token is recorded once with a logprob and its alternatives, best first."""
    assert generation["status"] == "done", generation["error"]
    # The tiny models never sample EOS: every answer runs to max_tokens, no stop token to drop.
    assert generation["finish_reason"] == "length"
    assert len(tokens) == generation["completion_tokens"]
    assert "".join(t["token"] for t in tokens) == generation["text"]
    for position, token in enumerate(tokens):
        assert token["position"] == position
        assert isinstance(token["token_id"], int)
        assert token["logprob"] <= 0
        assert token["probability"] == pytest.approx(math.exp(token["logprob"]))
        top = [alternative["logprob"] for alternative in token["top"]]
        # The top 5, plus the sampled token when it is not among them (vLLM adds it).
        assert 5 <= len(top) <= 6
        assert top == sorted(top, reverse=True)
        # The chosen token is at best as likely as the likeliest alternative.
        assert token["logprob"] <= top[0] + 1e-6


async def test_a_comparison_stores_logprobs_for_both_columns(
    client: httpx.AsyncClient, real_servers: RealServers
) -> None:
    conversation = await compare(client, max_tokens=12, seed=3, temperature=0.8)
    turn = conversation["turns"][0]
    for side in ("a", "b"):
        assert_token_view(turn[side], await tokens_of(client, turn[side]))
    # GET on the generation carries the same tokens, and no analysis yet.
    detail = (await client.get(f"/api/v1/generations/{turn['b']['id']}")).json()
    assert detail["tokens"] == await tokens_of(client, turn["b"])
    assert detail["token_shift"] is None and turn["b"]["shifted_ratio"] is None


async def test_token_shift_of_the_chat_answer_ranks_every_token(
    client: httpx.AsyncClient, real_servers: RealServers
) -> None:
    conversation = await compare(client, max_tokens=24, seed=5, temperature=0.8)
    chat = conversation["turns"][0]["b"]
    chat_tokens = await tokens_of(client, chat)

    response = await client.post(
        f"/api/v1/generations/{chat['id']}/token-shift", json={"top_k": 5}, timeout=300
    )
    assert response.status_code == 201, response.text
    analysis = response.json()

    assert analysis["base_model"] == "base"
    assert analysis["total_tokens"] == len(chat_tokens) == len(analysis["tokens"])
    counts = analysis["counts"]
    assert counts["unshifted"] + counts["marginal"] + counts["shifted"] == len(chat_tokens)
    total = analysis["total_tokens"]
    assert analysis["shifted_ratio"] == pytest.approx(counts["shifted"] / total)
    assert analysis["marginal_ratio"] == pytest.approx(counts["marginal"] / total)
    assert analysis["unshifted_ratio"] == pytest.approx(counts["unshifted"] / total)
    for scored, chosen in zip(analysis["tokens"], chat_tokens, strict=True):
        # The very tokens the chat model produced, carried over by id, not re-tokenised.
        assert scored["token_id"] == chosen["token_id"]
        assert scored["chat_logprob"] == pytest.approx(chosen["logprob"])
        assert scored["rank"] >= 1
        assert scored["logprob"] <= scored["base_top_logprob"] + 1e-6
        expected = (
            Shift.UNSHIFTED
            if scored["rank"] == 1
            else Shift.MARGINAL
            if scored["rank"] <= 3
            else Shift.SHIFTED
        )
        assert scored["shift"] == expected.value
        assert (scored["base_top_token_id"] == scored["token_id"]) is (scored["rank"] == 1)
    assert [t["position"] for t in analysis["shifted"]] == [
        t["position"] for t in analysis["tokens"] if t["shift"] == "shifted"
    ]
    # Two /tokenize calls compare the vocabularies, one tokenizes the context, one scores.
    assert analysis["requests"] == 4
    assert analysis["elapsed_ms"] > 0
    print(
        f"\ntoken shift of a {total}-token chat answer: {analysis['requests']} requests, "
        f"{analysis['elapsed_ms']:.0f} ms; generating the answer took {chat['total_ms']:.0f} ms "
        f"(ttft {chat['ttft_ms']:.0f} ms); shifted ratio {analysis['shifted_ratio']:.3f}"
    )

    stored = await client.get(f"/api/v1/generations/{chat['id']}/token-shift")
    assert stored.json() == analysis
    listed = (await client.get(f"/api/v1/comparisons/{conversation['id']}")).json()
    assert listed["turns"][0]["b"]["shifted_ratio"] == analysis["shifted_ratio"]


async def test_the_base_models_own_greedy_answer_is_all_rank_one(
    client: httpx.AsyncClient, real_servers: RealServers, real_models: ModelsFile
) -> None:
    conversation = await compare(client, max_tokens=16, seed=1, temperature=0)
    generation = conversation["turns"][0]["a"]
    assert generation["model_kind"] == "base" and generation["prompt_text"] == PROMPT
    tokens = await tokens_of(client, generation)
    assert_token_view(generation, tokens)
    base = real_models.get("base")
    assert base is not None
    async with httpx.AsyncClient(timeout=300) as http:
        analysis = await token_shift(
            http, base, generation["prompt_text"], [t["token_id"] for t in tokens], chat=base
        )
    assert analysis.total == len(tokens)
    assert [t.rank for t in analysis.tokens] == [1] * len(tokens)
    assert analysis.shifted_ratio == 0.0 and analysis.marginal_ratio == 0.0
    for scored, generated in zip(analysis.tokens, tokens, strict=True):
        # Scoring the prompt gives the logprob that generating it did.
        assert scored.logprob == pytest.approx(generated["logprob"], abs=1e-3)


async def test_a_prefix_continuation_runs_on_the_base_model(
    client: httpx.AsyncClient, real_servers: RealServers
) -> None:
    conversation = await compare(client, max_tokens=12, seed=9, temperature=0.8)
    chat = conversation["turns"][0]["b"]
    chat_tokens = await tokens_of(client, chat)
    response = await client.post(
        f"/api/v1/generations/{chat['id']}/prefix-continuations", json={"k": 3}, timeout=300
    )
    assert response.status_code == 201, response.text
    continuation = response.json()
    assert (continuation["side"], continuation["model_name"]) == ("p", "base")
    assert (continuation["prefix_of_id"], continuation["prefix_tokens"]) == (chat["id"], 3)
    assert continuation["status"] == "done", continuation["error"]
    assert continuation["text"]
    prefix = "".join(t["token"] for t in chat_tokens[:3])
    # Raw format: the context is the prompt itself, then the chat answer's first three tokens.
    assert continuation["prompt_text"] == PROMPT + prefix
    async with httpx.AsyncClient(timeout=60) as http:
        context = await http.post(
            f"{real_servers.base.root_url}/tokenize", json={"model": "tiny-base", "prompt": PROMPT}
        )
    # Sent as token ids: the context's ids plus exactly the three answer tokens.
    assert continuation["prompt_tokens"] == context.json()["count"] + 3
    assert (
        continuation["tokens"] and len(continuation["tokens"]) == continuation["completion_tokens"]
    )
    listed = (await client.get(f"/api/v1/comparisons/{conversation['id']}")).json()
    assert [g["id"] for g in listed["turns"][0]["continuations"]] == [continuation["id"]]
    assert listed["turns"][0]["b"]["id"] == chat["id"]

    rendered = await client.get(f"/api/v1/generations/{chat['id']}/rendered-prompt")
    assert rendered.status_code == 200, rendered.text
    assert rendered.json()["kind"] == "chat"
    assert rendered.json()["token_count"] == chat["prompt_tokens"]
    assert "<|user|>" in rendered.json()["text"] and PROMPT in rendered.json()["text"]
