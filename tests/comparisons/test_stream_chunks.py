"""Events sent together in one chunk are the same bytes as sent one by one."""

from __future__ import annotations

from sse_starlette import EventSourceResponse
from sse_starlette.event import ensure_bytes

from app.comparisons.pages import _together


def test_events_together_are_the_bytes_of_each_in_turn() -> None:
    events = [
        {"event": "delta-a", "data": "line one\nline &lt;two&gt;", "id": "12:3"},
        {"event": "delta-b", "data": "", "id": "12:3"},
        {"event": "done-b", "data": "<div>\n\n</div>"},
    ]
    sep = EventSourceResponse.DEFAULT_SEPARATOR
    assert _together(events) == b"".join(ensure_bytes(event, sep) for event in events)
