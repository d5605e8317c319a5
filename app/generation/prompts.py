"""What each kind of model receives: raw text for base models, messages for chat models."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from app.generation.urial import UrialFormat, load_urial_format, urial_prompt


class BaseFormat(StrEnum):
    """How a conversation is written out as plain text for a base model."""

    RAW = "raw"
    TRANSCRIPT = "transcript"
    # A preamble and example exchanges before the conversation (in-context alignment, URIAL).
    URIAL = "urial"


USER_LABEL = "User:"
ASSISTANT_LABEL = "Assistant:"
# A base model writing a transcript would otherwise go on to invent the user's next turn.
TRANSCRIPT_STOP = f"\n{USER_LABEL}"


@dataclass(frozen=True)
class Exchange:
    """One earlier turn as one side saw it: the user's prompt and that side's own answer."""

    prompt: str
    answer: str


@dataclass(frozen=True)
class BasePrompt:
    """The exact text a base model is sent, and stops the format itself needs."""

    text: str
    extra_stop: list[str]


def render_base_prompt(
    fmt: BaseFormat,
    prompt: str,
    history: list[Exchange],
    system: str | None,
    urial_file: Path | None = None,
) -> BasePrompt:
    """Write the conversation as one document for a base model to continue."""
    if fmt is BaseFormat.RAW:
        return BasePrompt(text=_render_raw(prompt, history, system), extra_stop=[])
    if fmt is BaseFormat.URIAL:
        rendered = urial_prompt(prompt, history, system, urial_format(urial_file))
        return BasePrompt(text=rendered.text, extra_stop=rendered.extra_stop)
    return BasePrompt(
        text=_render_transcript(prompt, history, system), extra_stop=[TRANSCRIPT_STOP]
    )


@lru_cache(maxsize=4)
def urial_format(path: Path | None = None) -> UrialFormat:
    """The urial format file (the shipped one by default), read once per process."""
    return load_urial_format(path)


def _render_raw(prompt: str, history: list[Exchange], system: str | None) -> str:
    """The user's text is the start of a document; follow-ups continue that same document."""
    parts: list[str] = []
    if system:
        parts.append(system + "\n\n")
    for exchange in history:
        # The model's own continuation follows its prompt directly, as it was generated.
        parts.append(exchange.prompt + exchange.answer + "\n\n")
    parts.append(prompt)
    return "".join(parts)


def _render_transcript(prompt: str, history: list[Exchange], system: str | None) -> str:
    """A plain-text User:/Assistant: transcript ending where the assistant should speak."""
    lines: list[str] = []
    if system:
        lines.append(system.strip() + "\n")
    for exchange in history:
        lines.append(f"{USER_LABEL} {exchange.prompt.strip()}")
        lines.append(f"{ASSISTANT_LABEL} {exchange.answer.strip()}")
    lines.append(f"{USER_LABEL} {prompt.strip()}")
    lines.append(ASSISTANT_LABEL)
    return "\n".join(lines)


def render_chat_messages(
    prompt: str, history: list[Exchange], system: str | None
) -> list[dict[str, str]]:
    """OpenAI-style messages; the server applies the model's own chat template."""
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    for exchange in history:
        messages.append({"role": "user", "content": exchange.prompt})
        messages.append({"role": "assistant", "content": exchange.answer})
    messages.append({"role": "user", "content": prompt})
    return messages
