"""The run token-shift page: the start form (CSRF), the live progress fragment, the choice of
base model."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from app.lens.models import RunShiftJob
from tests.conftest import csrf_headers
from tests.lens.bulk_helpers import analyse_run, finished_run
from tests.runs.helpers import make_set, start_run, wait_run


async def test_the_form_starts_the_analysis_and_the_fragment_follows_it(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    run = await finished_run(client, 2)
    url = f"/runs/{run['id']}/token-shift"
    page = await client.get(url)
    assert page.status_code == 200
    assert "not started" in page.text and "Analyse the run" in page.text
    # Only the run's base model is offered as the default; every base model can be chosen.
    assert "each answer's default (base)" in page.text
    refused = await client.post(f"{url}/start", data={"base": ""})
    assert refused.status_code == 403
    headers = await csrf_headers(client)
    started = await client.post(f"{url}/start", data={"base": ""}, headers=headers)
    assert started.status_code == 204 and started.headers["HX-Location"] == url
    await app.state.shift_executor.wait(run["id"])
    fragment = await client.get(f"{url}/progress", headers={"HX-Request": "true"})
    assert fragment.headers.get("HX-Refresh") == "true"
    assert '<span class="shift-done">2</span> analysed' in fragment.text
    assert "hx-trigger" not in fragment.text
    done = await client.get(url)
    assert "chat under base" in done.text and "Analyse new answers" in done.text


async def test_a_running_analysis_polls(client: httpx.AsyncClient, app: FastAPI) -> None:
    run = await finished_run(client, 1)
    # A job still running (here: its driver in another process) polls and offers no form.
    async with app.state.playground.sessions() as session, session.begin():
        session.add(RunShiftJob(run_id=run["id"], top_k=5, status="running"))
    page = await client.get(f"/runs/{run['id']}/token-shift")
    assert f'hx-get="/runs/{run["id"]}/token-shift/progress"' in page.text
    assert "/token-shift/start" not in page.text
    fragment = await client.get(
        f"/runs/{run['id']}/token-shift/progress", headers={"HX-Request": "true"}
    )
    assert "HX-Refresh" not in fragment.headers and "every 1s" in fragment.text


async def test_a_bad_choice_is_a_clear_message(client: httpx.AsyncClient) -> None:
    run = await finished_run(client, 1)
    headers = await csrf_headers(client)
    response = await client.post(
        f"/runs/{run['id']}/token-shift/start", data={"base": "chat"}, headers=headers
    )
    assert response.status_code == 422
    assert "chat is not a base model" in response.text
    assert (await client.get("/runs/999/token-shift")).status_code == 404


async def test_a_blind_run_hides_the_model_names_until_revealed(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await make_set(client, "blind", 1)
    run = await start_run(client, "blind", blind=True)
    await wait_run(client, run["id"])
    await analyse_run(client, app, run["id"])
    page = (await client.get(f"/runs/{run['id']}/token-shift")).text
    assert "Model 2 under Model 1" in page and "chat under base" not in page
    shown = (await client.get(f"/runs/{run['id']}/token-shift?reveal=true")).text
    assert "chat under base" in shown
