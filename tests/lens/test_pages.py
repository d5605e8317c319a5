"""The token lens in the pages: the HTML its routes return, CSRF, stored results, inline errors."""

from __future__ import annotations

import html
import json
import math
import re

import httpx
import pytest
from fastapi import FastAPI

from app.config import ModelsFile
from app.lens.views import PROBABILITY_BANDS
from playground_tools.fake_vllm import FakeServer
from tests.conftest import csrf_headers
from tests.lens.helpers import lens_models, tokens_of
from tests.lens.test_api import PROMPT, analyse, compare, generation_count, stored_analyses, word

TOKEN_SPAN = re.compile(
    r'<span class="tok ([a-z-]+)" tabindex="(-?\d)" data-tip="([^"]*)">(.*?)</span>', re.S
)
# The chat answer that the fake writes as a single token, to prove output is drawn as text.
PAYLOAD = '<img/src="x"/onerror="alert(1)">'


@pytest.fixture
def models(base_server: FakeServer, chat_server: FakeServer) -> ModelsFile:
    """Base and chat on the fakes, and a base and a chat model whose servers are down."""
    return lens_models(base_server, chat_server)


def section(page: str, element: str, element_id: str) -> str:
    """The HTML of one element with this id (up to its first closing tag of the same name)."""
    match = re.search(rf'<{element} [^>]*id="{element_id}".*?</{element}>', page, re.S)
    assert match, f"no <{element} id={element_id}>"
    return match.group(0)


def token_spans(fragment: str) -> list[tuple[str, str, str, str]]:
    """(class, tabindex, tip, text) of every token drawn, tip and text unescaped."""
    return [
        (css, tabindex, html.unescape(tip), html.unescape(text))
        for css, tabindex, tip, text in TOKEN_SPAN.findall(fragment)
    ]


def answer_tokens(fragment: str) -> list[tuple[str, str, str, str]]:
    """The token spans of the answer itself (the legend's samples left out)."""
    match = re.search(r"<div class=\"tokens\" data-tokens>(.*?)</div>", fragment, re.S)
    assert match, "no token list"
    return token_spans(match.group(1))


async def test_finished_columns_offer_the_lens_and_only_chat_answers_the_analyses(
    client: httpx.AsyncClient, chat_server: FakeServer, base_server: FakeServer
) -> None:
    chat_server.config.answer_words = base_server.config.answer_words = 4
    conversation = await compare(client)
    turn = conversation["turns"][0]
    page = (await client.get(f"/c/{conversation['id']}")).text
    tid = turn["id"]
    base_column = section(page, "article", f"gen-{tid}-a")
    chat_column = section(page, "article", f"gen-{tid}-b")
    for column, generation in ((base_column, turn["a"]), (chat_column, turn["b"])):
        assert f'hx-get="/generations/{generation["id"]}/tokens"' in column
        assert f'hx-post="/generations/{generation["id"]}/rendered-prompt"' in column
    # Token shift and prefix continuation score a chat answer under a base model.
    assert f'hx-post="/generations/{turn["b"]["id"]}/token-shift"' in page
    assert f'hx-post="/generations/{turn["b"]["id"]}/prefix-continuations"' in page
    assert "/token-shift" not in base_column and "/prefix-continuations" not in base_column
    # Two base models configured: the user picks one; the conversation's own is preselected.
    shift = section(page, "section", f"shift-{turn['b']['id']}")
    assert re.search(r"<option selected>base</option>\s*<option>gone</option>", shift)


