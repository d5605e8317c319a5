"""Download endpoints for exports."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.exports.judgements import stream_judgements_jsonl
from app.exports.ratings import stream_ratings_csv
from app.exports.token_shift import stream_token_shift_jsonl
from app.web.deps import State

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])


def _attachment(name: str, extension: str) -> dict[str, str]:
    filename = f"{name}-{datetime.now(UTC):%Y%m%d-%H%M%S}.{extension}"
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


@router.get(
    "/ratings.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {}},
            "description": "One row per rated pair of answers (RFC 4180)",
        }
    },
)
async def ratings_csv(state: State) -> StreamingResponse:
    """Every rated pair (a judgement of n answers gives n(n-1)/2 rows) with its prompt, both
    answers, models, settings and shifted ratios, as CSV."""
    return StreamingResponse(
        stream_ratings_csv(state.sessions),
        media_type="text/csv; charset=utf-8",
        headers=_attachment("ratings", "csv"),
    )


@router.get(
    "/token-shift.jsonl",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {}},
            "description": "One JSON object per line, per token of every stored token-shift "
            "analysis",
        }
    },
)
async def token_shift_jsonl(state: State) -> StreamingResponse:
    """Every analysed token: where it is, the chat logprob, the base rank, logprob and top token."""
    return StreamingResponse(
        stream_token_shift_jsonl(state.sessions),
        media_type="application/x-ndjson; charset=utf-8",
        headers=_attachment("token-shift", "jsonl"),
    )


@router.get(
    "/judgements.jsonl",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {}},
            "description": "One JSON object per line, per judgement, with its full ranking",
        }
    },
)
async def judgements_jsonl(state: State) -> StreamingResponse:
    """Every judgement: rater, ranking (or all bad), and each judged answer with its model,
    slot, position, rank, score, what it was sent and what it said."""
    return StreamingResponse(
        stream_judgements_jsonl(state.sessions),
        media_type="application/x-ndjson; charset=utf-8",
        headers=_attachment("judgements", "jsonl"),
    )
