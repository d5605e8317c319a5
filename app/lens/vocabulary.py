"""Whether two model servers share a tokenizer, so token ids carry over from one to the other."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from app.config import ModelConfig
from app.generation.http import tokenize_text

# Words, numbers, punctuation, code, accents, CJK, emoji and odd whitespace: tokenizers that
# differ at all almost surely differ somewhere in here.
PROBE_TEXT = (
    "The quick brown fox jumps over 13 lazy dogs; naïve café-goers pay €4.50!\n"
    "    def area(r): return 3.14159 * r ** 2  # TODO?\n"
    "東京は晴れ。 Привет, мир. 🙂👍🏽 <b>bold</b>\t\ttabs  and   spaces\r\n"
)


@dataclass(frozen=True)
class VocabularyCheck:
    """The answer, and a sentence saying why."""

    same: bool
    reason: str


async def same_vocabulary(
    http: httpx.AsyncClient, base: ModelConfig, chat: ModelConfig, probe: str = PROBE_TEXT
) -> VocabularyCheck:
    """Compare the ids both servers' /tokenize give a probe text (without special tokens)."""
    base_tokens, chat_tokens = await asyncio.gather(
        tokenize_text(http, base, probe, add_special_tokens=False),
        tokenize_text(http, chat, probe, add_special_tokens=False),
    )
    ours, theirs = base_tokens.ids, chat_tokens.ids
    if ours == theirs:
        return VocabularyCheck(
            True,
            f"{base.name} and {chat.name} give the same {len(ours)} token ids for a probe text",
        )
    if len(ours) != len(theirs):
        return VocabularyCheck(
            False,
            f"{base.name} and {chat.name} use different tokenizers: a probe text is "
            f"{len(ours)} tokens for {base.name} but {len(theirs)} for {chat.name}",
        )
    index = next(i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b)
    return VocabularyCheck(
        False,
        f"{base.name} and {chat.name} use different tokenizers: token {index + 1} of a probe "
        f"text is id {ours[index]} for {base.name} but {theirs[index]} for {chat.name}",
    )
