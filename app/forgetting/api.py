"""JSON API of the forgetting check: a run's report, as JSON and as CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.forgetting import exports, service
from app.forgetting.schemas import Report
from app.web.deps import ModelsDep, SessionDep

router = APIRouter(prefix="/api/v1", tags=["forgetting check"])
MAX_SEED = 2**31 - 1
# A model name as the models file allows it (app.config.ModelConfig).
ModelName = Annotated[str | None, Query(min_length=1, max_length=64)]
Seed = Annotated[int, Query(ge=0, le=MAX_SEED, description="the bootstrap's seed")]


@router.get("/runs/{run_id}/report", response_model=Report)
async def get_report(
    run_id: int,
    session: SessionDep,
    models: ModelsDep,
    original: ModelName = None,
    tuned: ModelName = None,
    seed: Seed = 0,
) -> Report:
    """Each model's accuracy with a 95% bootstrap interval; with a pair (an adapter and its
    base, or `original` and `tuned`), their difference and the items forgotten and learned."""
    return await service.run_report(session, models, run_id, original, tuned, seed)


@router.get("/runs/{run_id}/report.csv", response_class=Response)
async def get_report_csv(
    run_id: int,
    session: SessionDep,
    models: ModelsDep,
    original: ModelName = None,
    tuned: ModelName = None,
    seed: Seed = 0,
) -> Response:
    """The report's figures as CSV: a line per model, then the difference."""
    report = await service.run_report(session, models, run_id, original, tuned, seed)
    return Response(
        exports.report_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="run-{run_id}-report.csv"'},
    )
