"""A CSRF token that is not ASCII is a wrong token (403), not a crash."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import csrf_headers


@pytest.mark.parametrize("token", ["é" * 64, "\u2603", "\ufffd"])
async def test_a_non_ascii_token_in_the_form_is_refused_with_403(
    client: httpx.AsyncClient, token: str
) -> None:
    await csrf_headers(client)  # the browser has its cookie
    response = await client.post(
        "/c", data={"prompt": "hi", "csrf_token": token}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 403, response.text


async def test_a_non_ascii_token_in_the_header_is_refused_with_403(
    client: httpx.AsyncClient,
) -> None:
    await csrf_headers(client)
    response = await client.post(
        "/c",
        data={"prompt": "hi"},
        headers={"HX-Request": "true", "X-CSRF-Token": "é".encode("latin-1")},  # type: ignore[dict-item]
    )
    assert response.status_code == 403, response.text


async def test_a_non_ascii_cookie_is_refused_with_403(client: httpx.AsyncClient) -> None:
    headers = await csrf_headers(client)
    client.cookies.clear()
    raw_cookie = "playground_csrf=café".encode()  # arrives decoded as Latin-1: not ASCII
    response = await client.post(
        "/c",
        data={"prompt": "hi"},
        headers=headers | {"Cookie": raw_cookie},  # type: ignore[operator]
    )
    assert response.status_code == 403, response.text
