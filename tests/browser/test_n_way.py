"""Three columns in a real browser: streaming, a ranking vote, and a blind arena's reveal."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from app.config import ModelConfig, ModelKind, ModelsFile
from playground_tools.fake_vllm import FakeServer
from tests.browser.helpers import Live, turn_ids, wait_final

pytestmark = pytest.mark.browser
NAMES = ("base", "chat", "tune")


@pytest.fixture
def models(base_server: FakeServer, chat_server: FakeServer) -> ModelsFile:
    """Base, chat, and a third chat model (a fine-tune, served by the chat fake)."""
    return ModelsFile(
        models=[
            ModelConfig(name="base", kind=ModelKind.BASE, url=base_server.base_url,
                        model="tiny-base"),
            ModelConfig(name="chat", kind=ModelKind.CHAT, url=chat_server.base_url,
                        model="tiny-chat"),
            ModelConfig(name="tune", kind=ModelKind.CHAT, url=chat_server.base_url,
                        model="tiny-chat"),
        ]
    )  # fmt: skip


def start(page: Page, live: Live, prompt: str, blind: bool = False) -> str:
    """Pick three models on the start page, maybe blind, and compare."""
    page.goto(live.url + "/")
    page.locator("select[name=model_c]").select_option("tune")
    if blind:
        page.get_by_label(re.compile("Blind arena")).check()
    page.locator("textarea[name=prompt]").first.fill(prompt)
    page.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(r"/c/[0-9a-f]+$"))
    return page.url.rsplit("/", 1)[1]


def test_three_columns_stream_and_a_ranking_is_saved(
    live: Live, page: Page, console_errors: list[str]
) -> None:
    cid = start(page, live, "Name a river")
    [tid] = turn_ids(page)
    columns = page.locator(f"#turn-{tid} article.column")
    expect(columns).to_have_count(3)
    for slot in "abc":
        wait_final(page, tid, slot)
    turn = live.conversation(cid)["turns"][0]
    for generation in turn["generations"]:
        text = page.locator(f"#gen-{tid}-{generation['slot']} .output .text").text_content()
        assert text == generation["text"]
    assert [c.locator(".model").text_content() for c in columns.all()] == list(NAMES)
    # The three columns sit side by side on a wide window.
    boxes = [c.bounding_box() for c in columns.all()]
    assert all(b is not None for b in boxes)
    assert len({round(b["y"]) for b in boxes if b}) == 1

    form = page.locator(f"#turn-foot-{tid} form.vote")
    form.locator("input[name=rater]").fill("Rita")
    form.locator("select[name=rank_a]").select_option("2")
    form.locator("select[name=rank_b]").select_option("2")
    form.locator("select[name=rank_c]").select_option("1")
    form.locator("select[name=score_c]").select_option("5")
    form.get_by_role("button", name="Save ranking").click()
    record = page.locator(f"#turn-foot-{tid} .vote-record")
    expect(record).to_contain_text("C > A = B")
    expect(record).to_contain_text("C 5")
    (judgement,) = live.conversation(cid)["turns"][0]["votes"]
    assert judgement["ranking"] == [["c"], ["a", "b"]] and judgement["scores"] == {"c": 5}
    assert console_errors == []


def test_a_narrow_screen_stacks_the_columns(live: Live, page: Page) -> None:
    page.set_viewport_size({"width": 420, "height": 900})
    start(page, live, "Stack us")
    [tid] = turn_ids(page)
    for slot in "abc":
        wait_final(page, tid, slot)
    boxes = [c.bounding_box() for c in page.locator(f"#turn-{tid} article.column").all()]
    ys = [round(b["y"]) for b in boxes if b]
    assert ys == sorted(ys) and len(set(ys)) == 3


def test_blind_arena_hides_names_until_the_vote_then_reveals_them_in_place(
    live: Live, page: Page, console_errors: list[str]
) -> None:
    cid = start(page, live, "Who wrote this?", blind=True)
    [tid] = turn_ids(page)
    for slot in "abc":
        wait_final(page, tid, slot)
    columns = page.locator(f"#turn-{tid} article.column")
    assert [c.locator(".model").text_content() for c in columns.all()] == [
        "Model 1",
        "Model 2",
        "Model 3",
    ]
    head = page.locator(".conversation-head").text_content() or ""
    assert not any(f"{name}" in head.split("base format")[0] for name in NAMES)
    # Nothing that tells the kind: no "what this model received", no lens, no kind badge.
    assert page.locator(f"#turn-{tid} details.sent").count() == 0
    assert page.locator(f"#turn-{tid} .lens").count() == 0
    assert page.locator(f"#turn-{tid} .badge").count() == 0

    form = page.locator(f"#turn-foot-{tid} form.vote")
    form.locator("input[name=rater]").fill("Blinda")
    form.get_by_role("button", name="All bad").click()
    expect(page.locator(f"#turn-foot-{tid} .saved")).to_contain_text("The names are shown now")
    revealed = page.locator(f"#turn-{tid} article.column .model")
    expect(revealed.first).not_to_have_text("Model 1")
    assert sorted(revealed.all_text_contents()) == sorted(NAMES)
    expect(page.locator(f"#turn-{tid} details.sent")).to_have_count(3)
    expect(page.locator(f"#turn-{tid} .lens")).to_have_count(3)
    # The order was the draw's, and it holds on reload (the browser remembers its rater).
    api = live.api.get(f"/api/v1/comparisons/{cid}", params={"rater": "Blinda"}).json()
    order = [model["name"] for model in api["models"]]
    assert revealed.all_text_contents() == order
    page.reload()
    expect(page.locator(f"#turn-{tid} article.column .model")).to_have_text(order)
    assert console_errors == []
