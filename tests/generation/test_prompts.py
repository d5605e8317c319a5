"""What each kind of model is sent: raw text or a transcript for base models, messages for chat."""

from __future__ import annotations

from pathlib import Path

from app.generation.prompts import (
    BaseFormat,
    Exchange,
    render_base_prompt,
    render_chat_messages,
)

PROMPT = "The capital of France is"
SYSTEM = "You are a terse geography tutor."
HISTORY = [
    Exchange("Name a river.", " The Loire, which runs west."),
    Exchange("And a mountain?", "  Mont Blanc.  "),
]


def test_raw_without_system_or_history_is_exactly_the_prompt() -> None:
    rendered = render_base_prompt(BaseFormat.RAW, PROMPT, [], None)
    assert rendered.text == PROMPT
    assert rendered.extra_stop == []


def test_raw_keeps_the_prompt_byte_for_byte_including_whitespace() -> None:
    prompt = "  def add(a, b):\n    return"
    assert render_base_prompt(BaseFormat.RAW, prompt, [], None).text == prompt


def test_raw_with_system_puts_it_first_and_ends_with_the_prompt() -> None:
    rendered = render_base_prompt(BaseFormat.RAW, PROMPT, [], SYSTEM)
    assert rendered.text.startswith(SYSTEM)
    assert rendered.text.endswith(PROMPT)
    # The system text is separated from the document, not glued onto it.
    between = rendered.text[len(SYSTEM) : -len(PROMPT)]
    assert between.strip() == "" and "\n" in between
    assert rendered.extra_stop == []


def test_raw_with_history_continues_the_same_document_with_its_own_answers() -> None:
    rendered = render_base_prompt(BaseFormat.RAW, PROMPT, HISTORY, None)
    text = rendered.text
    # Each earlier answer follows its prompt directly, exactly as the model produced it.
    first = HISTORY[0].prompt + HISTORY[0].answer
    second = HISTORY[1].prompt + HISTORY[1].answer
    assert text.startswith(first)
    assert text.index(first) < text.index(second) < text.rindex(PROMPT)
    assert text.endswith(PROMPT)
    assert "User:" not in text and "Assistant:" not in text
    assert rendered.extra_stop == []


def test_raw_with_system_and_history_orders_system_history_prompt() -> None:
    text = render_base_prompt(BaseFormat.RAW, PROMPT, HISTORY, SYSTEM).text
    assert text.startswith(SYSTEM)
    assert text.index(SYSTEM) < text.index(HISTORY[0].prompt) < text.index(HISTORY[1].prompt)
    assert text.endswith(PROMPT)


def test_transcript_without_history_ends_where_the_assistant_speaks() -> None:
    rendered = render_base_prompt(BaseFormat.TRANSCRIPT, PROMPT, [], None)
    assert rendered.text == f"User: {PROMPT}\nAssistant:"
    # Otherwise the base model goes on to write the user's next line itself.
    assert rendered.extra_stop == ["\nUser:"]


def test_transcript_with_system_and_history_writes_each_exchange_as_lines() -> None:
    rendered = render_base_prompt(BaseFormat.TRANSCRIPT, PROMPT, HISTORY, SYSTEM)
    assert rendered.text == (
        f"{SYSTEM}\n\n"
        "User: Name a river.\n"
        "Assistant: The Loire, which runs west.\n"
        "User: And a mountain?\n"
        "Assistant: Mont Blanc.\n"
        f"User: {PROMPT}\n"
        "Assistant:"
    )
    assert rendered.extra_stop == ["\nUser:"]


def test_transcript_with_history_but_no_system_starts_with_the_first_user_line() -> None:
    text = render_base_prompt(BaseFormat.TRANSCRIPT, PROMPT, HISTORY, None).text
    assert text.startswith("User: Name a river.\nAssistant: The Loire")
    assert text.endswith(f"User: {PROMPT}\nAssistant:")


def test_empty_system_is_treated_as_none() -> None:
    for fmt in BaseFormat:
        with_empty = render_base_prompt(fmt, PROMPT, HISTORY, "")
        assert with_empty == render_base_prompt(fmt, PROMPT, HISTORY, None)
    assert render_chat_messages(PROMPT, [], "") == [{"role": "user", "content": PROMPT}]


def test_chat_messages_without_system_or_history_is_one_user_message() -> None:
    assert render_chat_messages(PROMPT, [], None) == [{"role": "user", "content": PROMPT}]


def test_chat_messages_put_system_first_then_alternate_user_and_own_answers() -> None:
    messages = render_chat_messages(PROMPT, HISTORY, SYSTEM)
    assert messages == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": HISTORY[0].prompt},
        {"role": "assistant", "content": HISTORY[0].answer},
        {"role": "user", "content": HISTORY[1].prompt},
        {"role": "assistant", "content": HISTORY[1].answer},
        {"role": "user", "content": PROMPT},
    ]


def test_chat_messages_keep_content_verbatim() -> None:
    prompt = "  <b>bold</b>\n\nUser: not a label  "
    messages = render_chat_messages(prompt, [], None)
    assert messages[-1]["content"] == prompt


def test_urial_puts_preamble_and_examples_before_the_conversation(tmp_path: Path) -> None:
    fmt = tmp_path / "mine.toml"
    fmt.write_text(
        'user_marker = "## Q"\nassistant_marker = "## A"\nstop = ["\\n## Q"]\n'
        'preamble = "Helpful answers follow."\n'
        '[[examples]]\nquery = "What colour is the sky?"\nanswer = "Blue, on a clear day."\n'
    )
    rendered = render_base_prompt(BaseFormat.URIAL, PROMPT, HISTORY[:1], SYSTEM, fmt)
    assert rendered.text == (
        "Helpful answers follow.\n\n"
        f"{SYSTEM}\n\n"
        "## Q\nWhat colour is the sky?\n\n## A\nBlue, on a clear day.\n\n"
        "## Q\nName a river.\n\n## A\nThe Loire, which runs west.\n\n"
        f"## Q\n{PROMPT}\n\n## A\n"
    )
    assert rendered.extra_stop == ["\n## Q"]


def test_urial_uses_the_shipped_examples_by_default() -> None:
    rendered = render_base_prompt(BaseFormat.URIAL, PROMPT, [], None)
    assert rendered.text.endswith(f"# User\n{PROMPT}\n\n# Assistant\n")
    assert rendered.text.count("# User\n") > 1  # the examples come first
    assert rendered.extra_stop == ["\n# User"]
