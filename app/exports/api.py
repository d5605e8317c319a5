"""Download endpoints for exports."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.deps import State
from app.exports.ratings import stream_ratings_csv

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])


@router.get(
    "/ratings.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per vote (RFC 4180)"}},
)
async def ratings_csv(state: State) -> StreamingResponse:
    """Every vote with its prompt, both answers, models and settings, as CSV."""
    filename = f"ratings-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv"
    return StreamingResponse(
        stream_ratings_csv(state.sessions),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
