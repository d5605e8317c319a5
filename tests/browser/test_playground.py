"""Headless-Chromium tests of the playground pages against the app served over real HTTP."""

from __future__ import annotations

import csv
import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from app.config import ModelsFile
from tests.browser.helpers import (
    ANSWER_WORDS,
    ARTIFACTS,
    Live,
    start_comparison,
    turn_ids,
    wait_final,
)

pytestmark = pytest.mark.browser

FINAL_STATUSES = {"done", "error", "cancelled", "interrupted"}
# No whitespace, so the fake sends it as one token and it reaches the page in one SSE delta
# (split across deltas, a tag would be cut in half and prove nothing).
PAYLOAD = '<img/src="x"/onerror="window.__pwned=1"><script>window.__pwned=2</script>'

# Records, per column, each distinct text shown while the column is still streaming (its
# output is aria-busy); resolves once every requested column has shown two growing texts.
WATCH_STREAMING = """([tid, sides]) => {
  const seen = (window.__seen = window.__seen || {});
  for (const s of sides) {
    const col = document.getElementById(`gen-${tid}-${s}`);
    if (!col || !col.querySelector('.output[aria-busy="true"]')) continue;
    const text = col.querySelector('.output .text').textContent;
    const texts = (seen[`${tid}-${s}`] = seen[`${tid}-${s}`] || []);
    if (text && !texts.some(x => x.text === text)) texts.push({text, status: col.dataset.status});
  }
  return sides.every(s => (seen[`${tid}-${s}`] || []).length >= 2) ? seen : false;
}"""
# Every SSE message htmx receives, and every <img>/<script> element ever added inside <main>
# (the page's own scripts live in <head>); installed before any page script runs.
RECORD_SSE_AND_ELEMENTS = """
window.__sse = [];
window.__injected = [];
document.addEventListener('htmx:sseBeforeMessage', (e) => {
  window.__sse.push({type: e.detail.type, data: e.detail.data});
});
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) {
    if (n.nodeType !== 1) continue;
    for (const e of [n, ...n.querySelectorAll('img, script')]) {
      if (e.matches('img, script') && e.closest('main')) window.__injected.push(e.outerHTML);
    }
  }
}).observe(document, {childList: true, subtree: true});
"""


def watch_streaming(page: Page, turn_id: int, sides: tuple[str, ...] = ("a", "b")) -> Any:
    """Wait until each column of the turn has shown two growing partial texts while streaming."""
    handle = page.wait_for_function(WATCH_STREAMING, arg=[turn_id, list(sides)], polling=10)
    return handle.json_value()


def assert_streamed_into(seen: list[dict[str, str]], final: str) -> None:
    """Text shown mid-stream only ever grew into the final answer: no gaps, no repeats."""
    assert seen
    for shown in seen:
        assert shown["status"] not in FINAL_STATUSES
        assert final.startswith(shown["text"]), (shown, final)


def column_text(page: Page, turn_id: int, side: str) -> str:
    return page.locator(f"#gen-{turn_id}-{side} .output .text").text_content() or ""


