"""The fan-out's message packing and the follow/stop protocol between two processes, with an
in-memory transport standing in for PostgreSQL's LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.generation.fanout import MAX_PAYLOAD_BYTES, Handler, LocalFanout, Message, pack
from app.generation.live import LiveGeneration
from app.generation.remote import TEXT_CHUNK_CHARS, RemoteJobs


def test_pack_keeps_every_payload_under_the_limit_and_in_order() -> None:
    messages: list[Message] = [
        {"op": "text", "id": i, "at": 0, "t": "\x01é" * (TEXT_CHUNK_CHARS // 2)} for i in range(40)
    ]
    payloads = pack(messages)
    assert len(payloads) > 1
    assert all(len(p.encode()) < MAX_PAYLOAD_BYTES for p in payloads)
    assert [m for p in payloads for m in orjson.loads(p)] == messages


def test_pack_replaces_a_lone_surrogate_without_moving_offsets() -> None:
    (payload,) = pack([{"op": "text", "id": 1, "at": 0, "t": "a\ud800b"}])
    assert orjson.loads(payload) == [{"op": "text", "id": 1, "at": 0, "t": "a?b"}]


class Wire:
    """Delivers messages between RemoteJobs in this process, in order, like NOTIFY."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.sent: list[tuple[str, Message]] = []

    def endpoint(self) -> WireEnd:
        return WireEnd(self)


class WireEnd:
    enabled = True

    def __init__(self, wire: Wire) -> None:
        self._wire = wire

    async def start(self, owner: str, on_message: Handler) -> None:
        self._wire.handlers[owner] = on_message

    def send(self, owner: str, message: Message) -> None:
        self._wire.sent.append((owner, message))
        handler = self._wire.handlers.get(owner)
        if handler is not None:
            asyncio.get_running_loop().call_soon(handler, message)

    async def close(self) -> None:
        pass


def _jobs(
    end: WireEnd | LocalFanout,
    owner: str,
    live: dict[int, LiveGeneration],
    cancelled: list[int],
    changed: list[int],
) -> RemoteJobs:
    def cancel(ids: Iterable[int]) -> int:
        ids = list(ids)
        cancelled.extend(ids)
        return len(ids)

    sessions: async_sessionmaker[AsyncSession] = async_sessionmaker()
    return RemoteJobs(
        end,
        owner,
        sessions,
        live_of=live.get,
        cancel=cancel,
        changed=changed.append,
        publish_seconds=0.001,
        poll_seconds=60,
    )


async def _until(condition: object) -> None:
    for _ in range(5000):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never held")


async def test_a_follower_mirrors_the_owners_text_then_ends_and_stop_reaches_the_owner() -> None:
    wire = Wire()
    running = LiveGeneration(7, group=3)
    running.append("Once upon")
    owner_cancelled: list[int] = []
    owner = _jobs(wire.endpoint(), "A", {7: running}, owner_cancelled, [])
    follower_changed: list[int] = []
    follower = _jobs(wire.endpoint(), "B", {}, [], follower_changed)
    await owner.start()
    await follower.start()
    try:
        assert follower.follow(7, 3, "A")
        mirror = follower.mirrors[7]
        await _until(lambda: mirror.text == "Once upon")
        running.append(" a time")
        await _until(lambda: mirror.text == "Once upon a time")
        assert set(follower_changed) == {3}
        # Stop through the follower reaches the owner.
        assert follower.cancel_elsewhere([(7, "A")]) == 1
        await _until(lambda: owner_cancelled == [7])
        # The owner stored the row: the follower's mirror ends.
        owner.ended(7)
        await _until(lambda: 7 not in follower.mirrors)
        assert mirror.finished
    finally:
        await owner.close()
        await follower.close()


async def test_following_a_generation_that_is_not_running_there_ends_at_once() -> None:
    wire = Wire()
    owner = _jobs(wire.endpoint(), "A", {}, [], [])
    follower = _jobs(wire.endpoint(), "B", {}, [], [])
    await owner.start()
    await follower.start()
    try:
        assert follower.follow(9, 1, "A")
        await _until(lambda: 9 not in follower.mirrors)
        # Just ended: not followed again at once (the row is read again first).
        assert not follower.follow(9, 1, "A")
    finally:
        await owner.close()
        await follower.close()


async def test_one_process_alone_follows_nothing_and_sends_nothing() -> None:
    alone = _jobs(LocalFanout(), "A", {}, [], [])
    assert not alone.enabled
    assert not alone.follow(1, 1, "B")
    assert alone.cancel_elsewhere([(1, "B")]) == 0


async def test_a_broadcast_reaches_every_other_process_but_not_its_sender() -> None:
    wire = Wire()
    heard: dict[str, list[Message]] = {"A": [], "B": []}
    jobs = {name: _jobs(wire.endpoint(), name, {}, [], []) for name in heard}
    for name, job in jobs.items():
        job.handle("stop-run", heard[name].append)
        await job.start()
    # The in-memory wire has no "everyone": deliver a broadcast to both, as LISTEN does.
    everyone = [job.on_message for job in jobs.values()]
    wire.handlers["all"] = lambda message: [deliver(message) for deliver in everyone]
    jobs["A"].broadcast({"op": "stop-run", "run": 4})
    await _until(lambda: heard["B"])
    assert heard == {"A": [], "B": [{"op": "stop-run", "run": 4, "from": "A"}]}
