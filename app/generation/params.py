"""Sampling settings shared by both sides of a comparison, validated once."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.text import check_text

MAX_SEED = 2**31 - 1
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 64


def random_seed() -> int:
    """A fresh seed, so every generation is reproducible even when the user set none."""
    return secrets.randbelow(MAX_SEED)


class SamplingParams(BaseModel):
    """Settings sent identically to both models (vLLM accepts them on both endpoints)."""

    model_config = ConfigDict(extra="forbid")

    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.7
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95
    # -1 disables top-k, as in vLLM.
    top_k: Annotated[int, Field(ge=-1, le=1000)] = -1
    max_tokens: Annotated[int, Field(ge=1, le=4096)] = 256
    seed: Annotated[int | None, Field(ge=0, le=MAX_SEED)] = None
    stop: Annotated[list[str], Field(max_length=MAX_STOP_SEQUENCES)] = []
    repetition_penalty: Annotated[float, Field(gt=0.0, le=2.0)] = 1.0

    @field_validator("top_k")
    @classmethod
    def _zero_means_off(cls, value: int) -> int:
        return -1 if value == 0 else value

    @field_validator("stop")
    @classmethod
    def _stops_non_empty_and_short(cls, value: list[str]) -> list[str]:
        for stop in value:
            if not stop:
                raise ValueError("stop sequences must not be empty")
            check_text(stop)
            if len(stop) > MAX_STOP_CHARS:
                raise ValueError(f"each stop sequence is at most {MAX_STOP_CHARS} characters")
        return value

    def with_seed(self) -> SamplingParams:
        """These params with a concrete seed (a random one when none was given)."""
        return self if self.seed is not None else self.model_copy(update={"seed": random_seed()})

    def request_fields(self, extra_stop: list[str] | None = None) -> dict[str, Any]:
        """The fields to put in an OpenAI/vLLM request body."""
        stop = list(dict.fromkeys([*self.stop, *(extra_stop or [])]))
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "stop": stop,
            "repetition_penalty": self.repetition_penalty,
        }
