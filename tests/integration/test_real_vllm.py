"""The playground against real vLLM servers (CPU build) serving tiny random-weight models."""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import jinja2
import pytest
from markupsafe import escape

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.main import create_app
from tests.integration.conftest import RealServers, TinyModels, VllmServer
from tests.integration.relay import Relay
from tests.support import SSEEvent, ThreadedServer, parse_sse

pytestmark = pytest.mark.vllm

PROMPT = "Once upon a time, in a small harbour town,"
CSRF_META = re.compile(r'"X-CSRF-Token": "([0-9a-f]+)"')
SSE_CONNECT = re.compile(r'sse-connect="(/turns/(\d+)/events[^"]*)"')
FINAL = {"done", "error", "cancelled", "interrupted"}
# Events in a reply up to its first text (see after_first_text), and the longest a paused
# reply waits for the test.
TEXT_EVENTS = 3
RELAY_PAUSE_SECONDS = 30.0


def params(max_tokens: int, seed: int, temperature: float = 0.8) -> dict[str, Any]:
    """Sampling settings for a comparison."""
    return {"max_tokens": max_tokens, "seed": seed, "temperature": temperature}


async def compare(client: httpx.AsyncClient, prompt: str, **body: Any) -> dict[str, Any]:
    """Run a comparison through the JSON API; return the conversation."""
    response = await client.post("/api/v1/comparisons", json={"prompt": prompt, **body})
    assert response.status_code == 201, response.text
    conversation: dict[str, Any] = response.json()
    return conversation


async def tokenize(server: VllmServer, body: dict[str, Any]) -> list[int]:
    """The token ids a vLLM server makes of a prompt or of chat messages."""
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{server.root_url}/tokenize", json=body)
    assert response.status_code == 200, response.text
    tokens: list[int] = response.json()["tokens"]
    return tokens


def assert_completed(generation: dict[str, Any], max_tokens: int) -> None:
    """A generation that ran to its end against a real server, with consistent counts."""
    assert generation["status"] == "done", generation["error"]
    assert generation["error"] is None
    assert generation["finish_reason"] in ("length", "stop")
    assert generation["text"]
    assert generation["prompt_tokens"] and generation["prompt_tokens"] > 0
    completion_tokens = generation["completion_tokens"]
    if generation["finish_reason"] == "length":
        assert completion_tokens == max_tokens
    else:
        assert 1 <= completion_tokens <= max_tokens
    assert 0 < generation["ttft_ms"] <= generation["total_ms"]
    assert generation["finished_at"] is not None


async def test_comparison_runs_both_models_to_completion(
    client: httpx.AsyncClient, real_servers: RealServers
) -> None:
    max_tokens = 12
    conversation = await compare(client, PROMPT, params=params(max_tokens, seed=7))

    turn = conversation["turns"][0]
    base, chat = turn["a"], turn["b"]
    assert (base["model_kind"], chat["model_kind"]) == ("base", "chat")
    assert base["endpoint"] == f"{real_servers.base.base_url}/completions"
    assert chat["endpoint"] == f"{real_servers.chat.base_url}/chat/completions"
    assert (base["served_model"], chat["served_model"]) == ("tiny-base", "tiny-chat")
    assert_completed(base, max_tokens)
    assert_completed(chat, max_tokens)
    assert base["seed"] == chat["seed"] == 7


async def test_base_model_receives_the_raw_text(
    client: httpx.AsyncClient, real_servers: RealServers
) -> None:
    conversation = await compare(client, PROMPT, params=params(4, seed=1))

    base = conversation["turns"][0]["a"]
    assert base["prompt_format"] == "raw"
    assert base["prompt_text"] == PROMPT
    assert base["messages"] is None
    # The server counted exactly the tokens of the stored text (plus its BOS): nothing was added.
    raw_tokens = await tokenize(real_servers.base, {"model": "tiny-base", "prompt": PROMPT})
    assert base["prompt_tokens"] == len(raw_tokens)


async def test_chat_model_receives_messages_through_its_chat_template(
    client: httpx.AsyncClient, real_servers: RealServers, tiny_models: TinyModels
) -> None:
    conversation = await compare(client, PROMPT, params=params(4, seed=1))

    chat = conversation["turns"][0]["b"]
    assert chat["prompt_format"] == "chat"
    assert chat["prompt_text"] is None
    assert chat["messages"] == [{"role": "user", "content": PROMPT}]
    templated = await tokenize(
        real_servers.chat,
        {"model": "tiny-chat", "messages": chat["messages"], "add_generation_prompt": True},
    )
    raw = await tokenize(real_servers.chat, {"model": "tiny-chat", "prompt": PROMPT})
    assert chat["prompt_tokens"] == len(templated)
    assert chat["prompt_tokens"] > len(raw), "the chat template added no tokens"
    # And what those tokens spell is the model's own template applied to the stored messages.
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{real_servers.chat.root_url}/detokenize",
            json={"model": "tiny-chat", "tokens": templated},
        )
    tokenizer_config = json.loads((tiny_models.chat / "tokenizer_config.json").read_text())
    # Rendered the way transformers renders chat templates.
    expected = (
        jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
        .from_string(tokenizer_config["chat_template"])
        .render(
            messages=chat["messages"],
            add_generation_prompt=True,
            bos_token=tokenizer_config["bos_token"],
            eos_token=tokenizer_config["eos_token"],
        )
    )
    assert response.json()["prompt"] == expected


