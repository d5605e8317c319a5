"""Shared by the catalog tests: an app client for given models, and an adapter directory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from app.config import ModelsFile, Settings
from app.main import create_app


@asynccontextmanager
async def app_client(settings: Settings, models: ModelsFile) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app built from these settings and models, lifespan run."""
    async with LifespanManager(create_app(settings, models)) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def make_adapter(directory: Path, rank: int = 8) -> str:
    """A directory with a PEFT adapter_config.json (all the fake server checks)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank}))
    return str(directory)
