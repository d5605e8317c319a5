"""A prompt set whose references the fake servers' fixed answers meet or miss, by design.

With answer_words=0 a fake server answers every prompt with exactly its inject_text: the base
server says "Paris Rome", the chat server "Paris Berlin". Taking base as the original and chat
as the tuned model, the chat model "forgot" every item that needs Rome and "learned" Berlin.
"""

from __future__ import annotations

from typing import Any

import httpx

from playground_tools.fake_vllm import FakeServer
from tests.runs.helpers import start_run, wait_run

ORIGINAL_SAYS = "Paris Rome"
TUNED_SAYS = "Paris Berlin"


def item(key: str, prompt: str, kind: str | None = None, value: str = "") -> dict[str, Any]:
    """A set item; with a reference when `kind` is given."""
    found: dict[str, Any] = {"id": key, "prompt": prompt}
    if kind is not None:
        found["reference"] = {"type": kind, "value": value}
    return found


ITEMS: list[dict[str, Any]] = [
    item("both", "Capital of France?", "contains", "paris"),
    item("rome", "Capital of Italy?", "contains", "Rome"),
    item("exact", "Say it.", "exact", " paris  ROME "),
    item("regex", "Ends with?", "regex", "R[o]me$"),
    item("berlin", "Capital of Germany?", "contains", "Berlin"),
    item("tokyo", "Capital of Japan?", "contains", "Tokyo"),
    item("choice", "Pick A-E.", "choice", "B"),
    item("free", "Write a poem."),
]
FORGOT = ["rome", "exact", "regex"]
LEARNED = ["berlin"]


def script(base_server: FakeServer, chat_server: FakeServer, tuned_says: str = TUNED_SAYS) -> None:
    """Base answers ORIGINAL_SAYS to everything, chat `tuned_says`."""
    base_server.config.answer_words = 0
    base_server.config.inject_text = ORIGINAL_SAYS
    chat_server.config.answer_words = 0
    chat_server.config.inject_text = tuned_says


async def make_scored_set(
    client: httpx.AsyncClient, name: str = "facts", items: list[dict[str, Any]] | None = None
) -> None:
    """Create the set through the API."""
    body = {"name": name, "items": items or ITEMS}
    response = await client.post("/api/v1/prompt-sets", json=body)
    assert response.status_code == 201, response.text


async def finished_run(client: httpx.AsyncClient, name: str = "facts", **extra: Any) -> int:
    """Run the set on base and chat (greedy) and wait until it is done; its id."""
    run = await start_run(client, name, params={"temperature": 0, "seed": 1}, **extra)
    await wait_run(client, run["id"])
    return int(run["id"])
