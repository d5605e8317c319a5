"""The fake server's knobs (FakeConfig) and the live state one app serves from (FakeState)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from playground_tools.fake_vllm.tokenizer import DEFAULT_VOCAB_ID, FakeTokenizer

Kind = Literal["completion", "chat"]
JSONObject = dict[str, Any]
# The base "model" finds a chat model's stock openers unlikely, as URIAL found for style tokens.
DEFAULT_PROMPT_RANKS: dict[str, int] = {"Sure": 6, "Here": 4, "an": 2, "answer": 3}
# vLLM's default --max-logprobs.
DEFAULT_MAX_LOGPROBS = 20


class FakeConfig(BaseModel):
    """Knobs of the fake server; mutable so tests can change behaviour of a running server."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    served_model_name: str = Field(default="fake-model", min_length=1)
    token_delay: float = Field(default=0.0, ge=0)
    first_token_delay: float = Field(default=0.0, ge=0)
    fail_status: int | None = Field(default=None, ge=400, le=599)
    fail_after_tokens: int | None = Field(default=None, ge=0)
    inject_text: str | None = None
    # Hold every stream before this many tokens (0: before the first) until the config is
    # changed again (e.g. set back to null): a test decides when the rest may flow.
    hold_after_tokens: int | None = Field(default=None, ge=0)
    answer_words: int = Field(default=24, ge=0)
    max_model_len: int = Field(default=2048, ge=1)
    # The tokenizer's name: servers with different ones give the same text different ids.
    vocab_id: str = Field(default=DEFAULT_VOCAB_ID, min_length=1)
    # word -> rank when scoring a prompt; words not listed rank 1 (see the package docstring).
    prompt_ranks: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: dict(DEFAULT_PROMPT_RANKS)
    )
    max_logprobs: int = Field(default=DEFAULT_MAX_LOGPROBS, ge=0)
    # LoRA adapters served beside the model (name -> path), and whether they may be loaded and
    # unloaded at runtime (vLLM's VLLM_ALLOW_RUNTIME_LORA_UPDATING).
    lora_modules: dict[str, str] = Field(default_factory=dict)
    runtime_lora_updating: bool = False


@dataclass
class FakeState:
    """The live config, request log and tokenizers that one fake app serves from."""

    config: FakeConfig
    requests: list[JSONObject] = field(default_factory=list)
    created: int = field(default_factory=lambda: int(time.time()))
    initial: FakeConfig = field(init=False)
    tokenizers: dict[str, FakeTokenizer] = field(default_factory=dict)
    # Streams being served now, and the most served at once since the last reset.
    in_flight: int = 0
    max_in_flight: int = 0
    # Fired (then replaced) whenever POST /fake/config changes the config: held streams look
    # again. Made in the server's event loop on first use.
    config_changed: asyncio.Event | None = None

    def config_event(self) -> asyncio.Event:
        """The event the next config change fires."""
        if self.config_changed is None:
            self.config_changed = asyncio.Event()
        return self.config_changed

    def fire_config_changed(self) -> None:
        """Wake the streams held by hold_after_tokens (call in the server's event loop)."""
        if self.config_changed is not None:
            self.config_changed.set()
        self.config_changed = asyncio.Event()

    def __post_init__(self) -> None:
        """Remember the starting config so reset() can return to it."""
        self.initial = self.config.model_copy(deep=True)

    def reset(self) -> None:
        """Restore the starting config in place and clear the request log in place."""
        assign_config(self.config, self.initial.model_dump())
        self.requests.clear()
        self.max_in_flight = self.in_flight

    def tokenizer(self, vocab_id: str) -> FakeTokenizer:
        """The tokenizer for a vocabulary (made on first use; it remembers what it has seen)."""
        found = self.tokenizers.get(vocab_id)
        if found is None:
            found = self.tokenizers.setdefault(vocab_id, FakeTokenizer(vocab_id))
        return found


def assign_config(config: FakeConfig, changes: JSONObject) -> None:
    """Validate changes against the whole config, then apply them to the live object in place."""
    merged = FakeConfig.model_validate(config.model_dump() | changes)
    for name in changes:
        setattr(config, name, getattr(merged, name))


def request_state(request: Request) -> FakeState:
    """The FakeState of the app serving this request."""
    state = request.app.state.fake
    assert isinstance(state, FakeState)
    return state
