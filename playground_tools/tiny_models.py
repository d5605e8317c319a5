"""Build two tiny random-weight Llama models (base and chat) for running real vLLM in tests.

Run with the vLLM virtualenv's Python (it has torch, transformers and tokenizers; the app's
does not, and the app never imports this module):

    .venv-vllm/bin/python -m playground_tools.tiny_models OUT_DIR

writes OUT_DIR/tiny-base and OUT_DIR/tiny-chat, and OUT_DIR/tiny-lora: a rank-8 PEFT LoRA
adapter of tiny-base on q_proj and v_proj. The models share one byte-level BPE tokenizer; only
the chat one has a chat template. Weights are random (fixed seed) but shaped so generations
are clean: the end-of-sequence token and byte tokens that are not printable text are never
sampled, so answers always run to max_tokens as readable, seed-dependent gibberish.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Bump when anything below changes what is written: cached models are then rebuilt.
VERSION = "3"
MARKER = "tiny-models.json"
BASE_DIR = "tiny-base"
CHAT_DIR = "tiny-chat"
LORA_DIR = "tiny-lora"
SEED = 1234

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
# Role markers of the chat template: single tokens, so the template's cost is visible in counts.
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

# vLLM's CPU attention supports head sizes 64 and 128 only.
MODEL_SHAPE: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
}
VOCAB_SIZE = 512
# See _shape_weights.
CONSTANT_DIM = 4.0
LOGIT_SCALE = 0.15
# The adapter: vLLM's smallest rank above 1, on the attention projections PEFT targets by default.
LORA_RANK = 8
LORA_ALPHA = 16
LORA_TARGETS = ("q_proj", "v_proj")
# Large enough that the adapter's answers differ from the base model's.
LORA_B_SCALE = 0.3

TRAINING_TEXT = """\
The quick brown fox jumps over the lazy dog. A base model continues the text it is given;
a chat model answers messages written by a user, after a template turns them into text.
Once upon a time there was a little robot who wanted to learn how to paint the sea. Every
morning it rolled down to the harbour, watched the boats, and mixed blue with green and grey.
Question: What is the capital of France? Answer: Paris is the capital of France.
User: Write a short poem about the moon. Assistant: Silver lantern, quiet and high,
keeping the watch in the velvet sky.
def add(a, b):
    return a + b
