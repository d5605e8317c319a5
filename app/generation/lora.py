"""LoRA flags for a launched vLLM server: which adapters it serves, and the rank it must allow."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

from app.config import LORA_RANKS, ConfigError, ModelConfig

ADAPTER_CONFIG = "adapter_config.json"
# Enough to fetch one small file from the hub, or to learn that it cannot be reached.
HUB_FETCH_SECONDS = 60
# Set on a LoRA server so /v1/load_lora_adapter exists (vLLM registers it only then).
RUNTIME_UPDATING_ENV = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"


def round_rank(rank: int) -> int:
    """The smallest rank vLLM accepts for --max-lora-rank that is at least `rank`."""
    for allowed in LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise ConfigError(f"LoRA rank {rank} is above the largest vLLM allows ({LORA_RANKS[-1]})")


def lora_enabled(model: ModelConfig, adapters: Sequence[ModelConfig]) -> bool:
    """Whether a launched server gets --enable-lora: as configured, else when it has adapters."""
    return bool(adapters) if model.lora is None else model.lora


def adapter_config_path(source: str, vllm_python: Path) -> Path:
    """The adapter_config.json of a local adapter directory, or of a hub id (fetched into the
    Hugging Face cache with vLLM's Python, as vLLM itself would fetch the adapter)."""
    local = Path(source).expanduser()
    if local.is_dir():
        return local / ADAPTER_CONFIG
    script = (
        "import sys\n"
        "from huggingface_hub import hf_hub_download\n"
        "print(hf_hub_download(sys.argv[1], sys.argv[2]))\n"
    )
    try:
        result = subprocess.run(  # noqa: S603 (our own interpreter and script)
            [str(vllm_python), "-c", script, source, ADAPTER_CONFIG],
            capture_output=True,
            text=True,
            timeout=HUB_FETCH_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot fetch {ADAPTER_CONFIG} of adapter {source}: {exc}") from exc
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["unknown error"])[-1][:200]
        raise ConfigError(
            f"adapter source {source} is neither a directory nor fetchable from the hub: {last}"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def adapter_rank(adapter: ModelConfig, vllm_python: Path) -> int:
    """The rank `r` in an adapter's adapter_config.json (PEFT's format)."""
    assert adapter.source is not None
    path = adapter_config_path(adapter.source, vllm_python)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"adapter {adapter.name}: {path} not found (is {adapter.source} a PEFT LoRA adapter?)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"adapter {adapter.name}: cannot read {path}: {exc}") from exc
    rank = config.get("r") if isinstance(config, dict) else None
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ConfigError(f"adapter {adapter.name}: {path} gives no LoRA rank `r`")
    return rank


def max_lora_rank(
    model: ModelConfig, adapters: Sequence[ModelConfig], vllm_python: Path
) -> int | None:
    """--max-lora-rank for a server: its adapters' largest rank rounded up to one vLLM allows,
    or the configured max_lora_rank (which must not be below an adapter's); None leaves vLLM's
    default (16)."""
    ranks = {a.name: adapter_rank(a, vllm_python) for a in adapters}
    if model.max_lora_rank is not None:
        too_big = {name: r for name, r in ranks.items() if r > model.max_lora_rank}
        if too_big:
            listed = ", ".join(f"{name} (r={r})" for name, r in too_big.items())
            raise ConfigError(
                f"{model.name}: max_lora_rank = {model.max_lora_rank} is below the rank of "
                f"its adapter {listed}"
            )
        return model.max_lora_rank
    return round_rank(max(ranks.values())) if ranks else None


def lora_args(model: ModelConfig, adapters: Sequence[ModelConfig], rank: int | None) -> list[str]:
    """The vLLM flags that serve these adapters beside the model (empty when LoRA is off)."""
    if not lora_enabled(model, adapters):
        return []
    args = ["--enable-lora"]
    if adapters:
        args += ["--lora-modules", *(f"{a.model}={a.source}" for a in adapters)]
    if rank is not None:
        args += ["--max-lora-rank", str(rank)]
    return args
