"""The SSE stream of a turn: final columns, live coalesced deltas, event ids and resuming."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from markupsafe import escape

from app.config import ModelsFile, Settings
from app.main import create_app
from playground_tools.fake_vllm import FakeServer
from tests.support import SSEEvent, ThreadedServer, parse_sse

TURN_ID = re.compile(r'<section class="turn" id="turn-(\d+)"')
CSRF_META = re.compile(r'"X-CSRF-Token": "([0-9a-f]+)"')
FINAL = {"done", "error", "cancelled", "interrupted"}


@dataclass
class Received:
    """An event and when it arrived."""

    at: float
    event: SSEEvent


def slow_answers(*servers: FakeServer, delay: float, words: int) -> None:
    """Make the fakes stream `words` words, one token every `delay` seconds."""
    for server in servers:
        server.config.token_delay = delay
        server.config.answer_words = words


def offsets(event: SSEEvent) -> tuple[int, int]:
    """The "offA:offB" id of a delta event as two numbers."""
    assert event.id is not None and re.fullmatch(r"\d+:\d+", event.id), event.id
    first, second = event.id.split(":")
    return int(first), int(second)


def deltas(received: list[Received], side: str) -> list[str]:
    """The unescaped text of each delta event of one side."""
    return [html.unescape(r.event.data) for r in received if r.event.event == f"delta-{side}"]


def names(received: list[Received]) -> list[str]:
    """The event names in arrival order."""
    return [r.event.event for r in received]


def start_in_browser(http: httpx.Client, **fields: str) -> tuple[str, int]:
    """Start a conversation the way the page does; return its id and its first turn's id."""
    index = http.get("/")
    token = CSRF_META.search(index.text)
    assert token, "no CSRF token on the page"
    data = {"prompt": "Tell me a story", "model_a": "base", "model_b": "chat"} | fields
    created = http.post(
        "/c", data=data, headers={"X-CSRF-Token": token.group(1), "HX-Request": "true"}
    )
    assert created.status_code == 204, created.text
    cid = created.headers["HX-Location"].rsplit("/", 1)[1]
    turn = TURN_ID.search(http.get(f"/c/{cid}").text)
    assert turn
    return cid, int(turn.group(1))


def read_events(
    http: httpx.Client,
    url: str,
    headers: dict[str, str] | None = None,
    stop: Callable[[list[Received]], bool] | None = None,
) -> list[Received]:
    """Read an event stream line by line, timing each event; optionally hang up early."""
    received: list[Received] = []
    with http.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        block: list[str] = []
        for line in response.iter_lines():
            if line:
                block.append(line)
                continue
            received += [Received(time.monotonic(), e) for e in parse_sse("\n".join(block))]
            block = []
            if stop is not None and stop(received):
                break
    return received


def final_conversation(http: httpx.Client, cid: str, timeout: float = 10.0) -> dict[str, Any]:
    """The conversation once both answers of every turn are stored as finished."""
    deadline = time.monotonic() + timeout
    while True:
        data: dict[str, Any] = http.get(f"/api/v1/comparisons/{cid}").json()
        generations = [turn[side] for turn in data["turns"] for side in ("a", "b")]
        if all(g["status"] in FINAL for g in generations):
            return data
        assert time.monotonic() < deadline, "generations did not finish"
        time.sleep(0.02)


def assert_ids_track_offsets(received: list[Received], start: tuple[int, int] = (0, 0)) -> None:
    """Each delta's id is the text length sent so far per side, and ids only grow."""
    sent = {"a": start[0], "b": start[1]}
    previous = start
    for item in received:
        name = item.event.event
        if not name.startswith("delta-"):
            continue
        sent[name[-1]] += len(html.unescape(item.event.data))
        current = offsets(item.event)
        assert current == (sent["a"], sent["b"])
        assert current[0] >= previous[0] and current[1] >= previous[1]
        assert sum(current) > sum(previous)
        previous = current


# ---------------------------------------------------------------- a finished turn