The weather today is sunny with a light breeze from the west, and tomorrow it may rain.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000. Dates: 2024-01-31, 1999-12-31.
She said, "Science is a way of thinking much more than it is a body of knowledge."
To make tea, boil water, warm the pot, add the leaves and wait four minutes before pouring.
"""


def build(out_dir: Path) -> bool:
    """Write both models into out_dir unless a current build is there; True if it built."""
    if is_current(out_dir):
        return False
    out_dir.mkdir(parents=True, exist_ok=True)
    # Build beside the target and move into place, so a crash never leaves half a model.
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".building-") as tmp:
        staging = Path(tmp)
        tokenizer = _make_tokenizer()
        for name, chat in ((BASE_DIR, False), (CHAT_DIR, True)):
            _save_model(staging / name, tokenizer, chat_template=CHAT_TEMPLATE if chat else None)
        _save_adapter(staging / LORA_DIR, base_model=out_dir / BASE_DIR)
        for name in (BASE_DIR, CHAT_DIR, LORA_DIR):
            shutil.rmtree(out_dir / name, ignore_errors=True)
            (staging / name).rename(out_dir / name)
    (out_dir / MARKER).write_text(json.dumps({"version": VERSION}) + "\n", encoding="utf-8")
    return True


def is_current(out_dir: Path) -> bool:
    """True when out_dir holds both models built by this VERSION."""
    try:
        marker = json.loads((out_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        marker.get("version") == VERSION
        and all((out_dir / name / "config.json").is_file() for name in (BASE_DIR, CHAT_DIR))
        and (out_dir / LORA_DIR / "adapter_config.json").is_file()
    )


def _make_tokenizer() -> Any:
    """A byte-level BPE tokenizer trained on TRAINING_TEXT, adding BOS like Llama's."""
    from tokenizers import (  # type: ignore[import-not-found,unused-ignore]
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[PAD, BOS, EOS, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([TRAINING_TEXT] * 4, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A",
        pair=f"{BOS} $A {BOS} $B",
        special_tokens=[(BOS, tokenizer.token_to_id(BOS))],
    )
    return tokenizer


def _save_model(path: Path, tokenizer: Any, chat_template: str | None) -> None:
    """Save a random-weight LlamaForCausalLM and the tokenizer at path."""
    import torch  # type: ignore[import-not-found,unused-ignore]
    from transformers import (  # type: ignore[import-not-found,unused-ignore]
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD
    )
    config = LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        bos_token_id=tokenizer.token_to_id(BOS),
        eos_token_id=tokenizer.token_to_id(EOS),
        pad_token_id=tokenizer.token_to_id(PAD),
        tie_word_embeddings=False,
        **MODEL_SHAPE,
    )
    torch.manual_seed(SEED)  # the same weights for both models and on every machine
    model = LlamaForCausalLM(config).eval()
    _shape_weights(model, never=_unwanted_token_ids(fast))
    model.save_pretrained(path)
    fast.save_pretrained(path)
    if chat_template is not None:
        # Where most tools look for it (newer transformers write chat_template.jinja instead).
        config_path = path / "tokenizer_config.json"
        tokenizer_config = json.loads(config_path.read_text(encoding="utf-8"))
        tokenizer_config["chat_template"] = chat_template
        config_path.write_text(json.dumps(tokenizer_config, indent=2) + "\n", encoding="utf-8")
        (path / "chat_template.jinja").unlink(missing_ok=True)


def _save_adapter(path: Path, base_model: Path) -> None:
    """Save a random rank-8 LoRA adapter of the base model in PEFT's format.

    PEFT names the weights base_model.model.<module>.lora_A/B.weight, with A of shape
    [rank, in_features] and B of shape [out_features, rank]; B is random, not PEFT's zeros,
    so the adapter changes what the model says.
    """
    import torch  # type: ignore[import-not-found,unused-ignore]
    from safetensors.torch import save_file  # type: ignore[import-not-found,unused-ignore]

    hidden = MODEL_SHAPE["hidden_size"]
    head_dim = MODEL_SHAPE["head_dim"]
    outputs = {
        "q_proj": MODEL_SHAPE["num_attention_heads"] * head_dim,
        "v_proj": MODEL_SHAPE["num_key_value_heads"] * head_dim,
    }
    generator = torch.Generator().manual_seed(SEED + 1)
    tensors = {}
    for layer in range(MODEL_SHAPE["num_hidden_layers"]):
        for target in LORA_TARGETS:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{target}"
            a = torch.randn(LORA_RANK, hidden, generator=generator) / hidden**0.5
            b = torch.randn(outputs[target], LORA_RANK, generator=generator) * LORA_B_SCALE
            tensors[f"{prefix}.lora_A.weight"] = a.contiguous()
            tensors[f"{prefix}.lora_B.weight"] = b.contiguous()
    path.mkdir(parents=True)
    save_file(tensors, str(path / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(base_model),
        "r": LORA_RANK,
        "lora_alpha": LORA_ALPHA,
        "lora_dropout": 0.0,
        "target_modules": list(LORA_TARGETS),
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "modules_to_save": None,
    }
    (path / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n", "utf-8")


def _unwanted_token_ids(tokenizer: Any) -> list[int]:
    """Special tokens and tokens that do not decode to printable text on their own."""
    unwanted = []
    for token_id in range(len(tokenizer)):
        text = tokenizer.decode([token_id])
        special = token_id in tokenizer.all_special_ids or text in ROLE_TOKENS
        printable = bool(text) and all(ch.isprintable() or ch in "\n " for ch in text)
        if special or not printable or not text.isascii():
            unwanted.append(token_id)
    return unwanted


def _shape_weights(model: Any, never: list[int]) -> None:
    """Make sampling varied and input-dependent, and the `never` tokens impossible.

    With the default tiny init the residual stream barely changes, so the next token depends
    mostly on the last input token: embeddings of unit scale and output rows of LOGIT_SCALE
    give each context its own, fairly flat distribution (different seeds, different text).
    Llama has no output bias, so embedding dimension 0 is made a constant: that dimension of
    the final hidden state is then positive for every input, and a large negative weight on it
    in a token's output row keeps that token's logit far below every other.
    """
    import torch  # type: ignore[import-not-found,unused-ignore]

    with torch.no_grad():
        embeddings = model.model.embed_tokens.weight
        embeddings.normal_(0.0, 1.0)
        embeddings[:, 0] = CONSTANT_DIM
        head = model.lm_head.weight
        head.normal_(0.0, LOGIT_SCALE)
        head[never, :] = 0.0
        head[never, 0] = -10.0


def main(argv: list[str]) -> int:
    """Command line: build into the directory given."""
    if len(argv) != 1:
        print("usage: python -m playground_tools.tiny_models OUT_DIR", file=sys.stderr)
        return 2
    out_dir = Path(argv[0]).resolve()
    started = time.perf_counter()
    if build(out_dir):
        print(f"tiny models built in {out_dir} in {time.perf_counter() - started:.1f} s")
    else:
        print(f"tiny models already current in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
