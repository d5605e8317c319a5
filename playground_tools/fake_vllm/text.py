"""The fake model's deterministic answers: seeded prose, injected text, stop strings, max_tokens."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from playground_tools.fake_vllm.config import FakeConfig, Kind
from playground_tools.fake_vllm.tokenizer import CHAT_OPENERS, EOS_TOKEN, VOCABULARY

# Words per sentence of fake prose, and how often a base model starts a new paragraph.
_SENTENCE_WORDS = (4, 10)
_PARAGRAPH_BREAK_CHANCE = 0.25


@dataclass(frozen=True)
class Generation:
    """What the fake model produced: each generated token's text shown and why it stopped.

    `pieces` is the text each token adds to the output (cut where a stop string starts; empty for
    EOS); `tokens` is the tokens themselves, whole, as their logprobs name them.
    """

    pieces: tuple[str, ...]
    finish_reason: Literal["stop", "length"]
    stop_reason: str | None = None
    tokens: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The whole output text."""
        return "".join(self.pieces)


def _rng(kind: Kind, source: str, seed: int | None, temperature: float) -> random.Random:
    """A generator seeded by sha256 of the inputs; greedy decoding (temperature 0) ignores seed."""
    key = {
        "kind": kind,
        "source": source,
        "seed": seed if temperature > 0 else None,
        "temperature": float(temperature),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _prose(rng: random.Random, count: int, kind: Kind) -> list[tuple[str, str]]:
    """`count` words of fake prose as (separator before, word); sentences end with a period."""
    words: list[tuple[str, str]] = []
    separator = " "
    while len(words) < count:
        length = rng.randint(*_SENTENCE_WORDS)
        for position in range(length):
            word = rng.choice(VOCABULARY)
            word = word.capitalize() if position == 0 else word
            words.append((separator, word + ("." if position == length - 1 else "")))
            separator = " "
        # Documents have paragraphs; chat answers here are a single paragraph.
        if kind == "completion" and rng.random() < _PARAGRAPH_BREAK_CHANCE:
            separator = "\n\n"
    words = words[:count]
    if words:
        # End on a full stop so a finished answer reads like one.
        separator, last = words[-1]
        words[-1] = (separator, last.rstrip(".") + ".")
    return words


def _answer_words(rng: random.Random, kind: Kind, count: int) -> list[tuple[str, str]]:
    """The words of an unconstrained answer: chat opens with a stock phrase, base just runs on."""
    opener = [(" ", word) for word in rng.choice(CHAT_OPENERS)] if kind == "chat" else []
    opener = opener[:count]
    return opener + _prose(rng, count - len(opener), kind)


def _inject_tokens(text: str | None) -> list[str]:
    """Split injected text into word tokens, keeping its whitespace so the text stays exact."""
    if not text:
        return []
    return re.findall(r"\s*\S+", text) or [text]


def answer_tokens(
    kind: Kind, source: str, seed: int | None, temperature: float, config: FakeConfig, follows: str
) -> list[str]:
    """Every token of an unconstrained output, joined onto `follows`, the text it continues."""
    tokens = _inject_tokens(config.inject_text)
    words = _answer_words(_rng(kind, source, seed, temperature), kind, config.answer_words)
    if words:
        words[0] = _first_word(kind, follows + "".join(tokens), words[0][1])
    return tokens + [separator + word for separator, word in words]


def _first_word(kind: Kind, follows: str, word: str) -> tuple[str, str]:
    """The first word's separator and case, fitted to the text before it."""
    # Like a BPE " word" token: a blank unless the text already ends in whitespace.
    separator = " " if follows and not follows[-1].isspace() else ""
    # A base model continuing mid-sentence goes on in lower case; a new line starts afresh.
    if kind == "completion" and follows.rstrip(" \t")[-1:] not in ("", "\n", ".", "!", "?", ":"):
        word = word[:1].lower() + word[1:]
    return separator, word


def _first_stop(text: str, stops: Sequence[str], searched: int) -> tuple[int, str] | None:
    """Where the first stop string (in list order, as vLLM checks) newly occurs in text."""
    for stop in stops:
        index = text.find(stop, max(0, searched - len(stop) + 1))
        if index >= 0:
            return index, stop
    return None


def _clip(tokens: Sequence[str], length: int) -> tuple[str, ...]:
    """Token texts cut so that together they are the first `length` characters."""
    pieces: list[str] = []
    used = 0
    for token in tokens:
        piece = token[: max(0, length - used)]
        pieces.append(piece)
        used += len(piece)
    return tuple(pieces)


def apply_limits(tokens: Sequence[str], max_tokens: int, stops: Sequence[str]) -> Generation:
    """Apply stop strings, then max_tokens, after each token, as vLLM's stop checker does."""
    text = ""
    for count, token in enumerate(tokens, start=1):
        searched = len(text)
        text += token
        hit = _first_stop(text, stops, searched)
        if hit is not None:
            # vLLM drops the stop string and whatever followed it in the same token.
            return Generation(_clip(tokens[:count], hit[0]), "stop", hit[1], tuple(tokens[:count]))
        if count >= max_tokens:
            return Generation(tuple(tokens[:count]), "length", None, tuple(tokens[:count]))
    # The model emits EOS: a token of its own, counted in usage, with no text.
    return Generation((*tokens, ""), "stop", None, (*tokens, EOS_TOKEN))


def stop_list(stop: str | list[str] | None) -> list[str]:
    """The request's stop strings as a list, without empty ones (they would match anywhere)."""
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    return [s for s in stops if s]
