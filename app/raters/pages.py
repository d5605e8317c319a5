"""GET /raters: the raters' table and the agreement figures (admins only, once accounts exist)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.raters.filters import RatersFilters
from app.raters.service import raters
from app.web.deps import SessionDep, State
from app.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/raters", response_class=HTMLResponse)
async def raters_page(
    request: Request, state: State, session: SessionDep, filters: RatersFilters
) -> HTMLResponse:
    """The figures for the filters in the query string."""
    report = await raters(session, filters)
    return render(request, state, "raters.html", {"report": report, "filters": filters})