async def test_token_view_colours_each_token_by_its_probability(
    client: httpx.AsyncClient, chat_server: FakeServer, base_server: FakeServer
) -> None:
    chat_server.config.answer_words = base_server.config.answer_words = 8
    turn = (await compare(client))["turns"][0]
    for side in ("a", "b"):
        generation = turn[side]
        response = await client.get(f"/generations/{generation['id']}/tokens")
        assert response.status_code == 200, response.text
        spans = answer_tokens(response.text)
        expected = await tokens_of(client, generation["id"])
        # Every token drawn, exactly as generated: the spans add up to the answer (copyable).
        assert "".join(text for *_, text in spans) == generation["text"]
        assert [text for *_, text in spans] == [t["token"] for t in expected]
        # One Tab stop per answer; arrow keys move between tokens.
        assert [tabindex for _, tabindex, *_ in spans] == ["0"] + ["-1"] * (len(spans) - 1)
        for (css, _, tip, _), token in zip(spans, expected, strict=True):
            probability = math.exp(token["logprob"])
            band = next(b for b in PROBABILITY_BANDS if probability >= b.low)
            assert css == band.css
            lines = tip.split("\n")
            assert lines[0].startswith(f'"{token["token"]}"  p = ')
            assert lines[1] == "top alternatives:"
            assert len(lines) == 2 + len(token["top"]) == 7
            assert lines[2].startswith(f'1. "{token["top"][0]["token"]}"')
        # The legend names every band in words as well as colour.
        for band in PROBABILITY_BANDS:
            assert band.label in html.unescape(response.text)


async def test_model_output_in_the_lens_is_text_not_html(
    client: httpx.AsyncClient, chat_server: FakeServer, csrf: dict[str, str]
) -> None:
    chat_server.config.answer_words = 3
    chat_server.config.inject_text = PAYLOAD
    chat = (await compare(client))["turns"][0]["b"]
    assert PAYLOAD in chat["text"]
    tokens = (await client.get(f"/generations/{chat['id']}/tokens")).text
    shift = (await client.post(f"/generations/{chat['id']}/token-shift", headers=csrf)).text
    assert "<img" not in tokens and "<img" not in shift
    assert ">&lt;img/src=&#34;x&#34;/onerror=&#34;alert(1)&#34;&gt;</span>" in tokens


@pytest.fixture
async def csrf(client: httpx.AsyncClient) -> dict[str, str]:
    """The headers htmx sends from a page of this browser."""
    return await csrf_headers(client)


