"""LoRA adapters on a vLLM server: load one at runtime, and read which served names are adapters.

vLLM serves an adapter under its LoRA name beside the model it adapts; /v1/models lists it with
`parent` = the model's served name and `root` = the adapter's path.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from app.config import ModelConfig
from app.generation.errors import ModelServerError
from app.generation.http import auth_headers, call_json, connection_errors, error_message, root_url

# Listing models must stay fast even when a server hangs: parents are a detail, not worth a wait.
DISCOVERY_TIMEOUT_SECONDS = 2.0
# FastAPI's answer for a route that does not exist, which is how vLLM says runtime loading is off.
ROUTE_NOT_FOUND = {"detail": "Not Found"}


class AdapterLoadingDisabled(ModelServerError):
    """The server has no /v1/load_lora_adapter: it runs without runtime LoRA updating."""


class AdapterExists(ModelServerError):
    """The server already serves something under that name."""

    status_code = 409


def _missing_route(response: httpx.Response) -> bool:
    try:
        return bool(response.status_code == 404 and response.json() == ROUTE_NOT_FOUND)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


async def load_adapter(http: httpx.AsyncClient, parent: ModelConfig, name: str, path: str) -> None:
    """Ask the parent's vLLM server to serve the adapter at `path` under `name`."""
    url = f"{root_url(parent)}/v1/load_lora_adapter"
    body: dict[str, Any] = {"lora_name": name, "lora_path": path}
    with connection_errors(parent):
        response = await http.post(url, json=body, headers=auth_headers(parent))
    if response.status_code < 400:
        return
    if _missing_route(response):
        raise AdapterLoadingDisabled(
            f"the server of {parent.name} does not load adapters at runtime: start vLLM with "
            "--enable-lora and the environment variable VLLM_ALLOW_RUNTIME_LORA_UPDATING=True "
            "(a model the playground launches gets both with `lora = true`)"
        )
    message = error_message(response.content)
    if response.status_code == 400 and (
        "already been loaded" in message or "conflicts with a served base model" in message
    ):
        raise AdapterExists(f"the server of {parent.name} already serves {name!r}: {message}")
    raise ModelServerError(
        f"the server of {parent.name} could not load adapter {name!r} from {path} "
        f"(HTTP {response.status_code}): {message}"
    )


async def served_parents(http: httpx.AsyncClient, model: ModelConfig) -> dict[str, str]:
    """Served name -> its parent's served name, for every adapter the model's server lists;
    empty when the server is down or slow (this only decorates a listing)."""
    try:
        async with asyncio.timeout(DISCOVERY_TIMEOUT_SECONDS):
            answer = await call_json(http, model, "GET", f"{model.server_url}/models")
    except (ModelServerError, TimeoutError):
        return {}
    cards = answer.get("data")
    if not isinstance(cards, list):
        return {}
    return {
        card["id"]: card["parent"]
        for card in cards
        if isinstance(card, dict)
        and isinstance(card.get("id"), str)
        and isinstance(card.get("parent"), str)
    }
