"""The shared fixtures, with a third model (a second name on the base server)."""

from __future__ import annotations

import pytest

from app.config import ModelConfig, ModelKind, ModelsFile
from playground_tools.fake_vllm import FakeServer
from tests.conftest import DEAD_URL


def _models(base: FakeServer, chat: FakeServer) -> ModelsFile:
    return ModelsFile(
        models=[
            ModelConfig(name="base", kind=ModelKind.BASE, url=base.base_url, model="tiny-base"),
            ModelConfig(name="chat", kind=ModelKind.CHAT, url=chat.base_url, model="tiny-chat"),
            ModelConfig(name="base-2", kind=ModelKind.BASE, url=base.base_url, model="tiny-base"),
            ModelConfig(name="down", kind=ModelKind.CHAT, url=DEAD_URL, model="nothing"),
        ]
    )


@pytest.fixture
def models(base_server: FakeServer, chat_server: FakeServer) -> ModelsFile:
    """Base, chat, a second base name, and a model whose server is down."""
    return _models(base_server, chat_server)
