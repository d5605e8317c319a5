"""`playground adapters add`: calls a running app's JSON API, one line out, non-zero on failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from app.cli import main
from playground_tools.fake_vllm import FakeServer
from tests.support import ThreadedServer


@pytest.fixture
def app_url(app: FastAPI) -> Iterator[str]:
    """The test app served over real HTTP."""
    with ThreadedServer(app) as server:
        yield server.url


@pytest.fixture
def adapter_path(tmp_path: Path) -> str:
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    return str(tmp_path)


def test_adds_an_adapter_and_says_so(
    app_url: str,
    base_server: FakeServer,
    adapter_path: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base_server.config.runtime_lora_updating = True
    code = main(["adapters", "add", "tuned", adapter_path, "--base", "base", "--url", app_url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == (
        f"added tuned (chat), a LoRA adapter of base, served at {base_server.base_url}\n"
    )
    assert base_server.config.lora_modules == {"tuned": adapter_path}


def test_a_refusal_is_one_line_and_exit_1(
    app_url: str, adapter_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["adapters", "add", "tuned", adapter_path, "--base", "nope", "--kind", "base",
         "--url", app_url]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err == "playground: adapter tuned not added (HTTP 422): base: no model named 'nope'\n"


def test_no_playground_running_is_exit_1(
    adapter_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["adapters", "add", "t", adapter_path, "--base", "b", "--url", "http://127.0.0.1:9"]
    )
    assert code == 1
    assert capsys.readouterr().err.startswith(
        "playground: cannot reach the playground at http://127.0.0.1:9:"
    )
