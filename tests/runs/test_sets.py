"""Prompt sets: import from JSON, JSONL, CSV and pages; bad files name the line; all or nothing."""

from __future__ import annotations

import json

import httpx

from app.config import Settings
from tests.conftest import csrf_headers

JSONL = "\n".join(
    json.dumps(row)
    for row in [
        {"id": "paris", "prompt": "Capital of France?", "tags": ["geo"],
         "reference": {"type": "contains", "value": "Paris"}},
        {"prompt": "Write a poem.", "system": "Be brief.", "tags": ["writing"]},
    ]
)  # fmt: skip


async def test_bundled_sets_are_there(client: httpx.AsyncClient) -> None:
    sets = {s["name"]: s for s in (await client.get("/api/v1/prompt-sets")).json()}
    assert sets["general-knowledge"]["items"] == 30
    assert sets["general-instructions"]["items"] == 30
    assert sets["narrow-task"]["items"] == 30  # the demo-narrow variants' held-out task
    items = (
        await client.get(f"/api/v1/prompt-sets/{sets['general-knowledge']['id']}/items")
    ).json()
    france = next(i for i in items if i["id"] == "capital-france")
    assert france["reference"] == {"type": "contains", "value": "Paris"}


async def test_import_jsonl_content(client: httpx.AsyncClient) -> None:
    body = {"name": "mine", "format": "jsonl", "content": JSONL}
    response = await client.post("/api/v1/prompt-sets", json=body)
    assert response.status_code == 201, response.text
    set_id = response.json()["id"]
    items = (await client.get(f"/api/v1/prompt-sets/{set_id}/items")).json()
    assert [i["id"] for i in items] == ["paris", "item-2"]
    assert items[1]["system"] == "Be brief."
    geo = (await client.get(f"/api/v1/prompt-sets/{set_id}/items?tag=geo")).json()
    assert [i["id"] for i in geo] == ["paris"]
    found = (await client.get(f"/api/v1/prompt-sets/{set_id}/items?q=POEM")).json()
    assert [i["id"] for i in found] == ["item-2"]


async def test_import_csv(client: httpx.AsyncClient) -> None:
    content = (
        "id,prompt,tags,reference_type,reference_value\n"
        'a1,"What is 2+2, please?",math;easy,exact,4\n'
        "a2,Pick one: A or B,quiz,choice,B\n"
    )
    response = await client.post(
        "/api/v1/prompt-sets", json={"name": "csv", "format": "csv", "content": content}
    )
    assert response.status_code == 201, response.text
    items = (await client.get(f"/api/v1/prompt-sets/{response.json()['id']}/items")).json()
    assert items[0]["prompt"] == "What is 2+2, please?"
    assert items[0]["tags"] == ["math", "easy"]
    assert items[1]["reference"] == {"type": "choice", "value": "B"}


async def _refused(client: httpx.AsyncClient, body: dict[str, object]) -> str:
    before = len((await client.get("/api/v1/prompt-sets")).json())
    response = await client.post("/api/v1/prompt-sets", json=body)
    assert response.status_code == 422, response.text
    assert len((await client.get("/api/v1/prompt-sets")).json()) == before  # nothing kept
    detail: str = response.json()["detail"]
    return detail if isinstance(detail, str) else json.dumps(detail)


async def test_bad_files_name_the_line_and_keep_nothing(client: httpx.AsyncClient) -> None:
    bad_json = JSONL + "\n{not json}\n"
    detail = await _refused(client, {"name": "x", "format": "jsonl", "content": bad_json})
    assert "line 3" in detail and "JSON" in detail
    no_prompt = JSONL + '\n\n{"id": "z"}'
    detail = await _refused(client, {"name": "x", "format": "jsonl", "content": no_prompt})
    assert "line 4" in detail and "prompt" in detail
    bad_ref = '{"prompt": "p", "reference": {"type": "regex", "value": "(("}}'
    detail = await _refused(client, {"name": "x", "format": "jsonl", "content": bad_ref})
    assert "line 1" in detail and "regex" in detail
    dup = '{"id": "a", "prompt": "p"}\n{"id": "a", "prompt": "q"}'
    detail = await _refused(client, {"name": "x", "format": "jsonl", "content": dup})
    assert "line 2" in detail and "line 1" in detail
    csv_bad = "prompt,colour\nhello,red\n"
    detail = await _refused(client, {"name": "x", "format": "csv", "content": csv_bad})
    assert "line 1" in detail and "colour" in detail
    csv_ref = (
        'prompt,reference\nok,"{""type"": ""exact"", ""value"": ""x""}"\n'
        'bad,"{""type"": ""near""}"\n'
    )
    detail = await _refused(client, {"name": "x", "format": "csv", "content": csv_ref})
    assert "line 3" in detail and "reference" in detail
    detail = await _refused(client, {"name": "x", "format": "jsonl", "content": "\n\n"})
    assert "no items" in detail


async def test_size_limit_and_duplicate_name(client: httpx.AsyncClient, settings: Settings) -> None:
    settings.max_set_items = limit = 5
    rows = [{"prompt": f"p{i}"} for i in range(limit + 1)]
    detail = await _refused(client, {"name": "big", "items": rows})
    assert f"item {limit + 1}" in detail and "too many" in detail
    ok = await client.post("/api/v1/prompt-sets", json={"name": "dup", "items": rows[:2]})
    assert ok.status_code == 201
    again = await client.post("/api/v1/prompt-sets", json={"name": "dup", "items": rows[:2]})
    assert again.status_code == 409


async def test_page_upload_with_csrf(client: httpx.AsyncClient) -> None:
    headers = await csrf_headers(client)
    files = {"file": ("set.jsonl", JSONL.encode(), "application/jsonl")}
    response = await client.post(
        "/prompt-sets", data={"name": "uploaded"}, files=files, headers=headers
    )
    assert response.status_code == 204, response.text
    location = response.headers["HX-Location"]
    page = await client.get(location)
    assert "Capital of France?" in page.text and "Write a poem." in page.text
    filtered = await client.get(location, params={"tag": "writing"})
    assert "Write a poem." in filtered.text and "Capital of France?" not in filtered.text
    no_token = await client.post("/prompt-sets", data={"name": "x"}, files=files)
    assert no_token.status_code == 403
    broken = {"file": ("set.jsonl", b'{"prompt": "ok"}\n[1]\n', "application/jsonl")}
    refused = await client.post("/prompt-sets", data={"name": "b"}, files=broken, headers=headers)
    assert refused.status_code == 422 and "line 2" in refused.text
