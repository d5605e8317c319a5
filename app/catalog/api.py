"""JSON API of the model catalog: list the models, add a LoRA adapter."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from app.catalog.schemas import AdapterInput, ModelOut
from app.catalog.service import CatalogRow, CatalogService
from app.web.deps import State
from app.web.guards import require_json


def get_catalog(state: State) -> CatalogService:
    """The catalog over the app's current models and shared HTTP client."""
    return CatalogService(state, state.http)


CatalogDep = Annotated[CatalogService, Depends(get_catalog)]

router = APIRouter(prefix="/api/v1", tags=["models"])


def model_out(row: CatalogRow) -> ModelOut:
    """A catalog row as the API shows it (never its API key)."""
    m = row.model
    return ModelOut(
        name=m.name,
        kind=m.kind.value,
        model=m.model,
        url=m.url,
        revision=m.revision,
        description=m.description,
        parent=row.parent,
    )


@router.get("/models", response_model=list[ModelOut])
async def list_models(catalog: CatalogDep) -> list[ModelOut]:
    """The configured models and adapters, with each adapter's parent (API keys never shown)."""
    return [model_out(row) for row in await catalog.rows()]


@router.post(
    "/adapters",
    status_code=status.HTTP_201_CREATED,
    response_model=ModelOut,
    dependencies=[Depends(require_json)],
)
async def add_adapter(data: AdapterInput, catalog: CatalogDep) -> ModelOut:
    """Load a LoRA adapter on a configured model's vLLM server and add it as a model.

    409 when the name is taken (here or on the server), 422 for an unknown base, 502 when the
    server cannot be reached, refuses the adapter, or does not load adapters at runtime.
    """
    added = await catalog.add_adapter(data)
    return model_out(CatalogRow(added, added.adapter_of))
