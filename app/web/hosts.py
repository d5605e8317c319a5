"""Answer only to the configured host names, so DNS rebinding cannot reach a local playground.

A page on evil.example can make the browser resolve evil.example to 127.0.0.1 and then read
this app's answers as same-origin; the request still says `Host: evil.example`, so checking
Host against the names the app is meant to be reached by (PLAYGROUND_ALLOWED_HOSTS, default
the localhost names) stops it. `/healthz` is exempt: container and load-balancer probes use
whatever address they have, and it tells nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

EXEMPT_PATHS = frozenset({"/healthz"})


def host_name(header: str) -> str:
    """The name in a Host header, lower-case, without port, brackets or trailing dot."""
    value = header.strip().lower()
    if value.startswith("["):  # [::1]:8000
        end = value.find("]")
        value = value[1:end] if end > 0 else value
    elif value.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        value = value.split(":", 1)[0]
    return value.rstrip(".")


class AllowedHostsMiddleware:
    """400 for a request whose Host is not an allowed name.

    Entries are names or IPs (`[::1]` and `::1` alike), `*.example.org` for any subdomain of
    example.org, or `*` for any host (turns the check off).
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        names = {host_name(h) for h in allowed_hosts if h.strip()}
        self.any = "*" in names
        self.suffixes = tuple(name[1:] for name in names if name.startswith("*."))
        self.names = {name for name in names if not name.startswith("*")}

    def allows(self, host: str) -> bool:
        """Whether a Host header names this app."""
        name = host_name(host)
        return self.any or name in self.names or (bool(name) and name.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass allowed requests on; answer the others 400 with what to configure."""
        if scope["type"] not in ("http", "websocket") or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        if self.allows(host):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        message = (
            f"this playground does not answer to the host {host[:100]!r}: "
            "add it to PLAYGROUND_ALLOWED_HOSTS if it is meant to"
        )
        body = json.dumps({"detail": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
