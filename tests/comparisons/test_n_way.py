"""N-way comparisons: 2-4 columns, judgements as rankings, pairs in the export, blind mode."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.main import create_app
from playground_tools.fake_vllm import FakeConfig, FakeServer
from tests.comparisons.test_sse import read_events
from tests.conftest import csrf_headers
from tests.support import ThreadedServer

JSON = dict[str, Any]
TURN_ID = re.compile(r'<section class="turn" id="turn-(\d+)"')
# Names no page would contain by chance, so that a leak is a leak.
SECRET_NAMES = {
    "base": ("zebrabase", "served-zebrabase"),
    "chat": ("quokkachat", "served-quokkachat"),
    "tune": ("ocelottune", "served-ocelottune"),
}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, FakeServer]]:
    """A fake server per model: a base, its chat sibling and a fine-tune."""
    with (
        FakeServer(FakeConfig(served_model_name="served-zebrabase", answer_words=5)) as base,
        FakeServer(FakeConfig(served_model_name="served-quokkachat", answer_words=5)) as chat,
        FakeServer(FakeConfig(served_model_name="served-ocelottune", answer_words=5)) as tune,
    ):
        yield {"zebrabase": base, "quokkachat": chat, "ocelottune": tune}


@pytest.fixture
def models(servers: dict[str, FakeServer]) -> ModelsFile:
    """Base, chat and a third chat model, under names that occur nowhere else."""
    kinds = {"zebrabase": ModelKind.BASE, "quokkachat": ModelKind.CHAT,
             "ocelottune": ModelKind.CHAT}  # fmt: skip
    return ModelsFile(
        models=[
            ModelConfig(name=name, kind=kinds[name], url=server.base_url, model=f"served-{name}")
            for name, server in servers.items()
        ]
    )


THREE = ["zebrabase", "quokkachat", "ocelottune"]


async def compare(client: httpx.AsyncClient, **body: Any) -> JSON:
    response = await client.post("/api/v1/comparisons", json=body)
    assert response.status_code == 201, response.text
    data: JSON = response.json()
    return data


async def vote(client: httpx.AsyncClient, cid: str, **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/comparisons/{cid}/votes", json=body)


async def test_three_models_answer_in_three_columns(client: httpx.AsyncClient) -> None:
    data = await compare(client, prompt="Hello", models=THREE)
    assert [m["slot"] for m in data["models"]] == ["a", "b", "c"]
    assert [m["name"] for m in data["models"]] == THREE
    turn = data["turns"][0]
    generations = turn["generations"]
    assert [g["slot"] for g in generations] == ["a", "b", "c"]
    assert [g["model_name"] for g in generations] == THREE
    assert [g["position"] for g in generations] == [0, 1, 2]
    assert all(g["status"] == "done" and g["text"] for g in generations)
    # Each column got what its kind needs: raw text, or messages.
    assert generations[0]["prompt_text"] == "Hello" and generations[0]["messages"] is None
    assert generations[2]["messages"] == [{"role": "user", "content": "Hello"}]
    assert turn["a"] == generations[0] and turn["b"] == generations[1]


async def test_four_models_and_more_or_fewer_are_refused(client: httpx.AsyncClient) -> None:
    four = await compare(client, prompt="Hi", models=[*THREE, "zebrabase"])
    assert [g["slot"] for g in four["turns"][0]["generations"]] == ["a", "b", "c", "d"]
    for models in (["zebrabase"], [*THREE, *THREE]):
        response = await client.post("/api/v1/comparisons", json={"prompt": "x", "models": models})
        assert response.status_code == 422, response.text


async def test_a_ranking_is_stored_with_the_exact_answers_and_read_back(
    client: httpx.AsyncClient,
) -> None:
    data = await compare(client, prompt="Rank us", models=THREE)
    ids = {g["slot"]: g["id"] for g in data["turns"][0]["generations"]}
    response = await vote(client, data["id"], rater="rita", ranking=[["c"], ["a", "b"]],
                          scores={"a": 2, "c": 5}, comment="c wins")  # fmt: skip
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["ranking"] == [["c"], ["a", "b"]] and stored["all_bad"] is False
    assert stored["winner"] is None and stored["scores"] == {"a": 2, "c": 5}
    assert stored["generation_ids"] == ids and stored["positions"] == {"a": 0, "b": 1, "c": 2}
    # The same rater again replaces the judgement.
    again = await vote(client, data["id"], rater="rita", all_bad=True)
    assert again.status_code == 201 and again.json()["id"] == stored["id"]
    turn = (await client.get(f"/api/v1/comparisons/{data['id']}")).json()["turns"][0]
    (only,) = turn["votes"]
    assert (only["all_bad"], only["ranking"], only["scores"]) == (True, None, {})


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"winner": "a"}, ["winner", "two answers"]),
        ({"ranking": [["a"], ["b"]]}, ["missing", "c"]),
        ({"ranking": [["a", "a"], ["b", "c"]]}, ["twice"]),
        ({"ranking": [["a"], ["b"], ["c"]], "scores": {"d": 3}}, ["scores", "d"]),
        ({"ranking": [["a"], ["b"], ["c"]], "all_bad": True}, ["exactly one"]),
        ({}, ["exactly one"]),
        ({"ranking": [["a"], ["b"], ["c"]], "scores": {"a": True}}, ["scores"]),
        ({"ranking": [["a"], ["b"], ["x"]]}, ["ranking"]),
    ],
)
async def test_bad_judgements_are_clear_422s_and_store_nothing(
    client: httpx.AsyncClient, body: JSON, words: list[str]
) -> None:
    data = await compare(client, prompt="Rank us", models=THREE)
    response = await vote(client, data["id"], rater="rita", **body)
    assert response.status_code == 422, response.text
    detail = json.dumps(response.json()["detail"])
    for word in words:
        assert word in detail, (word, detail)
    turn = (await client.get(f"/api/v1/comparisons/{data['id']}")).json()["turns"][0]
    assert turn["votes"] == []


async def test_two_model_calls_keep_working_with_winner_and_legacy_scores(
    client: httpx.AsyncClient,
) -> None:
    data = await compare(client, prompt="Two", models=THREE[:2])
    response = await vote(client, data["id"], rater="r", winner="b", score_a=1, score_b=4)
    assert response.status_code == 201, response.text
    stored = response.json()
    assert (stored["winner"], stored["score_a"], stored["score_b"]) == ("b", 1, 4)
    assert stored["ranking"] == [["b"], ["a"]]
    assert (stored["generation_a_id"], stored["generation_b_id"]) == (
        data["turns"][0]["a"]["id"],
        data["turns"][0]["b"]["id"],
    )
    assert data["model_a"] == "zebrabase" and data["kind_b"] == "chat"


async def test_a_ranking_of_three_exports_three_pairs_and_one_judgement_record(
    client: httpx.AsyncClient,
) -> None:
    data = await compare(client, prompt="Pairs", models=THREE)
    await vote(client, data["id"], rater="rita", ranking=[["c"], ["a", "b"]], scores={"b": 3})
    all_bad = await compare(client, prompt="All bad", models=THREE)
    await vote(client, all_bad["id"], rater="rita", all_bad=True)
    exported = (await client.get("/api/v1/exports/ratings.csv")).text
    rows = list(csv.DictReader(io.StringIO(exported, newline="")))
    assert len(rows) == 6
    first = [r for r in rows if r["conversation_id"] == data["id"]]
    pairs = {(r["slot_a"], r["slot_b"]): r for r in first}
    assert set(pairs) == {("a", "b"), ("a", "c"), ("b", "c")}
    assert pairs["a", "b"]["winner"] == "tie" and pairs["a", "b"]["winner_model"] == ""
    assert pairs["a", "c"]["winner"] == "b" and pairs["a", "c"]["winner_model"] == "ocelottune"
    assert [pairs["b", "c"]["model_a"], pairs["b", "c"]["model_b"]] == THREE[1:]
    assert (pairs["b", "c"]["score_a"], pairs["b", "c"]["score_b"]) == ("3", "")
    assert {r["n_models"] for r in first} == {"3"} and {r["blind"] for r in first} == {"false"}
    assert (pairs["b", "c"]["position_a"], pairs["b", "c"]["position_b"]) == ("1", "2")
    assert {r["winner"] for r in rows if r["conversation_id"] == all_bad["id"]} == {"both_bad"}

    lines = (await client.get("/api/v1/exports/judgements.jsonl")).text.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["ranking"] for r in records] == [[["c"], ["a", "b"]], None]
    record = records[0]
    assert [a["model"] for a in record["answers"]] == THREE
    assert [a["rank"] for a in record["answers"]] == [2, 2, 1]
    assert record["answers"][1]["score"] == 3 and record["n_models"] == 3
    assert records[1]["all_bad"] is True


async def test_one_column_is_regenerated_and_the_others_keep_their_answers(
    client: httpx.AsyncClient,
) -> None:
    data = await compare(client, prompt="Again", models=THREE)
    before = {g["slot"]: g["id"] for g in data["turns"][0]["generations"]}
    headers = await csrf_headers(client)
    page = await client.get(f"/c/{data['id']}")
    turn_id = TURN_ID.search(page.text)
    assert turn_id
    response = await client.post(
        f"/turns/{turn_id.group(1)}/regenerate", data={"slot": "c"}, headers=headers
    )
    assert response.status_code == 200, response.text
    unknown = await client.post(
        f"/turns/{turn_id.group(1)}/regenerate", data={"slot": "d"}, headers=headers
    )
    assert unknown.status_code == 404
    app_state = client._transport.app  # type: ignore[attr-defined]
    assert app_state is not None
    after = (await client.get(f"/api/v1/comparisons/{data['id']}")).json()
    now = {g["slot"]: g["id"] for g in after["turns"][0]["generations"]}
    assert now["a"] == before["a"] and now["b"] == before["b"] and now["c"] != before["c"]


# ---------------------------------------------------------------- blind mode


def leaks(text: str) -> list[str]:
    """Any model name, served name or kind word that a blind page must not show."""
    found = [name for pair in SECRET_NAMES.values() for name in pair if name in text]
    return found + [
        kind for kind in ("kind-base", "kind-chat", "/chat/completions") if kind in text
    ]


async def test_blind_hides_every_name_until_the_rater_judges_then_reveals(
    settings: Settings, models: ModelsFile
) -> None:
    app: FastAPI = create_app(settings, models)
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        index = http.get("/")
        token = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', index.text)
        assert token
        headers = {"X-CSRF-Token": token.group(1), "HX-Request": "true"}
        created = http.post(
            "/c",
            data={"prompt": "Who are you?", "model_a": THREE[0], "model_b": THREE[1],
                  "model_c": THREE[2], "blind": "1"},
            headers=headers,
        )  # fmt: skip
        assert created.status_code == 204, created.text
        cid = created.headers["HX-Location"].rsplit("/", 1)[1]
        sent: list[str] = []
        page = http.get(f"/c/{cid}")
        sent.append(page.text)
        turn_id = TURN_ID.search(page.text)
        assert turn_id
        events = read_events(http, f"/turns/{turn_id.group(1)}/events")
        sent += [e.event.data for e in events]
        assert {e.event.event for e in events} >= {"done-a", "done-b", "done-c", "turn-done"}
        api = http.get(f"/api/v1/comparisons/{cid}")
        sent.append(api.text)
        sent.append(http.get("/history").text)
        for text in sent:
            assert leaks(text) == [], (leaks(text), text[:3000])
        assert "Model 1" in page.text and "Model 3" in page.text
        data = api.json()
        assert data["blind"] and not data["revealed"]
        assert [m["name"] for m in data["models"]] == [None, None, None]
        assert [g["label"] for g in data["turns"][0]["generations"]] == [
            "Model 1",
            "Model 2",
            "Model 3",
        ]
        # The lens stays closed: it would tell the model.
        generation_id = data["turns"][0]["generations"][0]["id"]
        lens = http.get(f"/api/v1/generations/{generation_id}")
        assert lens.status_code == 409 and leaks(lens.text) == []
        assert http.get(f"/generations/{generation_id}/tokens").status_code == 409

        judged = http.post(
            f"/turns/{turn_id.group(1)}/vote",
            data={"rater": "blinda", "rank_a": "1", "rank_b": "2", "rank_c": "2"},
            headers=headers,
        )
        assert judged.status_code == 200, judged.text
        # Revealed in place: the answer to the vote names every model.
        assert all(name in judged.text for name in THREE)
        assert "Vote saved for blinda" in judged.text
        # On reload too (the browser remembers its rater), and in the API for that rater.
        assert all(name in http.get(f"/c/{cid}").text for name in THREE)
        revealed = http.get(f"/api/v1/comparisons/{cid}", params={"rater": "blinda"}).json()
        assert revealed["revealed"] and {m["name"] for m in revealed["models"]} == set(THREE)
        judgement = revealed["turns"][0]["votes"][0]
        assert judgement["blind"] is True
        # Another rater still sees no names.
        assert leaks(http.get(f"/api/v1/comparisons/{cid}", params={"rater": "x"}).text) == []
        # The models took the columns in a random order, and the slots say which is which.
        order = [m["name"] for m in revealed["models"]]
        assert sorted(order) == sorted(THREE)
        exported = list(csv.DictReader(io.StringIO(http.get("/api/v1/exports/ratings.csv").text)))
        assert {r["blind"] for r in exported} == {"true"} and len(exported) == 3


async def test_blind_positions_are_random_and_stored(client: httpx.AsyncClient) -> None:
    orders = set()
    for _ in range(12):
        data = await compare(client, prompt="Shuffle", models=THREE, blind=True, params={
            "max_tokens": 2})  # fmt: skip
        await vote(client, data["id"], rater="o", all_bad=True)
        revealed = (await client.get(f"/api/v1/comparisons/{data['id']}?rater=o")).json()
        orders.add(tuple(m["name"] for m in revealed["models"]))
    # 12 draws of 6 orders: all the same by chance has probability 6 * (1/6)**12.
    assert len(orders) > 1


async def test_a_changed_blind_vote_is_no_longer_blind_and_others_votes_wait(
    client: httpx.AsyncClient,
) -> None:
    data = await compare(client, prompt="Blind", models=THREE, blind=True)
    assert all(g["prompt_tokens"] is None for g in data["turns"][0]["generations"])
    first = await vote(client, data["id"], rater="alice", all_bad=True)
    assert first.json()["blind"] is True
    # Another viewer sees neither names nor alice's verdict (her name would open the reveal).
    hidden = (await client.get(f"/api/v1/comparisons/{data['id']}")).json()
    assert hidden["turns"][0]["votes"] == [] and "alice" not in json.dumps(hidden)
    # alice now knows the names: her changed verdict is not blind any more.
    changed = await vote(client, data["id"], rater="alice", ranking=[["a"], ["b"], ["c"]])
    assert changed.json()["id"] == first.json()["id"] and changed.json()["blind"] is False


async def test_a_vote_on_answers_regenerated_since_they_were_shown_is_refused(
    client: httpx.AsyncClient,
) -> None:
    data = await compare(client, prompt="Seen", models=THREE)
    shown = {g["slot"]: g["id"] for g in data["turns"][0]["generations"]}
    stale = {**shown, "c": shown["c"] + 1000}
    refused = await vote(client, data["id"], rater="r", all_bad=True, generation_ids=stale)
    assert refused.status_code == 409 and "reload" in refused.json()["detail"]
    ok = await vote(client, data["id"], rater="r", all_bad=True, generation_ids=shown)
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(
    "field", [{"score_a": "²"}, {"rank_a": "9" * 5000}, {"turn": "9" * 5000}, {"seen_a": "٣"}]
)
async def test_odd_digits_in_the_vote_form_are_422s(
    client: httpx.AsyncClient, field: dict[str, str]
) -> None:
    data = await compare(client, prompt="Digits", models=THREE)
    headers = await csrf_headers(client)
    page = await client.get(f"/c/{data['id']}")
    turn_id = TURN_ID.search(page.text)
    assert turn_id
    form = {"rater": "r", "rank_a": "1", "rank_b": "2", "rank_c": "3"} | field
    response = await client.post(f"/turns/{turn_id.group(1)}/vote", data=form, headers=headers)
    assert response.status_code == 422, response.text
