"""The queue page: open a run for rating from its page, name the rater, judge, skip, recap."""

from __future__ import annotations

import re

import httpx

from tests.annotation.helpers import task
from tests.conftest import csrf_headers
from tests.runs.helpers import make_set, start_run, wait_run

ITEM = re.compile(r'data-item="(\d+)"')


async def finished_run(
    client: httpx.AsyncClient, items: int, models: list[str] | None = None
) -> int:
    await make_set(client, "page-set", items)
    run = await start_run(client, "page-set", models)
    await wait_run(client, run["id"])
    return int(run["id"])


async def post(client: httpx.AsyncClient, url: str, **form: str) -> httpx.Response:
    """A plain browser form post (CSRF token in the form)."""
    headers = await csrf_headers(client)
    data = {"csrf_token": headers["X-CSRF-Token"], **form}
    return await client.post(url, data=data)


async def test_open_rate_skip_and_finish_from_the_pages(client: httpx.AsyncClient) -> None:
    run_id = await finished_run(client, 3)
    page = await client.get(f"/runs/{run_id}")
    assert "Open as a rating task" in page.text
    assert (await client.get(f"/runs/{run_id}/queue")).status_code == 404
    # Without the CSRF token nothing opens.
    refused = await client.post(f"/runs/{run_id}/queue/settings", data={"overlap": "1"})
    assert refused.status_code == 403
    opened = await post(
        client, f"/runs/{run_id}/queue/settings", overlap="1", guidelines="Pick <the> better one",
        blind="on", random_positions="on", reveal="on",
    )  # fmt: skip
    assert opened.status_code == 303 and opened.headers["location"] == f"/runs/{run_id}/queue"
    assert "open the queue" in (await client.get(f"/runs/{run_id}")).text
    first = await client.get(f"/runs/{run_id}/queue")
    assert "Your rater name" in first.text and "Pick &lt;the&gt; better one" in first.text
    assert "data-item" not in first.text
    named = await post(client, f"/runs/{run_id}/queue/rater", rater="alice")
    assert named.status_code == 303 and "playground_rater" in named.headers["set-cookie"]
    page = await client.get(f"/runs/{run_id}/queue")
    assert "Rating as" in page.text and "Model 1" in page.text and "Model 2" in page.text
    assert ">base<" not in page.text
    assert 'name="g_a"' not in page.text  # blind: no generation ids (they follow model order)
    item = ITEM.search(page.text)
    assert item
    judged = await post(client, f"/runs/{run_id}/queue/items/{item.group(1)}", pick="2")
    assert judged.status_code == 303
    assert judged.headers["location"] == f"/runs/{run_id}/queue?after={item.group(1)}"
    after = await client.get(judged.headers["location"])
    assert "Previous item: Model 1 was" in after.text and "(rank 1)" in after.text
    second = ITEM.search(after.text)
    assert second and second.group(1) != item.group(1)
    skipped = await post(client, f"/runs/{run_id}/queue/items/{second.group(1)}/skip")
    assert skipped.status_code == 303
    third = ITEM.search((await client.get(f"/runs/{run_id}/queue")).text)
    assert third and third.group(1) not in (item.group(1), second.group(1))
    await post(client, f"/runs/{run_id}/queue/items/{third.group(1)}", pick="3")
    done = await client.get(f"/runs/{run_id}/queue")
    assert "Nothing left for you to rate" in done.text
    progress = await task(client, run_id)
    assert progress["raters"] == [{"rater": "alice", "judged": 2, "skipped": 1}]


async def test_ranking_form_with_three_answers(client: httpx.AsyncClient) -> None:
    run_id = await finished_run(client, 1, ["base", "chat", "base-2"])
    await post(client, f"/runs/{run_id}/queue/settings", overlap="1", blind="on")
    await post(client, f"/runs/{run_id}/queue/rater", rater="bob")
    page = await client.get(f"/runs/{run_id}/queue")
    item = ITEM.search(page.text)
    assert item and "Model 3" in page.text
    url = f"/runs/{run_id}/queue/items/{item.group(1)}"
    for bad in ("", "14", "112", "x"):
        assert (await post(client, url, order=bad)).status_code == 422, bad
    # Two digits: the last answer is implied.
    assert (await post(client, url, order="31")).status_code == 303
    lines = (await client.get("/api/v1/exports/judgements.jsonl")).text.splitlines()
    assert len(lines) == 1


async def test_bad_settings_are_refused(client: httpx.AsyncClient) -> None:
    run_id = await finished_run(client, 1)
    for overlap in ("0", "11", "x", "²"):
        response = await post(client, f"/runs/{run_id}/queue/settings", overlap=overlap)
        assert response.status_code == 422, overlap


async def test_bad_rater_names_are_refused(client: httpx.AsyncClient) -> None:
    run_id = await finished_run(client, 1)
    await post(client, f"/runs/{run_id}/queue/settings", overlap="1", blind="on")
    for name in ("", "   ", "x" * 65, "nul\x00byte"):
        response = await post(client, f"/runs/{run_id}/queue/rater", rater=name)
        assert response.status_code == 422, name
    # A cookie no rater could have set is ignored: the page asks for a name.
    client.cookies.set("playground_rater", "bad%00name")
    page = await client.get(f"/runs/{run_id}/queue")
    assert page.status_code == 200 and "Your rater name" in page.text
