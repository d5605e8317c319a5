"""Launched vLLM servers with LoRA: exact flags, the rank, and clear errors for bad adapters."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from app.config import ConfigError, ModelConfig, ModelKind, ModelsFile
from app.generation import lora
from app.generation.launcher import LaunchSettings, LocalServers, LoraPlan

# Stands in for vLLM's Python: logs its flags and whether runtime LoRA updating is on, then
# serves the fake with the --lora-modules it was given (the fake reads the same variable).
SHIM = """#!{python}
import os, sys
args = sys.argv[3:]
runtime = os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING")
open(os.environ["FAKE_VLLM_ARGS_LOG"], "a").write(" ".join(args) + f" RUNTIME={{runtime}}\\n")
keep = ("--port", "--served-model-name", "--lora-modules")
passed, i = [], 0
while i < len(args):
    if args[i] in keep:
        passed.append(args[i]); i += 1
        while i < len(args) and not args[i].startswith("--"):
            passed.append(args[i]); i += 1
    else:
        i += 1
from playground_tools import fake_vllm
fake_vllm.main(passed)
"""
PYTHON = Path("/venv-vllm/bin/python")
PREFIX = [str(PYTHON), "-m", "vllm.entrypoints.openai.api_server"]


def adapter_dir(tmp_path: Path, name: str, rank: int) -> Path:
    path = tmp_path / name
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank}))
    return path


def servers(tmp_path: Path, python: Path = PYTHON) -> LocalServers:
    settings = LaunchSettings(vllm_python=python, log_dir=tmp_path / "logs", startup_timeout=30)
    return LocalServers(settings, progress=lambda _line: None)


def family(tmp_path: Path, *ranks: int, **parent: object) -> ModelsFile:
    base = ModelConfig.model_validate(
        {"name": "base", "kind": "base", "source": "/models/base", **parent}
    )
    adapters = [
        ModelConfig(
            name=f"ad{i}",
            kind=ModelKind.CHAT,
            adapter_of="base",
            source=str(adapter_dir(tmp_path, f"ad{i}", rank)),
        )
        for i, rank in enumerate(ranks)
    ]
    return ModelsFile(models=[base, *adapters])


def command(tmp_path: Path, models: ModelsFile) -> list[str]:
    launcher = servers(tmp_path)
    plan = launcher.lora_plan(models.models[0], models)
    return launcher.command(models.models[0], 1234, gpu=False, share=1.0, plan=plan)


def test_a_parent_serves_its_adapters_with_the_rank_they_need(tmp_path: Path) -> None:
    models = family(tmp_path, 8, 12)
    assert command(tmp_path, models) == [
        *PREFIX,
        "--model", "/models/base", "--served-model-name", "/models/base",
        "--host", "127.0.0.1", "--port", "1234", "--enforce-eager",
        "--enable-lora",
        "--lora-modules", f"ad0={tmp_path / 'ad0'}", f"ad1={tmp_path / 'ad1'}",
        "--max-lora-rank", "16",
    ]  # fmt: skip


def test_a_model_without_adapters_gets_no_lora_unless_asked(tmp_path: Path) -> None:
    plain = command(tmp_path, family(tmp_path))
    assert plain == [
        *PREFIX,
        "--model", "/models/base", "--served-model-name", "/models/base",
        "--host", "127.0.0.1", "--port", "1234", "--enforce-eager",
    ]  # fmt: skip
    asked = command(tmp_path, family(tmp_path, lora=True, vllm_args=["--max-loras", "4"]))
    assert asked[-4:] == ["--enforce-eager", "--enable-lora", "--max-loras", "4"]
    ranked = command(tmp_path, family(tmp_path, lora=True, max_lora_rank=64))
    assert ranked[-4:] == ["--enforce-eager", "--enable-lora", "--max-lora-rank", "64"]


def test_a_configured_rank_below_an_adapters_is_refused(tmp_path: Path) -> None:
    models = family(tmp_path, 32, max_lora_rank=16)
    with pytest.raises(ConfigError, match=r"max_lora_rank = 16 is below .* ad0 \(r=32\)"):
        command(tmp_path, models)
    assert command(tmp_path, family(tmp_path / "x", 8, max_lora_rank=32))[-2:] == [
        "--max-lora-rank",
        "32",
    ]


@pytest.mark.parametrize(("rank", "allowed"), [(1, 1), (2, 8), (8, 8), (300, 320), (512, 512)])
def test_ranks_round_up_to_what_vllm_allows(rank: int, allowed: int) -> None:
    assert lora.round_rank(rank) == allowed


def test_a_rank_above_vllms_largest_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="LoRA rank 600 is above the largest vLLM allows"):
        lora.round_rank(600)


def test_an_adapter_without_its_config_fails_before_any_server_starts(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    models = ModelsFile(
        models=[
            ModelConfig(name="base", kind=ModelKind.BASE, source="/models/base"),
            ModelConfig(
                name="bad", kind=ModelKind.CHAT, adapter_of="base", source=str(tmp_path / "empty")
            ),
        ]
    )
    launcher = servers(tmp_path, python=Path(sys.executable))
    with pytest.raises(ConfigError, match=r"adapter bad: .*adapter_config\.json not found"):
        launcher.start(models)
    assert launcher.servers == []


def test_a_hub_adapter_that_cannot_be_fetched_says_so(tmp_path: Path) -> None:
    offline = tmp_path / "python"
    offline.write_text("#!/bin/sh\necho 'LocalEntryNotFoundError: offline' >&2\nexit 1\n")
    offline.chmod(0o755)
    models = ModelsFile(
        models=[
            ModelConfig(name="base", kind=ModelKind.BASE, source="/models/base"),
            ModelConfig(name="hub", kind=ModelKind.CHAT, adapter_of="base", source="org/adapter"),
        ]
    )
    with pytest.raises(ConfigError) as caught:
        servers(tmp_path, python=offline).lora_plan(models.models[0], models)
    assert str(caught.value) == (
        "adapter source org/adapter is neither a directory nor fetchable from the hub: "
        "LocalEntryNotFoundError: offline"
    )


def test_a_hub_adapter_is_read_from_where_the_hub_client_put_it(tmp_path: Path) -> None:
    fetched = adapter_dir(tmp_path, "snapshot", 64)
    hub = tmp_path / "python"
    hub.write_text(f"#!/bin/sh\necho {fetched / 'adapter_config.json'}\n")
    hub.chmod(0o755)
    models = ModelsFile(
        models=[
            ModelConfig(name="base", kind=ModelKind.BASE, source="/models/base"),
            ModelConfig(name="hub", kind=ModelKind.CHAT, adapter_of="base", source="org/adapter"),
        ]
    )
    plan = servers(tmp_path, python=hub).lora_plan(models.models[0], models)
    assert plan == LoraPlan(models.adapters_of("base"), 64)


def test_started_adapters_are_served_by_their_parent_with_runtime_loading_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shim = tmp_path / "python"
    shim.write_text(SHIM.format(python=sys.executable))
    shim.chmod(0o755)
    monkeypatch.setenv("FAKE_VLLM_ARGS_LOG", str(tmp_path / "args.log"))
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    monkeypatch.delenv("VLLM_ALLOW_RUNTIME_LORA_UPDATING", raising=False)
    plain = ModelConfig(name="plain", kind=ModelKind.CHAT, source="/models/plain")
    models = ModelsFile(models=[*family(tmp_path, 8).models, plain])
    launcher = servers(tmp_path, python=shim)
    try:
        started = launcher.start(models)
        base, adapter = started.get("base"), started.get("ad0")
        assert base is not None and adapter is not None and base.url is not None
        assert adapter.url == base.url
        cards = httpx.get(f"{base.url}/models").json()["data"]
        assert [(c["id"], c["parent"]) for c in cards] == [
            ("/models/base", None),
            ("ad0", "/models/base"),
        ]
    finally:
        launcher.close()
    logged = (tmp_path / "args.log").read_text().splitlines()
    assert logged[0].endswith("--max-lora-rank 8 RUNTIME=True")
    assert "--enable-lora" not in logged[1] and logged[1].endswith("RUNTIME=None")
