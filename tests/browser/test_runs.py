"""Prompt sets, runs and the rating queue in a real browser: import a set by upload, watch a
run's progress update itself, and judge three items from the queue with the keyboard only."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from app.config import ModelConfig, ModelKind, ModelsFile, Settings
from app.main import create_app
from playground_tools.fake_vllm import FakeServer
from tests.browser.helpers import Live
from tests.integration.relay import Relay
from tests.support import ThreadedServer

SET_JSONL = "\n".join(
    f'{{"id": "k{i}", "prompt": "Name a colour, please ({i})", "tags": ["colours"]}}'
    for i in range(3)
)


@dataclass
class HeldLive:
    """The app whose model servers sit behind relays that hold every request until opened."""

    url: str
    api: httpx.Client
    base: Relay
    chat: Relay


def _port(server: FakeServer) -> int:
    port = urlsplit(server.base_url).port
    assert port is not None
    return port


@pytest.fixture
def held(
    settings: Settings, base_server: FakeServer, chat_server: FakeServer
) -> Iterator[HeldLive]:
    """A live app whose answers flow only when the test opens each model's relay."""
    with Relay(_port(base_server)) as base, Relay(_port(chat_server)) as chat:
        models = ModelsFile(
            models=[
                ModelConfig(name="base", kind=ModelKind.BASE, url=base.base_url, model="tiny-base"),
                ModelConfig(name="chat", kind=ModelKind.CHAT, url=chat.base_url, model="tiny-chat"),
            ]
        )
        with (
            ThreadedServer(create_app(settings, models)) as server,
            httpx.Client(base_url=server.url, timeout=10) as api,
        ):
            yield HeldLive(server.url, api, base, chat)


def import_set(page: Page, url: str, tmp_path: Path, name: str) -> int:
    """Upload a JSONL file on the sets page; the set's id once its page shows."""
    path = tmp_path / "colours.jsonl"
    path.write_text(SET_JSONL, encoding="utf-8")
    page.goto(url + "/prompt-sets")
    page.locator("input[name=name]").fill(name)
    page.locator("input[name=file]").set_input_files(str(path))
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r"/prompt-sets/\d+$"))
    match = re.search(r"/prompt-sets/(\d+)$", page.url)
    assert match
    return int(match.group(1))


def test_import_a_set_by_upload(page: Page, live: Live, tmp_path: Path) -> None:
    set_id = import_set(page, live.url, tmp_path, "colours")
    expect(page.locator(".items-table tbody tr")).to_have_count(3)
    expect(page.locator(".items-table")).to_contain_text("Name a colour, please (2)")
    items = live.api.get(f"/api/v1/prompt-sets/{set_id}/items").json()
    assert [i["id"] for i in items] == ["k0", "k1", "k2"]


def test_run_progress_updates_itself(page: Page, held: HeldLive, tmp_path: Path) -> None:
    import_set(page, held.url, tmp_path, "watched")
    for name in ("base", "chat"):
        page.locator(f"input[name=models][value={name}]").check()
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    progress = page.locator("#run-progress")
    expect(progress.locator(".run-status")).to_have_text("running")
    expect(progress.locator(".run-done")).to_have_text("0")
    # A mark on this very document: it survives fragment swaps, not a reload.
    page.evaluate("window.__sameDocument = true")
    held.base.open()
    expect(progress.locator(".run-done")).to_have_text("3")
    expect(progress.locator(".run-status")).to_have_text("running")
    assert page.evaluate("window.__sameDocument === true")
    held.chat.open()
    expect(page.locator("#run-progress .run-status")).to_have_text("done")
    expect(page.locator("#run-progress .run-done")).to_have_text("6")


def test_judge_three_items_with_the_keyboard(page: Page, live: Live, tmp_path: Path) -> None:
    set_id = import_set(page, live.url, tmp_path, "to-rate")
    body = {"prompt_set": set_id, "models": ["base", "chat"]}
    run = live.api.post("/api/v1/runs", json=body).json()
    page.goto(f"{live.url}/runs/{run['id']}")
    expect(page.locator("#run-progress .run-status")).to_have_text("done")
    page.locator(".run-task summary").click()
    page.get_by_role("button", name="Open the rating queue").click()
    page.wait_for_url(re.compile(rf"/runs/{run['id']}/queue$"))
    # Keyboard only from here: the name field has the focus.
    expect(page.locator("input[name=rater]")).to_be_focused()
    page.keyboard.type("kim")
    page.keyboard.press("Enter")
    expect(page.locator(".queue-mine")).to_have_text("0")
    seen = []
    for number, key in enumerate(("1", "2", "3"), start=1):
        expect(page.locator("#queue-judge")).to_have_attribute("data-keys", "ready")
        item = page.locator(".queue-item").get_attribute("data-item")
        assert item and item not in seen
        seen.append(item)
        page.keyboard.press(key)
        expect(page.locator(".queue-mine")).to_have_text(str(number))
    expect(page.locator(".queue-empty")).to_contain_text("Nothing left for you to rate")
    task = live.api.get(f"/api/v1/runs/{run['id']}/task").json()
    assert task["judgements"] == 3 and task["complete"] == 3
    assert task["raters"] == [{"rater": "kim", "judged": 3, "skipped": 0}]
    lines = live.api.get("/api/v1/exports/judgements.jsonl").text.splitlines()
    assert len(lines) == 3
    # Each key meant what the page says: 1 = the first answer shown wins, 2 = the second, 3 = tie.
    ranks_by_position = [
        [a["rank"] for a in sorted(json.loads(line)["answers"], key=lambda a: a["position"])]
        for line in lines
    ]
    assert sorted(ranks_by_position) == sorted([[1, 2], [2, 1], [1, 1]])
