"""GET /api/v1/raters: per-rater figures and inter-rater agreement."""

from __future__ import annotations

from fastapi import APIRouter

from app.raters.filters import RatersFilters
from app.raters.schemas import RatersOut
from app.raters.service import raters
from app.web.deps import SessionDep

router = APIRouter(prefix="/api/v1", tags=["raters"])


@router.get("/raters", response_model=RatersOut)
async def get_raters(session: SessionDep, filters: RatersFilters) -> RatersOut:
    """Judgements, median time per judgement, tie and both-bad shares and majority agreement
    per rater; Cohen's kappa per pair of raters, Fleiss' kappa and Krippendorff's alpha
    overall, each with its number of shared items."""
    return await raters(session, filters)