async def test_finished_turn_streams_done_a_done_b_then_turn_done_and_ends(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    for server in (base_server, chat_server):
        server.config.answer_words = 4
        server.config.inject_text = '<i>x</i> & "q"'
    created = await client.post(
        "/api/v1/comparisons", json={"prompt": "Hi", "params": {"max_tokens": 10}}
    )
    assert created.status_code == 201, created.text
    conversation = created.json()
    page = await client.get(f"/c/{conversation['id']}")
    turn_match = TURN_ID.search(page.text)
    assert turn_match

    response = await asyncio.wait_for(
        client.get(f"/turns/{turn_match.group(1)}/events"), timeout=10
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    assert [e.event for e in events] == ["done-a", "done-b", "turn-done"]
    turn = conversation["turns"][0]
    for event, side in zip(events, ("a", "b"), strict=False):
        text = turn[side]["text"]
        assert text.startswith('<i>x</i> & "q"')
        assert f'<span class="text">{escape(text)}</span>' in event.data
        assert "<i>x</i>" not in event.data
        assert f'id="gen-{turn_match.group(1)}-{side}"' in event.data
    assert 'class="vote"' in events[-1].data


async def test_unknown_turn_events_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/turns/987654/events")
    assert response.status_code == 404


# ---------------------------------------------------------------- live streaming over real HTTP


def test_live_stream_sends_deltas_that_add_up_to_the_stored_answers(
    app: FastAPI, base_server: FakeServer, chat_server: FakeServer
) -> None:
    slow_answers(base_server, chat_server, delay=0.02, words=30)
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        cid, turn_id = start_in_browser(http, max_tokens="64")
        received = read_events(http, f"/turns/{turn_id}/events")
        turn = final_conversation(http, cid)["turns"][0]

    order = names(received)
    assert order[-1] == "turn-done" and order.count("turn-done") == 1
    assert 'class="vote"' in received[-1].event.data
    for side in ("a", "b"):
        done_at = order.index(f"done-{side}")
        side_deltas = [i for i, name in enumerate(order) if name == f"delta-{side}"]
        assert len(side_deltas) >= 3, order
        assert max(side_deltas) < done_at
        text = turn[side]["text"]
        assert turn[side]["status"] == "done"
        assert "".join(deltas(received, side)) == text
        assert f'<span class="text">{escape(text)}</span>' in received[done_at].event.data
        # Live: text arrived well before the answer was finished, not all at the end.
        first_delta = received[side_deltas[0]].at
        assert received[done_at].at - first_delta > 0.2
    assert_ids_track_offsets(received)


def test_deltas_are_coalesced_to_the_flush_interval(
    settings: Settings, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    flush = 0.1
    app = create_app(settings.model_copy(update={"stream_flush_seconds": flush}), models)
    slow_answers(base_server, chat_server, delay=0.005, words=80)
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        cid, turn_id = start_in_browser(http, max_tokens="100")
        received = read_events(http, f"/turns/{turn_id}/events")
        turn = final_conversation(http, cid)["turns"][0]

    for side in ("a", "b"):
        pieces = deltas(received, side)
        assert "".join(pieces) == turn[side]["text"]
        tokens = turn[side]["completion_tokens"]
        assert tokens >= 80
        assert 1 <= len(pieces) <= tokens / 4, (len(pieces), tokens)
        times = [r.at for r in received if r.event.event == f"delta-{side}"]
        # At most one event per flush interval (plus the edges).
        assert len(times) <= (times[-1] - times[0]) / flush + 2
    assert_ids_track_offsets(received)


@pytest.mark.parametrize("how", ["last-event-id", "query"])
def test_reconnecting_resumes_after_the_given_offsets(
    app: FastAPI, base_server: FakeServer, chat_server: FakeServer, how: str
) -> None:
    slow_answers(base_server, chat_server, delay=0.02, words=40)
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        cid, turn_id = start_in_browser(http, max_tokens="64")
        url = f"/turns/{turn_id}/events"

        def three_deltas(received: list[Received]) -> bool:
            return sum(name.startswith("delta-") for name in names(received)) >= 3

        first = read_events(http, url, stop=three_deltas)
        assert "turn-done" not in names(first)
        last_id = next(r.event for r in reversed(first) if r.event.id is not None)
        a, b = offsets(last_id)
        if how == "last-event-id":
            second = read_events(http, url, headers={"Last-Event-ID": f"{a}:{b}"})
        else:
            second = read_events(http, f"{url}?a={a}&b={b}")
        turn = final_conversation(http, cid)["turns"][0]

    assert names(second)[-1] == "turn-done"
    assert any(name.startswith("delta-") for name in names(second)), "resumed after the end"
    for side in ("a", "b"):
        before, after = "".join(deltas(first, side)), "".join(deltas(second, side))
        assert len(before) == (a if side == "a" else b)
        assert before + after == turn[side]["text"]
    assert_ids_track_offsets(second, start=(a, b))
