"""A TCP relay in front of a real vLLM server, so a test decides when its answer may flow.

Real vLLM on a fast machine can finish a tiny model's whole answer before the test's browser
stream has even connected, or before a kill lands. The relay takes that race out of the tests
without faking anything: every byte still comes from the real server. It holds each request
until `open()` is called, and passes the reply on one server-sent event at a time, calling
`on_event` after each one (which may block, to pause the reply, or kill the server).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType

EVENT_END = b"\n\n"
WAIT_SECONDS = 60.0


class Relay:
    """Forward every connection to 127.0.0.1:upstream_port; a context manager."""

    def __init__(self, upstream_port: int, on_event: Callable[[bytes], None] | None = None) -> None:
        self._upstream_port = upstream_port
        self._on_event = on_event
        self._gate = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root through the relay."""
        return f"http://127.0.0.1:{self.port}/v1"

    def open(self) -> None:
        """Let held and future requests through to the server."""
        self._gate.set()

    def __enter__(self) -> Relay:
        self._spawn(self._accept_loop)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._gate.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(5)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed by __exit__
            self._sockets.append(client)
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        """Hold the request until opened, then relay it and stream the reply back event by event."""
        if not self._gate.wait(WAIT_SECONDS):
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
        except OSError:
            client.close()
            return
        self._sockets.append(upstream)
        self._spawn(_pump, client, upstream)
        reply = b""
        pending = b""
        try:
            while chunk := upstream.recv(65536):
                pending += chunk
                # One event per send, so on_event sees the reply exactly as far as the app has it.
                while (end := pending.find(EVENT_END)) != -1:
                    cut = end + len(EVENT_END)
                    piece, pending = pending[:cut], pending[cut:]
                    client.sendall(piece)
                    reply += piece
                    if self._on_event is not None:
                        self._on_event(reply)
            if pending:
                client.sendall(pending)
        except OSError:
            pass  # the server died (the point of some tests) or the app hung up
        finally:
            # Pass the end on as the app would see it from the server itself.
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_WR)
            upstream.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy bytes from source to target until source ends."""
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
