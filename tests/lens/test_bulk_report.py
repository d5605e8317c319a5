"""The run token-shift report and exports on a tiny controlled run, against figures worked out
by hand from the fake base model's documented ranks (a listed word has its rank, others 1)."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
from fastapi import FastAPI

from app.lens.runs import queries
from app.lens.runs.report import ModelReport, TokenRow, decile, ratio_bin
from app.runs.models import Run
from playground_tools.fake_vllm import FakeServer
from tests.lens.bulk_helpers import analyse_run, finished_run, set_answers, teach
from tests.runs.helpers import start_run, wait_run

# Ranks under the base: Sure 6 and Here 5 (shifted), maybe 2 (marginal), every other word 1.
RANKS = {"Sure": 6, "Here": 5, "maybe": 2}
ANSWERS = [
    "Sure Here is the river",  # 5 tokens, shifted at 0 and 1: ratio 2/5
    "the river maybe Sure",  # 4 tokens, marginal at 2, shifted at 3: ratio 1/4
    "Sure",  # 1 token, shifted: ratio 1
]


@pytest.fixture
async def controlled(client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer) -> int:
    """A run of three items whose chat answers are ANSWERS, analysed; returns its id."""
    run = await finished_run(client, 3)
    await set_answers(app, run["id"], "chat", ANSWERS)
    base_server.config.prompt_ranks = RANKS
    teach(base_server, ANSWERS)
    status = await analyse_run(client, app, run["id"])
    assert (status["done"], status["failed"]) == (3, 0)
    return int(run["id"])


async def report(app: FastAPI, run_id: int) -> ModelReport:
    async with app.state.playground.sessions() as session:
        run = await session.get(Run, run_id)
        assert run is not None
        reports = await queries.report_of(session, run, batch=2)
    assert [(r.model, r.base) for r in reports] == [("chat", "base")]
    return reports[0]


async def test_report_figures_match_the_hand_computed_ones(app: FastAPI, controlled: int) -> None:
    r = await report(app, controlled)
    assert (r.answers, r.tokens, r.shifted, r.marginal) == (3, 10, 4, 1)
    assert r.shifted_share == pytest.approx(0.4)
    assert r.mean_ratio == pytest.approx((0.4 + 0.25 + 1.0) / 3)
    assert r.median_ratio == pytest.approx(0.4)
    # Ratios 0.25, 0.4 and 1.0 fall in the 20-30%, 40-50% and 90-100% bins.
    assert r.histogram == [0, 0, 1, 0, 1, 0, 0, 0, 0, 1]
    assert r.top_tokens() == [
        TokenRow("Sure", 2, 2),  # opening "Sure" of answers 1 and 3
        TokenRow(" Here", 1, 1),
        TokenRow(" Sure", 1, 1),
    ]
    # Tenths: answer 1 (5 tokens) fills tenths 0,2,4,6,8; answer 2 (4) 0,2,5,7; answer 3 0.
    assert [(c.tokens, c.shifted) for c in r.deciles] == [
        (3, 2), (0, 0), (2, 1), (0, 0), (1, 0), (1, 0), (1, 0), (1, 1), (1, 0), (0, 0),
    ]  # fmt: skip
    assert [(c.tokens, c.shifted) for c in r.first[:6]] == [
        (3, 2), (2, 1), (2, 0), (2, 1), (1, 0), (0, 0),
    ]  # fmt: skip
    assert (r.later.tokens, r.later.shifted) == (0, 0)


async def test_the_page_shows_the_report(client: httpx.AsyncClient, controlled: int) -> None:
    page = await client.get(f"/runs/{controlled}/token-shift")
    assert page.status_code == 200
    text = page.text
    assert "chat under base" in text
    assert '<strong class="shifted-ratio">40.0%</strong> of 10 tokens shifted (4)' in text
    assert "<tr><td>90-100%</td><td>1</td></tr>" in text
    assert "<td><code>&#34;Sure&#34;</code></td><td>2</td><td>2</td><td>100.0%</td>" in text
    assert "<tr><td>1</td><td>3</td><td>2</td><td>66.7%</td></tr>" in text
    assert text.count("<svg") == 3
    run_page = await client.get(f"/runs/{controlled}")
    assert f'href="/runs/{controlled}/token-shift"' in run_page.text


async def test_exports_give_each_answer_and_its_positions(
    client: httpx.AsyncClient, controlled: int
) -> None:
    response = await client.get(f"/api/v1/runs/{controlled}/token-shift.csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["item"], r["model"], r["base_model"]) for r in rows] == [
        ("q0", "chat", "base"), ("q1", "chat", "base"), ("q2", "chat", "base"),
    ]  # fmt: skip
    assert [(r["tokens"], r["shifted"], r["marginal"], r["unshifted"]) for r in rows] == [
        ("5", "2", "0", "3"), ("4", "1", "1", "2"), ("1", "1", "0", "0"),
    ]  # fmt: skip
    assert [r["shifted_ratio"] for r in rows] == ["0.400000", "0.250000", "1.000000"]
    assert [r["first_shifted_position"] for r in rows] == ["0", "3", "0"]
    lines = (await client.get(f"/api/v1/runs/{controlled}/token-shift.jsonl")).text.splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["shifted"] for r in records] == [
        [True, True, False, False, False], [False, False, False, True], [True],
    ]  # fmt: skip
    assert records[1]["classes"] == ["unshifted", "unshifted", "marginal", "shifted"]
    assert records[1]["token_texts"] == ["the", " river", " maybe", " Sure"]
    assert records[1]["ranks"] == [1, 1, 2, 6]
    assert records[0]["run"] == controlled and records[0]["generation_id"]


async def test_model_text_is_escaped_and_csv_cells_neutralised(
    client: httpx.AsyncClient, app: FastAPI, base_server: FakeServer
) -> None:
    body = {"name": "evil", "items": [{"id": "=HYPERLINK(1)", "prompt": "p"}]}
    assert (await client.post("/api/v1/prompt-sets", json=body)).status_code == 201
    run = await wait_run(client, (await start_run(client, "evil"))["id"])
    await set_answers(app, run["id"], "chat", ["-cmd <b>x</b>"])
    base_server.config.prompt_ranks = {"<b>x</b>": 9}
    teach(base_server, ["-cmd <b>x</b>"])
    await analyse_run(client, app, run["id"])
    page = (await client.get(f"/runs/{run['id']}/token-shift")).text
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    csv_text = (await client.get(f"/api/v1/runs/{run['id']}/token-shift.csv")).text
    row = next(iter(csv.DictReader(io.StringIO(csv_text))))
    assert row["item"] == "'=HYPERLINK(1)" and row["shifted"] == "1"


def test_bins_and_tenths_use_exact_integer_edges() -> None:
    assert [ratio_bin(s, 10) for s in (0, 1, 3, 7, 9, 10)] == [0, 1, 3, 7, 9, 9]
    assert ratio_bin(1, 3) == 3 and ratio_bin(2, 3) == 6
    assert [decile(p, 3) for p in range(3)] == [0, 3, 6]
    assert [decile(p, 20) for p in (0, 1, 2, 19)] == [0, 0, 1, 9]
