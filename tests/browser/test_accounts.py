"""Team mode in Chromium: an admin invites a rater, who signs in by the link, judges a blind
comparison and cannot open an export; the admin sees the leaderboard plot and downloads DPO."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from app.config import ModelsFile, Settings
from app.main import create_app
from playground_tools.fake_vllm import FakeServer
from tests.browser.helpers import Live, turn_ids, wait_final
from tests.support import ThreadedServer

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


@pytest.fixture
def team_live(
    settings: Settings, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> Iterator[Live]:
    """The app in team mode on a real port, with a first admin made by the CLI."""
    team = settings.model_copy(update={"auth": "team"})
    with (
        ThreadedServer(create_app(team, models)) as server,
        httpx.Client(base_url=server.url, timeout=10) as api,
    ):
        cli = Path(sys.executable).with_name("playground")
        env = os.environ | {"DATABASE_URL": settings.database_url,
                            "PLAYGROUND_DATA_DIR": str(settings.data_dir)}  # fmt: skip
        done = subprocess.run(
            [str(cli), "users", "create-admin", "ada"],
            input=PASSWORD + "\n", text=True, env=env, capture_output=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        yield Live(server.url, api, base_server, chat_server)


def sign_in(page: Page, live: Live, username: str) -> None:
    page.goto(live.url + "/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live.url + "/")


def test_admin_invites_a_rater_who_judges_and_cannot_export(
    team_live: Live, page: Page, browser: Browser
) -> None:
    live = team_live
    # Signed out, the pages send you to sign in.
    page.goto(live.url + "/")
    expect(page).to_have_url(live.url + "/login?next=/")
    sign_in(page, live, "ada")
    page.goto(live.url + "/admin/accounts")
    page.get_by_role("button", name="Make invite link").click()
    link = page.locator("code.invite-url").inner_text()
    assert "/invite/" in link

    rater_context = browser.new_context()
    try:
        rater = rater_context.new_page()
        rater.goto(link)
        rater.locator("input[name=username]").fill("rita")
        rater.locator("input[name=password]").fill(PASSWORD)
        rater.locator("input[name=password_again]").fill(PASSWORD)
        rater.get_by_role("button", name="Create account").click()
        rater.wait_for_url(live.url + "/")
        # A blind comparison (the leaderboard counts blind judgements by default).
        rater.locator("input[name=blind]").check()
        rater.locator("textarea[name=prompt]").first.fill("Say something")
        rater.get_by_role("button", name="Compare").click()
        rater.wait_for_url(f"{live.url}/c/*")
        tid = turn_ids(rater)[0]
        for slot in ("a", "b"):
            wait_final(rater, tid, slot)
        expect(rater.locator("input[name=rater]")).to_have_count(0)
        expect(rater.locator(".judging-as")).to_contain_text("rita")
        rater.get_by_role("button", name="A is better").click()
        expect(rater.locator("li.vote-record")).to_have_attribute("data-rater", "rita")
        # No export for a rater: a 403.
        response = rater.goto(live.url + "/api/v1/exports/dpo.jsonl")
        assert response is not None and response.status == 403
        response = rater.goto(live.url + "/leaderboard")
        assert response is not None and response.status == 403
        expect(rater.locator("div.flash-error")).to_contain_text("only an admin")
        # The invite link worked once.
        response = rater.goto(link)
        assert response is not None and response.status == 404
    finally:
        rater_context.close()

    page.goto(live.url + "/leaderboard")
    expect(page.locator("svg.board-plot")).to_be_visible()
    with page.expect_download() as info:
        page.locator('a[href^="/api/v1/exports/dpo.jsonl"]').first.click()
    path = info.value.path()
    text = Path(path).read_text(encoding="utf-8")
    assert '"chosen"' in text and "rita" in text
