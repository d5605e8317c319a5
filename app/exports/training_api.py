"""GET /api/v1/exports/{dpo,kto,reward}.{jsonl,parquet}: judgements as TRL datasets."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.exports.training import Form, Kind, Options, Ties
from app.exports.training_files import stream_jsonl, stream_parquet
from app.leaderboard.filters import ExportFilters, Filters
from app.web.deps import State

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])

FormQuery = Annotated[
    Form, Query(description="`standard` strings or `conversational` role/content messages")
]
TiesQuery = Annotated[
    Ties,
    Query(
        description="Ties and both-bad: `drop` (default) or, for KTO, `kto_negative` (every "
        "answer labelled false); DPO and reward always drop them"
    ),
]
MEDIA = {
    "jsonl": "application/x-ndjson; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
SUMMARY = {
    Kind.DPO: "DPO pairs (prompt, chosen, rejected): one record per pair of answers ranked apart",
    Kind.KTO: "KTO records (prompt, completion, label): best-ranked answers true, others false",
    Kind.REWARD: "Reward-model pairs (chosen, rejected, prompt included in each)",
}

Endpoint = Callable[..., Coroutine[Any, Any, StreamingResponse]]


def _endpoint(kind: Kind, extension: str) -> Endpoint:
    async def export(
        state: State,
        filters: ExportFilters,
        form: FormQuery = Form.STANDARD,
        ties: TiesQuery = Ties.DROP,
    ) -> StreamingResponse:
        return _response(state, filters, Options(kind, form, ties), extension)

    export.__doc__ = f"{SUMMARY[kind]}, as {extension}, with provenance; see the README."
    return export


def _response(
    state: State, filters: Filters, options: Options, extension: str
) -> StreamingResponse:
    """The download, named after the kind, form and time."""
    stream = stream_parquet if extension == "parquet" else stream_jsonl
    name = f"{options.kind.value}-{options.form.value}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    return StreamingResponse(
        stream(state.sessions, filters, options),
        media_type=MEDIA[extension],
        headers={"Content-Disposition": f'attachment; filename="{name}.{extension}"'},
    )


for _kind in Kind:
    for _extension in MEDIA:
        router.add_api_route(
            f"/{_kind.value}.{_extension}",
            _endpoint(_kind, _extension),
            methods=["GET"],
            name=f"{_kind.value}_{_extension}",
            response_class=StreamingResponse,
            responses={200: {"content": {MEDIA[_extension].split(";")[0]: {}}}},
        )
