"""Ids the database cannot hold, or that no id looks like, get 404 or 422 on every route."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import csrf_headers
from tests.web.routes import app_routes, path_params

# Beyond PostgreSQL's integer (2^31-1) and SQLite's (2^63-1), negative, zero, not a number,
# and text no conversation id looks like: NUL (PostgreSQL text cannot hold it), very long,
# an encoded lone surrogate, a dot and a space.
BAD_IDS = [
    str(2**31),
    str(2**63),
    str(2**64),
    "9" * 40,
    "-1",
    "0",
    "1.5",
    "%00",
    "a%00b",
    "x" * 300,
    "%ED%A0%80",
    "a.b",
    "%20",
]
# JSON bodies that pass validation, so that the id is what the route trips on.
JSON_BODIES = {
    "turns": {"prompt": "hi"},
    "votes": {"winner": "a", "rater": "ana"},
}
FORM = {"prompt": "hi", "winner": "a", "rater": "ana", "side": "a", "k": "1"}


def routes_with_ids(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route taking a path parameter."""
    return sorted(
        (method, path)
        for path, methods in app_routes(app)
        if path_params(path)
        for method in methods - {"HEAD"}
    )


def test_the_table_covers_every_kind_of_id_route(app: FastAPI) -> None:
    """A new route with an id joins the table by itself; these must be in it already."""
    routes = routes_with_ids(app)
    for expected in [
        ("GET", "/c/{conversation_id}"),
        ("GET", "/turns/{turn_id}/events"),
        ("POST", "/turns/{turn_id}/stop"),
        ("POST", "/turns/{turn_id}/vote"),
        ("POST", "/api/v1/comparisons/{conversation_id}/votes"),
        ("GET", "/api/v1/generations/{generation_id}"),
        ("POST", "/generations/{generation_id}/token-shift"),
    ]:
        assert expected in routes


async def request_status(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    url: str,
    headers: dict[str, str],
    token: str,
) -> int:
    """Send the route a request that is valid but for its id; return the status."""
    if method == "GET":
        response = await client.get(url, headers=headers)
    elif path.startswith("/api/"):
        body = JSON_BODIES.get(path.rsplit("/", 1)[-1], {})
        response = await client.request(method, url, json=body)
    else:
        form = FORM | {"csrf_token": token}
        response = await client.request(method, url, data=form, headers=headers)
    return response.status_code


async def test_out_of_range_and_odd_ids_are_404_or_422_everywhere(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    headers = await csrf_headers(client)
    token = headers["X-CSRF-Token"]
    failures = []
    for method, path in routes_with_ids(app):
        for bad in BAD_IDS:
            url = path
            for name in path_params(path):
                url = url.replace("{" + name + "}", bad)
            try:
                status = await request_status(client, method, path, url, headers, token)
            except Exception as exc:  # the in-process transport re-raises what gave a 500
                status = 500
                url += f" ({type(exc).__name__})"
            if status not in (404, 422):
                failures.append(f"{method} {url[:80]}: {status}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("turn", [2**31, 2**63, -1])
async def test_a_vote_on_a_turn_number_out_of_range_is_a_clear_4xx(
    client: httpx.AsyncClient, turn: int
) -> None:
    created = await client.post("/api/v1/comparisons", json={"prompt": "hi"})
    assert created.status_code == 201, created.text
    response = await client.post(
        f"/api/v1/comparisons/{created.json()['id']}/votes",
        json={"winner": "a", "rater": "ana", "turn": turn},
    )
    assert response.status_code in (404, 422), response.text
