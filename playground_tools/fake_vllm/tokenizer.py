"""The fake tokenizer: its prose vocabulary, stable token ids, and text to ids and back."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence

# The fake's prose vocabulary: the words of its answers, and a chat model's stock openers.
VOCABULARY = (
    "the", "a", "river", "town", "people", "market", "morning", "old", "small", "quiet",
    "road", "house", "garden", "water", "light", "winter", "summer", "children", "walked",
    "found", "made", "kept", "saw", "said", "near", "over", "under", "along", "through",
    "with", "and", "but", "then", "often", "slowly", "always", "every", "day", "year",
    "bread", "stone", "bridge", "field", "window", "letter", "story", "long", "green",
    "warm", "bright", "north", "south", "hill", "farm", "school", "evening", "friend",
    "work", "time", "place",
)  # fmt: skip
CHAT_OPENERS = (("Sure.",), ("Here", "is", "an", "answer:"))
DEFAULT_VOCAB_ID = "fake-words-1"
EOS_TOKEN = "<|end|>"  # noqa: S105 (a token, not a secret)
# Ids are below VOCAB_SIZE; word ids start at 1000, as if the first were reserved.
VOCAB_SIZE = 2**31
_FIRST_WORD_ID = 1000
# What a token id the tokenizer has never produced decodes to.
UNKNOWN_TOKEN = "<unk>"  # noqa: S105
_SPECIAL = r"<\|\w+\|>"
_TOKEN = re.compile(rf"\s*(?:{_SPECIAL}|(?:(?!{_SPECIAL})\S)+)")


def split_tokens(text: str) -> list[str]:
    """The fake tokenizer's tokens: whitespace-led words and `<|name|>` markers, text kept exact."""
    tokens: list[str] = _TOKEN.findall(text)
    rest = text[sum(len(token) for token in tokens) :]
    if rest:  # only whitespace at the very end is left over: it joins the last token
        if tokens:
            tokens[-1] += rest
        else:
            tokens.append(rest)
    return tokens


def token_id(token: str, vocab_id: str = DEFAULT_VOCAB_ID) -> int:
    """A token's id in a vocabulary: a stable hash (sha256), so the same across processes."""
    digest = hashlib.sha256(f"{vocab_id}\x00{token}".encode()).digest()
    return _FIRST_WORD_ID + int.from_bytes(digest[:8], "big") % (VOCAB_SIZE - _FIRST_WORD_ID)


def _generation_vocabulary() -> Iterator[str]:
    """Every token the fake can generate (bar injected text), so any server can decode it."""
    words = {*VOCABULARY, *(word for opener in CHAT_OPENERS for word in opener)}
    for word in sorted(words):
        for cased in {word, word.capitalize(), word[:1].lower() + word[1:]}:
            for ending in ("", "."):
                for separator in ("", " ", "\n\n"):
                    yield separator + cased + ending
    yield EOS_TOKEN


class FakeTokenizer:
    """Text to ids and back for one vocabulary; it decodes every token it has met."""

    def __init__(self, vocab_id: str) -> None:
        self.vocab_id = vocab_id
        self._texts: dict[int, str] = {}
        for token in _generation_vocabulary():
            self.intern(token)

    def intern(self, token: str) -> int:
        """The id of a token, remembered so that it can be decoded."""
        ident = token_id(token, self.vocab_id)
        self._texts.setdefault(ident, token)
        return ident

    def encode(self, text: str) -> list[int]:
        """Token ids of a text (no BOS: like GPT-2 or Qwen tokenizers, it adds none)."""
        return [self.intern(token) for token in split_tokens(text)]

    def token_text(self, ident: int) -> str:
        """One token's text; an id it has never produced decodes to UNKNOWN_TOKEN."""
        return self._texts.get(ident, UNKNOWN_TOKEN)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of a sequence of ids."""
        return "".join(self.token_text(ident) for ident in ids)
