"""Token shift against fake vLLM servers: exact ratios, one request, and every way it can fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.config import ModelConfig, ModelKind, ModelsFile
from app.generation.client import ModelClient, TextDelta
from app.generation.errors import (
    ContextTooLong,
    MalformedResponse,
    ModelServerError,
    ServerUnavailable,
)
from app.generation.http import rendered_chat_prompt, tokenize_text
from app.generation.logprobs import TokenInfo, token_view, without_stop_token
from app.generation.params import SamplingParams
from app.lens.errors import LensError, VocabularyMismatch
from app.lens.prefix import continue_from_prefix
from app.lens.shift import Shift, ShiftAnalysis, classify, token_shift
from app.lens.vocabulary import same_vocabulary
from playground_tools.fake_vllm import FakeServer
from tests.conftest import DEAD_URL
from tests.lens.helpers import chat_response

CONTEXT = "User: Tell me about the river and the old town.\nAssistant:\n"


def word(token: str) -> str:
    """The fake's documented word of a token: no surrounding blanks, no trailing punctuation."""
    return token.strip().rstrip(".,:;!?")


def pair(models: ModelsFile) -> tuple[ModelConfig, ModelConfig]:
    base, chat = models.get("base"), models.get("chat")
    assert base is not None and chat is not None
    return base, chat


async def answer_tokens(http: httpx.AsyncClient, chat: ModelConfig) -> list[TokenInfo]:
    """The chat model's greedy answer to the context's question, its text tokens only."""
    answer = await chat_response(http, chat, "Tell me about the river and the old town.")
    [choice] = answer["choices"]
    return without_stop_token(token_view(answer), choice["finish_reason"], choice["stop_reason"])


def ids(tokens: list[TokenInfo]) -> list[int]:
    found = [t.token_id for t in tokens]
    assert None not in found
    return [i for i in found if i is not None]


def test_urial_classes() -> None:
    assert [classify(rank) for rank in (1, 2, 3, 4, 50)] == [
        Shift.UNSHIFTED,
        Shift.MARGINAL,
        Shift.MARGINAL,
        Shift.SHIFTED,
        Shift.SHIFTED,
    ]