def test_main_flow_streams_votes_changes_vote_and_downloads_csv(
    live: Live, page: Page, console_errors: list[str]
) -> None:
    prompt = "The capital of France is"
    conversation_id = start_comparison(page, live, prompt)
    [tid] = turn_ids(page)

    # Both columns grow while the turn is still streaming.
    seen = watch_streaming(page, tid)

    # Both finish; the vote form arrives with the turn-done event.
    vote_form = page.locator(f"#turn-foot-{tid} form.vote")
    expect(vote_form).to_be_visible()
    wait_final(page, tid, "a")
    wait_final(page, tid, "b")
    assert page.locator(f"#turn-{tid} .cursor").count() == 0

    turn = live.conversation(conversation_id)["turns"][0]
    for side in ("a", "b"):
        final = column_text(page, tid, side)
        assert final == turn[side]["text"]
        assert turn[side]["status"] == "done"
        assert_streamed_into(seen[f"{tid}-{side}"], final)

    # What each model received: raw text for the base column, messages for the chat column.
    base_body = live.base.requests[-1]["body"]
    chat_body = live.chat.requests[-1]["body"]
    col_a, col_b = page.locator(f"#gen-{tid}-a"), page.locator(f"#gen-{tid}-b")
    col_a.locator("details.sent > summary").click()
    raw = col_a.locator("details.sent .sent-text")
    expect(raw).to_be_visible()
    assert raw.text_content() == base_body["prompt"] == turn["a"]["prompt_text"] == prompt
    col_b.locator("details.sent > summary").click()
    messages = col_b.locator("details.sent .message")
    expect(messages.first).to_be_visible()
    shown = [
        {
            "role": m.locator(".role").text_content(),
            "content": m.locator(".raw").text_content(),
        }
        for m in messages.all()
    ]
    assert shown == chat_body["messages"] == turn["b"]["messages"]
    assert shown == [{"role": "user", "content": prompt}]
    assert col_b.locator(".sent-text").count() == 0

    # Vote A with a score.
    rater = "Ada Lovelace"
    vote_form.locator("input[name=rater]").fill(rater)
    vote_form.locator("select[name=score_a]").select_option("4")
    vote_form.get_by_role("button", name="A is better").click()
    record = page.locator(f"#turn-foot-{tid} .vote-record")
    expect(record).to_have_count(1)
    expect(record).to_contain_text(rater)
    expect(record).to_contain_text("A is better")
    expect(page.locator(f"#turn-foot-{tid} .saved")).to_contain_text(rater)
    votes = live.conversation(conversation_id)["turns"][0]["votes"]
    assert [(v["rater"], v["winner"], v["score_a"]) for v in votes] == [(rater, "a", 4)]

    # Reload: the rater name comes back from localStorage; change the vote to B.
    page.reload()
    rater_input = page.locator(f"#turn-foot-{tid} form.vote input[name=rater]")
    expect(rater_input).to_have_value(rater)
    page.locator(f"#turn-foot-{tid} form.vote").get_by_role("button", name="B is better").click()
    expect(record).to_have_count(1)
    expect(record).to_contain_text("B is better")
    votes = live.conversation(conversation_id)["turns"][0]["votes"]
    assert [(v["rater"], v["winner"]) for v in votes] == [(rater, "b")]

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-main.png"), full_page=True)

    # The CSV download holds that one vote with both answers as stored.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download ratings (CSV)").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    [row] = rows
    assert row["conversation_id"] == conversation_id
    assert row["rater"] == rater
    assert row["winner"] == "b"
    assert row["prompt"] == prompt
    assert row["response_a"] == turn["a"]["text"]
    assert row["response_b"] == turn["b"]["text"]
    assert console_errors == []


def test_follow_up_streams_a_second_turn_and_closes_voting_on_the_first(
    live: Live, page: Page, console_errors: list[str]
) -> None:
    first_prompt = "Once upon a time"
    conversation_id = start_comparison(page, live, first_prompt)
    [first] = turn_ids(page)
    first_form = page.locator(f"#turn-foot-{first} form.vote")
    first_form.locator("input[name=rater]").fill("carol")
    first_form.get_by_role("button", name="Tie").click()
    expect(page.locator(f"#turn-foot-{first} .vote-record")).to_contain_text("tie")

    follow_up = page.locator("section.follow-up textarea[name=prompt]")
    follow_up.fill("And then what happened?")
    page.get_by_role("button", name="Send to both").click()

    turns = page.locator("section.turn")
    expect(turns).to_have_count(2)
    second = turn_ids(page)[1]
    assert second != first
    expect(page.locator(f"#turn-{second} .turn-head .prompt")).to_have_text(
        "And then what happened?"
    )
    seen = watch_streaming(page, second)

    foot = page.locator(f"#turn-foot-{first}")
    expect(foot).to_contain_text("Voting on this turn closed")
    expect(foot.locator("form.vote")).to_have_count(0)
    expect(foot.locator(".vote-record")).to_contain_text("carol")
    expect(follow_up).to_have_value("")

    # The new turn's vote form arrives over SSE, with the remembered rater name filled in.
    second_form = page.locator(f"#turn-foot-{second} form.vote")
    expect(second_form).to_be_visible()
    expect(second_form.locator("input[name=rater]")).to_have_value("carol")
    conversation = live.conversation(conversation_id)
    assert [t["prompt"] for t in conversation["turns"]] == [
        first_prompt,
        "And then what happened?",
    ]
    turn1, turn2 = conversation["turns"]
    for side in ("a", "b"):
        assert column_text(page, second, side) == turn2[side]["text"]
        assert_streamed_into(seen[f"{second}-{side}"], turn2[side]["text"])
    # The chat model saw its own earlier answer, and the page shows what it saw.
    expected_messages = [
        {"role": "user", "content": first_prompt},
        {"role": "assistant", "content": turn1["b"]["text"]},
        {"role": "user", "content": "And then what happened?"},
    ]
    assert live.chat.requests[-1]["body"]["messages"] == expected_messages
    shown = page.locator(f"#gen-{second}-b details.sent .message .raw").all_text_contents()
    assert shown == [m["content"] for m in expected_messages]
    assert console_errors == []


