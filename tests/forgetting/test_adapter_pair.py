"""A run of an adapter beside its base is compared with that base without being asked."""

from __future__ import annotations

import httpx
import pytest

from app.config import ModelConfig, ModelKind, ModelsFile
from playground_tools.fake_vllm import FakeServer
from tests.forgetting.helpers import finished_run, make_scored_set, script


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
