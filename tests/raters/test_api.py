"""GET /api/v1/raters and GET /raters over judgements inserted directly."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.raters.factory import Item, insert, ranks

URL = "/api/v1/raters"


def items() -> list[Item]:
    """Three raters on four two-answer items, two of them on a three-way item, one alone."""
    return [
        Item(["x", "y"], {"ann": ranks(1, 2, at=0), "bob": ranks(1, 2, at=10),
                          "cy": ranks(1, 2, at=20)}),
        Item(["x", "y"], {"ann": ranks(2, 1, at=40), "bob": ranks(2, 1, at=30),
                          "cy": ranks(1, 2, at=60)}),
        Item(["x", "y"], {"ann": ranks(1, 1, at=100), "bob": ranks(1, 1, at=130),
                          "cy": ranks(None, None, at=90)}),
        Item(["x", "y"], {"ann": ranks(None, None, at=1000), "bob": ranks(None, None, at=140),
                          "cy": ranks(None, None, at=95)}),
        Item(["x", "y", "z"], {"ann": ranks(2, 1, 1, at=1030), "bob": ranks(2, 1, 1, at=150)}),
        Item(["x", "y"], {"dee": ranks(1, 2, at=0, blind=False)}),
    ]  # fmt: skip


async def test_figures_per_rater_and_agreement(client: httpx.AsyncClient, app: FastAPI) -> None:
    await insert(app, items())
    response = await client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["judgements"] == 15 and body["shared_items"] == 5
    rows = {r["rater"]: r for r in body["raters"]}
    assert [r["rater"] for r in body["raters"]] == ["ann", "bob", "cy", "dee"]
    ann, bob, cy = rows["ann"], rows["bob"], rows["cy"]
    # ann judged at 0, 40, 100, 1000, 1030: gaps 40, 60, (900: a break), 30 -> median 40.
    assert (ann["judgements"], ann["median_seconds"], ann["timed_judgements"]) == (5, 40.0, 3)
    # bob at 10, 30, 130, 140, 150: gaps 20, 100, 10, 10 -> median 15.
    assert (bob["median_seconds"], bob["timed_judgements"]) == (15.0, 4)
    # cy at 20, 60, 90, 95 in time order (the window orders by time, not by item).
    assert (cy["median_seconds"], cy["timed_judgements"]) == (30.0, 3)
    assert rows["dee"]["median_seconds"] is None
    # ann: a tie on item 2 and y = z first on the three-way item; one both-bad.
    assert (ann["tie_share"], ann["both_bad_share"]) == (0.4, 0.2)
    assert (cy["tie_share"], cy["both_bad_share"]) == (0.0, 0.5)
    # Majority of the two others, items 0-3: ann: a (agree), b/a none, tie/bb none, bb (agree).
    assert (ann["majority_agreement"], ann["majority_items"]) == (1.0, 2)
    # cy: others a, a (agree); b, b (disagree: a); tie, tie (disagree: both_bad); bb (agree).
    assert (cy["majority_agreement"], cy["majority_items"]) == (0.5, 4)
    assert rows["dee"]["majority_items"] == 0
    # Cohen, ann and bob, 5 shared items, always the same verdict (a, b, tie, bb, y+z):
    # po = 1 -> kappa 1. ann and cy on 4 items: a/a, b/a, tie/bb, bb/bb: po = 2/4;
    # ann a 1/4, b 1/4, tie 1/4, bb 1/4; cy a 2/4, bb 2/4: pe = 1/4*2/4 + 1/4*2/4 = 1/4;
    # kappa = (1/2 - 1/4) / (3/4) = 1/3.
    cohen = {(p["rater_a"], p["rater_b"]): p["kappa"] for p in body["cohen"]}
    assert set(cohen) == {("ann", "bob"), ("ann", "cy"), ("bob", "cy")}
    assert cohen["ann", "bob"] == {"value": 1.0, "items": 5, "note": None}
    assert cohen["ann", "cy"]["value"] == pytest.approx(1 / 3, abs=1e-4)
    assert cohen["ann", "cy"]["items"] == 4
    # Fleiss on the four 3-rater items; Krippendorff on all five shared items.
    assert (body["fleiss"]["items"], body["fleiss"]["raters_per_item"]) == (4, 3)
    assert isinstance(body["fleiss"]["value"], float)
    assert body["krippendorff"]["items"] == 5
    assert body["settings"]["blind"] == "any"


async def test_a_regenerated_answer_is_another_item(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await insert(
        app, [Item(["x", "y"], {"ann": ranks(1, 2), "bob": ranks(1, 2, regenerated=True)})]
    )
    body = (await client.get(URL)).json()
    assert body["judgements"] == 2 and body["shared_items"] == 0 and body["cohen"] == []


async def test_filters_select_the_judgements(client: httpx.AsyncClient, app: FastAPI) -> None:
    await insert(app, items())
    blind = (await client.get(URL, params={"blind": "only"})).json()
    assert blind["judgements"] == 14 and "dee" not in {r["rater"] for r in blind["raters"]}
    window = {"since": "2025-01-01T00:00:30Z", "until": "2025-01-01T00:02:00"}
    windowed = (await client.get(URL, params=window)).json()
    # At 30, 40, 60, 90, 95, 100: ann 40, 100; bob 30; cy 60, 90, 95.
    assert windowed["judgements"] == 6
    ann = next(r for r in windowed["raters"] if r["rater"] == "ann")
    # The gap before ann's judgement at 40 is to the one at 0, outside the window.
    assert (ann["median_seconds"], ann["timed_judgements"]) == (50.0, 2)
    assert (await client.get(URL, params={"blind": "sometimes"})).status_code == 422
    assert (await client.get(URL, params={"since": "yesterday"})).status_code == 422
    assert (await client.get(URL, params={"since": ""})).status_code == 200


async def test_no_judgements_is_empty_not_an_error(client: httpx.AsyncClient) -> None:
    body = (await client.get(URL)).json()
    assert (body["raters"], body["cohen"], body["judgements"]) == ([], [], 0)
    assert body["fleiss"]["value"] is None and body["krippendorff"]["value"] is None
    page = await client.get("/raters")
    assert page.status_code == 200
    assert "No judgements match these filters yet" in page.text


async def test_the_page_escapes_rater_names(client: httpx.AsyncClient, app: FastAPI) -> None:
    evil = '<script>alert("x")</script>'
    await insert(app, [
        Item(["x", "y"], {evil: ranks(1, 2, at=0), "bob": ranks(1, 2, at=5)}),
        Item(["x", "y"], {evil: ranks(1, 1, at=9), "bob": ranks(1, 1, at=12)}),
        Item(["x", "y"], {evil: ranks(1, 2, at=20)}),
    ])  # fmt: skip
    page = await client.get("/raters", params={"blind": "any", "since": ""})
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert page.text.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 2
    # Kappa 1 on two shared items; Fleiss and Krippendorff printed, none undefined.
    assert "<td>1.000</td><td>2</td>" in page.text
    assert "not enough data" not in page.text
    assert '<a href="/raters">Raters</a>' in page.text
    assert " style=" not in page.text


async def test_undefined_figures_say_not_enough_data(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await insert(app, [Item(["x", "y"], {"ann": ranks(1, 1), "bob": ranks(1, 1)})])
    body = (await client.get(URL)).json()
    assert body["cohen"][0]["kappa"]["value"] is None
    assert body["cohen"][0]["kappa"]["note"].startswith("not enough data")
    page = await client.get("/raters")
    assert page.text.count("not enough data</span>") == 3
