"""Shared steps of the runs tests: import a set, start a run, wait for it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


def items(count: int, prefix: str = "q") -> list[dict[str, Any]]:
    """`count` simple items with ids."""
    return [{"id": f"{prefix}{i}", "prompt": f"Question number {i}?"} for i in range(count)]


async def make_set(client: httpx.AsyncClient, name: str, count: int) -> dict[str, Any]:
    """Create a set of `count` items through the API."""
    response = await client.post("/api/v1/prompt-sets", json={"name": name, "items": items(count)})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def start_run(
    client: httpx.AsyncClient, set_name: str, models: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    """Start a run of a set on base and chat (or these models)."""
    body = {"prompt_set": set_name, "models": models or ["base", "chat"], **extra}
    response = await client.post("/api/v1/runs", json=body)
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


async def wait_run(
    client: httpx.AsyncClient, run_id: int, until: Any = None, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll the run until `until(run)` holds (default: it is done)."""
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = (await client.get(f"/api/v1/runs/{run_id}")).json()
        if (until or (lambda r: r["status"] == "done"))(run):
            return run
        assert time.monotonic() < deadline, f"run never got there: {run}"
        await asyncio.sleep(0.05)
