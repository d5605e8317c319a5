"""Validated shapes of prompt set items, imports and runs (JSON API, pages and CLI)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.generation.params import SamplingParams
from app.generation.prompts import BaseFormat

SetName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]
MAX_TAGS = 20
MAX_REFERENCE_CHARS = 2000


class Reference(BaseModel):
    """The answer an item expects: exact text, a substring, a regex, or a choice letter."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["exact", "contains", "regex", "choice"]
    value: Annotated[str, Field(min_length=1, max_length=MAX_REFERENCE_CHARS)]

    @model_validator(mode="after")
    def _value_fits_type(self) -> Reference:
        if self.type == "regex":
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"reference regex does not compile: {exc}") from exc
            except RecursionError as exc:  # the parser recurses once per nested group
                raise ValueError("reference regex nests too deeply") from exc
        if self.type == "choice" and not re.fullmatch(r"[A-Za-z]", self.value.strip()):
            raise ValueError("a choice reference is one option letter, e.g. 'B'")
        return self


class ItemInput(BaseModel):
    """One prompt of a set as imported."""

    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[str, Field(min_length=1, max_length=32_000)]
    id: Annotated[str | None, Field(min_length=1, max_length=100)] = None
    system: Annotated[str | None, Field(max_length=8_000)] = None
    tags: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=50)]], Field(max_length=MAX_TAGS)
    ] = []
    reference: Reference | None = None

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the prompt is empty")
        return value

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class PromptSetInput(BaseModel):
    """A new set: items as JSON, or a file's text in a format (the API and the CLI)."""

    model_config = ConfigDict(extra="forbid")

    name: SetName
    items: list[ItemInput] | None = None
    format: Literal["jsonl", "csv"] | None = None
    content: str | None = None
    source: Annotated[str | None, Field(max_length=300)] = None

    @model_validator(mode="after")
    def _one_source(self) -> PromptSetInput:
        if (self.items is None) == (self.content is None):
            raise ValueError("send either items or content (with format)")
        if self.content is not None and self.format is None:
            raise ValueError("content needs a format: jsonl or csv")
        return self


class RunInput(BaseModel):
    """A run of a set on 2-4 models with one set of sampling settings."""

    model_config = ConfigDict(extra="forbid")

    prompt_set: Annotated[str | int, Field(description="the set's name or id")]
    models: Annotated[list[str], Field(min_length=2, max_length=4)]
    params: SamplingParams = SamplingParams()
    base_format: BaseFormat = BaseFormat.RAW
    blind: bool = False


class RunProgress(BaseModel):
    """How far a run has got."""

    id: int
    status: str
    prompt_set: str
    models: list[str]
    total: int
    done: int
    failed: int
    running: int
    tokens_per_second: float | None
    seconds_left: float | None

    @property
    def finished(self) -> int:
        """Answers that ended, well or not."""
        return self.done + self.failed


def dump(model: BaseModel) -> dict[str, Any]:
    """A model as JSON-ready data without unset optional fields."""
    return model.model_dump(mode="json", exclude_none=True)
