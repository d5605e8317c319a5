"""The LoRA adapter: wrapping a frozen model's linears, saving them in PEFT format, merging."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .settings import CHAT_TEMPLATE, END_OF_TURN, LORA, MODEL_SHAPE, SEED, Lora


def add_lora(model: Any, lora: Lora) -> dict[str, Any]:
    """Freeze model and wrap its target linears with LoRA; {PEFT module path: wrapper}.

    Each wrapper adds (alpha / r) * B(A(x)) to the frozen layer, with A (r x in) drawn like
    PEFT's (Kaiming-uniform) and B (out x r) zero, so training starts from the base exactly.
    """
    import torch  # type: ignore[import-not-found,unused-ignore]

    class LoraLinear(torch.nn.Module):  # type: ignore[misc,unused-ignore]
        def __init__(self, base: Any) -> None:
            super().__init__()
            self.base = base
            self.scaling = lora.alpha / lora.rank
            self.lora_A = torch.nn.Parameter(torch.empty(lora.rank, base.in_features))
            self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, lora.rank))
            torch.nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

        def forward(self, x: Any) -> Any:
            update = torch.nn.functional.linear(
                torch.nn.functional.linear(x, self.lora_A), self.lora_B
            )
            return self.base(x) + update * self.scaling

    model.requires_grad_(False)
    torch.manual_seed(SEED)
    wrapped: dict[str, Any] = {}
    for name, module in list(model.named_modules()):
        for target in lora.targets:
            base = getattr(module, target, None)
            if isinstance(base, torch.nn.Linear):
                wrapper = LoraLinear(base)
                setattr(module, target, wrapper)
                wrapped[f"base_model.model.{name}.{target}"] = wrapper
    if not wrapped:
        raise ValueError(f"no LoRA target among {lora.targets} in the model")
    return wrapped


def save_adapter(layers: dict[str, Any], tokenizer: Any, path: Path, base_dir: Path) -> None:
    """Save a PEFT-format LoRA adapter (what vLLM's --lora-modules loads), with a tokenizer.

    vLLM serves the adapter with the base model's tokenizer and ignores the one here; it is
    saved (with the chat template) for tools that load the adapter on its own, such as PEFT.
    """
    from safetensors.torch import save_file  # type: ignore[import-not-found,unused-ignore]

    path.mkdir(parents=True)
    tensors = {}
    for prefix, layer in layers.items():
        tensors[f"{prefix}.lora_A.weight"] = layer.lora_A.detach().contiguous()
        tensors[f"{prefix}.lora_B.weight"] = layer.lora_B.detach().contiguous()
    weights = path / "adapter_model.safetensors"
    save_file(tensors, str(weights), metadata={"format": "pt"})
    weights.chmod(0o644)  # readable by a server running as another user, like the models
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        # The name it is served beside; the directory may move with the cache.
        "base_model_name_or_path": base_dir.name,
        "r": LORA.rank,
        "lora_alpha": LORA.alpha,
        "target_modules": sorted(LORA.targets),
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "modules_to_save": None,
        "use_rslora": False,
        "use_dora": False,
        "init_lora_weights": True,
        "inference_mode": True,
    }
    (path / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n", "utf-8")
    tokenizer.save_pretrained(path)
    config_path = path / "tokenizer_config.json"
    tokenizer_config = json.loads(config_path.read_text(encoding="utf-8"))
    tokenizer_config["model_max_length"] = MODEL_SHAPE["max_position_embeddings"]
    tokenizer_config["eos_token"] = END_OF_TURN
    tokenizer_config["chat_template"] = CHAT_TEMPLATE
    config_path.write_text(json.dumps(tokenizer_config, indent=2) + "\n", encoding="utf-8")
    (path / "chat_template.jinja").unlink(missing_ok=True)


def merge_adapter(model: Any, adapter_dir: Path) -> None:
    """Add a saved LoRA adapter's scaled B @ A into the model's weights, in place."""
    import torch  # type: ignore[import-not-found,unused-ignore]
    from safetensors.torch import load_file  # type: ignore[import-not-found,unused-ignore]

    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    scaling = config["lora_alpha"] / config["r"]
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    modules = dict(model.named_modules())
    with torch.no_grad():
        for key, lora_a in tensors.items():
            if not key.endswith(".lora_A.weight"):
                continue
            prefix = key.removesuffix(".lora_A.weight")
            lora_b = tensors[f"{prefix}.lora_B.weight"]
            layer = modules[prefix.removeprefix("base_model.model.")]
            layer.weight += scaling * (lora_b @ lora_a)