async def test_follow_up_sends_each_model_its_own_history(
    client: httpx.AsyncClient, real_servers: RealServers
) -> None:
    first = await compare(client, PROMPT, params=params(6, seed=3))
    follow_up = "And then what happened?"
    response = await client.post(
        f"/api/v1/comparisons/{first['id']}/turns",
        json={"prompt": follow_up, "params": params(6, seed=4)},
    )
    assert response.status_code == 201, response.text
    turn1, turn2 = response.json()["turns"]

    base, chat = turn2["a"], turn2["b"]
    assert_completed(base, 6)
    assert_completed(chat, 6)
    # The base model continues one document holding its own earlier answer and the new prompt.
    assert turn1["a"]["text"] in base["prompt_text"]
    assert base["prompt_text"].startswith(PROMPT)
    assert base["prompt_text"].endswith(follow_up)
    base_tokens = await tokenize(
        real_servers.base, {"model": "tiny-base", "prompt": base["prompt_text"]}
    )
    assert base["prompt_tokens"] == len(base_tokens)
    # The chat model gets the conversation as messages, with its own answer as the assistant.
    assert chat["messages"] == [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": turn1["b"]["text"]},
        {"role": "user", "content": follow_up},
    ]
    chat_tokens = await tokenize(
        real_servers.chat,
        {"model": "tiny-chat", "messages": chat["messages"], "add_generation_prompt": True},
    )
    assert chat["prompt_tokens"] == len(chat_tokens)


async def test_same_seed_gives_the_same_answers_and_another_seed_does_not(
    client: httpx.AsyncClient,
) -> None:
    def answers(conversation: dict[str, Any]) -> tuple[str, str]:
        turn = conversation["turns"][0]
        return turn["a"]["text"], turn["b"]["text"]

    first = answers(await compare(client, PROMPT, params=params(16, seed=1234)))
    again = answers(await compare(client, PROMPT, params=params(16, seed=1234)))
    other = answers(await compare(client, PROMPT, params=params(16, seed=4321)))

    assert all(first)
    assert again == first
    # Sampling at temperature 0.8 over a few hundred tokens: another seed changes both texts.
    assert other[0] != first[0]
    assert other[1] != first[1]


def open_in_browser(http: httpx.Client, **fields: str) -> tuple[str, str]:
    """Start a comparison as the page does; return its id and the turn's sse-connect URL."""
    token = CSRF_META.search(http.get("/").text)
    assert token, "no CSRF token on the page"
    created = http.post(
        "/c",
        data={"prompt": PROMPT, "model_a": "base", "model_b": "chat", **fields},
        headers={"X-CSRF-Token": token.group(1), "HX-Request": "true"},
    )
    assert created.status_code == 204, created.text
    location = created.headers["HX-Location"]
    connect = SSE_CONNECT.search(http.get(location).text)
    assert connect, "the conversation page does not stream its turn"
    return location.rsplit("/", 1)[1], html.unescape(connect.group(1))


def read_events(
    http: httpx.Client,
    url: str,
    on_event: Callable[[SSEEvent], None] | None = None,
    on_open: Callable[[], None] | None = None,
) -> list[SSEEvent]:
    """Read a turn's event stream to its end; on_open once connected, on_event per event."""
    received: list[SSEEvent] = []
    with http.stream("GET", url) as response:
        assert response.status_code == 200
        if on_open is not None:
            on_open()
        block: list[str] = []
        for line in response.iter_lines():
            if line:
                block.append(line)
                continue
            for event in parse_sse("\n".join(block)):
                received.append(event)
                if on_event is not None:
                    on_event(event)
            block = []
    return received


def relayed_models(base_url: str, chat_url: str) -> ModelsFile:
    """The tiny base and chat models, reached at these API roots (a relay's or a server's)."""
    return ModelsFile(
        models=[
            ModelConfig(name="base", kind=ModelKind.BASE, url=base_url, model="tiny-base"),
            ModelConfig(name="chat", kind=ModelKind.CHAT, url=chat_url, model="tiny-chat"),
        ]
    )


def after_first_text(action: Callable[[], object]) -> Callable[[bytes], None]:
    """A relay hook that runs action once the reply holds some generated text.

    Three events: a chat reply opens with an empty role event, so this is at least one token of
    text on either endpoint.
    """

    def on_event(reply: bytes) -> None:
        if reply.count(b"data: ") == TEXT_EVENTS:
            action()

    return on_event


