"""The browser pages: CSRF, the new-comparison form, conversation pages, follow-ups, votes, stop."""

from __future__ import annotations

import asyncio
import html
import re
import time
from typing import Any

import httpx
import pytest
from markupsafe import escape

from app.config import ModelKind, ModelsFile
from playground_tools.fake_vllm import FakeServer
from tests.conftest import csrf_headers

FINAL = {"done", "error", "cancelled", "interrupted"}
TURN_ID = re.compile(r'<section class="turn" id="turn-(\d+)"')
CONVERSATION_LINK = re.compile(r'href="/c/([0-9a-f]+)"')
HIDDEN_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def small_answers(*servers: FakeServer, words: int = 6) -> None:
    """Keep the fake answers short so each test stays fast."""
    for server in servers:
        server.config.answer_words = words


def form(prompt: str = "The capital of France is", **fields: str) -> dict[str, str]:
    """The new-comparison form as a browser submits it (blank seed = random)."""
    return {"prompt": prompt, "model_a": "base", "model_b": "chat", "max_tokens": "12"} | fields


def conversation_id(response: httpx.Response) -> str:
    """The conversation id from a create response's HX-Location or redirect."""
    location = response.headers.get("HX-Location") or response.headers["location"]
    match = re.fullmatch(r"/c/([0-9a-f]+)", location)
    assert match, location
    return match.group(1)


async def create(client: httpx.AsyncClient, headers: dict[str, str], **fields: str) -> str:
    """Start a conversation through the browser form and return its id."""
    response = await client.post("/c", data=form(**fields), headers=headers)
    assert response.status_code == 204, response.text
    return conversation_id(response)


