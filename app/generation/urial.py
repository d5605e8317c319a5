"""The "urial" base-model format: a preamble and example exchanges, then the conversation.

The format lives in a TOML data file (`data/urial.toml` ships with the app; users may edit it or
point at their own): the preamble, the user and assistant markers, the stop sequences the base
model needs, and the examples.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.config import ConfigError, describe_errors

DEFAULT_FORMAT_FILE = Path(__file__).resolve().parent / "data" / "urial.toml"
# As SamplingParams allows for stop sequences.
MAX_STOPS = 4
MAX_STOP_CHARS = 64


class UrialExample(BaseModel):
    """One fixed example exchange."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: Annotated[str, Field(min_length=1)]
    answer: Annotated[str, Field(min_length=1)]


class UrialFormat(BaseModel):
    """A parsed format file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preamble: str = ""
    user_marker: Annotated[str, Field(min_length=1, max_length=64)]
    assistant_marker: Annotated[str, Field(min_length=1, max_length=64)]
    stop: Annotated[list[str], Field(min_length=1, max_length=MAX_STOPS)]
    examples: list[UrialExample] = []

    @field_validator("user_marker", "assistant_marker")
    @classmethod
    def _one_line(cls, marker: str) -> str:
        if "\n" in marker or marker != marker.strip():
            raise ValueError("a marker is one line without surrounding blanks")
        return marker

    @field_validator("stop")
    @classmethod
    def _usable_stops(cls, stops: list[str]) -> list[str]:
        for stop in stops:
            if not stop or len(stop) > MAX_STOP_CHARS or "\x00" in stop:
                raise ValueError(f"each stop sequence has 1 to {MAX_STOP_CHARS} characters")
        return stops

    @model_validator(mode="after")
    def _examples_do_not_stop(self) -> UrialFormat:
        if self.user_marker == self.assistant_marker:
            raise ValueError("the user and assistant markers must differ")
        for number, example in enumerate(self.examples, start=1):
            # The answer follows the marker's line break, so a stop may start with it.
            answer = "\n" + example.answer.strip()
            hit = next((stop for stop in self.stop if stop in answer), None)
            if hit is not None:
                raise ValueError(
                    f"example {number}'s answer contains the stop sequence {hit!r}, so a base "
                    "model imitating it would be cut off"
                )
        return self


class Turn(Protocol):
    """An earlier exchange (app.generation.prompts.Exchange fits)."""

    @property
    def prompt(self) -> str: ...

    @property
    def answer(self) -> str: ...


@dataclass(frozen=True)
class UrialPrompt:
    """The text a base model is sent and the stops it needs (as prompts.BasePrompt)."""

    text: str
    extra_stop: list[str]


def load_urial_format(path: Path | None = None) -> UrialFormat:
    """Read and check a format file (the shipped one by default); ConfigError names the problem."""
    path = DEFAULT_FORMAT_FILE if path is None else path
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"urial format file not found: {path}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"urial format file {path} is not valid TOML: {exc}") from exc
    try:
        return UrialFormat.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"urial format file {path} is invalid: {describe_errors(exc)}") from exc


def urial_prompt(
    prompt: str,
    history: Sequence[Turn] = (),
    system: str | None = None,
    fmt: UrialFormat | None = None,
) -> UrialPrompt:
    """The preamble (and system text), the examples, the earlier turns, then the new prompt,
    ending with the assistant marker on its own line, ready for the answer."""
    fmt = load_urial_format() if fmt is None else fmt
    blocks = [fmt.preamble.strip()] if fmt.preamble.strip() else []
    if system and system.strip():
        blocks.append(system.strip())
    blocks += [_block(fmt, example) for example in fmt.examples]
    blocks += [_block(fmt, turn) for turn in history]
    blocks.append(f"{fmt.user_marker}\n{prompt.strip()}\n\n{fmt.assistant_marker}\n")
    return UrialPrompt(text="\n\n".join(blocks), extra_stop=list(fmt.stop))


def _block(fmt: UrialFormat, exchange: UrialExample | Turn) -> str:
    """One finished exchange."""
    query = exchange.query if isinstance(exchange, UrialExample) else exchange.prompt
    return (
        f"{fmt.user_marker}\n{query.strip()}\n\n{fmt.assistant_marker}\n{exchange.answer.strip()}"
    )
