"""The shared byte-level BPE tokenizer, and conversations as token ids with assistant labels."""

from __future__ import annotations

from typing import Any

from .settings import BOS, CHAT_TEMPLATE, END_OF_TURN, EOS, PAD, ROLE_TOKENS, VOCAB_SIZE


def train_tokenizer(corpus: list[str], conversations: list[list[dict[str, str]]]) -> Any:
    """A byte-level BPE tokenizer on all the text, adding BOS like Llama's; as a fast tokenizer."""
    from tokenizers import (  # type: ignore[import-not-found,unused-ignore]
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast  # type: ignore[import-not-found,unused-ignore]

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[PAD, BOS, EOS, END_OF_TURN, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = corpus + [m["content"] for messages in conversations for m in messages]
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A {BOS} $B",
        special_tokens=[(BOS, tokenizer.token_to_id(BOS))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[END_OF_TURN, *ROLE_TOKENS],
    )


def chat_example(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """Token ids of a conversation in the chat template, and labels on the assistant's words.

    Built piece by piece to know which tokens the assistant wrote (its words and the
    end-of-turn token), then checked against the template itself, so training sees exactly
    the tokens vLLM will send.
    """
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    ids, labels = [tokenizer.bos_token_id], [-100]
    for message in messages:
        head = tokenizer.encode(f"<|{message['role']}|>\n", add_special_tokens=False)
        body = [*tokenizer.encode(message["content"], add_special_tokens=False), end]
        tail = tokenizer.encode("\n", add_special_tokens=False)
        ids += head + body + tail
        labels += [-100] * len(head)
        labels += body if message["role"] == "assistant" else [-100] * len(body)
        labels += [-100] * len(tail)
    rendered = tokenizer.apply_chat_template(messages, chat_template=CHAT_TEMPLATE, tokenize=False)
    expected = tokenizer.encode(rendered, add_special_tokens=False)
    if ids != expected:
        raise ValueError(f"chat tokens differ from the template's for {messages!r}")
    return ids, labels
