"""Continue from a prefix: the base model carries on a chat answer from its first k tokens.

URIAL found that a chat model's first few tokens carry most of its alignment; letting the base
model continue from them tests that on the user's own prompt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from app.config import ModelConfig, ModelKind
from app.generation.contract import GenerationRequest
from app.generation.http import detokenize, tokenize_text
from app.generation.params import SamplingParams
from app.lens.errors import LensError

# How many of the chat answer's first tokens the base model continues from, by default and at most.
DEFAULT_PREFIX_TOKENS = 5
MAX_PREFIX_TOKENS = 4096


@dataclass(frozen=True)
class PrefixContinuation:
    """What to send the base model so that it continues the chat answer after k tokens."""

    prefix_ids: list[int]  # the chat answer's first k tokens
    prefix_text: str  # their text
    prompt_ids: list[int]  # context ids, then the prefix: the exact prompt
    prompt_text: str  # the same as text, for servers or clients that take text only
    request: GenerationRequest  # streams with ModelClient today (the text prompt)

    def body(self) -> dict[str, Any]:
        """The streaming /v1/completions body with the exact token-id prompt."""
        return self.request.body() | {"prompt": list(self.prompt_ids)}


async def continue_from_prefix(
    http: httpx.AsyncClient,
    base: ModelConfig,
    context: str | Sequence[int],
    answer_token_ids: Sequence[int],
    k: int,
    params: SamplingParams | Mapping[str, Any],
    extra_stop: Sequence[str] = (),
) -> PrefixContinuation:
    """Build the base model's request: the context, then the answer's first k tokens.

    `context` is the base-format prompt as text or ids (as for token_shift); `params` are the
    sampling settings (SamplingParams, or request fields as GenerationRequest takes them), with
    the format's `extra_stop` added.
    """
    if base.kind is not ModelKind.BASE:
        raise LensError(f"{base.name} is not a base model, so it cannot continue a prefix")
    answer = list(answer_token_ids)
    if not 0 <= k <= len(answer):
        raise LensError(f"k must be between 0 and the answer's {len(answer)} tokens, not {k}")
    prefix = answer[:k]
    if isinstance(context, str):
        context_ids = (await tokenize_text(http, base, context)).ids
        context_text = context
    else:
        context_ids = list(context)
        context_text = await detokenize(http, base, context_ids) if context_ids else ""
    prefix_text = await _text_after(http, base, context_ids[-1:], prefix)
    if isinstance(params, SamplingParams):
        sampling = params.request_fields(extra_stop=list(extra_stop))
    else:
        sampling = dict(params)
        stops = sampling.get("stop") or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        sampling["stop"] = list(dict.fromkeys([*stops, *extra_stop]))
    prompt_text = context_text + prefix_text
    return PrefixContinuation(
        prefix_ids=prefix,
        prefix_text=prefix_text,
        prompt_ids=[*context_ids, *prefix],
        prompt_text=prompt_text,
        request=GenerationRequest(model=base, sampling=sampling, prompt_text=prompt_text),
    )


async def _text_after(
    http: httpx.AsyncClient, model: ModelConfig, anchor: list[int], ids: list[int]
) -> str:
    """The text of `ids` as it reads after `anchor`: decoded together, so a tokenizer that drops
    a leading space when decoding a sequence's first token (SentencePiece) keeps it."""
    if not ids:
        return ""
    if not anchor:
        return await detokenize(http, model, ids)
    both, alone = await asyncio.gather(
        detokenize(http, model, [*anchor, *ids]), detokenize(http, model, anchor)
    )
    return both[len(alone) :] if both.startswith(alone) else await detokenize(http, model, ids)