def test_follow_up_refused_while_streaming_shows_why_and_keeps_the_typed_prompt(
    live: Live, page: Page, console_errors: list[str]
) -> None:
    for fake in (live.base, live.chat):
        fake.config.token_delay = 0.2
    start_comparison(page, live, "Tell me everything")
    [tid] = turn_ids(page)
    expect(page.locator(f"#turn-foot-{tid} button.stop")).to_be_visible()

    follow_up = page.locator("section.follow-up textarea[name=prompt]")
    follow_up.fill("A question I typed with care")
    with page.expect_response(lambda r: r.url.endswith("/turns")) as response_info:
        page.get_by_role("button", name="Send to both").click()
    assert response_info.value.status == 409
    expect(page.locator("#flash .flash-error")).to_contain_text("complete")
    expect(page.locator("section.turn")).to_have_count(1)
    # The refused follow-up is still there to send again once the answers are in.
    expect(follow_up).to_have_value("A question I typed with care")
    assert all("status of 409" in e for e in console_errors), console_errors


def test_reload_mid_stream_resumes_without_repeats_and_stop_keeps_partial_text(
    live: Live, page: Page, console_errors: list[str]
) -> None:
    for fake in (live.base, live.chat):
        fake.config.token_delay = 0.2
    conversation_id = start_comparison(page, live, "Write a long story")
    [tid] = turn_ids(page)
    for side in ("a", "b"):
        expect(page.locator(f"#gen-{tid}-{side} .output .text")).not_to_be_empty()

    # A reload mid-stream draws the text so far and streams only what follows it.
    page.reload()
    before = {side: column_text(page, tid, side) for side in ("a", "b")}
    seen = watch_streaming(page, tid)

    page.locator(f"#turn-foot-{tid}").get_by_role("button", name="Stop").click()
    wait_final(page, tid, "a", "cancelled")
    wait_final(page, tid, "b", "cancelled")
    expect(page.locator(f"#turn-foot-{tid} button.stop")).to_have_count(0)
    assert page.locator(f"#turn-{tid} .cursor").count() == 0
    assert page.locator(f"#turn-{tid} .output[aria-busy]").count() == 0

    turn = live.conversation(conversation_id)["turns"][0]
    for side in ("a", "b"):
        generation = turn[side]
        assert generation["status"] == "cancelled"
        assert generation["finish_reason"] == "cancelled"
        assert generation["text"], "partial text was lost"
        assert column_text(page, tid, side) == generation["text"]
        assert generation["text"].startswith(before[side])
        assert_streamed_into(seen[f"{tid}-{side}"], generation["text"])
        expect(page.locator(f"#gen-{tid}-{side} .finish")).to_have_text("cancelled")
    # Stopped long before the ~5 s a full answer takes at this pace.
    assert len(turn["a"]["text"].split()) < ANSWER_WORDS
    assert console_errors == []


