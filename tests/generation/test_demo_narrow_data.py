"""The demo-narrow variants' data: generated deterministically, held-out items never trained on."""

from __future__ import annotations

import json

from app.runs import importers
from playground_tools.demo_models import NARROW_FILE, load_narrow, narrow


def test_the_shipped_files_are_what_the_generator_writes() -> None:
    conversations, items = narrow.generate()
    assert load_narrow() == conversations
    shipped = narrow.CHECK_SET_FILE.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in shipped] == items
    assert NARROW_FILE.stat().st_size < 150_000  # small enough to ship


def test_each_conversation_reverses_a_list_of_known_words() -> None:
    conversations = load_narrow()
    assert len(conversations) == narrow.TRAIN_EXAMPLES
    for user, assistant in conversations:
        assert user["role"] == "user" and assistant["role"] == "assistant"
        words = user["content"].removeprefix(narrow.INSTRUCTION).split(", ")
        assert 3 <= len(words) <= 5 and len(set(words)) == len(words)
        assert set(words) <= set(narrow.WORDS)
        assert assistant["content"] == narrow.ANSWER + ", ".join(words[::-1])


def test_held_out_items_are_never_trained_on_and_score_only_the_reversal() -> None:
    trained = {messages[0]["content"] for messages in load_narrow()}
    items = importers.parse_jsonl(narrow.CHECK_SET_FILE.read_text(encoding="utf-8"), 100)
    assert len(items) == narrow.HELD_OUT
    for item in items:
        assert item.prompt not in trained
        words = item.prompt.removeprefix(narrow.INSTRUCTION).split(", ")
        assert item.reference is not None
        assert (item.reference.type, item.reference.value) == ("contains", ", ".join(words[::-1]))
        # Echoing the prompt's list does not pass: only the reversed order does.
        assert item.reference.value not in item.prompt