def stored(http: httpx.Client, cid: str, timeout: float = 30.0) -> dict[str, Any]:
    """The first turn once both its answers are stored as finished."""
    deadline = time.monotonic() + timeout
    while True:
        turn: dict[str, Any] = http.get(f"/api/v1/comparisons/{cid}").json()["turns"][0]
        if turn["a"]["status"] in FINAL and turn["b"]["status"] in FINAL:
            return turn
        assert time.monotonic() < deadline, "generations did not finish"
        time.sleep(0.05)


def text_of(received: list[SSEEvent], side: str) -> str:
    """Everything the delta events of one side added, unescaped."""
    return "".join(html.unescape(e.data) for e in received if e.event == f"delta-{side}")


def drawn_offsets(url: str) -> dict[str, int]:
    """How much text the page had already drawn per side, from its sse-connect URL."""
    query = dict(part.split("=") for part in url.split("?", 1)[1].split("&"))
    return {"a": int(query["a"]), "b": int(query["b"])}


def test_browser_stream_delivers_live_deltas_then_done_events(
    settings: Settings, real_servers: RealServers
) -> None:
    max_tokens = 60
    # Each reply waits at the relay until the browser stream is connected, then pauses after
    # its first text until the stream has shown that text: so both columns are seen streaming
    # however fast the server is.
    shown = {"a": threading.Event(), "b": threading.Event()}
    status_at_first_delta: dict[str, str] = {}

    def pause(side: str) -> Callable[[bytes], None]:
        return after_first_text(lambda: shown[side].wait(RELAY_PAUSE_SECONDS))

    with (
        Relay(real_servers.base.port, pause("a")) as base,
        Relay(real_servers.chat.port, pause("b")) as chat,
    ):
        app = create_app(settings, relayed_models(base.base_url, chat.base_url))
        with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
            cid, url = open_in_browser(http, max_tokens=str(max_tokens), seed="5")

            def on_event(event: SSEEvent) -> None:
                side = event.event.removeprefix("delta-")
                if side in shown and side not in status_at_first_delta:
                    turn = http.get(f"/api/v1/comparisons/{cid}").json()["turns"][0]
                    status_at_first_delta[side] = turn[side]["status"]
                    shown[side].set()

            def open_relays() -> None:
                base.open()
                chat.open()

            received = read_events(http, url, on_event, open_relays)
            turn = stored(http, cid)

    names = [e.event for e in received]
    assert names[-1] == "turn-done"
    assert names.count("turn-done") == 1
    # Text arrived in both columns while the models were still generating, not all at the end.
    assert status_at_first_delta == {"a": "running", "b": "running"}
    drawn = drawn_offsets(url)
    for side in ("a", "b"):
        generation = turn[side]
        assert_completed(generation, max_tokens)
        assert f"delta-{side}" in names
        assert names.count(f"done-{side}") == 1
        last_delta = max(i for i, n in enumerate(names) if n == f"delta-{side}")
        assert last_delta < names.index(f"done-{side}")
        # The page's text plus the deltas is the stored answer (the final column has the rest).
        streamed = text_of(received, side)
        text = generation["text"]
        assert streamed
        assert text[drawn[side] : drawn[side] + len(streamed)] == streamed
        done = next(e.data for e in received if e.event == f"done-{side}")
        assert 'data-status="done"' in done
        assert str(escape(text)) in done


def test_server_killed_mid_stream_keeps_partial_text_as_error(
    settings: Settings, real_servers: RealServers
) -> None:
    doomed = real_servers.doomed
    # Long enough that the server is always still generating when the kill lands.
    max_tokens = 300

    def kill() -> None:
        if doomed.process is not None and doomed.process.poll() is None:
            doomed.kill()

    # The chat reply passes through a relay that holds it until the browser stream is
    # connected, and kills the server the moment the reply holds its first text.
    with Relay(doomed.port, after_first_text(kill)) as relay:
        models = relayed_models(real_servers.base.base_url, relay.base_url)
        app = create_app(settings, models)
        with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as http:
            cid, url = open_in_browser(http, max_tokens=str(max_tokens), seed="9")
            received = read_events(http, url, on_open=relay.open)
            turn = stored(http, cid)

    assert doomed.process is not None and doomed.process.poll() is not None
    deadline = time.monotonic() + 10
    while doomed.live_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert doomed.live_processes() == [], "part of the killed server is still running"
    chat = turn["b"]
    assert chat["status"] == "error"
    assert chat["finish_reason"] == "error"
    assert chat["error"]
    streamed = text_of(received, "b")
    assert streamed, "the chat model sent no text before it was killed"
    drawn = drawn_offsets(url)["b"]
    assert chat["text"][drawn : drawn + len(streamed)] == streamed
    assert chat["completion_tokens"] is None
    done_b = next(e.data for e in received if e.event == "done-b")
    assert 'data-status="error"' in done_b
    # The other side, on a healthy server, is unaffected.
    assert_completed(turn["a"], max_tokens)
    assert [e.event for e in received][-1] == "turn-done"