async def test_token_shift_needs_the_csrf_token(
    client: httpx.AsyncClient, app: FastAPI, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 3
    chat = (await compare(client))["turns"][0]["b"]
    for path in ("token-shift", "prefix-continuations"):
        response = await client.post(
            f"/generations/{chat['id']}/{path}", headers={"HX-Request": "true"}
        )
        assert response.status_code == 403, path
    assert await stored_analyses(app) == []


async def test_token_shift_marks_each_token_and_is_shown_again_on_reopening(
    client: httpx.AsyncClient,
    app: FastAPI,
    base_server: FakeServer,
    chat_server: FakeServer,
    csrf: dict[str, str],
) -> None:
    chat_server.config.answer_words = 12
    conversation = await compare(client)
    chat = conversation["turns"][0]["b"]
    tokens = await tokens_of(client, chat["id"])
    words = [word(t["token"]) for t in tokens]
    shifted_word, marginal_word = words[-1], next(w for w in words[3:] if w != words[-1])
    ranks = base_server.config.prompt_ranks | {shifted_word: 7, marginal_word: 3}
    base_server.config.prompt_ranks = ranks
    expected = [ranks.get(word(t["token"]), 1) for t in tokens]
    classes = ["unshifted" if r == 1 else "marginal" if r <= 3 else "shifted" for r in expected]
    shifted = classes.count("shifted")

    response = await client.post(f"/generations/{chat['id']}/token-shift", headers=csrf)
    assert response.status_code == 200, response.text
    fragment = response.text
    assert fragment.lstrip().startswith(f'<section class="token-shift" id="shift-{chat["id"]}"')
    spans = answer_tokens(fragment)
    assert [css for css, *_ in spans] == [f"shift-{c}" for c in classes]
    assert "".join(text for *_, text in spans) == chat["text"]
    ratio = f"{shifted / len(tokens) * 100:.1f}%"
    assert f'<strong class="shifted-ratio">{ratio}</strong> of {len(tokens)} tokens shifted' in (
        fragment
    )
    assert '<strong class="shift-base">base</strong>' in fragment
    # Each shifted token's tip and table row say what the base model would have said instead.
    for (_, _, tip, _), rank in zip(spans, expected, strict=True):
        assert f"rank {rank} under base" in tip
        assert ("base would say" in tip) is (rank != 1)
    rows = re.findall(r"<tr><td>(\d+)</td><td><code>(.*?)</code></td><td>(\d+)</td>", fragment)
    assert [(int(p), html.unescape(t), int(r)) for p, t, r in rows] == [
        (i, json.dumps(tokens[i]["token"]), r) for i, r in enumerate(expected) if r > 3
    ]
    assert "Analyse again" in fragment

    # Stored: reopening the conversation draws it again without asking the base server.
    base_server.requests.clear()
    page = (await client.get(f"/c/{conversation['id']}")).text
    assert answer_tokens(section(page, "section", f"shift-{chat['id']}")) == spans
    assert base_server.requests == []
    [(_, generation_id, stored_ratio)] = await stored_analyses(app)
    assert (generation_id, stored_ratio) == (chat["id"], shifted / len(tokens))


async def test_token_shift_failures_show_inline_and_keep_what_was_stored(
    client: httpx.AsyncClient,
    app: FastAPI,
    base_server: FakeServer,
    chat_server: FakeServer,
    csrf: dict[str, str],
) -> None:
    chat_server.config.answer_words = base_server.config.answer_words = 5
    turn = (await compare(client))["turns"][0]
    first = await analyse(client, turn["b"]["id"])
    assert first.status_code == 201
    stored = await stored_analyses(app)

    # The base server is down: a 502 with the reason, drawn in place of nothing; the earlier
    # analysis is still shown and stored.
    response = await client.post(
        f"/generations/{turn['b']['id']}/token-shift", data={"base_model": "gone"}, headers=csrf
    )
    assert response.status_code == 502
    assert 'class="error lens-error" role="alert">cannot connect to gone' in response.text
    assert 'class="shifted-ratio"' in response.text and "Analyse again" in response.text
    assert await stored_analyses(app) == stored

    # Another tokenizer: refused before any scoring.
    base_server.config.vocab_id = "another-vocabulary"
    response = await client.post(f"/generations/{turn['b']['id']}/token-shift", headers=csrf)
    assert response.status_code == 409
    assert "tokenizer" in html.unescape(response.text)
    assert await stored_analyses(app) == stored

    # A base model's answer is not analysed (and the base column offers no button for it).
    response = await client.post(f"/generations/{turn['a']['id']}/token-shift", headers=csrf)
    assert response.status_code == 422
    assert "is a base model" in response.text
    assert await stored_analyses(app) == stored

    # An unknown generation: the page's flash area says so.
    response = await client.post("/generations/999/token-shift", headers=csrf)
    assert response.status_code == 404
    assert response.headers["HX-Retarget"] == "#flash"


async def test_prefix_continuation_is_drawn_under_the_chat_answer_and_kept(
    client: httpx.AsyncClient, app: FastAPI, chat_server: FakeServer, csrf: dict[str, str]
) -> None:
    chat_server.config.answer_words = 10
    conversation = await compare(client)
    chat = conversation["turns"][0]["b"]
    tokens = await tokens_of(client, chat["id"])
    prefix = "".join(t["token"] for t in tokens[:3])

    response = await client.post(
        f"/generations/{chat['id']}/prefix-continuations", data={"k": "3"}, headers=csrf
    )
    assert response.status_code == 200, response.text
    detail = (await client.get(f"/api/v1/generations/{chat['id']}")).json()
    [continuation] = detail["continuations"]
    assert continuation["status"] == "done" and continuation["prefix_tokens"] == 3
    drawn = section(response.text, "article", f"continuation-{continuation['id']}")
    assert "<strong>base</strong> continues from the first 3 tokens" in drawn
    shown = re.search(
        r'<span class="prefix-text"[^>]*>(.*?)</span><span class="text">(.*?)</span>', drawn, re.S
    )
    assert shown, drawn
    assert html.unescape(shown.group(1)) == prefix
    assert html.unescape(shown.group(2)) == continuation["text"]
    # Reopening the conversation shows it in the chat column, not as a third answer to vote on.
    page = (await client.get(f"/c/{conversation['id']}")).text
    chat_column = section(page, "article", f"gen-{conversation['turns'][0]['id']}-b")
    assert f'id="continuation-{continuation["id"]}"' in page
    assert f'id="prefix-{chat["id"]}"' in chat_column
    assert page.count('<article class="column') == 2


async def test_prefix_continuation_refusals_show_inline_and_store_nothing(
    client: httpx.AsyncClient, app: FastAPI, chat_server: FakeServer, csrf: dict[str, str]
) -> None:
    chat_server.config.answer_words = 4
    chat = (await compare(client))["turns"][0]["b"]
    before = await generation_count(app)
    cases = [
        ({"k": "abc"}, 422, "whole number"),
        ({"k": "99"}, 422, "at most the answer"),
        ({"k": "1", "base_model": "gone"}, 502, "cannot connect to gone"),
    ]
    for data, status, message in cases:
        response = await client.post(
            f"/generations/{chat['id']}/prefix-continuations", data=data, headers=csrf
        )
        assert response.status_code == status, (data, response.text)
        assert re.search(r'class="error lens-error" role="alert">[^<]*' + message, response.text)
        # The form is drawn again, so the user can correct and retry.
        assert 'class="prefix-form"' in response.text
    assert await generation_count(app) == before


async def test_rendered_prompt_is_fetched_once_and_then_drawn_with_the_page(
    client: httpx.AsyncClient, chat_server: FakeServer
) -> None:
    chat_server.config.answer_words = 3
    conversation = await compare(client, system="Be brief.")
    chat = conversation["turns"][0]["b"]
    response = await client.post(
        f"/generations/{chat['id']}/rendered-prompt", headers=await csrf_headers(client)
    )
    assert response.status_code == 200, response.text
    rendered = f"<|system|>\nBe brief.<|end|>\n<|user|>\n{PROMPT}<|end|>\n<|assistant|>\n"
    assert f'<div class="raw rendered-text">{html.escape(rendered)}</div>' in response.text
    count = f'<span class="rendered-count">{chat["prompt_tokens"]}</span> tokens'
    assert count in response.text and "chat template" in response.text
    chat_server.requests.clear()
    page = (await client.get(f"/c/{conversation['id']}")).text
    assert count in page and chat_server.requests == []


async def test_rendered_prompt_error_is_shown_with_a_retry(client: httpx.AsyncClient) -> None:
    chat = (await compare(client, models=["base", "down"]))["turns"][0]["b"]
    response = await client.post(
        f"/generations/{chat['id']}/rendered-prompt", headers=await csrf_headers(client)
    )
    assert response.status_code == 502
    assert "cannot connect to down" in response.text
    assert f'hx-post="/generations/{chat["id"]}/rendered-prompt"' in response.text


async def test_rendered_prompt_is_asked_for_only_by_a_post_with_the_csrf_token(
    client: httpx.AsyncClient, app: FastAPI, chat_server: FakeServer
) -> None:
    """It calls the model server and stores the answer: a state change, so POST with CSRF."""
    from app.comparisons.models import Generation

    chat_server.config.answer_words = 3
    chat = (await compare(client))["turns"][0]["b"]
    url = f"/generations/{chat['id']}/rendered-prompt"
    chat_server.requests.clear()
    assert (await client.get(url, headers={"HX-Request": "true"})).status_code == 405
    refused = await client.post(url, headers={"HX-Request": "true"})
    assert refused.status_code == 403
    assert chat_server.requests == []
    async with app.state.playground.sessions() as session:
        stored = await session.get(Generation, chat["id"])
        assert stored is not None and stored.rendered_prompt is None


async def test_token_view_of_an_answer_without_logprobs_says_why(
    client: httpx.AsyncClient, app: FastAPI, chat_server: FakeServer
) -> None:
    from app.generation.records import Generation

    chat_server.config.answer_words = 3
    conversation = await compare(client)
    chat = conversation["turns"][0]["b"]
    async with app.state.playground.sessions() as session, session.begin():
        stored = await session.get(Generation, chat["id"])
        assert stored is not None
        stored.tokens = None
    response = await client.get(f"/generations/{chat['id']}/tokens")
    assert response.status_code == 422
    assert "no token logprobs" in response.text
    # The page no longer offers a token view it cannot draw.
    page = (await client.get(f"/c/{conversation['id']}")).text
    assert f'hx-get="/generations/{chat["id"]}/tokens"' not in page
