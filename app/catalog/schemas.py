"""What the catalog's JSON API takes and returns."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.config import ModelKind

NAME_PATTERN = r"^[A-Za-z0-9._:/@+-]+$"
PathText = StringConstraints(min_length=1, max_length=1024, strip_whitespace=True)


class ModelOut(BaseModel):
    """A configured model, without secrets; `parent` is set for a LoRA adapter."""

    name: str
    kind: str
    model: str
    url: str | None
    revision: str | None
    description: str | None
    parent: str | None = Field(
        default=None,
        description=(
            "for a LoRA adapter, the model it adapts: the entry named by adapter_of, or the "
            "parent the server's /v1/models reports (an entry's name when one serves it)"
        ),
    )


class AdapterInput(BaseModel):
    """A LoRA adapter to load on a configured model's server and add as a model."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)] = Field(
        description="the new model's name, also the name vLLM serves the adapter under"
    )
    path: Annotated[str, PathText] = Field(
        description="the adapter's directory on the server's machine, or a hub id"
    )
    base: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="the configured model whose server serves it"
    )
    kind: ModelKind = Field(default=ModelKind.CHAT, description="how to prompt it: chat or base")
