"""Hypermedia routes of token shift over a whole run: the report page, its live progress
fragment, and the form that starts (or retries) the analysis."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.lens.runs import queries
from app.lens.runs.deps import RunShiftsDep
from app.lens.runs.report import FIRST_POSITIONS, TOP_TOKENS
from app.lens.runs.schemas import JobStatus, RunShiftInput
from app.lens.runs.targets import run_bases
from app.lens.runs.views import ModelView, percent
from app.lens.shift import DEFAULT_TOP_K
from app.web.deps import SessionDep, State
from app.web.pages import csrf, render
from app.web.templating import templates

router = APIRouter(include_in_schema=False)


@router.get("/runs/{run_id}/token-shift", response_class=HTMLResponse)
async def report_page(
    request: Request,
    run_id: int,
    state: State,
    shifts: RunShiftsDep,
    session: SessionDep,
    reveal: bool = False,
) -> HTMLResponse:
    """Progress, failures, and per chat model the shifted ratios, tokens and positions."""
    run = await shifts.run(run_id)
    hidden = run.blind and not reveal
    # A blind run's page says "Model 1" for its first model, as the run's own page does.
    labels = {m: f"Model {i + 1}" for i, m in enumerate(run.models)} if hidden else {}
    progress = await shifts.status(run_id)
    views = [ModelView.of(r) for r in await queries.report_of(session, run)]
    own = [m.name for m in run_bases(run, state.models)]
    context = {
        "run": run,
        "progress": progress,
        "views": views,
        "base_models": state.base_model_names(),
        "chosen_base": progress.base or (own[0] if len(own) == 1 else None),
        "percent": percent,
        "top_tokens": TOP_TOKENS,
        "first_positions": FIRST_POSITIONS,
        "hidden": hidden,
        "label": lambda name: labels.get(name, name),
    }
    return render(request, state, "run_token_shift.html", context)


@router.get("/runs/{run_id}/token-shift/progress", response_class=HTMLResponse)
async def progress_fragment(request: Request, run_id: int, shifts: RunShiftsDep) -> HTMLResponse:
    """The progress fragment the report page polls while the analysis runs."""
    run = await shifts.run(run_id)
    progress = await shifts.status(run_id)
    response = templates.TemplateResponse(
        request, "_run_token_shift_progress.html", {"run": run, "progress": progress}
    )
    if request.headers.get("HX-Request") and progress.status != JobStatus.RUNNING:
        # Finished while the page watched: reload it once to draw the report.
        response.headers["HX-Refresh"] = "true"
    return response


@router.post("/runs/{run_id}/token-shift/start", dependencies=csrf)
async def start(request: Request, run_id: int, shifts: RunShiftsDep) -> Response:
    """Start the analysis (or retry its failures) from the page's form, then watch it."""
    form = await request.form()
    base = form.get("base")
    chosen = base.strip()[:64] or None if isinstance(base, str) else None
    await shifts.start(run_id, RunShiftInput(base=chosen, top_k=DEFAULT_TOP_K))
    url = f"/runs/{run_id}/token-shift"
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Location": url})
    return RedirectResponse(url, status_code=303)