async def test_ratios_are_exact_for_known_ranks(
    http: httpx.AsyncClient, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    base, chat = pair(models)
    chat_server.config.answer_words = 16
    tokens = await answer_tokens(http, chat)
    words = [word(t.token) for t in tokens]
    shifted_word = words[-1]
    marginal_word = next(w for w in words[4:] if w != shifted_word)
    # The base "model" now ranks these two words 7th and 3rd wherever they appear, and every
    # other token (the chat opener included) first.
    base_server.config.prompt_ranks = {shifted_word: 7, marginal_word: 3}
    analysis = await token_shift(http, base, CONTEXT + shifted_word, ids(tokens), chat=chat)
    shifted = words.count(shifted_word)
    marginal = words.count(marginal_word)
    total = len(tokens)
    assert analysis.total == total
    assert analysis.counts == {
        Shift.UNSHIFTED: total - shifted - marginal,
        Shift.MARGINAL: marginal,
        Shift.SHIFTED: shifted,
    }
    assert analysis.shifted_ratio == shifted / total
    assert analysis.marginal_ratio == marginal / total
    assert analysis.unshifted_ratio == (total - shifted - marginal) / total
    assert [t.rank for t in analysis.tokens] == [
        7 if w == shifted_word else 3 if w == marginal_word else 1 for w in words
    ]
    assert [t.token for t in analysis.tokens] == [t.token for t in tokens]
    assert [t.position for t in analysis.shifted_tokens()] == [
        i for i, w in enumerate(words) if w == shifted_word
    ]
    for token in analysis.tokens:
        # What the base model would have said instead: its own first choice.
        assert (token.top_token == token.token) is (token.rank == 1)
        assert token.top_logprob >= token.logprob
    assert analysis.base_model == base.name
    assert analysis.top_k == 5


async def test_the_default_fake_base_finds_the_chat_opener_shifted(
    http: httpx.AsyncClient, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    base, chat = pair(models)
    chat_server.config.answer_words = 8
    tokens = await answer_tokens(http, chat)
    analysis = await token_shift(http, base, CONTEXT, ids(tokens))
    # "Sure." and "Here ..." open every fake chat answer; the default base ranks them low.
    assert analysis.tokens[0].shift is Shift.SHIFTED
    assert analysis.tokens[0].token.strip() in ("Sure.", "Here")
    assert all(t.shift is Shift.UNSHIFTED for t in analysis.tokens[-4:])


async def test_one_request_per_analysis(
    http: httpx.AsyncClient, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    base, chat = pair(models)
    chat_server.config.answer_words = 12
    tokens = await answer_tokens(http, chat)
    chat_server.requests.clear()
    chat_logprobs = [t.logprob for t in tokens]
    analysis = await token_shift(
        http, base, CONTEXT, ids(tokens), chat=chat, top_k=3, chat_logprobs=chat_logprobs
    )
    context_ids = (await tokenize_text(http, base, CONTEXT)).ids
    assert base_server.requests == [
        {
            "path": "/v1/completions",
            "body": {
                "model": base.model,
                "prompt": context_ids + ids(tokens),
                "max_tokens": 1,
                "temperature": 0,
                "prompt_logprobs": 3,
            },
        }
    ]
    assert chat_server.requests == []
    assert analysis.context_tokens == len(context_ids)
    assert [t.chat_logprob for t in analysis.tokens] == chat_logprobs


async def test_context_as_token_ids(
    http: httpx.AsyncClient, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    base, chat = pair(models)
    chat_server.config.answer_words = 6
    tokens = await answer_tokens(http, chat)
    context_ids = (await tokenize_text(http, base, CONTEXT)).ids
    by_ids = await token_shift(http, base, context_ids, ids(tokens))
    by_text = await token_shift(http, base, CONTEXT, ids(tokens))
    assert by_ids.tokens == by_text.tokens
    assert base_server.requests[0]["body"] == base_server.requests[1]["body"]


async def test_analysis_round_trips_through_json(
    http: httpx.AsyncClient, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    base, chat = pair(models)
    chat_server.config.answer_words = 8
    tokens = await answer_tokens(http, chat)
    analysis = await token_shift(http, base, CONTEXT, ids(tokens), chat=chat)
    stored = json.loads(json.dumps(analysis.to_json()))
    assert ShiftAnalysis.from_json(stored) == analysis
    assert stored["shifted_ratio"] == analysis.shifted_ratio
    assert stored["counts"] == {shift.value: n for shift, n in analysis.counts.items()}
    assert [t["shift"] for t in stored["tokens"]] == [t.shift.value for t in analysis.tokens]
    with pytest.raises(ValueError, match="version"):
        ShiftAnalysis.from_json(stored | {"version": 99})
    with pytest.raises(ValueError, match="not a stored"):
        ShiftAnalysis.from_json(stored | {"tokens": [{"rank": 1}]})


# ---------------------------------------------------------------- vocabulary


async def test_same_vocabulary_when_tokenizers_match(
    http: httpx.AsyncClient, models: ModelsFile
) -> None:
    base, chat = pair(models)
    check = await same_vocabulary(http, base, chat)
    assert check.same
    assert "same" in check.reason


async def test_different_vocabularies_are_refused_before_scoring(
    http: httpx.AsyncClient, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    base, chat = pair(models)
    tokens = await answer_tokens(http, chat)
    chat_server.config.vocab_id = "another-tokenizer"
    check = await same_vocabulary(http, base, chat)
    assert not check.same
    assert "different tokenizers" in check.reason
    assert base.name in check.reason and chat.name in check.reason
    with pytest.raises(VocabularyMismatch, match="different tokenizers") as raised:
        await token_shift(http, base, CONTEXT, ids(tokens), chat=chat)
    assert raised.value.status_code == 409
    assert base_server.requests == []


# ---------------------------------------------------------------- limits and faults


@pytest.mark.parametrize("as_ids", [False, True])
async def test_context_and_answer_longer_than_the_base_context(
    http: httpx.AsyncClient,
    models: ModelsFile,
    base_server: FakeServer,
    chat_server: FakeServer,
    as_ids: bool,
) -> None:
    base, chat = pair(models)
    chat_server.config.answer_words = 6
    answer = ids(await answer_tokens(http, chat))
    context_ids = (await tokenize_text(http, base, CONTEXT)).ids
    context: str | list[int] = context_ids if as_ids else CONTEXT
    # Room for the context and the answer, but not for the one step vLLM reserves.
    base_server.config.max_model_len = len(context_ids) + len(answer)
    with pytest.raises(ContextTooLong, match=f"at most {base_server.config.max_model_len}"):
        await token_shift(http, base, context, answer)
    assert base_server.requests == []
    base_server.config.max_model_len += 1
    assert (await token_shift(http, base, context, answer)).total == len(answer)


async def test_server_down(http: httpx.AsyncClient, models: ModelsFile) -> None:
    base, _ = pair(models)
    gone = ModelConfig(name="gone", kind=ModelKind.BASE, url=DEAD_URL, model="gone")
    with pytest.raises(ServerUnavailable, match="cannot connect to gone") as raised:
        await token_shift(http, gone, CONTEXT, [1001, 1002])
    assert raised.value.status_code == 502
    dead_chat = ModelConfig(name="dead-chat", kind=ModelKind.CHAT, url=DEAD_URL, model="x")
    with pytest.raises(ServerUnavailable, match="dead-chat"):
        await token_shift(http, base, CONTEXT, [1001], chat=dead_chat)


async def test_server_error_status(
    http: httpx.AsyncClient, models: ModelsFile, base_server: FakeServer
) -> None:
    base, _ = pair(models)
    base_server.config.fail_status = 503
    context_ids = (await tokenize_text(http, base, "Hello there")).ids
    with pytest.raises(ModelServerError, match="HTTP 503"):
        await token_shift(http, base, "Hello there", context_ids)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"answer_token_ids": []}, "nothing to analyse"),
        ({"top_k": 0}, "top_k must be between 1 and 20"),
        ({"top_k": 21}, "top_k must be between 1 and 20"),
        ({"chat_logprobs": [-1.0]}, "one entry per answer token"),
        ({"context": []}, "needs some context"),
    ],
)
async def test_bad_requests_are_lens_errors(
    http: httpx.AsyncClient,
    models: ModelsFile,
    base_server: FakeServer,
    kwargs: dict[str, Any],
    message: str,
) -> None:
    base, _ = pair(models)
    arguments: dict[str, Any] = {"context": CONTEXT, "answer_token_ids": [1001, 1002]} | kwargs
    with pytest.raises(LensError, match=message):
        await token_shift(http, base, **arguments)
    assert base_server.requests == []


def scripted(completion: Callable[[dict[str, Any]], httpx.Response]) -> httpx.AsyncClient:
    """A client whose server tokenizes any text as [1, 2, 3] and answers completions as told."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/tokenize":
            return httpx.Response(200, json={"tokens": [1, 2, 3], "max_model_len": 100})
        return completion(json.loads(request.content))

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


SCRIPTED = ModelConfig(name="s", kind=ModelKind.BASE, url="http://scripted.test/v1", model="s")


def scored(entries: list[Any]) -> Callable[[dict[str, Any]], httpx.Response]:
    return lambda body: httpx.Response(
        200, json={"choices": [{"index": 0, "text": "x", "prompt_logprobs": entries}]}
    )


def logprob(rank: int, text: str, value: float = -1.0) -> dict[str, Any]:
    return {"logprob": value, "rank": rank, "decoded_token": text}


GOOD_ENTRY = {"7": logprob(2, " b", -1.2), "8": logprob(1, " c", -0.3)}


@pytest.mark.parametrize(
    ("completion", "message"),
    [
        (scored([None, {}, {}]), "prompt_logprobs for 3 tokens, not for the 4"),
        (lambda body: httpx.Response(200, json={"choices": [{"index": 0}]}), "no prompt_logprobs"),
        (lambda body: httpx.Response(200, text="not json"), "not JSON"),
        (lambda body: httpx.Response(200, json=[1]), "not an object"),
        (scored([None, {}, {}, {"8": logprob(1, " c")}]), "lack token 7"),
        (scored([None, {}, {}, None]), "scored no token at position 3"),
        (scored([None, {}, {}, {"7": logprob(2, " b")}]), "no top token"),
        (scored([None, {}, {}, {"7": {"logprob": "low", "rank": 1}}]), "without a number"),
        (scored([None, {}, {}, {"7": {"logprob": -1.0}}]), "without a rank"),
        (scored([None, {}, {}, GOOD_ENTRY | {"x": logprob(1, " d")}]), "keyed a prompt logprob"),
    ],
)
async def test_malformed_answers(
    completion: Callable[[dict[str, Any]], httpx.Response], message: str
) -> None:
    async with scripted(completion) as http:
        with pytest.raises(MalformedResponse, match=message):
            await token_shift(http, SCRIPTED, "text", [7])


async def test_a_well_formed_scripted_answer_is_read() -> None:
    async with scripted(scored([None, {}, {}, GOOD_ENTRY])) as http:
        analysis = await token_shift(http, SCRIPTED, "text", [7])
    [token] = analysis.tokens
    assert (token.token, token.rank, token.logprob) == (" b", 2, -1.2)
    assert (token.top_token, token.top_token_id, token.top_logprob) == (" c", 8, -0.3)


async def test_the_servers_own_length_error_is_too_long() -> None:
    error = {
        "object": "error",
        "message": "This model's maximum context length is 4 tokens. However, your prompt "
        "contains 5 input tokens, which exceeds this limit.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    async with scripted(lambda body: httpx.Response(400, json=error)) as http:
        with pytest.raises(ContextTooLong, match="maximum context length is 4"):
            await token_shift(http, SCRIPTED, "text", [7])


# ---------------------------------------------------------------- continue from a prefix


async def test_continue_from_the_first_k_tokens(
    http: httpx.AsyncClient, models: ModelsFile, base_server: FakeServer, chat_server: FakeServer
) -> None:
    base, chat = pair(models)
    chat_server.config.answer_words = 10
    tokens = await answer_tokens(http, chat)
    params = SamplingParams(max_tokens=4, temperature=0, stop=["\n\n"])
    made = await continue_from_prefix(http, base, CONTEXT, ids(tokens), 3, params, ["\nUser:"])
    context_ids = (await tokenize_text(http, base, CONTEXT)).ids
    assert made.prefix_ids == ids(tokens)[:3]
    assert made.prefix_text == "".join(t.token for t in tokens[:3])
    assert made.prompt_ids == context_ids + made.prefix_ids
    assert made.prompt_text == CONTEXT + made.prefix_text
    body = made.body()
    assert body["prompt"] == made.prompt_ids
    assert body["stream"] is True and body["max_tokens"] == 4
    assert body["stop"] == ["\n\n", "\nUser:"]
    base_server.requests.clear()
    events = [event async for event in ModelClient(http).stream(made.request)]
    assert base_server.requests[0]["body"]["prompt"] == made.prompt_text
    continuation = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert continuation and not continuation.startswith(made.prefix_text)


async def test_continue_with_context_ids_and_plain_fields(
    http: httpx.AsyncClient, models: ModelsFile, chat_server: FakeServer
) -> None:
    base, chat = pair(models)
    tokens = await answer_tokens(http, chat)
    context_ids = (await tokenize_text(http, base, CONTEXT)).ids
    made = await continue_from_prefix(
        http, base, context_ids, ids(tokens), 0, {"max_tokens": 3, "stop": "X"}, ["Y"]
    )
    assert made.prefix_ids == [] and made.prefix_text == ""
    assert made.prompt_text == CONTEXT
    assert made.request.sampling == {"max_tokens": 3, "stop": ["X", "Y"]}


async def test_continue_refuses_bad_k_and_chat_models(
    http: httpx.AsyncClient, models: ModelsFile
) -> None:
    base, chat = pair(models)
    with pytest.raises(LensError, match="k must be between 0 and the answer's 2 tokens"):
        await continue_from_prefix(http, base, CONTEXT, [1001, 1002], 3, {})
    with pytest.raises(LensError, match="not a base model"):
        await continue_from_prefix(http, chat, CONTEXT, [1001, 1002], 1, {})


# ---------------------------------------------------------------- rendered prompts


async def test_rendered_chat_prompt_is_what_the_chat_model_sees(
    http: httpx.AsyncClient, models: ModelsFile, chat_server: FakeServer
) -> None:
    _, chat = pair(models)
    messages = [{"role": "user", "content": "Tell me about rivers."}]
    rendered = await rendered_chat_prompt(http, chat, messages)
    # The fake's documented template.
    assert rendered.text == "<|user|>\nTell me about rivers.<|end|>\n<|assistant|>\n"
    usage = (await chat_response(http, chat, "Tell me about rivers.", max_tokens=1))["usage"]
    assert rendered.token_count == usage["prompt_tokens"]
    assert rendered.max_model_len == chat_server.config.max_model_len
