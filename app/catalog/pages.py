"""Hypermedia routes of the model catalog: the Models page and its "Add adapter" form."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.catalog.api import CatalogDep
from app.catalog.schemas import AdapterInput
from app.config import ModelKind
from app.errors import InvalidInput
from app.web.deps import State
from app.web.pages import csrf, render

router = APIRouter(include_in_schema=False)
FORM_FIELDS = ("name", "path", "base", "kind")


@router.get("/models", response_class=HTMLResponse)
async def models_page(request: Request, state: State, catalog: CatalogDep) -> HTMLResponse:
    """Every model with its kind, served name and parent; a form to add an adapter."""
    context = {
        "rows": await catalog.rows(),
        "bases": [m.name for m in state.models.models if not m.is_adapter],
        "kinds": list(ModelKind),
    }
    return render(request, state, "models.html", context)


@router.post("/models/adapters", dependencies=csrf)
async def add_adapter(request: Request, catalog: CatalogDep) -> Response:
    """Load the adapter and go back to the Models page, where it is listed."""
    form = await request.form()
    values = {name: form.get(name) for name in FORM_FIELDS}
    try:
        data = AdapterInput.model_validate({k: v for k, v in values.items() if v})
    except ValidationError as exc:
        raise InvalidInput(describe_form_errors(exc)) from exc
    await catalog.add_adapter(data)
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Location": "/models"})
    return RedirectResponse("/models", status_code=303)


def describe_form_errors(exc: ValidationError) -> str:
    """Form problems as one line, naming each field."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
        for e in exc.errors()
    )
