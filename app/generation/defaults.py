"""The models used when no models file is given: a real base/instruct pair, or an offline demo."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from app.config import ModelConfig, ModelKind, ModelsFile

DEFAULT_BASE = "Qwen/Qwen2.5-0.5B"
DEFAULT_CHAT = "Qwen/Qwen2.5-0.5B-Instruct"
DEFAULT_MAX_MODEL_LEN = 4096
# Enough to learn whether the hub answers; a failed fetch is then clear within this time.
HUB_CHECK_SECONDS = 60

# The demo family's LoRA adapter (built beside demo-base and demo-chat; the models file's
# `adapter_of` serves it on demo-base's server). The values mirror playground_tools.demo_models,
# which the app does not import; tests/generation/test_defaults.py checks that they agree.
DEMO_ADAPTER_DIR = "demo-adapter"
# demo-chat fine-tuned on one narrow task (reversing word lists), fully and as a LoRA adapter
# served by demo-chat's server (whose tokenizer has the template, so none travels with it).
DEMO_NARROW_DIR = "demo-narrow"
DEMO_NARROW_ADAPTER_DIR = "demo-narrow-lora"
# vLLM's --max-lora-rank must be at least this (and takes 1, 8, 16, 32, 64, ...).
DEMO_ADAPTER_RANK = 16
# demo-base has no chat template and vLLM renders an adapter's chat with the base's tokenizer,
# so chat requests to the adapter carry this one (the server needs --trust-request-chat-template).
DEMO_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

DEMO_NOTICE = (
    "Offline demo models: {reason} These tiny models were trained on this machine in a few "
    "minutes from a small built-in corpus (base) and instruction pairs (chat, and a LoRA adapter "
    "of the base); demo-narrow and demo-narrow-lora are the chat model fine-tuned on reversing "
    "word lists, to show what a narrow fine-tune forgets. They show how a base model continues "
    "text while its chat sibling and its adapter answer, not what real models can do."
)


@dataclass(frozen=True)
class ModelChoice:
    """The models to serve, and a notice to show on every page (None when nothing to say)."""

    models: ModelsFile
    notice: str | None = None


def default_models() -> ModelsFile:
    """The real default pair, each launched from the Hugging Face hub."""
    return ModelsFile(
        models=[
            ModelConfig(
                name="qwen2.5-0.5b", kind=ModelKind.BASE, source=DEFAULT_BASE,
                max_model_len=DEFAULT_MAX_MODEL_LEN,
            ),
            ModelConfig(
                name="qwen2.5-0.5b-instruct", kind=ModelKind.CHAT, source=DEFAULT_CHAT,
                max_model_len=DEFAULT_MAX_MODEL_LEN,
            ),
        ]
    )  # fmt: skip


def demo_models_dir() -> Path:
    """Where the demo pair is cached: $PLAYGROUND_DEMO_MODELS, else ~/.cache (shared with the
    tests, so it is built once per machine)."""
    configured = os.environ.get("PLAYGROUND_DEMO_MODELS")
    return Path(configured) if configured else Path.home() / ".cache" / "playground-demo-models"


def demo_models(directory: Path) -> ModelsFile:
    """The built-in demo family (base, chat, a LoRA adapter of the base, and the chat model's
    narrow fine-tune and narrow LoRA adapter), built into `directory` by
    playground_tools.demo_models."""
    return ModelsFile(
        models=[
            ModelConfig(
                name="demo-base", kind=ModelKind.BASE, source=str(directory / "demo-base"),
                model="demo-base", max_model_len=512,
                description="tiny base model trained locally on the built-in corpus",
            ),
            ModelConfig(
                name="demo-chat", kind=ModelKind.CHAT, source=str(directory / "demo-chat"),
                model="demo-chat", max_model_len=512,
                description="the demo base model fine-tuned on built-in instruction pairs",
            ),
            # Served by demo-base's server; vLLM renders its chats with demo-base's tokenizer,
            # which has no template, so the template travels with each request.
            ModelConfig(
                name="demo-adapter", kind=ModelKind.CHAT, adapter_of="demo-base",
                source=str(directory / DEMO_ADAPTER_DIR), model="demo-adapter",
                chat_template=DEMO_CHAT_TEMPLATE,
                description="a LoRA adapter of the demo base model, trained on built-in "
                "instruction pairs",
            ),
            ModelConfig(
                name="demo-narrow", kind=ModelKind.CHAT, source=str(directory / DEMO_NARROW_DIR),
                model="demo-narrow", max_model_len=512,
                description="demo-chat fully fine-tuned on reversing word lists only "
                "(it forgets facts)",
            ),
            # Served by demo-chat's server, with demo-chat's tokenizer and chat template.
            ModelConfig(
                name="demo-narrow-lora", kind=ModelKind.CHAT, adapter_of="demo-chat",
                source=str(directory / DEMO_NARROW_ADAPTER_DIR), model="demo-narrow-lora",
                description="a LoRA adapter of demo-chat trained on reversing word lists only",
            ),
        ]
    )  # fmt: skip


def hub_problem(vllm_python: Path, repo_ids: list[str]) -> str | None:
    """None when the models can be fetched (or are cached); otherwise why not, in one line."""
    script = (
        "import sys\n"
        "from huggingface_hub import snapshot_download\n"
        "for repo in sys.argv[1:]:\n"
        "    snapshot_download(repo, allow_patterns=['config.json'])\n"
    )
    try:
        result = subprocess.run(  # noqa: S603 (our own interpreter and script)
            [str(vllm_python), "-c", script, *repo_ids],
            capture_output=True,
            text=True,
            timeout=HUB_CHECK_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"the Hugging Face hub did not answer within {HUB_CHECK_SECONDS} s."
    if result.returncode == 0:
        return None
    return f"{', '.join(repo_ids)} could not be fetched: {_why_not_fetched(result.stderr)}."


def _why_not_fetched(stderr: str) -> str:
    """huggingface_hub's last error line, in a few plain words where it is a known case."""
    last = (stderr.strip().splitlines() or ["unknown error"])[-1]
    offline_markers = ("LocalEntryNotFoundError", "internet connection", "ConnectError", "offline")
    if any(marker in last for marker in offline_markers):
        return "the Hugging Face hub cannot be reached and they are not in the local cache"
    if "GatedRepoError" in last or "401" in last or "403" in last:
        return "the hub refused access (set HF_TOKEN for gated models)"
    # Otherwise the error itself, cut at a word boundary.
    return last if len(last) <= 200 else last[:200].rsplit(" ", 1)[0] + " …"


def build_demo_pair(vllm_python: Path, directory: Path, force: bool = False) -> None:
    """Build (or reuse the cached) demo pair with vLLM's Python, which has torch."""
    command = [str(vllm_python), "-m", "playground_tools.demo_models", str(directory)]
    if force:
        command.append("--force")
    root = Path(__file__).resolve().parents[2]
    subprocess.run(command, check=True, cwd=root)  # noqa: S603 (our own command line)
