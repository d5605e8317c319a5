"""Helpers shared by the browser tests: the live app, starting a comparison, waiting for it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from playground_tools.fake_vllm import FakeServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# Slow enough that a turn streams for ~0.75 s, so partial text is observable.
TOKEN_DELAY = 0.03
ANSWER_WORDS = 25


@dataclass
class Live:
    """The app served over HTTP, an API client on it, and the two fake model servers."""

    url: str
    api: httpx.Client
    base: FakeServer
    chat: FakeServer

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        response = self.api.get(f"/api/v1/comparisons/{conversation_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data


def start_comparison(page: Page, live: Live, prompt: str, model_b: str | None = None) -> str:
    """Open /, submit a prompt; return the new conversation id once the URL is /c/{id}."""
    page.goto(live.url + "/")
    if model_b is not None:
        page.locator("select[name=model_b]").select_option(model_b)
    page.locator("textarea[name=prompt]").first.fill(prompt)
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(r"/c/[0-9a-f]+$"))
    match = re.search(r"/c/([0-9a-f]+)$", page.url)
    assert match
    return match.group(1)


def turn_ids(page: Page) -> list[int]:
    """The database ids of the turns on the page, in order."""
    ids = page.locator("section.turn").evaluate_all("els => els.map(e => e.id)")
    return [int(i.removeprefix("turn-")) for i in ids]


def wait_final(page: Page, turn_id: int, side: str, status: str = "done") -> None:
    expect(page.locator(f"#gen-{turn_id}-{side}")).to_have_attribute("data-status", status)
