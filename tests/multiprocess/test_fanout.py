"""Two app processes on one PostgreSQL behave as one app: a generation running in process A
streams live through process B, Stop through B stops it in A, and when A is killed B's
stream ends with the answer interrupted. Timing is held at the fake model servers."""

from __future__ import annotations

import html
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.multiprocess.conftest import (
    AppProcess,
    Cluster,
    browser,
    needs_postgres,
    read_events,
    start_comparison,
)
from tests.support import SSEEvent

pytestmark = needs_postgres
HELD_TOKENS = 3


def _turn(client: httpx.Client, app: AppProcess, conversation: str) -> dict[str, Any]:
    answer = client.get(f"{app.url}/api/v1/comparisons/{conversation}")
    assert answer.status_code == 200, answer.text
    turn: dict[str, Any] = answer.json()["turns"][-1]
    return turn


def _text_of(events: list[SSEEvent], slot: str) -> str:
    """What the deltas of a column add up to (they are HTML-escaped)."""
    return html.unescape("".join(e.data for e in events if e.event == f"delta-{slot}"))


def _both_have_text(events: list[SSEEvent]) -> bool:
    return all(_text_of(events, slot) for slot in ("a", "b"))


def _turn_done(events: list[SSEEvent]) -> bool:
    return events[-1].event == "turn-done"


def test_a_stream_follows_a_generation_running_in_another_process(cluster: Cluster) -> None:
    a, b = cluster.start(), cluster.start()
    cluster.hold(HELD_TOKENS)
    client, headers = browser(a)
    conversation = start_comparison(client, headers, a)
    turn = _turn(client, b, conversation)
    with client.stream("GET", f"{b.url}/turns/{turn['id']}/events") as stream:
        lines = stream.iter_lines()
        live = read_events(lines, _both_have_text)
        # The text arrived while the models were held: the answers are still running in A.
        running = _turn(client, b, conversation)
        assert {g["status"] for g in running["generations"]} <= {"pending", "running"}
        assert not any(e.event.startswith("done") for e in live)
        cluster.hold(None)
        events = live + read_events(lines, _turn_done)
    stored = _turn(client, b, conversation)
    for generation in stored["generations"]:
        assert generation["status"] == "done", generation["error"]
        # The deltas add up to the stored answer: nothing repeated, nothing lost.
        assert _text_of(events, generation["slot"]) == generation["text"]
    assert {e.event for e in events} >= {"done-a", "done-b", "turn-done"}


def test_stop_through_another_process_stops_the_generation_where_it_runs(
    cluster: Cluster,
) -> None:
    a, b = cluster.start(), cluster.start()
    cluster.hold(HELD_TOKENS)
    client, headers = browser(a)
    conversation = start_comparison(client, headers, a)
    turn = _turn(client, b, conversation)
    with client.stream("GET", f"{b.url}/turns/{turn['id']}/events") as stream:
        lines = stream.iter_lines()
        live = read_events(lines, _both_have_text)
        stopped = client.post(f"{b.url}/turns/{turn['id']}/stop", headers=headers)
        assert stopped.status_code == 204, stopped.text
        events = live + read_events(lines, _turn_done)
    stored = _turn(client, a, conversation)
    for generation in stored["generations"]:
        assert generation["status"] == "cancelled"
        # The partial text is kept, and is what the stream showed.
        assert generation["text"]
        assert _text_of(events, generation["slot"]) == generation["text"]
    # A never got to run more than the held tokens: the fakes are still holding.
    assert all(len(g["text"].split()) <= HELD_TOKENS + 1 for g in stored["generations"])


def test_a_killed_owner_ends_the_followers_stream_as_interrupted(cluster: Cluster) -> None:
    a, b = cluster.start(), cluster.start()
    cluster.hold(HELD_TOKENS)
    client, headers = browser(a)
    conversation = start_comparison(client, headers, a)
    turn = _turn(client, b, conversation)
    with client.stream("GET", f"{b.url}/turns/{turn['id']}/events") as stream:
        lines = stream.iter_lines()
        live = read_events(lines, _both_have_text)
        a.kill()
        # B finds A's heartbeat stale, marks its generations interrupted, and the stream ends.
        events = live + read_events(lines, _turn_done)
    stored = _turn(client, b, conversation)
    assert {g["status"] for g in stored["generations"]} == {"interrupted"}
    assert {e.event for e in events} >= {"done-a", "done-b"}
    # Nothing was run again: one request per model, both from A.
    assert [len(fake.requests) for fake in cluster.fakes] == [1, 1]


def test_two_workers_on_one_port_serve_one_app(cluster: Cluster) -> None:
    app = cluster.start("--workers", "2")
    cluster.hold(HELD_TOKENS)
    client, headers = browser(app)
    conversation = start_comparison(client, headers, app)
    turn = _turn(client, app, conversation)
    # Whichever worker this lands on (the one running the answers or the other), it streams.
    with client.stream("GET", f"{app.url}/turns/{turn['id']}/events") as stream:
        lines = stream.iter_lines()
        live = read_events(lines, _both_have_text)
        cluster.hold(None)
        events = live + read_events(lines, _turn_done)
    stored = _turn(client, app, conversation)
    for generation in stored["generations"]:
        assert generation["status"] == "done", generation["error"]
        assert _text_of(events, generation["slot"]) == generation["text"]


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid`."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_a_killed_worker_is_replaced(cluster: Cluster) -> None:
    app = cluster.start("--workers", "2")
    workers = _children(app.process.pid)
    assert len(workers) == 2
    killed = workers.pop()
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while not (len(now := _children(app.process.pid)) == 2 and killed not in now):
        assert time.monotonic() < deadline, f"no worker replaced {killed}: {now}"
        time.sleep(0.05)
    assert app.process.poll() is None
    client, headers = browser(app)
    conversation = start_comparison(client, headers, app)
    turn = _turn(client, app, conversation)
    with client.stream("GET", f"{app.url}/turns/{turn['id']}/events") as stream:
        read_events(stream.iter_lines(), _turn_done)
    assert {g["status"] for g in _turn(client, app, conversation)["generations"]} == {"done"}
