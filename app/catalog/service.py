"""Use cases of the model catalog: list models with their parents, add an adapter at runtime."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import httpx

from app.catalog.schemas import AdapterInput
from app.config import ModelConfig, ModelsFile
from app.errors import Conflict, InvalidInput
from app.generation.adapters import load_adapter, served_parents


class ModelsHolder(Protocol):
    """Where the app keeps its current models (AppState): replaced, never mutated."""

    models: ModelsFile


@dataclass(frozen=True)
class CatalogRow:
    """One model as the catalog shows it."""

    model: ModelConfig
    parent: str | None


class CatalogService:
    """The app's models: read per request from the holder, so an added adapter shows at once."""

    def __init__(self, holder: ModelsHolder, http: httpx.AsyncClient) -> None:
        self.holder = holder
        self.http = http

    async def rows(self) -> list[CatalogRow]:
        """Every model with its parent: from the models file, else from its server's /v1/models
        (one quick request per server; a server that is down just reports no parents)."""
        models = self.holder.models
        servers = {m.url: m for m in models.models if m.url and not m.is_adapter}
        found = await asyncio.gather(*(served_parents(self.http, m) for m in servers.values()))
        parents_at = dict(zip(servers, found, strict=True))
        rows = []
        for model in models.models:
            parent = model.adapter_of
            served_parent = parents_at.get(model.url, {}).get(model.model) if model.url else None
            if parent is None and served_parent is not None:
                # Name the entry that serves the parent, if there is one.
                entry = next(
                    (m for m in models.models if m.url == model.url and m.model == served_parent),
                    None,
                )
                parent = entry.name if entry else served_parent
            rows.append(CatalogRow(model, parent))
        return rows

    async def add_adapter(self, data: AdapterInput) -> ModelConfig:
        """Load the adapter on its base model's server, then add it to the app's models."""
        models = self.holder.models
        self._check_new(models, data.name)
        base = models.get(data.base)
        if base is None:
            raise InvalidInput(f"base: no model named {data.base!r}")
        if base.is_adapter:
            raise InvalidInput(
                f"base: {data.base!r} is itself an adapter (of {base.adapter_of!r}); name a model"
            )
        if base.url is None:
            raise InvalidInput(f"base: {data.base!r} has no running server")
        adapter = ModelConfig(
            name=data.name, kind=data.kind, adapter_of=base.name, source=data.path
        )
        await load_adapter(self.http, base, adapter.model, data.path)
        # Re-read: another request may have changed the models while the server loaded it.
        models = self.holder.models
        self._check_new(models, data.name)
        updated = models.with_model(adapter)
        self.holder.models = updated
        added = updated.get(adapter.name)
        assert added is not None
        return added

    @staticmethod
    def _check_new(models: ModelsFile, name: str) -> None:
        if models.get(name) is not None:
            raise Conflict(f"a model named {name!r} already exists")
