"""Messages between the app's processes, addressed by owner id: PostgreSQL LISTEN/NOTIFY.

Every process LISTENs on one channel named after its owner id (app.generation.liveness) and
sends small JSON messages to another process's channel: "follow this generation", "cancel
these", and the owner's answers (text from an offset, "ended"). PostgreSQL is already shared
by the replicas, so no other service is needed. A single process (SQLite, the default) uses
LocalFanout, which sends nothing: every generation it could show runs in that process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import orjson
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

Message = dict[str, Any]
Handler = Callable[[Message], None]

# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; messages are packed below this.
MAX_PAYLOAD_BYTES = 7900
# After a lost connection, wait this long before connecting again.
RECONNECT_SECONDS = 1.0


# The address of every process at once (owner ids are hex, so no owner is called this).
EVERYONE = "all"


def channel_of(owner: str) -> str:
    """The NOTIFY channel of one app process."""
    return f"playground_{owner}"


def pack(messages: list[Message]) -> list[str]:
    """Messages as JSON arrays, each under MAX_PAYLOAD_BYTES (one message must fit alone)."""
    payloads: list[str] = []
    batch: list[bytes] = []
    size = 2
    for message in messages:
        try:
            encoded = orjson.dumps(message)
        except TypeError:
            # A lone surrogate in model text: "?" keeps every offset (one code point each).
            encoded = orjson.dumps(
                {
                    k: v.encode("utf-8", "replace").decode() if isinstance(v, str) else v
                    for k, v in message.items()
                }
            )
        if batch and size + len(encoded) + 1 > MAX_PAYLOAD_BYTES:
            payloads.append((b"[" + b",".join(batch) + b"]").decode())
            batch, size = [], 2
        batch.append(encoded)
        size += len(encoded) + 1
    if batch:
        payloads.append((b"[" + b",".join(batch) + b"]").decode())
    return payloads


class Fanout(Protocol):
    """Delivers messages to other app processes."""

    @property
    def enabled(self) -> bool:
        """Whether other processes can be reached at all."""
        ...

    async def start(self, owner: str, on_message: Handler) -> None:
        """Listen for this process's messages; on_message runs in the event loop."""

    def send(self, owner: str, message: Message) -> None:
        """Queue a message for another process, or EVERYONE (sent in order, batched, without
        waiting)."""

    async def close(self) -> None:
        """Stop listening and sending."""


class LocalFanout:
    """One process: there is nobody to tell."""

    enabled = False

    async def start(self, owner: str, on_message: Handler) -> None:
        """Nothing to listen to."""

    def send(self, owner: str, message: Message) -> None:
        """Nobody to send to."""

    async def close(self) -> None:
        """Nothing to close."""


class PostgresFanout:
    """LISTEN/NOTIFY on two connections of this process: one listens, one sends."""

    enabled = True

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._outbox: list[tuple[str, Message]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()
        # Set each time the sender has dealt with a batch (sent or given up).
        self._sent = asyncio.Event()

    async def start(self, owner: str, on_message: Handler) -> None:
        """Connect and LISTEN before returning, so that no message sent to us after is lost."""
        self._tasks = [
            asyncio.create_task(self._listen(owner, on_message), name="fanout-listen"),
            asyncio.create_task(self._send_loop(), name="fanout-send"),
        ]
        listening = asyncio.create_task(self._listening.wait())
        await asyncio.wait([listening, self._tasks[0]], return_when=asyncio.FIRST_COMPLETED)
        if not listening.done():
            listening.cancel()
            await self._tasks[0]  # it failed for good: raise its error

    def send(self, owner: str, message: Message) -> None:
        """Queue; the sender sends everything queued in one statement."""
        self._outbox.append((owner, message))
        self._wake.set()

    async def close(self) -> None:
        """Send what is queued, then stop."""
        if self._outbox and self._tasks:
            # Give the sender one chance to flush (a cancel sent just before shutdown).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained(), 2.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _drained(self) -> None:
        while self._outbox:
            self._sent.clear()
            await self._sent.wait()

    async def _listen(self, owner: str, on_message: Handler) -> None:
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    for name in (owner, EVERYONE):
                        await conn.execute(
                            sql.SQL("LISTEN {}").format(sql.Identifier(channel_of(name)))
                        )
                    self._listening.set()
                    first = False
                    async for notify in conn.notifies():
                        self._deliver(notify.payload, on_message)
            except asyncio.CancelledError:
                raise
            except Exception:
                if first:
                    raise
                log.exception("fan-out listener lost its connection; reconnecting")
                await asyncio.sleep(RECONNECT_SECONDS)

    @staticmethod
    def _deliver(payload: str, on_message: Handler) -> None:
        try:
            messages = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("fan-out: ignored a malformed message")
            return
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict):
                try:
                    on_message(message)
                except Exception:
                    log.exception("fan-out: handling %r failed", message.get("op"))

    async def _send_loop(self) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                batch, self._outbox = self._outbox, []
                by_owner: dict[str, list[Message]] = {}
                for owner, message in batch:
                    by_owner.setdefault(owner, []).append(message)
                notifies = [
                    (channel_of(owner), payload)
                    for owner, messages in by_owner.items()
                    for payload in pack(messages)
                ]
                if not notifies:
                    self._sent.set()
                    continue
                try:
                    if conn is None or conn.closed:
                        conn = await psycopg.AsyncConnection.connect(
                            self._conninfo, autocommit=True
                        )
                    # One statement, one round trip: notifications keep this order.
                    calls = ", ".join(["pg_notify(%s, %s)"] * len(notifies))
                    params = [value for pair in notifies for value in pair]
                    await conn.execute(f"SELECT {calls}", params)
                except Exception:
                    # Lost messages are covered: followers re-read the database, and a stop
                    # answers with the state it leaves; here we only must not die.
                    log.exception("fan-out: could not send %d messages", len(batch))
                    if conn is not None:
                        await conn.close()
                    conn = None
                self._sent.set()
        finally:
            if conn is not None:
                await conn.close()


def fanout_for(database_url: str, enabled: bool = True) -> Fanout:
    """PostgreSQL's LISTEN/NOTIFY for a PostgreSQL database, else (SQLite) one process alone."""
    parsed = make_url(database_url)
    if not enabled or parsed.get_backend_name() != "postgresql":
        return LocalFanout()
    # The SQLAlchemy URL names a driver ("postgresql+psycopg"); libpq takes the plain scheme.
    return PostgresFanout(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
