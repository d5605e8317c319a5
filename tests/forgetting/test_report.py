"""The report of a run on fake servers whose answers are scripted: accuracies, the difference,
the items forgotten and learned, stored scores (rescored after a retry), and bad requests."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.forgetting import scoring
from app.forgetting.models import AnswerScore
from playground_tools.fake_vllm import FakeServer
from tests.forgetting.helpers import FORGOT, LEARNED, finished_run, item, make_scored_set, script
from tests.runs.helpers import wait_run


async def stored_scores(app: FastAPI) -> list[AnswerScore]:
    async with app.state.playground.sessions() as session:
        return list(await session.scalars(select(AnswerScore).order_by(AnswerScore.id)))


async def test_report_accuracies_difference_and_changes(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer, chat_server: FakeServer
) -> None:
    script(base_server, chat_server)
    await make_scored_set(client)
    run_id = await finished_run(client)
    response = await client.get(
        f"/api/v1/runs/{run_id}/report", params={"original": "base", "tuned": "chat"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["final"] and report["status"] == "done"
    assert report["items"] == {"total": 8, "scored": 7, "without_reference": 1, "unanswered": 0}
    base, chat = report["models"]
    assert (base["model"], base["correct"], base["scored"]) == ("base", 4, 7)
    assert (chat["model"], chat["correct"], chat["scored"]) == ("chat", 2, 7)
    assert base["accuracy"] == pytest.approx(4 / 7)
    assert base["ci_low"] <= base["accuracy"] <= base["ci_high"]
    assert report["pair"] == {"original": "base", "tuned": "chat", "chosen_by": "request"}
    diff = report["difference"]
    assert diff["estimate"] == pytest.approx(-2 / 7)
    assert diff["ci_low"] <= diff["estimate"] <= diff["ci_high"]
    assert diff["significantly_worse"] is (diff["ci_high"] < 0)
    assert [c["item"] for c in report["forgot"]] == FORGOT
    assert [c["item"] for c in report["learned"]] == LEARNED
    rome = report["forgot"][0]
    assert rome["original_answer"] == "Paris Rome" and rome["tuned_answer"] == "Paris Berlin"
    assert rome["reference"] == {"type": "contains", "value": "Rome"}
    assert rome["url"] == f"/runs/{run_id}?q=rome#item-rome"
    # The same request, the same figures (seeded); the scores were stored once, 2 per item.
    again = (await client.get(f"/api/v1/runs/{run_id}/report?original=base&tuned=chat")).json()
    assert again == report
    scores = await stored_scores(app)
    assert len(scores) == 14
    assert {s.detail for s in scores} >= {"contains it", "equal", "no option letter found"}
    # Swapped roles: what one forgot the other learned.
    swapped = (await client.get(f"/api/v1/runs/{run_id}/report?original=chat&tuned=base")).json()
    assert [c["item"] for c in swapped["learned"]] == FORGOT
    assert swapped["difference"]["estimate"] == pytest.approx(2 / 7)


async def test_a_clearly_worse_tuned_model_is_significantly_worse(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    script(base_server, chat_server, tuned_says="I do not know")
    items = [item(f"q{i}", f"Question {i}?", "contains", "Rome") for i in range(20)]
    await make_scored_set(client, "rome", items)
    run_id = await finished_run(client, "rome")
    report = (await client.get(f"/api/v1/runs/{run_id}/report?original=base&tuned=chat")).json()
    assert report["difference"]["estimate"] == -1.0
    assert report["difference"]["significantly_worse"] is True
    assert len(report["forgot"]) == 20 and report["learned"] == []


async def test_without_a_pair_only_accuracies(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    script(base_server, chat_server)
    await make_scored_set(client)
    run_id = await finished_run(client)
    report = (await client.get(f"/api/v1/runs/{run_id}/report")).json()
    assert report["pair"] is None and report["difference"] is None
    assert report["forgot"] == [] == report["learned"]
    assert [m["correct"] for m in report["models"]] == [4, 2]


async def test_failed_answers_are_left_out_then_scored_after_a_retry(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer, chat_server: FakeServer
) -> None:
    script(base_server, chat_server)
    chat_server.config.fail_status = 500
    await make_scored_set(client)
    run_id = await finished_run(client)
    report = (await client.get(f"/api/v1/runs/{run_id}/report?original=base&tuned=chat")).json()
    assert report["items"]["scored"] == 0 and report["items"]["unanswered"] == 7
    assert report["difference"] is None
    assert [m["accuracy"] for m in report["models"]] == [None, None]
    assert len(await stored_scores(app)) == 7  # base's answers are scored already
    chat_server.config.fail_status = None
    assert (await client.post(f"/api/v1/runs/{run_id}/retry", json={})).status_code == 200
    await wait_run(client, run_id)
    report = (await client.get(f"/api/v1/runs/{run_id}/report?original=base&tuned=chat")).json()
    assert report["items"]["scored"] == 7
    assert [c["item"] for c in report["forgot"]] == FORGOT
    assert len(await stored_scores(app)) == 14


async def test_outdated_scores_are_recomputed(
    client: httpx.AsyncClient,
    app: FastAPI,
    base_server: FakeServer,
    chat_server: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script(base_server, chat_server)
    await make_scored_set(client)
    run_id = await finished_run(client)
    assert (await client.get(f"/api/v1/runs/{run_id}/report")).status_code == 200
    monkeypatch.setattr(scoring, "SCORER_VERSION", 99)
    assert (await client.get(f"/api/v1/runs/{run_id}/report")).status_code == 200
    scores = await stored_scores(app)
    assert len(scores) == 14 and {s.scorer_version for s in scores} == {99}
    async with app.state.playground.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(AnswerScore))
    assert count == 14


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("original=base", "give both original and tuned"),
        ("original=base&tuned=nope", "'nope' is not a model of run"),
        ("original=base&tuned=base", "two different models"),
    ],
)
async def test_bad_pairs_are_422(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer,
    query: str, message: str,
) -> None:  # fmt: skip
    script(base_server, chat_server)
    await make_scored_set(client)
    run_id = await finished_run(client)
    for path in (f"/api/v1/runs/{run_id}/report", f"/api/v1/runs/{run_id}/report.csv"):
        response = await client.get(f"{path}?{query}")
        assert response.status_code == 422 and message in response.json()["detail"]


async def test_unknown_run_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/runs/99/report", "/api/v1/runs/99/report.csv", "/runs/99/report"):
        assert (await client.get(path)).status_code == 404
    assert (await client.get("/api/v1/runs/99999999999/report")).status_code == 404
    assert (await client.get("/api/v1/runs/1/report?seed=-1")).status_code == 422
