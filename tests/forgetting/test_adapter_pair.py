"""A run of an adapter beside its base is compared with that base without being asked."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.cli import main
from app.config import ModelConfig, ModelKind, ModelsFile
from playground_tools.fake_vllm import FakeServer
from tests.forgetting.helpers import ITEMS, finished_run, make_scored_set, script
from tests.support import ThreadedServer


@pytest.fixture
def models(models: ModelsFile, chat_server: FakeServer) -> ModelsFile:
    """The usual models and "narrow", a LoRA adapter of chat (served by chat's fake)."""
    chat_server.config.lora_modules = {"narrow": "/adapters/narrow"}
    adapter = ModelConfig(
        name="narrow", kind=ModelKind.CHAT, adapter_of="chat", source="/adapters/narrow"
    )
    return models.with_model(adapter)


async def test_an_adapter_run_reports_against_its_base(
    client: httpx.AsyncClient, base_server: FakeServer, chat_server: FakeServer
) -> None:
    """On the fake, the adapter answers like its parent: no difference, and not worse."""
    script(base_server, chat_server)
    await make_scored_set(client)
    run_id = await finished_run(client, models=["narrow", "chat"])
    report = (await client.get(f"/api/v1/runs/{run_id}/report")).json()
    assert report["pair"] == {"original": "chat", "tuned": "narrow", "chosen_by": "adapter"}
    assert report["items"]["scored"] == 7
    assert report["difference"]["estimate"] == 0.0
    assert report["difference"]["significantly_worse"] is False
    assert report["forgot"] == [] == report["learned"]


def test_check_of_an_adapter_run_needs_no_pair(
    app: FastAPI, capsys: pytest.CaptureFixture[str],
    base_server: FakeServer, chat_server: FakeServer,
) -> None:  # fmt: skip
    script(base_server, chat_server)
    with ThreadedServer(app) as server:
        import_args = ["--url", server.url]
        body = {"name": "facts", "items": ITEMS}
        assert httpx.post(f"{server.url}/api/v1/prompt-sets", json=body).status_code == 201
        code = main(
            ["check", "--set", "facts", "--original", "chat", "--tuned", "narrow", "--poll",
             "0.05", *import_args]
        )  # fmt: skip
        assert code == 0, capsys.readouterr().err
        capsys.readouterr()
        assert main(["check", "--run", "1", *import_args]) == 0
        out = capsys.readouterr().out
        assert "difference (narrow - chat): +0.000" in out
        assert "verdict: no significant difference" in out
        # A run of two unrelated models needs the pair named.
        run = httpx.post(
            f"{server.url}/api/v1/runs",
            json={"prompt_set": "facts", "models": ["base", "chat"], "params": {"seed": 1}},
        ).json()
        assert main(["check", "--run", str(run["id"]), "--poll", "0.05", *import_args]) == 2
        assert "give --original and --tuned" in capsys.readouterr().err
