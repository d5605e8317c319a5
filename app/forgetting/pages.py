"""The report page of a run: accuracies, the difference, items forgotten and learned."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from app.forgetting import scoring, service
from app.forgetting.api import MAX_SEED
from app.web.deps import ModelsDep, SessionDep, State
from app.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/runs/{run_id}/report", response_class=HTMLResponse)
async def report_page(
    request: Request,
    run_id: int,
    state: State,
    session: SessionDep,
    models: ModelsDep,
    original: str = Query("", max_length=64),
    tuned: str = Query("", max_length=64),
    seed: int = Query(0, ge=0, le=MAX_SEED),
    reveal: bool = False,
) -> HTMLResponse:
    """The forgetting check of a run; a form picks the original and the tuned model."""
    report = await service.run_report(
        session, models, run_id, original or None, tuned or None, seed
    )
    run = await scoring.get_run(session, run_id)
    hidden = run.blind and not reveal
    labels = {m: f"Model {i + 1}" if hidden else m for i, m in enumerate(run.models)}
    context = {"report": report, "run": run, "labels": labels, "hidden": hidden}
    return render(request, state, "run_report.html", context)
