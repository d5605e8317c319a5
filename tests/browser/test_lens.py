"""The token lens in headless Chromium: token view, token shift, prefix continuation, prompts."""

from __future__ import annotations

import math

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import ARTIFACTS, Live, start_comparison, turn_ids, wait_final

pytestmark = pytest.mark.browser

# Names of the SSE events htmx receives, recorded from the first page script on.
RECORD_DONE_EVENTS = """
window.__done = [];
document.addEventListener('htmx:sseBeforeMessage', (e) => window.__done.push(e.detail.type));
"""
# The CSS tooltip of an element: its ::after content while hovered or focused.
TIP = "el => getComputedStyle(el, '::after').content"
# The text a user copies when selecting the whole token list.
SELECTED_TEXT = """el => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  return selection.toString();
}"""


def test_token_lens_end_to_end(live: Live, page: Page, console_errors: list[str]) -> None:
    live.base.config.token_delay = live.chat.config.token_delay = 0
    live.chat.config.answer_words = 18
    conversation_id = start_comparison(page, live, "Tell me about the old town by the river.")
    [tid] = turn_ids(page)
    wait_final(page, tid, "a")
    wait_final(page, tid, "b")
    chat = live.conversation(conversation_id)["turns"][0]["b"]
    tokens = live.api.get(f"/api/v1/generations/{chat['id']}/tokens").json()
    column = page.locator(f"#gen-{tid}-b")

    # Token view: one span per token, coloured by probability, the answer copies as written.
    column.locator("details.token-view summary").click()
    token_spans = column.locator("details.token-view .tokens .tok")
    expect(token_spans).to_have_count(len(tokens))
    token_list = column.locator("details.token-view .tokens")
    assert token_list.evaluate(SELECTED_TEXT) == chat["text"]
    # Focus shows the tip (probability and alternatives); arrow keys move to the next token.
    first = token_spans.first
    first.focus()
    tip = first.evaluate(TIP)
    assert f"p = {100 * math.exp(tokens[0]['logprob']):.1f}%" in tip
    assert "top alternatives" in tip and tokens[0]["top"][1]["token"] in tip
    page.keyboard.press("ArrowRight")
    expect(token_spans.nth(1)).to_be_focused()
    assert tokens[1]["token"].strip() in token_spans.nth(1).evaluate(TIP)

    # Token shift: one click, the ratio and every token marked.
    column.get_by_role("button", name="Token shift").click()
    summary = column.locator(".token-shift .shift-summary")
    expect(summary).to_be_visible()
    analysis = live.api.get(f"/api/v1/generations/{chat['id']}/token-shift").json()
    assert analysis["counts"]["shifted"] >= 1  # the fake base ranks the chat opener low
    ratio = f"{analysis['shifted_ratio'] * 100:.1f}%"
    expect(column.locator(".shifted-ratio")).to_have_text(ratio)
    marked = column.locator(".token-shift .tokens .tok")
    expect(marked).to_have_count(analysis["total_tokens"])
    shifted = column.locator(".token-shift .tokens .tok.shift-shifted")
    expect(shifted).to_have_count(analysis["counts"]["shifted"])
    # Not colour alone: a shifted token is bold and underlined.
    style = shifted.first.evaluate(
        "el => [getComputedStyle(el).fontWeight, getComputedStyle(el).textDecorationLine]"
    )
    assert style == ["700", "underline"]
    column.locator(".shifted-list summary").click()
    expect(column.locator(".shifted-list tbody tr")).to_have_count(analysis["counts"]["shifted"])
    shifted.first.hover()
    assert "would say" in shifted.first.evaluate(TIP)
    page.screenshot(path=str(ARTIFACTS / "lens.png"), full_page=True)

    # Continue from a prefix: the base model writes on from the answer's first 3 tokens.
    column.locator(".prefix-form input[name=k]").fill("3")
    column.get_by_role("button", name="Let the base model continue").click()
    continuation = column.locator(".continuation")
    expect(continuation).to_have_attribute("data-status", "done")
    prefix = "".join(t["token"] for t in tokens[:3])
    expect(continuation.locator(".prefix-text")).to_have_text(prefix, use_inner_text=True)

    # The rendered prompt and its token count, asked of the chat server's tokenizer.
    column.locator("details.sent > summary").click()
    column.locator("details.rendered summary").click()
    expect(column.locator(".rendered-count")).to_have_text(str(chat["prompt_tokens"]))
    expect(column.locator(".rendered-text")).to_contain_text("<|assistant|>")

    # Reopened, the conversation shows the stored analysis and continuation at once.
    page.reload()
    expect(column.locator(".shifted-ratio")).to_have_text(ratio)
    expect(column.locator(".continuation")).to_have_count(1)
    assert console_errors == []


def test_lens_errors_show_where_the_user_acted(
    live: Live, page: Page, console_errors: list[str]
) -> None:
    # Slow enough that the chat column arrives by SSE: its lens must work there too.
    live.base.config.token_delay = 0
    live.chat.config.token_delay = 0.2
    live.chat.config.answer_words = 8
    page.add_init_script(RECORD_DONE_EVENTS)
    start_comparison(page, live, "Name a river.")
    [tid] = turn_ids(page)
    wait_final(page, tid, "b")
    assert "done-b" in page.evaluate("() => window.__done")
    column = page.locator(f"#gen-{tid}-b")
    # The base server fails: the message appears in the token-shift section, the form stays.
    live.base.config.fail_status = 500
    column.get_by_role("button", name="Token shift").click()
    error = column.locator(".token-shift .lens-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("base")
    live.base.config.fail_status = None
    column.get_by_role("button", name="Token shift").click()
    expect(column.locator(".shifted-ratio")).to_be_visible()
    expect(column.locator(".token-shift .lens-error")).to_have_count(0)
    # A k beyond the answer: refused in place.
    column.locator(".prefix-form input[name=k]").evaluate("el => el.removeAttribute('max')")
    column.locator(".prefix-form input[name=k]").fill("999")
    column.get_by_role("button", name="Let the base model continue").click()
    expect(column.locator(".prefix .lens-error")).to_contain_text("at most the answer")
    # htmx logs the 4xx/502 answers it swapped as errors; nothing else may be logged.
    assert [e for e in console_errors if "status of" not in e] == []