def test_model_output_and_prompt_are_escaped_not_executed(
    live: Live, page: Page, console_errors: list[str]
) -> None:
    for fake in (live.base, live.chat):
        fake.config.inject_text = PAYLOAD
        fake.config.answer_words = 5
        # Hold the first token until the page is up, so the payload arrives as SSE deltas.
        fake.config.first_token_delay = 1.0
    page.add_init_script(RECORD_SSE_AND_ELEMENTS)
    conversation_id = start_comparison(page, live, PAYLOAD)
    [tid] = turn_ids(page)
    expect(page.locator(f"#turn-foot-{tid} form.vote")).to_be_visible()
    wait_final(page, tid, "a")
    wait_final(page, tid, "b")

    messages = page.evaluate("() => window.__sse || []")
    for side in ("a", "b"):
        deltas = "".join(m["data"] for m in messages if m["type"] == f"delta-{side}")
        assert "script" in deltas, f"the payload did not stream to column {side}"
        assert "&lt;script&gt;" in deltas, "the payload was streamed unescaped"
    assert page.evaluate("() => window.__injected") == []
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("main img, main script").count() == 0
    turn = live.conversation(conversation_id)["turns"][0]
    for side in ("a", "b"):
        text = column_text(page, tid, side)
        assert "<script>" in text
        assert text == turn[side]["text"]
        assert text.startswith(PAYLOAD)
    expect(page.locator(f"#turn-{tid} .turn-head .prompt")).to_have_text(PAYLOAD)
    # Not even a CSP report: nothing was ever parsed as markup.
    assert console_errors == []


def test_one_model_down_shows_its_error_while_the_other_completes_and_voting_works(
    live: Live, page: Page, console_errors: list[str], models: ModelsFile
) -> None:
    down = models.get("down")
    assert down is not None
    conversation_id = start_comparison(page, live, "Hello there", model_b=down.name)
    [tid] = turn_ids(page)

    wait_final(page, tid, "b", "error")
    error = page.locator(f"#gen-{tid}-b .error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(down.name)
    expect(error).to_contain_text(re.compile("connect", re.IGNORECASE))
    wait_final(page, tid, "a")

    vote_form = page.locator(f"#turn-foot-{tid} form.vote")
    expect(vote_form).to_be_visible()
    vote_form.locator("input[name=rater]").fill("bob")
    vote_form.get_by_role("button", name="A is better").click()
    expect(page.locator(f"#turn-foot-{tid} .vote-record")).to_contain_text("A is better")

    turn = live.conversation(conversation_id)["turns"][0]
    assert turn["a"]["status"] == "done"
    assert column_text(page, tid, "a") == turn["a"]["text"] != ""
    assert turn["b"]["status"] == "error"
    assert error.text_content() == turn["b"]["error"]
    assert [(v["rater"], v["winner"]) for v in turn["votes"]] == [("bob", "a")]
    assert console_errors == []


def test_invalid_input_shows_a_flash_message_and_stays_on_the_page(
    live: Live, page: Page, console_errors: list[str]
) -> None:
    page.goto(live.url + "/")
    prompt = page.locator("textarea[name=prompt]").first
    compare = page.get_by_role("button", name="Compare")

    # An empty prompt never leaves the browser: the field is required.
    compare.click()
    assert prompt.evaluate("el => el.validity.valueMissing") is True

    # A blank prompt passes `required`; the server refuses it readably.
    prompt.fill("   ")
    compare.click()
    flash = page.locator("#flash .flash-error")
    expect(flash).to_be_visible()
    expect(flash).to_contain_text("empty")

    # Temperature out of range (the browser's max removed first).
    prompt.fill("Tell me a joke")
    page.locator("details.settings-box summary").click()
    temperature = page.locator("input[name=temperature]")
    temperature.evaluate("el => el.removeAttribute('max')")
    temperature.fill("5")
    compare.click()
    expect(flash).to_contain_text("temperature")
    expect(flash).to_contain_text("2")
    expect(flash).not_to_contain_text("empty")

    assert page.url == live.url + "/"
    assert live.base.requests == [] and live.chat.requests == []
    assert "No conversations yet" in live.api.get("/history").text
    # Only the two refused submissions are logged (Chromium reports every 4xx load).
    assert len(console_errors) == 2
    assert all("status of 422" in e for e in console_errors), console_errors
