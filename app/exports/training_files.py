"""The training records as JSONL (streamed chunk by chunk) or Parquet (row groups written to a
spooled temporary file, then streamed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from tempfile import SpooledTemporaryFile

import pyarrow as pa
import pyarrow.parquet as pq
from anyio import to_thread
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.exports.training import Form, Kind, Options, stream_records
from app.leaderboard.filters import Filters

# Parquet in memory up to this size, then on disk; read back in blocks of READ_BYTES.
SPOOL_BYTES, READ_BYTES = 16 * 1024 * 1024, 256 * 1024

_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
_PAIR = {
    "models": pa.struct([("chosen", pa.string()), ("rejected", pa.string())]),
    "seed": pa.struct([("chosen", pa.int64()), ("rejected", pa.int64())]),
}
_COMMON = {"judgement_id": pa.int64(), "rater": pa.string(), "prompt_set": pa.string()}


def schema(options: Options) -> pa.Schema:
    """The Parquet columns for a kind and form (the JSONL records have the same keys)."""
    text = _MESSAGES if options.form is Form.CONVERSATIONAL else pa.string()
    if options.kind is Kind.DPO:
        columns = {"prompt": text, "chosen": text, "rejected": text, **_COMMON, **_PAIR}
    elif options.kind is Kind.REWARD:
        columns = {"chosen": text, "rejected": text, **_COMMON, **_PAIR}
    else:
        columns = {"prompt": text, "completion": text, "label": pa.bool_(), **_COMMON}
        columns |= {"model": pa.string(), "seed": pa.int64()}
    return pa.schema(list(columns.items()))


async def stream_jsonl(
    sessions: async_sessionmaker[AsyncSession], filters: Filters, options: Options
) -> AsyncIterator[str]:
    """One JSON object per line, a chunk of lines at a time."""
    async for chunk in stream_records(sessions, filters, options):
        if chunk:
            yield "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk)


async def stream_parquet(
    sessions: async_sessionmaker[AsyncSession], filters: Filters, options: Options
) -> AsyncIterator[bytes]:
    """Write a row group per chunk of records, then stream the finished file."""
    columns = schema(options)
    with SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        writer = pq.ParquetWriter(spool, columns)
        try:
            async for chunk in stream_records(sessions, filters, options):
                if chunk:
                    table = pa.Table.from_pylist(chunk, schema=columns)
                    await to_thread.run_sync(writer.write_table, table)
        finally:
            writer.close()
        spool.seek(0)
        while block := await to_thread.run_sync(spool.read, READ_BYTES):
            yield block
