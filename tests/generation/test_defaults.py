"""The default-model check: why the real pair cannot be used, in words a user can act on."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from app.generation import defaults


def test_offline_hub_is_reported_plainly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The app's venv has huggingface_hub (via datasets): the same call the check makes.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    problem = defaults.hub_problem(Path(sys.executable), ["Qwen/Qwen2.5-0.5B"])
    assert problem == (
        "Qwen/Qwen2.5-0.5B could not be fetched: the Hugging Face hub cannot be reached and "
        "they are not in the local cache."
    )


def fake_python(tmp_path: Path, stderr: str, code: int) -> Path:
    """An executable that ignores its arguments, prints `stderr` and exits with `code`."""
    path = tmp_path / "python"
    path.write_text(f"#!/bin/sh\nprintf '%s\\n' '{stderr}' >&2\nexit {code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_a_reachable_hub_is_no_problem(tmp_path: Path) -> None:
    assert defaults.hub_problem(fake_python(tmp_path, "", 0), ["a/b"]) is None


def test_gated_models_point_at_the_token(tmp_path: Path) -> None:
    python = fake_python(tmp_path, "huggingface_hub.errors.GatedRepoError: 403 Client Error", 1)
    problem = defaults.hub_problem(python, ["meta-llama/Llama-2-7b-hf"])
    assert problem is not None and "HF_TOKEN" in problem


def test_other_errors_are_cut_at_a_word(tmp_path: Path) -> None:
    python = fake_python(tmp_path, "RuntimeError: " + "word " * 80, 1)
    problem = defaults.hub_problem(python, ["a/b"])
    assert problem is not None
    assert problem.startswith("a/b could not be fetched: RuntimeError: word word")
    assert problem.endswith(" ….") and "wor …" not in problem


def test_demo_models_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_DEMO_MODELS", "/srv/demo")
    assert defaults.demo_models_dir() == Path("/srv/demo")
    monkeypatch.delenv("PLAYGROUND_DEMO_MODELS")
    assert defaults.demo_models_dir() == Path(os.path.expanduser("~/.cache/playground-demo-models"))


def test_the_demo_adapter_as_the_app_knows_it_matches_the_trainer() -> None:
    # The app does not import the trainer (tooling), so it repeats what it needs to serve it.
    from playground_tools import demo_models

    assert defaults.DEMO_ADAPTER_DIR == demo_models.ADAPTER_DIR
    assert demo_models.LORA.rank == defaults.DEMO_ADAPTER_RANK
    assert defaults.DEMO_CHAT_TEMPLATE == demo_models.CHAT_TEMPLATE
    assert defaults.DEMO_NARROW_DIR == demo_models.NARROW_DIR
    assert defaults.DEMO_NARROW_ADAPTER_DIR == demo_models.NARROW_ADAPTER_DIR


def test_the_narrow_demo_variants_are_a_chat_model_and_an_adapter_of_demo_chat() -> None:
    models = defaults.demo_models(Path("/demo"))
    assert [m.name for m in models.models] == [
        "demo-base", "demo-chat", "demo-adapter", "demo-narrow", "demo-narrow-lora",
    ]  # fmt: skip
    narrow, narrow_lora = models.get("demo-narrow"), models.get("demo-narrow-lora")
    assert narrow is not None and narrow.launched and narrow.source == "/demo/demo-narrow"
    assert narrow_lora is not None and narrow_lora.adapter_of == "demo-chat"
    # demo-chat's own tokenizer has the template, so none travels with the adapter's requests.
    assert narrow_lora.chat_template is None
    assert [a.name for a in models.adapters_of("demo-chat")] == ["demo-narrow-lora"]
