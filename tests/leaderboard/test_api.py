"""GET /api/v1/leaderboard and GET /leaderboard over judgements inserted directly."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from fastapi import FastAPI

from tests.leaderboard.factory import START, Vote, insert

URL = "/api/v1/leaderboard"


def votes() -> list[Vote]:
    """x beats y mostly; a non-blind and another rater's votes say the opposite."""
    blind = [Vote(["x", "y"], [1, 2], at=START + timedelta(days=d % 3)) for d in range(30)]
    blind += [Vote(["y", "x"], [1, 2], at=START) for _ in range(6)]
    blind += [Vote(["x", "y", "z"], [1, 1, 2], at=START) for _ in range(6)]
    blind += [Vote(["y", "z"], [None, None], at=START) for _ in range(4)]
    other = [Vote(["x", "y"], [2, 1], rater="other", at=START) for _ in range(20)]
    open_votes = [Vote(["x", "y"], [2, 1], blind=False, at=START) for _ in range(40)]
    return blind + other + open_votes


async def test_the_board_has_the_documented_shape(client: httpx.AsyncClient, app: FastAPI) -> None:
    await insert(app, votes())
    response = await client.get(URL, params={"rater": "r"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"models", "win_rates", "pair_counts", "pairs", "settings"}
    assert [m["name"] for m in body["models"]] == ["x", "y", "z"]
    assert set(body["models"][0]) == {"name", "rating", "ci_low", "ci_high", "rank", "pairs"}
    # 30 + 6 pairs of x/y, 3 pairs from each of the 6 three-way votes, 4 both-bad y/z pairs.
    assert body["pairs"] == 36 + 18 + 4
    assert [m["pairs"] for m in body["models"]] == [48, 52, 16]
    # x against y: 30 wins of 42 plus 6 ties counted half.
    assert body["win_rates"][0][1] == round(33 / 42, 4)
    assert body["pair_counts"][0][1] == 42
    assert body["win_rates"][0][0] is None
    assert body["settings"]["both_bad"] == "tie" and body["settings"]["blind"] == "only"
    for m in body["models"]:
        assert m["ci_low"] <= m["rating"] <= m["ci_high"]
    again = await client.get(URL, params={"rater": "r"})
    assert again.json() == body


async def test_filters_select_the_judgements(client: httpx.AsyncClient, app: FastAPI) -> None:
    await insert(app, votes())
    blind_only = (await client.get(URL)).json()
    any_kind = (await client.get(URL, params={"blind": "any"})).json()
    # Blind only leaves out the 40 open votes; any counts them (and they favour y).
    assert blind_only["pairs"] == 58 + 20
    assert any_kind["pairs"] == 58 + 20 + 40
    assert next(m["name"] for m in any_kind["models"]) == "y"
    other = (await client.get(URL, params={"rater": "other"})).json()
    assert other["pairs"] == 20 and other["models"][0]["name"] == "y"
    window = {"rater": "r", "since": "2025-01-02T00:00:00Z", "until": "2025-01-03T00:00:00"}
    assert (await client.get(URL, params=window)).json()["pairs"] == 10
    excluded = (await client.get(URL, params={"rater": "r", "both_bad": "exclude"})).json()
    assert excluded["pairs"] == 54
    assert (await client.get(URL, params={"blind": "sometimes"})).status_code == 422
    assert (await client.get(URL, params={"since": "yesterday"})).status_code == 422


async def test_no_pairs_is_an_empty_board_and_a_clear_page(client: httpx.AsyncClient) -> None:
    body = (await client.get(URL)).json()
    assert (body["models"], body["win_rates"], body["pairs"]) == ([], [], 0)
    page = await client.get("/leaderboard")
    assert page.status_code == 200
    assert "No rated pairs match these filters yet" in page.text
    assert "<svg" not in page.text


async def test_the_page_draws_escaped_names_in_svg(client: httpx.AsyncClient, app: FastAPI) -> None:
    evil = '<script>alert("x")</script>'
    await insert(app, [Vote([evil, "y"], [1, 2]) for _ in range(5)] + [Vote(["y", evil], [1, 2])])
    page = await client.get("/leaderboard", params={"since": "", "rater": ""})
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert page.text.count("<svg") == 2
    assert len(re.findall(r"<circle ", page.text)) == 2
    # The heat map prints each percentage: 5 wins of 6 and 1 of 6.
    assert ">83%</text>" in page.text and ">17%</text>" in page.text
    assert 'href="/api/v1/exports/dpo.parquet?blind=only&amp;form=conversational"' in page.text
    assert " style=" not in page.text


async def test_every_download_in_the_menu_answers(client: httpx.AsyncClient, app: FastAPI) -> None:
    await insert(app, [Vote(["x", "y"], [1, 2]), Vote(["x", "y"], [2, 1], blind=False)])
    page = await client.get("/leaderboard", params={"rater": "r"})
    links = re.findall(r'href="(/api/v1/exports/(?:dpo|kto|reward)[^"]+)"', page.text)
    assert len(links) == 12
    for link in links:
        response = await client.get(link.replace("&amp;", "&"))
        assert response.status_code == 200, link
        assert "blind=only" in link and "rater=r" in link
        if link.startswith("/api/v1/exports/dpo.jsonl"):
            # The page's filters travel with the link: the open vote is left out.
            assert len(response.text.splitlines()) == 1
