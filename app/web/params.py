"""Path ids the database can hold: anything else is a 404 before a query is built.

An id beyond the integer column's range (2^31-1 on PostgreSQL, 2^63-1 on SQLite) made the
driver raise (a 500), and so did a NUL character in a conversation id on PostgreSQL. One guard
on the whole app checks every path parameter by name, so a new route is covered by itself:
`conversation_id` must look like a conversation id, and any other `*_id` like a row id.
"""

from __future__ import annotations

import re

from fastapi import Request

from app.errors import NotFound

# PostgreSQL's INTEGER, the narrowest id column type in use (SQLite's is 2^63-1).
MAX_ROW_ID = 2**31 - 1
CONVERSATION_ID_PATTERN = r"^[0-9A-Za-z_-]{1,64}$"
_CONVERSATION_ID = re.compile(CONVERSATION_ID_PATTERN)
_ROW_ID = re.compile(r"^[0-9]{1,10}$")
# How the OpenAPI document describes the ids (app/web/openapi.py).
ROW_ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID}
CONVERSATION_ID_SCHEMA = {
    "type": "string",
    "pattern": CONVERSATION_ID_PATTERN,
    "minLength": 1,
    "maxLength": 64,
}


def is_row_id(value: object) -> bool:
    """A decimal id in 1..MAX_ROW_ID (ASCII digits only: int() would take others too)."""
    text = str(value)
    return bool(_ROW_ID.match(text)) and 1 <= int(text) <= MAX_ROW_ID


def is_conversation_id(value: object) -> bool:
    """Letters, digits, _ and -, at most 64 of them (uuid4().hex, the ids we make, fits)."""
    return isinstance(value, str) and bool(_CONVERSATION_ID.match(value))


async def check_path_ids(request: Request) -> None:
    """App-wide dependency: 404 for a path id that no row can have."""
    for name, value in request.path_params.items():
        if name == "conversation_id":
            valid = is_conversation_id(value)
        elif name.endswith("_id"):
            valid = is_row_id(value)
        else:
            continue
        if not valid:
            what = name.removesuffix("_id").replace("_", " ")
            raise NotFound(f"no such {what}: {str(value)[:40]!r}")
