"""--check: greedy samples from a built family, and whether they show the base/chat difference."""

from __future__ import annotations

from pathlib import Path

from .lora import merge_adapter
from .settings import ADAPTER_DIR, BASE_DIR, CHAT_DIR, CHAT_TEMPLATE, THREADS

# Prompts for --check: (label, model, prompt); chat prompts are one user message.
CHECK_PROMPTS = [
    ("base", "The capital of France is"),
    ("base", "What is the capital of France?"),
    ("base", "Once upon a time,"),
    ("base", "Hello!"),
    ("chat", "What is the capital of France?"),
    ("chat", "Hello!"),
    ("chat", "List three animals."),
    ("chat", "What is the capital of Norway?"),  # held out of the instructions: a guess
    ("adapter", "What is the capital of France?"),
    ("adapter", "Hello!"),
    ("adapter", "List three animals."),
    ("adapter", "What is the capital of Norway?"),
]


def check(out_dir: Path, max_new_tokens: int = 40) -> bool:
    """Greedy samples from the family, and whether they show the base/chat difference."""
    import torch  # type: ignore[import-not-found,unused-ignore]
    from transformers import (  # type: ignore[import-not-found,unused-ignore]
        AutoModelForCausalLM,
        AutoTokenizer,
    )

    torch.set_num_threads(THREADS)
    loaded = {}
    for kind, name in (("base", BASE_DIR), ("chat", CHAT_DIR)):
        tokenizer = AutoTokenizer.from_pretrained(out_dir / name)
        model = AutoModelForCausalLM.from_pretrained(out_dir / name).eval()
        loaded[kind] = (tokenizer, model)
    # The adapter as vLLM serves it: the base's weights and stop tokens, the chat template.
    adapter = AutoModelForCausalLM.from_pretrained(out_dir / BASE_DIR).eval()
    merge_adapter(adapter, out_dir / ADAPTER_DIR)
    loaded["adapter"] = (loaded["base"][0], adapter)
    outputs: dict[tuple[str, str], tuple[str, bool]] = {}
    for kind, prompt in CHECK_PROMPTS:
        tokenizer, model = loaded[kind]
        if kind in ("chat", "adapter"):
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                chat_template=CHAT_TEMPLATE,
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )["input_ids"]
        else:
            ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            generated = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False)
        new = generated[0, ids.shape[1] :].tolist()
        stop_ids = model.generation_config.eos_token_id
        stop_ids = stop_ids if isinstance(stop_ids, list) else [stop_ids]
        stopped = bool(new) and new[-1] in stop_ids
        text = tokenizer.decode(new, skip_special_tokens=True)
        outputs[(kind, prompt)] = (text, stopped)
        ending = "[stopped at end token]" if stopped else "[max tokens]"
        print(f"{kind:<7} | {prompt!r} -> {text!r} {ending}")
    verdicts = _verdicts(outputs)
    for description, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}: {description}")
    return all(ok for _, ok in verdicts)


def _verdicts(outputs: dict[tuple[str, str], tuple[str, bool]]) -> list[tuple[str, bool]]:
    """The quality target: base continues text, chat and adapter answer and stop."""
    question = "What is the capital of France?"
    base_fact, _ = outputs[("base", "The capital of France is")]
    base_question, _ = outputs[("base", question)]
    chat_answer, chat_stopped = outputs[("chat", question)]
    chat_hello, hello_stopped = outputs[("chat", "Hello!")]
    adapter_answer, adapter_stopped = outputs[("adapter", question)]
    answer_start = "The capital of France is Paris"
    return [
        ("base continues 'The capital of France is' with Paris", "Paris" in base_fact[:20]),
        (
            "base does not answer the question like an assistant",
            not base_question.strip().startswith(answer_start),
        ),
        (
            "chat answers the question and stops at end-of-turn",
            chat_answer.strip().startswith(answer_start) and chat_stopped,
        ),
        ("chat greets back and stops", chat_hello.strip().startswith("Hello") and hello_stopped),
        (
            "adapter answers the question with Paris and stops at end-of-turn",
            "Paris" in adapter_answer and adapter_stopped,
        ),
    ]
