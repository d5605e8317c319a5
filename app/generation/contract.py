"""The model contract: how each kind of model is prompted, asked and read.

A base model gets raw text on /v1/completions, rendered in a base format (raw, transcript,
urial); a chat model gets messages on /v1/chat/completions and its own chat template. Each
contract owns its prompt rendering, its request body and its stream parsing, so callers (a
comparison, the lens, a batch run) never branch on the kind themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from app.config import ModelConfig, ModelKind
from app.generation.params import SamplingParams
from app.generation.prompts import BaseFormat, Exchange, render_base_prompt, render_chat_messages


@dataclass(frozen=True)
class GenerationRequest:
    """What to send: raw text (base) or messages (chat), plus the sampling fields."""

    model: ModelConfig
    sampling: dict[str, Any]
    prompt_text: str | None = None
    messages: list[dict[str, str]] | None = None
    # Alternatives per token for the token view (0: no logprobs asked for).
    top_logprobs: int = 0
    # Token ids sent instead of prompt_text (the same text), so that nothing is re-tokenised.
    prompt_ids: list[int] | None = None

    @property
    def contract(self) -> ModelContract:
        """How this model's kind is asked and read."""
        return contract_for(self.model.kind)

    @property
    def path(self) -> str:
        """The endpoint for this kind of model."""
        return self.contract.path

    @property
    def endpoint(self) -> str:
        """The full URL the request goes to."""
        return self.model.server_url + self.path

    def body(self) -> dict[str, Any]:
        """The JSON body, in vLLM's dialect, streaming with a final usage chunk."""
        body: dict[str, Any] = {
            "model": self.model.model,
            **self.sampling,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self.contract.prompt_fields(self),
        }
        if self.top_logprobs:
            # The generated token ids, so that the token lens never re-tokenises the answer.
            body["return_token_ids"] = True
        return body


@dataclass(frozen=True)
class Prompted:
    """A prompt made ready for one model: the exact request, and the format it was written in."""

    request: GenerationRequest
    prompt_format: str


class ModelContract(Protocol):
    """What differs between kinds of model."""

    kind: ModelKind
    path: str

    def prepare(
        self,
        model: ModelConfig,
        prompt: str,
        history: list[Exchange],
        system: str | None,
        params: SamplingParams,
        *,
        base_format: BaseFormat,
        urial_file: Path | None,
        top_logprobs: int,
    ) -> Prompted:
        """The request for a prompt after this model's own earlier exchanges."""
        ...

    def prompt_fields(self, request: GenerationRequest) -> dict[str, Any]:
        """The body fields that carry the prompt (and logprob options) for this kind."""
        ...

    def choice_text(self, choice: dict[str, Any]) -> str:
        """The new text in one streamed choice."""
        ...


class BaseModelContract:
    """A base model continues raw text, written in the conversation's base format."""

    kind = ModelKind.BASE
    path = "/completions"

    def prepare(
        self,
        model: ModelConfig,
        prompt: str,
        history: list[Exchange],
        system: str | None,
        params: SamplingParams,
        *,
        base_format: BaseFormat,
        urial_file: Path | None,
        top_logprobs: int,
    ) -> Prompted:
        """Raw text in the base format, with the format's own stop strings."""
        rendered = render_base_prompt(base_format, prompt, history, system, urial_file)
        request = GenerationRequest(
            model,
            params.request_fields(rendered.extra_stop),
            prompt_text=rendered.text,
            top_logprobs=top_logprobs,
        )
        return Prompted(request, base_format.value)

    def prompt_fields(self, request: GenerationRequest) -> dict[str, Any]:
        """`prompt` (text, or token ids), and `logprobs: k`."""
        fields: dict[str, Any] = {
            "prompt": request.prompt_ids if request.prompt_ids is not None else request.prompt_text
        }
        if request.top_logprobs:
            fields["logprobs"] = request.top_logprobs
        return fields

    def choice_text(self, choice: dict[str, Any]) -> str:
        """A completion chunk's `text`."""
        return str(choice.get("text") or "")


class ChatModelContract:
    """A chat model answers messages through its own chat template (or the configured one)."""

    kind = ModelKind.CHAT
    path = "/chat/completions"

    def prepare(
        self,
        model: ModelConfig,
        prompt: str,
        history: list[Exchange],
        system: str | None,
        params: SamplingParams,
        *,
        base_format: BaseFormat,
        urial_file: Path | None,
        top_logprobs: int,
    ) -> Prompted:
        """OpenAI-style messages; the base format does not apply."""
        request = GenerationRequest(
            model,
            params.request_fields(),
            messages=render_chat_messages(prompt, history, system),
            top_logprobs=top_logprobs,
        )
        return Prompted(request, "chat")

    def prompt_fields(self, request: GenerationRequest) -> dict[str, Any]:
        """`messages`, the configured `chat_template`, and `logprobs` + `top_logprobs`."""
        fields: dict[str, Any] = {"messages": request.messages}
        if request.model.chat_template is not None:
            fields["chat_template"] = request.model.chat_template
        if request.top_logprobs:
            fields["logprobs"] = True
            fields["top_logprobs"] = request.top_logprobs
        return fields

    def choice_text(self, choice: dict[str, Any]) -> str:
        """A chat chunk's `delta.content`."""
        return str((choice.get("delta") or {}).get("content") or "")


CONTRACTS: dict[ModelKind, ModelContract] = {
    ModelKind.BASE: BaseModelContract(),
    ModelKind.CHAT: ChatModelContract(),
}


def contract_for(kind: ModelKind) -> ModelContract:
    """The contract of a kind of model."""
    return CONTRACTS[kind]