async def wait_final(client: httpx.AsyncClient, cid: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll the API until every current generation of the conversation has finished."""
    deadline = time.monotonic() + timeout
    while True:
        data: dict[str, Any] = (await client.get(f"/api/v1/comparisons/{cid}")).json()
        generations = [turn[side] for turn in data["turns"] for side in ("a", "b")]
        if all(g is not None and g["status"] in FINAL for g in generations):
            return data
        assert time.monotonic() < deadline, f"generations still running: {generations}"
        await asyncio.sleep(0.02)


async def turn_ids(client: httpx.AsyncClient, cid: str) -> list[int]:
    """The turn ids drawn on a conversation page, oldest first."""
    page = await client.get(f"/c/{cid}")
    assert page.status_code == 200, page.text
    return [int(t) for t in TURN_ID.findall(page.text)]


def column(page: str, turn_id: int, side: str) -> str:
    """The HTML of one column of a turn."""
    match = re.search(rf'<article [^>]*id="gen-{turn_id}-{side}".*?</article>', page, re.S)
    assert match, f"no column {side} for turn {turn_id}"
    return match.group(0)


def footer(page: str, turn_id: int) -> str:
    """The HTML of a turn's footer (votes, vote form, regenerate)."""
    match = re.search(rf'<footer [^>]*id="turn-foot-{turn_id}".*?</footer>', page, re.S)
    assert match, f"no footer for turn {turn_id}"
    return match.group(0)


def column_text(page: str, turn_id: int, side: str) -> str:
    """The answer text shown in a column (live text while streaming)."""
    match = re.search(r'<span class="text"[^>]*>(.*?)</span>', column(page, turn_id, side), re.S)
    assert match
    return html.unescape(match.group(1))


def vote_record(fragment: str, rater: str) -> str | None:
    """The shown vote of one rater, or None."""
    pattern = rf'<li class="vote-record" data-rater="{re.escape(rater)}"[^>]*>(.*?)</li>'
    match = re.search(pattern, fragment, re.S)
    return match.group(1) if match else None


def flash_message(body: str) -> str:
    """The text of an error flash fragment."""
    match = re.search(r'<div class="flash flash-error">(.*?)</div>', body, re.S)
    assert match, body
    return html.unescape(match.group(1))


async def assert_nothing_stored(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    """No conversation listed in the history and no model was asked anything."""
    history = await client.get("/history")
    assert CONVERSATION_LINK.findall(history.text) == []
    assert "No conversations yet" in history.text
    assert base_server.requests == [] and chat_server.requests == []


# ---------------------------------------------------------------- the start page and CSRF


async def test_index_lists_models_with_first_base_and_first_chat_preselected(
    client: httpx.AsyncClient, models: ModelsFile
) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    names = [m.name for m in models.models]
    base = next(m.name for m in models.models if m.kind is ModelKind.BASE)
    chat = next(m.name for m in models.models if m.kind is ModelKind.CHAT)
    for select, expected_default in (("model_a", base), ("model_b", chat)):
        match = re.search(rf'<select name="{select}">(.*?)</select>', page.text, re.S)
        assert match, f"no {select} picker"
        options = re.findall(r'<option value="([^"]+)"\s*(selected)?\s*>', match.group(1))
        assert [name for name, _ in options] == names
        assert [name for name, selected in options if selected] == [expected_default]
    assert re.search(r'<textarea name="prompt"', page.text)
    assert HIDDEN_TOKEN.search(page.text), "the plain form carries no CSRF token field"


async def test_index_sets_httponly_samesite_strict_csrf_cookie_once(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/")
    cookies = [c for c in first.headers.get_list("set-cookie") if c.startswith("playground_csrf=")]
    assert len(cookies) == 1
    attributes = [part.strip().lower() for part in cookies[0].split(";")]
    assert "httponly" in attributes
    assert "samesite=strict" in attributes
    # The browser keeps its cookie: later pages neither replace it nor change its token.
    second = await client.get("/")
    assert not [c for c in second.headers.get_list("set-cookie") if "playground_csrf" in c]
    assert HIDDEN_TOKEN.findall(first.text) == HIDDEN_TOKEN.findall(second.text)


async def test_create_without_csrf_token_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    await client.get("/")  # the browser has its cookie, but the request carries no token
    plain = await client.post("/c", data=form(), follow_redirects=False)
    assert plain.status_code == 403
    assert "reload the page" in flash_message(plain.text)
    htmx = await client.post("/c", data=form(), headers={"HX-Request": "true"})
    assert htmx.status_code == 403
    assert htmx.headers["HX-Retarget"] == "#flash"
    assert "reload the page" in flash_message(htmx.text)
    await assert_nothing_stored(client, base_server, chat_server)


async def test_create_with_another_browsers_token_is_refused(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    small_answers(base_server, chat_server)
    other_browser = await csrf_headers(client)
    other_cookie = client.cookies["playground_csrf"]
    client.cookies.clear()
    this_browser = await csrf_headers(client)
    assert client.cookies["playground_csrf"] != other_cookie
    assert this_browser["X-CSRF-Token"] != other_browser["X-CSRF-Token"]

    refused = await client.post("/c", data=form(), headers=other_browser)
    assert refused.status_code == 403
    refused_field = await client.post(
        "/c", data=form(csrf_token=other_browser["X-CSRF-Token"]), follow_redirects=False
    )
    assert refused_field.status_code == 403
    await assert_nothing_stored(client, base_server, chat_server)
    # This browser's own token is accepted.
    cid = await create(client, this_browser)
    await wait_final(client, cid)


async def test_create_with_token_returns_hx_location_for_htmx(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    small_answers(base_server, chat_server)
    headers = await csrf_headers(client)
    response = await client.post("/c", data=form(prompt="Tell me about rivers"), headers=headers)
    assert response.status_code == 204
    cid = conversation_id(response)
    data = await wait_final(client, cid)
    assert data["turns"][0]["prompt"] == "Tell me about rivers"
    page = await client.get(response.headers["HX-Location"])
    assert page.status_code == 200
    assert "Tell me about rivers" in page.text


async def test_plain_form_post_with_token_field_redirects_with_303(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    small_answers(base_server, chat_server)
    index = await client.get("/")
    token_match = HIDDEN_TOKEN.search(index.text)
    assert token_match
    response = await client.post(
        "/c", data=form(csrf_token=token_match.group(1)), follow_redirects=False
    )
    assert response.status_code == 303
    cid = conversation_id(response)
    data = await wait_final(client, cid)
    assert data["id"] == cid


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"prompt": ""}, ["prompt"]),
        ({"prompt": "   "}, ["prompt", "empty"]),
        ({"temperature": "9"}, ["temperature", "2"]),
        ({"top_p": "abc"}, ["top_p"]),
        ({"model_a": "no-such-model"}, ["no-such-model"]),
    ],
    ids=["empty-prompt", "blank-prompt", "temperature-9", "top-p-not-a-number", "unknown-model"],
)
async def test_bad_form_input_flashes_a_readable_message(
    client: httpx.AsyncClient,
    base_server: FakeServer,
    chat_server: FakeServer,
    fields: dict[str, str],
    words: list[str],
) -> None:
    headers = await csrf_headers(client)
    response = await client.post("/c", data=form(**fields), headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["HX-Retarget"] == "#flash"
    assert response.headers["content-type"].startswith("text/html")
    message = flash_message(response.text)
    for word in words:
        assert word in message
    assert "Traceback" not in message and "{'" not in message
    await assert_nothing_stored(client, base_server, chat_server)


# ---------------------------------------------------------------- the conversation page


async def test_conversation_page_shows_answers_inputs_seed_finish_and_tokens(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    base_server.config.answer_words = 30  # runs into max_tokens: "length"
    chat_server.config.answer_words = 3  # ends by itself: "stop"
    headers = await csrf_headers(client)
    cid = await create(
        client,
        headers,
        prompt='Write about "quotes" & <tags>\nsecond line',
        system="You are terse.",
        seed="1234",
        max_tokens="10",
        stop="</s>\n\\n",
    )
    data = await wait_final(client, cid)
    (turn_id,) = await turn_ids(client, cid)
    page = (await client.get(f"/c/{cid}")).text
    turn = data["turns"][0]
    assert turn["params"]["seed"] == 1234
    assert f'<span class="seed">{turn["params"]["seed"]}</span>' in page
    # Stop sequences are shown as written, whitespace visible, markup escaped.
    assert turn["params"]["stop"] == ["</s>", "\n"]
    assert "· stop &#34;&lt;/s&gt;&#34;, &#34;\\n&#34;</p>" in page
    assert [r["body"]["seed"] for r in base_server.requests + chat_server.requests] == [1234, 1234]

    gen_a, gen_b = turn["a"], turn["b"]
    assert (gen_a["finish_reason"], gen_b["finish_reason"]) == ("length", "stop")
    for side, generation in (("a", gen_a), ("b", gen_b)):
        col = column(page, turn_id, side)
        assert generation["text"] and str(escape(generation["text"])) in col
        assert column_text(page, turn_id, side) == generation["text"]
        assert f'<span class="finish">{generation["finish_reason"]}</span>' in col
        tokens = f"{generation['prompt_tokens']} in / {generation['completion_tokens']} out"
        assert tokens in col
        assert generation["model_name"] in col

    # Base column: exactly the raw text the base server received.
    (base_request,) = base_server.requests
    assert base_request["path"] == "/v1/completions"
    assert gen_a["prompt_text"] == base_request["body"]["prompt"]
    assert "raw text" in column(page, turn_id, "a")
    assert f'<div class="raw sent-text">{escape(gen_a["prompt_text"])}</div>' in column(
        page, turn_id, "a"
    )
    # Chat column: exactly the messages the chat server received.
    (chat_request,) = chat_server.requests
    assert chat_request["path"] == "/v1/chat/completions"
    messages = chat_request["body"]["messages"]
    assert messages == gen_b["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    chat_column = column(page, turn_id, "b")
    assert "messages" in chat_column
    for message in messages:
        shown = (
            f'<span class="role">{message["role"]}</span>'
            f'<div class="raw">{escape(message["content"])}</div>'
        )
        assert shown in chat_column


async def test_unknown_conversation_is_a_404_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/c/0123456789abcdef0123456789abcdef")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Not found" in response.text
    assert 'href="/"' in response.text


async def test_model_output_and_prompt_html_are_escaped(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    small_answers(base_server, chat_server, words=3)
    base_server.config.inject_text = "<script>alert(1)</script>"
    chat_server.config.inject_text = "<script>alert(1)</script>"
    headers = await csrf_headers(client)
    prompt = '<img src=x onerror="alert(2)"> and <script>alert(3)</script>'
    cid = await create(client, headers, prompt=prompt, system="<b>bold</b> system")
    data = await wait_final(client, cid)
    turn = data["turns"][0]
    assert turn["a"]["text"].startswith("<script>alert(1)</script>")
    assert turn["b"]["text"].startswith("<script>alert(1)</script>")

    for url in (f"/c/{cid}", "/history", "/"):
        body = (await client.get(url)).text
        assert "<script>alert" not in body, url
        assert "<img src=x" not in body, url
        assert "&lt;img src=x" in body, url
    page = (await client.get(f"/c/{cid}")).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt; system" in page
    assert "<b>bold</b>" not in page


async def test_history_lists_conversations_newest_first_with_links(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    small_answers(base_server, chat_server, words=2)
    created = []
    for prompt in ("first prompt", "second prompt", "third prompt"):
        response = await client.post(
            "/api/v1/comparisons", json={"prompt": prompt, "params": {"max_tokens": 4}}
        )
        assert response.status_code == 201, response.text
        created.append((response.json()["id"], prompt))
    history = await client.get("/history")
    assert history.status_code == 200
    assert CONVERSATION_LINK.findall(history.text) == [cid for cid, _ in reversed(created)]
    for cid, prompt in created:
        assert f'<a href="/c/{cid}">{prompt}</a>' in history.text
        assert (await client.get(f"/c/{cid}")).status_code == 200


# ------------------------------------------------------- follow-ups, votes, regenerate, stop


async def test_follow_up_appends_turn_and_closes_voting_on_previous_out_of_band(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    small_answers(base_server, chat_server)
    headers = await csrf_headers(client)
    cid = await create(client, headers, prompt="First question")
    first = await wait_final(client, cid)
    (first_turn,) = await turn_ids(client, cid)
    assert 'class="vote"' in footer((await client.get(f"/c/{cid}")).text, first_turn)

    response = await client.post(
        f"/c/{cid}/turns", data={"prompt": "And a follow-up?", "max_tokens": "8"}, headers=headers
    )
    assert response.status_code == 200, response.text
    data = await wait_final(client, cid)
    assert [t["prompt"] for t in data["turns"]] == ["First question", "And a follow-up?"]
    assert data["turns"][0]["a"]["id"] == first["turns"][0]["a"]["id"]
    second_turn = (await turn_ids(client, cid))[-1]
    fragment = response.text
    assert f'id="turn-{second_turn}"' in fragment
    assert "And a follow-up?" in fragment
    old_footer = footer(fragment, first_turn)
    assert 'hx-swap-oob="outerHTML"' in old_footer
    assert 'class="vote"' not in old_footer
    assert 'class="regenerate"' not in old_footer
    assert "closed" in old_footer
    # Each model saw the first turn with its own answer.
    assert chat_server.requests[-1]["body"]["messages"][:2] == [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": first["turns"][0]["b"]["text"]},
    ]


async def test_follow_up_before_answers_finish_is_refused_with_flash(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    small_answers(base_server, chat_server, words=100)
    base_server.config.token_delay = 0.02
    headers = await csrf_headers(client)
    cid = await create(client, headers, max_tokens="100")
    response = await client.post(f"/c/{cid}/turns", data={"prompt": "too soon"}, headers=headers)
    assert response.status_code == 409
    assert response.headers["HX-Retarget"] == "#flash"
    assert "wait until every answer is complete" in flash_message(response.text)
    (turn_id,) = await turn_ids(client, cid)
    await client.post(f"/turns/{turn_id}/stop", headers=headers)
    data = await wait_final(client, cid)
    assert len(data["turns"]) == 1


async def test_vote_form_stores_vote_and_shows_it_and_revote_overwrites(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    small_answers(base_server, chat_server)
    headers = await csrf_headers(client)
    cid = await create(client, headers)
    before = await wait_final(client, cid)
    (turn_id,) = await turn_ids(client, cid)

    vote = {"winner": "a", "rater": "alice", "score_a": "4", "score_b": "2", "comment": "<b>ok</b>"}
    response = await client.post(f"/turns/{turn_id}/vote", data=vote, headers=headers)
    assert response.status_code == 200, response.text
    shown = vote_record(response.text, "alice")
    assert shown is not None
    assert "A is better" in shown and "scores A 4, B 2" in shown
    assert "&lt;b&gt;ok&lt;/b&gt;" in shown
    assert "Vote saved for alice" in response.text
    stored = (await client.get(f"/api/v1/comparisons/{cid}")).json()["turns"][0]["votes"]
    assert len(stored) == 1
    first = stored[0]
    assert (first["rater"], first["winner"], first["score_a"], first["score_b"]) == (
        "alice", "a", 4, 2,
    )  # fmt: skip
    assert first["comment"] == "<b>ok</b>"
    assert first["generation_a_id"] == before["turns"][0]["a"]["id"]
    assert first["generation_b_id"] == before["turns"][0]["b"]["id"]

    again = await client.post(
        f"/turns/{turn_id}/vote", data={"winner": "b", "rater": "alice"}, headers=headers
    )
    assert again.status_code == 200, again.text
    shown = vote_record(again.text, "alice")
    assert shown is not None and "B is better" in shown and "A is better" not in shown
    stored = (await client.get(f"/api/v1/comparisons/{cid}")).json()["turns"][0]["votes"]
    assert len(stored) == 1
    assert stored[0]["id"] == first["id"]
    assert (stored[0]["winner"], stored[0]["score_a"], stored[0]["comment"]) == ("b", None, None)
    page = (await client.get(f"/c/{cid}")).text
    assert vote_record(footer(page, turn_id), "alice") is not None


async def test_bad_vote_form_flashes_and_stores_nothing(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    small_answers(base_server, chat_server)
    headers = await csrf_headers(client)
    cid = await create(client, headers)
    await wait_final(client, cid)
    (turn_id,) = await turn_ids(client, cid)
    for bad in ({"winner": "c", "rater": "alice"}, {"winner": "a", "rater": " "}, {"winner": "a",
                "rater": "alice", "score_a": "9"}):  # fmt: skip
        response = await client.post(f"/turns/{turn_id}/vote", data=bad, headers=headers)
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["HX-Retarget"] == "#flash"
        assert flash_message(response.text)
    stored = (await client.get(f"/api/v1/comparisons/{cid}")).json()["turns"][0]["votes"]
    assert stored == []


async def test_regenerate_side_a_replaces_only_a_and_hides_the_old_vote(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    small_answers(base_server, chat_server)
    headers = await csrf_headers(client)
    cid = await create(client, headers)
    before = (await wait_final(client, cid))["turns"][0]
    (turn_id,) = await turn_ids(client, cid)
    voted = await client.post(
        f"/turns/{turn_id}/vote", data={"winner": "a", "rater": "alice"}, headers=headers
    )
    assert voted.status_code == 200
    assert len(base_server.requests) == 1 and len(chat_server.requests) == 1

    response = await client.post(
        f"/turns/{turn_id}/regenerate", data={"side": "a"}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert f'id="turn-{turn_id}"' in response.text
    after = (await wait_final(client, cid))["turns"][0]

    assert after["a"]["id"] != before["a"]["id"]
    assert after["a"]["status"] == "done"
    assert after["b"] == before["b"]
    # Only the base model was asked again, with the same prompt and settings.
    assert len(chat_server.requests) == 1
    assert len(base_server.requests) == 2
    assert base_server.requests[1]["body"] == base_server.requests[0]["body"]
    # The vote is kept, about the answers it judged, but it is not shown for the new pair.
    (vote,) = after["votes"]
    assert vote["generation_a_id"] == before["a"]["id"]
    page = (await client.get(f"/c/{cid}")).text
    new_footer = footer(page, turn_id)
    assert vote_record(new_footer, "alice") is None
    assert 'class="vote"' in new_footer


async def test_stop_cancels_both_sides_and_keeps_partial_text(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    small_answers(base_server, chat_server, words=200)
    base_server.config.token_delay = 0.02
    chat_server.config.token_delay = 0.02
    headers = await csrf_headers(client)
    cid = await create(client, headers, max_tokens="250")
    (turn_id,) = await turn_ids(client, cid)
    deadline = time.monotonic() + 5
    while True:  # until both columns show some streamed text
        page = (await client.get(f"/c/{cid}")).text
        shown = {side: column_text(page, turn_id, side) for side in ("a", "b")}
        if all(shown.values()):
            break
        assert time.monotonic() < deadline, "nothing streamed"
        await asyncio.sleep(0.02)

    started = time.monotonic()
    stop = await client.post(f"/turns/{turn_id}/stop", headers=headers)
    assert stop.status_code == 204
    turn = (await wait_final(client, cid))["turns"][0]
    assert time.monotonic() - started < 3, "stop did not stop the generations promptly"
    for side in ("a", "b"):
        generation = turn[side]
        assert generation["status"] == "cancelled"
        assert generation["finish_reason"] == "cancelled"
        assert generation["text"].startswith(shown[side])
    page = (await client.get(f"/c/{cid}")).text
    for side in ("a", "b"):
        assert column_text(page, turn_id, side) == turn[side]["text"]

    # The kept text is a true prefix of the whole answer: run both again, unhurried.
    base_server.config.token_delay = 0
    chat_server.config.token_delay = 0
    again = await client.post(
        f"/turns/{turn_id}/regenerate", data={"side": "both"}, headers=headers
    )
    assert again.status_code == 200, again.text
    full = (await wait_final(client, cid))["turns"][0]
    for side in ("a", "b"):
        assert full[side]["status"] == "done"
        assert full[side]["text"].startswith(turn[side]["text"])
        assert len(full[side]["text"]) > len(turn[side]["text"])
