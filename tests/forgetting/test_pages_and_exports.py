"""The report page, its link and anchors on the run page, and scores in the exports."""

from __future__ import annotations

import csv
import io
import json

import httpx

from app.config import ModelConfig, ModelKind, ModelsFile
from app.forgetting.report import choose_pair
from app.runs.models import Run
from playground_tools.fake_vllm import FakeServer
from tests.forgetting.helpers import ITEMS, finished_run, make_scored_set, script


async def test_report_page_lists_changes_linking_to_anchored_rows(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    script(base_server, chat_server, tuned_says="<script>alert(1)</script> Paris Berlin")
    await make_scored_set(client)
    run_id = await finished_run(client)
    run_page = (await client.get(f"/runs/{run_id}")).text
    assert f'href="/runs/{run_id}/report"' in run_page
    assert 'id="item-rome"' in run_page and "✓ right" in run_page and "✗ wrong" in run_page
    page = await client.get(f"/runs/{run_id}/report?original=base&tuned=chat")
    assert page.status_code == 200
    assert f'href="/runs/{run_id}?q=rome#item-rome"' in page.text
    assert "Forgotten (right before, wrong after) (3)" in page.text
    assert "Learned (wrong before, right after) (1)" in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "4 / 7" in page.text and "2 / 7" in page.text
    # Without a pair the page offers the choice.
    plain = (await client.get(f"/runs/{run_id}/report")).text
    assert "Choose the original and the tuned model" in plain
    assert (await client.get(f"/runs/{run_id}/report?original=base")).status_code == 422


async def test_blind_report_hides_names_until_revealed(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    script(base_server, chat_server)
    await make_scored_set(client)
    run_id = await finished_run(client, blind=True)
    hidden = (await client.get(f"/runs/{run_id}/report")).text
    assert "Model 1" in hidden and "<td>base</td>" not in hidden and "show names" in hidden
    shown = (await client.get(f"/runs/{run_id}/report?reveal=true")).text
    assert "<td>base</td>" in shown


async def test_report_csv(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    script(base_server, chat_server)
    await make_scored_set(client)
    run_id = await finished_run(client)
    response = await client.get(f"/api/v1/runs/{run_id}/report.csv?original=base&tuned=chat")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["row"], r["model"], r["role"]) for r in rows] == [
        ("model", "base", "original"),
        ("model", "chat", "tuned"),
        ("tuned - original", "chat - base", "difference"),
    ]
    assert rows[0]["correct"] == "4" and rows[0]["accuracy"] == "0.5714"
    assert rows[2]["accuracy"] == "-0.2857"
    assert (rows[2]["forgot"], rows[2]["learned"]) == ("3", "1")
    assert rows[2]["significantly_worse"] in ("true", "false")


async def test_results_exports_mark_each_answer(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    script(base_server, chat_server)
    await make_scored_set(client)
    run_id = await finished_run(client)
    text = (await client.get(f"/api/v1/runs/{run_id}/results.csv")).text
    rows = {r["item"]: r for r in csv.DictReader(io.StringIO(text))}
    assert (rows["rome"]["base correct"], rows["rome"]["chat correct"]) == ("1", "0")
    assert (rows["berlin"]["base correct"], rows["berlin"]["chat correct"]) == ("0", "1")
    assert rows["free"]["base correct"] == ""  # no reference
    lines = (await client.get(f"/api/v1/runs/{run_id}/results.jsonl")).text.splitlines()
    records = {r["item"]: r for r in map(json.loads, lines)}
    assert [a["correct"] for a in records["exact"]["answers"]] == [True, False]
    assert [a["correct"] for a in records["free"]["answers"]] == [None, None]
    assert len(records) == len(ITEMS)


def test_an_adapter_is_compared_with_its_base_by_default() -> None:
    registry = ModelsFile(
        models=[
            ModelConfig(name="chat", kind=ModelKind.CHAT, url="http://x/v1", model="c"),
            ModelConfig(name="narrow", kind=ModelKind.CHAT, adapter_of="chat", source="/a"),
            ModelConfig(name="base", kind=ModelKind.BASE, url="http://y/v1", model="b"),
        ]
    )
    run = Run(id=1, models=["narrow", "base", "chat"])
    pair = choose_pair(run, registry, None, None)
    assert pair is not None
    assert (pair.original, pair.tuned, pair.chosen_by) == ("chat", "narrow", "adapter")
    assert choose_pair(Run(id=2, models=["narrow", "base"]), registry, None, None) is None
    chosen = choose_pair(run, registry, "base", "chat")
    assert chosen is not None and chosen.chosen_by == "request"
